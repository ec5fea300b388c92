// cordon-audit's strict JSON reader and its schema checks (docs/audit.md):
// what the reader refuses that a lenient one would take, integer limits,
// escapes, and the stream rules (seq, gaps, audit_lost, a new cordon_init);
// HMAC-SHA256 (RFC 4231's vectors) and the records' mac.
#include <gtest/gtest.h>
#include <sys/random.h>

#include <string>

#include "runtime/audit/hmac.h"
#include "tools/cordon-audit/json.h"
#include "tools/cordon-audit/schema.h"

namespace json = cordon::audit::json;
using cordon::audit::ReadRecord;
using cordon::audit::Record;
using cordon::audit::StreamChecker;

namespace {

size_t Random(size_t below) {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) abort();
  return static_cast<size_t>(v % below);
}

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
  // Its start again, older than its last record: written again, not exec.
  const auto at = [](std::string line, const char* timestamp) {
    return line.replace(line.find("\"timestamp\":1,"), 14, std::string("\"timestamp\":") + timestamp + ",");
  };
  EXPECT_EQ(s.Check(Read(at(Lost(2, 0), "5")), 9), "");
  EXPECT_EQ(s.Check(Read(Init(9)), 10),
            "cordon_init at seq 0 of process 9 with a timestamp before its last record's: its start written "
            "again, not a new program (exec)");
  EXPECT_EQ(s.Check(Read(Lost(3, 0)), 11), "") << "the replay changed nothing";
  EXPECT_EQ(s.Check(Read(at(Init(9), "6")), 12), "");
}

// ---- HMAC-SHA256: RFC 4231, section 4 (test cases 1-7), and keys at and
// past the block size (values from Python's hmac module) ----

std::string Bytes(size_t n, unsigned char c) {
  return std::string(n, static_cast<char>(c));
}

std::string Mac(const std::string& key, const std::string& data) {
  char hex[65];
  cordon::audit::HmacSha256Hex(key.data(), key.size(), data.data(), data.size(), hex);
  return hex;
}

