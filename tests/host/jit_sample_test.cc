// The JIT sample's compiler (samples/jit/bf.h) without Cordon: code with
// split constants holds no WRPKRU or XRSTOR at any byte offset (checked with
// the inspector's own search) for constants with 0x0F in every byte
// position, in displacements, immediates, multiply factors and jump
// offsets, and still computes what the reference interpreter does; naive
// code for the same programs does hold the bytes, so each check can fail.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "runtime/inspector/patterns.h"
#include "samples/jit/bf.h"

namespace {

using bf::Op;
using bf::OpKind;

// A byte the compiler cannot fold into an immediate: this program's own
// code must stay free of the patterns it builds.
uint32_t Opaque(uint32_t v) {
  asm volatile("" : "+r"(v));
  return v;
}
// 0x00ef010f and 0x0028ae0f, one opaque byte at a time (a whole constant
// would sit in a mov immediate).
uint32_t Wrpkru() {
  return Opaque(0x0f) | Opaque(0x01) << 8 | Opaque(0xef) << 16;
}
uint32_t Xrstor() {
  return Opaque(0x0f) | Opaque(0xae) << 8 | Opaque(0x28) << 16;
}

bool HasPattern(const bf::Code& code) {
  return !cordon::inspector::FindPatterns(code.bytes.data(), code.bytes.size()).empty();
}

bool HasStray0f(const bf::Code& code) {
  size_t bad = 0;
  return !bf::CheckNoPatternPrefix(code, &bad);
}

// Runs the IR directly: the oracle for programs built as IR.
std::string RunIr(const bf::Program& p, std::vector<uint8_t>* tape, size_t start) {
  std::string out;
  size_t ptr = start;
  std::vector<size_t> match(p.ops.size());
  std::vector<size_t> open;
  for (size_t i = 0; i < p.ops.size(); ++i) {
    if (p.ops[i].kind == OpKind::kOpen) open.push_back(i);
    if (p.ops[i].kind == OpKind::kClose) {
      match[i] = open.back();
      match[open.back()] = i;
      open.pop_back();
    }
  }
  auto& t = *tape;
  for (size_t pc = 0; pc < p.ops.size(); ++pc) {
    const Op& op = p.ops[pc];
    switch (op.kind) {
      case OpKind::kAdd:
        t[ptr + op.off] = static_cast<uint8_t>(t[ptr + op.off] + op.n);
        break;
      case OpKind::kSet:
        t[ptr + op.off] = op.n;
        break;
      case OpKind::kMove:
        ptr += static_cast<size_t>(static_cast<int64_t>(op.off));
        break;
      case OpKind::kMul:
        for (const bf::Target& x : op.targets)
          t[ptr + x.off] = static_cast<uint8_t>(t[ptr + x.off] + t[ptr] * x.n);
        t[ptr] = 0;
        break;
      case OpKind::kOut:
        out.push_back(static_cast<char>(t[ptr + op.off]));
        break;
      case OpKind::kIn:
        t[ptr + op.off] = 0;
        break;
      case OpKind::kOpen:
        if (t[ptr] == 0) pc = match[pc];
        break;
      case OpKind::kClose:
        if (t[ptr] != 0) pc = match[pc];
        break;
    }
  }
  return out;
}

// Compiles with split constants, maps the code with plain mprotect and runs
// it from cell `start`.
std::string RunCompiled(const bf::Code& code, bf::Tape* tape, size_t start) {
  bf::MappedCode mapped;
  EXPECT_TRUE(mapped.Map(code.bytes.data(), code.bytes.size()));
  if (mapped.entry() == nullptr) return "";
  tape->Clear();
  bf::Io io;
  reinterpret_cast<bf::CompiledFn>(mapped.entry())(tape->cells() + start, &io, &bf::Io::Out, &bf::Io::In);
  return io.output;
}

// Values with a 0x0F byte at every position, in both signs, and the two
// that spell a WRPKRU and an XRSTOR.
std::vector<int32_t> BadValues() {
  const int32_t f = static_cast<int32_t>(Opaque(0x0f));
  std::vector<int32_t> v = {f,
                            f << 8,
                            (f << 8) | 1,
                            f << 16,
                            (f << 16) | (f << 8) | f,
                            0x100f,
                            0x0ff0,
                            0x0f0f,
                            0x10f10,
                            static_cast<int32_t>(Wrpkru()),
                            0x0fff,
                            0xff0f0,
                            0x7f0f,
                            static_cast<int32_t>(Xrstor())};
  const size_t n = v.size();
  for (size_t i = 0; i < n; ++i) v.push_back(-v[i]);
  v.push_back(-0xf1);  // 0xffffff0f
  v.push_back(-0xf0f1);
  return v;
}

constexpr size_t kStart = size_t{1} << 23;  // the middle of the tape: room on both sides

TEST(JitSample, SplitConstantsHoldNoPatternAndComputeTheSame) {
  bf::Tape tape;
  ASSERT_TRUE(tape.ok());
  int naive_with_0f = 0;
  for (int32_t off : BadValues()) {
    if (off >= static_cast<int64_t>(kStart) || -off >= static_cast<int64_t>(kStart)) continue;
    for (uint8_t n : {uint8_t{0x0f}, uint8_t{0x01}, uint8_t{0xae}, uint8_t{0xef}}) {
      bf::Program p;
      p.ops.push_back({OpKind::kAdd, 0, 3, {}});
      p.ops.push_back({OpKind::kAdd, off, n, {}});
      p.ops.push_back({OpKind::kOut, off, 0, {}});
      p.ops.push_back({OpKind::kMul, 0, 0, {{off, n}, {1, static_cast<uint8_t>(Opaque(0x0f))}}});
      p.ops.push_back({OpKind::kOut, off, 0, {}});
      p.ops.push_back({OpKind::kOut, 1, 0, {}});
      p.ops.push_back({OpKind::kSet, off, n, {}});
      p.ops.push_back({OpKind::kMove, off, 0, {}});
      p.ops.push_back({OpKind::kOut, 0, 0, {}});
      p.ops.push_back({OpKind::kIn, -off, 0, {}});
      p.ops.push_back({OpKind::kMove, -off, 0, {}});
      p.ops.push_back({OpKind::kOut, 0, 0, {}});
      bf::Code naive, split;
      std::string error;
      ASSERT_TRUE(bf::Compile(p, bf::Constants::kNaive, &naive, &error)) << error;
      ASSERT_TRUE(bf::Compile(p, bf::Constants::kSplit, &split, &error)) << error;
      if (HasStray0f(naive)) ++naive_with_0f;
      EXPECT_FALSE(HasStray0f(split)) << "offset " << off << " n " << int{n};
      EXPECT_FALSE(HasPattern(split)) << "offset " << off << " n " << int{n};
      std::vector<uint8_t> ref(bf::kTapeCells, 0);
      EXPECT_EQ(RunCompiled(split, &tape, kStart), RunIr(p, &ref, kStart)) << "offset " << off;
    }
  }
  EXPECT_GT(naive_with_0f, 0);  // the values do reach the naive encoding
}

TEST(JitSample, PlantedValuesArePatternsInNaiveCodeOnly) {
  for (uint32_t v : {Wrpkru(), Xrstor()}) {
    bf::Program p;
    p.ops.push_back({OpKind::kMove, static_cast<int32_t>(v), 0, {}});
    bf::Code naive, split;
    std::string error;
    ASSERT_TRUE(bf::Compile(p, bf::Constants::kNaive, &naive, &error));
    ASSERT_TRUE(bf::Compile(p, bf::Constants::kSplit, &split, &error));
    EXPECT_TRUE(HasPattern(naive));
    EXPECT_FALSE(HasPattern(split));
    EXPECT_EQ(bf::PatternOffsets(naive.bytes.data(), naive.bytes.size()).size(),
              cordon::inspector::FindPatterns(naive.bytes.data(), naive.bytes.size()).size());
  }
}

// Loops whose bodies put 0x0F into the first, second and third byte of
// both jump offsets: 4-byte adds, so body sizes step through every residue
// near 0x0F, 0x0F00 and 0x0F0000 with one filler byte of add [rbx], n.
TEST(JitSample, JumpOffsetsArePaddedClean) {
  bf::Tape tape;
  ASSERT_TRUE(tape.ok());
  int naive_with_0f = 0;
  std::vector<size_t> sizes;
  for (size_t around : {size_t{0x0f}, size_t{0x0f00}, size_t{0x0f0000}}) {
    for (size_t d = 0; d < 24; ++d) sizes.push_back(around - 8 + d);
  }
  sizes.push_back(0x0fff);
  sizes.push_back(0x0ff0);
  for (size_t body : sizes) {
    bf::Program p;
    p.ops.push_back({OpKind::kAdd, 0, 2, {}});
    p.ops.push_back({OpKind::kOpen, 0, 0, {}});
    p.ops.push_back({OpKind::kAdd, 0, 0xff, {}});  // add byte [rbx], -1: 3 bytes
    size_t rest = body - 3;
    size_t a = 0;  // 3-byte fillers: rest - 3a must be a multiple of 4
    while (a < 4 && (3 * a > rest || (rest - 3 * a) % 4 != 0)) ++a;
    if (a == 4) continue;
    for (size_t i = 0; i < a; ++i) p.ops.push_back({OpKind::kAdd, 0, 0, {}});  // add byte [rbx], 0
    rest -= 3 * a;
    for (; rest > 0; rest -= 4) p.ops.push_back({OpKind::kAdd, 1, 1, {}});  // add byte [rbx+1], 1: 4 bytes
    p.ops.push_back({OpKind::kClose, 0, 0, {}});
    p.ops.push_back({OpKind::kOut, 1, 0, {}});
    bf::Code naive, split;
    std::string error;
    ASSERT_TRUE(bf::Compile(p, bf::Constants::kNaive, &naive, &error));
    ASSERT_TRUE(bf::Compile(p, bf::Constants::kSplit, &split, &error));
    if (HasStray0f(naive)) ++naive_with_0f;
    EXPECT_FALSE(HasStray0f(split)) << "body " << body;
    EXPECT_FALSE(HasPattern(split)) << "body " << body;
    std::vector<uint8_t> ref(bf::kTapeCells, 0);
    EXPECT_EQ(RunCompiled(split, &tape, 0), RunIr(p, &ref, 0)) << "body " << body;
  }
  EXPECT_GT(naive_with_0f, 10);
}

// Random programs: the compiled code (both ways) prints what the source
// interpreter prints.
TEST(JitSample, RandomProgramsMatchTheInterpreter) {
  bf::Tape tape;
  ASSERT_TRUE(tape.ok());
  std::mt19937 rng(12345);
  int ran = 0;
  for (int round = 0; round < 1000; ++round) {
    std::string src;
    int depth = 0;
    const int len = 20 + static_cast<int>(rng() % 200);
    for (int i = 0; i < len; ++i) {
      const unsigned r = rng() % 20;
      if (r < 6) {
        src += '+';
      } else if (r < 8) {
        src += '-';
      } else if (r < 11) {
        src += '>';
      } else if (r < 13) {
        src += '<';
      } else if (r < 15) {
        src += '.';
      } else if (r < 17) {
        src += '[';
        ++depth;
      } else if (depth > 0) {
        src += ']';
        --depth;
      }
    }
    src.append(static_cast<size_t>(depth), ']');
    std::string expected, error;
    if (!bf::Interpret(">>>>" + src, "", &expected, &error, 200000)) continue;  // off the tape, or too long
    bf::Program p;
    ASSERT_TRUE(bf::Parse(">>>>" + src, &p, &error)) << error;
    for (bf::Constants c : {bf::Constants::kNaive, bf::Constants::kSplit}) {
      bf::Code code;
      ASSERT_TRUE(bf::Compile(p, c, &code, &error)) << error;
      if (c == bf::Constants::kSplit) EXPECT_FALSE(HasPattern(code)) << src;
      EXPECT_EQ(RunCompiled(code, &tape, 0), expected) << src;
    }
    ++ran;
  }
  EXPECT_GT(ran, 100);
}

TEST(JitSample, SierpinskiMatchesTheInterpreter) {
  bf::Tape tape;
  ASSERT_TRUE(tape.ok());
  const std::string src = bf::SierpinskiProgram(31, 16, 2);
  std::string expected, error;
  ASSERT_TRUE(bf::Interpret(src, "", &expected, &error)) << error;
  EXPECT_EQ(expected.size(), 2u * 16 * 32);
  bf::Program p;
  ASSERT_TRUE(bf::Parse(src, &p, &error)) << error;
  bf::Code code;
  ASSERT_TRUE(bf::Compile(p, bf::Constants::kSplit, &code, &error)) << error;
  EXPECT_EQ(RunCompiled(code, &tape, 0), expected);
}

TEST(JitSample, ParseRefusesUnbalancedBrackets) {
  bf::Program p;
  std::string error;
  EXPECT_FALSE(bf::Parse("+[", &p, &error));
  EXPECT_FALSE(bf::Parse("]", &p, &error));
  std::string out;
  EXPECT_FALSE(bf::Interpret("<", "", &out, &error));
}

}  // namespace
