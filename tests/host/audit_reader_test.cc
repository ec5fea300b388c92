// cordon-audit's strict JSON reader and its schema checks (docs/audit.md):
// what the reader refuses that a lenient one would take, integer limits,
// escapes, and the stream rules (seq, gaps, audit_lost, a new cordon_init).
#include <gtest/gtest.h>

#include <string>

#include "tools/cordon-audit/json.h"
#include "tools/cordon-audit/schema.h"

namespace json = cordon::audit::json;
using cordon::audit::ReadRecord;
using cordon::audit::Record;
using cordon::audit::StreamChecker;

namespace {

std::string ParseError(const std::string& text) {
  auto v = json::Parse(text);
  return v.ok() ? "" : v.error();
}

TEST(AuditJson, RefusesWhatALenientReaderTakes) {
  EXPECT_EQ(ParseError(R"({"a":1,"a":2})"), "column 8: duplicate key \"a\"");
  EXPECT_EQ(ParseError(R"({"a":1} {})"), "column 9: trailing characters after the JSON value");
  EXPECT_EQ(ParseError(R"({"a":1,})"), "column 8: a member name (a string) expected");
  EXPECT_EQ(ParseError(R"([1,])"), "column 4: unexpected character ']'");
  EXPECT_EQ(ParseError(R"("\x41")"), "column 2: bad escape '\\x'");
  EXPECT_EQ(ParseError(R"("\u12zz")"), "column 2: bad \\u escape (four hex digits expected)");
  EXPECT_EQ(ParseError(R"("\u12")"), "column 2: truncated \\u escape");
  EXPECT_EQ(ParseError("\"a\tb\""), "column 3: control byte 0x09 inside a string (must be escaped)");
  EXPECT_EQ(ParseError("\"\xc3\xa9\""), "column 2: non-ASCII byte 0xc3 (the stream escapes bytes >= 0x80)");
  EXPECT_EQ(ParseError("01"), "column 1: leading zero in a number");
  EXPECT_EQ(ParseError("1."), "column 1: a digit expected after the decimal point");
  EXPECT_EQ(ParseError("-"), "column 1: a digit expected in a number");
  EXPECT_EQ(ParseError("'a'"), "column 1: unexpected character '''");
  EXPECT_EQ(ParseError("tru"), "column 1: invalid literal");
  EXPECT_EQ(ParseError(""), "column 1: unexpected end of input, a value expected");
  EXPECT_EQ(ParseError(R"("\ud800")"), "column 2: high surrogate without its low half");
  EXPECT_EQ(ParseError(R"("\udc00")"), "column 2: lone low surrogate in a \\u escape");
  EXPECT_EQ(ParseError(std::string(40, '[') + std::string(40, ']')), "column 34: nesting deeper than 32");
}

TEST(AuditJson, IntegersFit64Bits) {
  EXPECT_EQ(ParseError("18446744073709551616"), "column 1: integer 18446744073709551616 out of 64-bit range");
  EXPECT_EQ(ParseError("-9223372036854775809"), "column 1: integer -9223372036854775809 out of 64-bit range");
  EXPECT_EQ(ParseError("99999999999999999999999"),
            "column 1: integer 99999999999999999999999 out of 64-bit range");
  auto max = json::Parse("18446744073709551615");
  ASSERT_TRUE(max.ok());
  EXPECT_TRUE(max->IsUint64());
  EXPECT_FALSE(max->IsInt64());
  EXPECT_EQ(max->AsUint64(), UINT64_MAX);
  auto min = json::Parse("-9223372036854775808");
  ASSERT_TRUE(min.ok());
  EXPECT_TRUE(min->IsInt64());
  EXPECT_FALSE(min->IsUint64());
  EXPECT_EQ(min->AsInt64(), INT64_MIN);
  auto zero = json::Parse("-0");
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->IsUint64());
  auto real = json::Parse("1e3");
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(real->kind, json::Kind::kReal);
}

TEST(AuditJson, EscapesDecodeToBytes) {
  auto v = json::Parse(R"("a\u00e9\u0000\"\\\/\n\u00ff")");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->text, std::string("a\xe9\0\"\\/\n\xff", 8));
  EXPECT_FALSE(v->wide_escape);
  auto wide = json::Parse(R"("\u0100\ud83d\ude00")");
  ASSERT_TRUE(wide.ok());
  EXPECT_TRUE(wide->wide_escape);
  EXPECT_EQ(wide->text, "\xc4\x80\xf0\x9f\x98\x80");
  EXPECT_EQ(json::Quote(std::string("a\xe9\x01\"", 4)), R"("a\u00e9\u0001\"")");
}