TEST(AuditHmac, Rfc4231Vectors) {
  std::string counting;  // 0x01..0x19
  for (int i = 1; i <= 25; ++i) counting.push_back(static_cast<char>(i));
  EXPECT_EQ(Mac(Bytes(20, 0x0b), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(Mac("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(Mac(Bytes(20, 0xaa), Bytes(50, 0xdd)),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  EXPECT_EQ(Mac(counting, Bytes(50, 0xcd)),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  // Test case 5 gives the first 128 bits only.
  EXPECT_EQ(Mac(Bytes(20, 0x0c), "Test With Truncation").substr(0, 32), "a3b6167473100ee06e0c796c2955552b");
  EXPECT_EQ(Mac(Bytes(131, 0xaa), "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(
      Mac(Bytes(131, 0xaa),
          "This is a test using a larger than block-size key and a larger than block-size data. The key "
          "needs to be hashed before being used by the HMAC algorithm."),
      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
  std::string block, past;
  for (int i = 0; i < 64; ++i) block.push_back(static_cast<char>(i));
  past = block + static_cast<char>(64);
  EXPECT_EQ(Mac(block, ""), "3499f163f48604c0b15ac89e4e7c66f314fb3b203b8ac2f564828e62f6be9d9d");
  EXPECT_EQ(Mac(past, std::string(200, 'x')),
            "277896dee0ce66ab11d9ce8335fb9a51ed51a8e2429fa9706197645e003c9748");
}

TEST(AuditHmac, PiecesGiveTheSameMac) {
  std::string key(32, '\0'), data(700, '\0');
  ASSERT_EQ(getrandom(key.data(), key.size(), 0), 32);
  ASSERT_EQ(getrandom(data.data(), data.size(), 0), 700);
  const std::string whole = Mac(key, data);
  for (size_t piece = 1; piece < 140; ++piece) {
    cordon::audit::HmacSha256 h(key.data(), key.size());
    for (size_t i = 0; i < data.size(); i += piece)
      h.Update(data.data() + i, std::min(piece, data.size() - i));
    uint8_t d[32];
    h.Final(d);
    char hex[65];
    for (int i = 0; i < 32; ++i) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    EXPECT_EQ(std::string(hex), whole) << piece;
  }
  // Any other key gives another mac.
  key[Random(32)] ^= static_cast<char>(1 + Random(255));
  EXPECT_NE(Mac(key, data), whole);
}

// ---- The records' mac (docs/audit.md, "Authenticated records") ----

constexpr char kBody[] =
    R"({"timestamp":1764740103000000000,"schema":"cordon.audit/1","seq":1,"processId":7,"threadId":7,)"
    R"("processName":"prog","eventId":6,"eventName":"code_release","argsNum":2,"args":[{"name":"block",)"
    R"("type":"void*","value":"0x1000"},{"name":"status","type":"int","value":0}])";

std::string Signed(const cordon::audit::MacKey& key, const std::string& body) {
  return body + ",\"mac\":\"" + Mac(std::string(reinterpret_cast<const char*>(key.bytes), 32), body) + "\"}";
}

cordon::audit::MacKey RandomKey() {
  cordon::audit::MacKey key{};
  if (getrandom(key.bytes, sizeof key.bytes, 0) != sizeof key.bytes) abort();
  return key;
}

std::string Authenticated(const std::string& line, const cordon::audit::MacKey& key) {
  auto r = ReadRecord(line);
  if (!r.ok()) return "not read: " + r.error();
  return cordon::audit::Authenticate(line, r.value(), key);
}

TEST(AuditMac, OnlyTheKeysMacOfTheWholeLineIsAccepted) {
  const auto key = RandomKey();
  const std::string line = Signed(key, kBody);
  EXPECT_EQ(Authenticated(line, key), "");
  auto r = ReadRecord(line);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->mac, line.substr(line.size() - 66, 64));
  const std::string wrong =
      "forged or altered record: its mac is not the key's HMAC-SHA256 of the line before ,\"mac\":";
  EXPECT_EQ(Authenticated(Signed(RandomKey(), kBody), key), wrong);
  // Every digit of seq, pid and status changed in turn, and the mac's own.
  for (const std::string from : {"\"seq\":1", "\"processId\":7", "\"value\":0}"}) {
    std::string altered = line;
    altered.replace(altered.find(from), from.size(),
                    std::string(from).replace(from.find_first_of("0123456789"), 1, "2"));
    EXPECT_EQ(Authenticated(altered, key), wrong) << altered;
  }
  std::string mac_flipped = line;
  char& c = mac_flipped[mac_flipped.size() - 3];
  c = c == '0' ? '1' : '0';
  EXPECT_EQ(Authenticated(mac_flipped, key), wrong);
  EXPECT_EQ(Authenticated(std::string(kBody) + "}", key),
            "forged or altered record: it has no mac, and with a key every record must carry one");
  std::string spaced = line;
  spaced.replace(spaced.find(",\"mac\":"), 7, ", \"mac\":");
  EXPECT_EQ(
      Authenticated(spaced, key),
      "forged or altered record: its mac is not at the line's end in the writer's form ,\"mac\":\"...\"}");
}

TEST(AuditMac, KeyText) {
  const auto key = RandomKey();
  std::string hex;
  for (uint8_t b : key.bytes) {
    char two[3];
    snprintf(two, sizeof two, "%02X", b);
    hex += two;
  }
  for (const std::string& text : {hex, hex + "\n"}) {
    auto parsed = cordon::audit::ParseKey(text);
    ASSERT_TRUE(parsed.ok()) << parsed.error();
    EXPECT_EQ(memcmp(parsed->bytes, key.bytes, 32), 0);
  }
  EXPECT_EQ(cordon::audit::ParseKey(hex.substr(1)).error(),
            "the key has 63 characters, not the 64 hex digits of a 32-byte key");
  EXPECT_EQ(cordon::audit::ParseKey(hex + "\n\n").error(),
            "the key has 65 characters, not the 64 hex digits of a 32-byte key");
  std::string bad = hex;
  const size_t at = Random(64);
  bad[at] = 'g';
  EXPECT_EQ(cordon::audit::ParseKey(bad).error(),
            "the key's character " + std::to_string(at + 1) + " is not a hex digit");
}

}  // namespace