TEST(AuditJson, KeepsMemberOrderAndWritesItBack) {
  const std::string text = R"({"b":1,"a":[true,null,"x",-5],"c":{}})";
  auto v = json::Parse(text);
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->members.size(), 3u);
  EXPECT_EQ(v->members[0].first, "b");
  EXPECT_EQ(v->members[1].first, "a");
  EXPECT_EQ(json::Write(*v), text);
}

std::string Line(uint64_t seq, int pid, const std::string& event, int id, const std::string& args, int n) {
  return R"({"timestamp":1,"schema":"cordon.audit/1","seq":)" + std::to_string(seq) + R"(,"processId":)" +
         std::to_string(pid) + R"(,"threadId":)" + std::to_string(pid) + R"(,"processName":"p","eventId":)" +
         std::to_string(id) + R"(,"eventName":")" + event + R"(","argsNum":)" + std::to_string(n) +
         R"(,"args":)" + args + "}";
}
std::string Init(int pid) {
  return Line(
      0, pid, "cordon_init", 1,
      R"([{"name":"version","type":"const char*","value":"0.1.0"},{"name":"platform","type":"const char*","value":""},)"
      R"({"name":"trusted_pkey","type":"int","value":1},{"name":"inspect_policy","type":"const char*","value":"refuse"}])",
      4);
}
std::string Lost(uint64_t seq, uint64_t lost) {
  return Line(seq, 9, "audit_lost", 10,
              R"([{"name":"lost","type":"u64","value":)" + std::to_string(lost) + "}]", 1);
}
Record Read(const std::string& line) {
  auto r = ReadRecord(line);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : Record{};
}

TEST(AuditSchema, ReadsTheArguments) {
  Record r = Read(Init(9));
  EXPECT_EQ(r.pid, 9);
  EXPECT_EQ(r.Str("version"), "0.1.0");
  EXPECT_EQ(r.Int("trusted_pkey"), 1);
  EXPECT_EQ(r.Str("inspect_policy"), "refuse");
  Record f = Read(Line(
      1, 9, "syscall_refused", 7,
      R"([{"name":"syscall","type":"int","value":-1},{"name":"syscall_name","type":"const char*","value":"unknown"},)"
      R"({"name":"syscall_args","type":"unsigned long[]","value":["0x0","0x1","0xa","0xffffffffffffffff","0x0","0x0"]},)"
      R"({"name":"ip","type":"void*","value":"0x7f00"},{"name":"action","type":"const char*","value":"errno"}])",
      5));
  EXPECT_EQ(f.Int("syscall"), -1);
  EXPECT_EQ(f.Get("syscall_args").list, (std::vector<uint64_t>{0, 1, 10, UINT64_MAX, 0, 0}));
  EXPECT_EQ(f.U64("ip"), 0x7f00u);
}

TEST(AuditSchema, StreamRules) {
  StreamChecker s;
  EXPECT_EQ(s.Check(Read(Init(9)), 1), "");
  EXPECT_EQ(s.Check(Read(Lost(3, 2)), 2), "");  // seq 1 and 2 lost, reported
  ASSERT_EQ(s.gaps().size(), 1u);
  EXPECT_EQ(s.gaps()[0].from, 1u);
  EXPECT_EQ(s.gaps()[0].to, 2u);
  EXPECT_TRUE(s.gaps()[0].reported);
  EXPECT_EQ(s.Check(Read(Lost(3, 0)), 3), "seq 3 repeats or goes back (process 9 is at seq 4)");
  EXPECT_EQ(s.Check(Read(Lost(4, 0)), 4), "");
  EXPECT_EQ(s.Check(Read(Lost(6, 0)), 5),
            "seq jumps from 4 to 6: 1 record(s) missing but audit_lost reports 0");
  EXPECT_FALSE(s.gaps()[1].reported);
  // The pid starts over (exec): a new stream at seq 0.
  EXPECT_EQ(s.Check(Read(Init(9)), 6), "");
  EXPECT_EQ(s.Check(Read(Lost(1, 0)), 7), "");
  EXPECT_EQ(s.Check(Read(Lost(0, 0)), 8).substr(0, 6), "seq 0 ");
}

}  // namespace
