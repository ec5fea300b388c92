// Binary inspector tests: crafted placements of WRPKRU and XRSTOR, the forms
// that must not be reported, classification, and a randomized comparison
// with a naive byte-by-byte oracle.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "runtime/inspector/inspect.h"

namespace ins = cordon::inspector;
using ins::PatternKind;
using ins::Verdict;
using Bytes = std::vector<uint8_t>;

namespace {

std::vector<uint64_t> Offsets(const Bytes& b, PatternKind kind) {
  std::vector<uint64_t> out;
  for (const auto& h : ins::FindPatterns(b.data(), b.size())) {
    if (h.kind == kind) out.push_back(h.offset);
  }
  return out;
}

// 256 bytes of NOPs with `code` placed at `at`.
Bytes Place(const Bytes& code, size_t at, size_t size = 256) {
  Bytes b(size, 0x90);
  std::copy(code.begin(), code.end(), b.begin() + static_cast<long>(at));
  return b;
}

const Bytes kWrpkru = {0x0f, 0x01, 0xef};

TEST(Patterns, WrpkruAnywhere) {
  EXPECT_EQ(Offsets(Place(kWrpkru, 0), PatternKind::kWrpkru), std::vector<uint64_t>{0}) << "offset 0";
  EXPECT_EQ(Offsets(Place(kWrpkru, 253), PatternKind::kWrpkru), std::vector<uint64_t>{253}) << "last bytes";
  EXPECT_TRUE(Offsets(Place({0x0f, 0x01}, 254), PatternKind::kWrpkru).empty()) << "cut off at the end";
  // Inside imm32: mov eax, 0xef010f90 = b8 90 0f 01 ef
  EXPECT_EQ(Offsets(Place({0xb8, 0x90, 0x0f, 0x01, 0xef}, 10), PatternKind::kWrpkru),
            std::vector<uint64_t>{12});
  // Inside imm64: movabs rax, 0x...ef010f...
  EXPECT_EQ(Offsets(Place({0x48, 0xb8, 1, 2, 3, 0x0f, 0x01, 0xef, 4, 5}, 20), PatternKind::kWrpkru),
            std::vector<uint64_t>{25});
  // Inside disp32: mov eax, [rax + 0x00ef010f] = 8b 80 0f 01 ef 00
  EXPECT_EQ(Offsets(Place({0x8b, 0x80, 0x0f, 0x01, 0xef, 0x00}, 30), PatternKind::kWrpkru),
            std::vector<uint64_t>{32});
  // Across two instructions: add al, 0x0f (04 0f) then add [rcx], ... (01 ef... as bytes)
  EXPECT_EQ(Offsets(Place({0x04, 0x0f, 0x01, 0xef}, 40), PatternKind::kWrpkru), std::vector<uint64_t>{41});
  // Across a page boundary.
  EXPECT_EQ(Offsets(Place(kWrpkru, 4095, 8192), PatternKind::kWrpkru), std::vector<uint64_t>{4095});
  // Every offset of a vector block boundary (the SIMD path hands over at 16).
  for (size_t at = 0; at < 64; ++at) {
    EXPECT_EQ(Offsets(Place(kWrpkru, at, 67), PatternKind::kWrpkru), std::vector<uint64_t>{at}) << at;
  }
}

TEST(Patterns, EveryXrstorFormAndPrefix) {
  const std::vector<Bytes> forms = {
      {0x0f, 0xae, 0x28},              // xrstor [rax]
      {0x0f, 0xae, 0x2c, 0x24},        // xrstor [rsp]
      {0x0f, 0xae, 0x68, 0x40},        // xrstor [rax+0x40]
      {0x0f, 0xae, 0xa8, 1, 2, 3, 4},  // xrstor [rax+disp32]
      {0x0f, 0xae, 0x2d, 1, 2, 3, 4},  // xrstor [rip+disp32]
      {0x48, 0x0f, 0xae, 0x2c, 0x24},  // xrstor64 [rsp]
      {0x41, 0x0f, 0xae, 0x2f},        // xrstor [r15]
      {0x49, 0x0f, 0xae, 0x6f, 0x10},  // xrstor64 [r15+0x10]
      {0x66, 0x0f, 0xae, 0x28},        // with an operand-size prefix
      {0xf3, 0x0f, 0xae, 0x28},        // with a rep prefix
      {0x64, 0x48, 0x0f, 0xae, 0x28},  // with a segment override
  };
  for (const Bytes& f : forms) {
    const size_t core = static_cast<size_t>(std::find(f.begin(), f.end(), 0x0f) - f.begin());
    EXPECT_EQ(Offsets(Place(f, 100), PatternKind::kXrstor), std::vector<uint64_t>{100 + core});
  }
  for (uint8_t modrm = 0; modrm < 0xc0; ++modrm) {  // every memory ModRM with reg = 5
    if (((modrm >> 3) & 7) != 5) continue;
    EXPECT_EQ(Offsets(Place({0x0f, 0xae, modrm}, 7), PatternKind::kXrstor).size(), 1u) << int{modrm};
  }
}

TEST(Patterns, LookalikesAreNotReported) {
  const std::vector<Bytes> benign = {
      {0x0f, 0xae, 0xe8}, {0x0f, 0xae, 0xef},  // lfence (0F AE E8-EF, mod = 11)
      {0x0f, 0xae, 0x20},                      // xsave [rax]
      {0x0f, 0xae, 0x30},                      // xsaveopt [rax]
      {0x0f, 0xae, 0x08},                      // fxrstor [rax]
      {0x0f, 0xae, 0x00},                      // fxsave [rax]
      {0x0f, 0xae, 0x10}, {0x0f, 0xae, 0x18},  // ldmxcsr, stmxcsr
      {0x0f, 0xae, 0x38},                      // clflush [rax]
      {0x0f, 0xae, 0xf0},                      // mfence
      {0x0f, 0xc7, 0x18},                      // xrstors [rax]: privileged
      {0x0f, 0x01, 0xee},                      // rdpkru
      {0x0f, 0x01, 0xd0},                      // xgetbv
      {0x01, 0xef},                            // no 0f
  };
  for (const Bytes& b : benign) EXPECT_TRUE(ins::FindPatterns(Place(b, 50).data(), 256).empty());
}

class Classification : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    auto d = ins::Disassembler::Open(&error);
    ASSERT_TRUE(d.has_value()) << error;
    dis_.emplace(std::move(*d));
  }
  std::vector<ins::Finding> Inspect(const Bytes& b, uint64_t base, std::set<uint64_t> sites = {}) {
    return ins::InspectRegions({{base, b.data(), b.size(), "test"}}, sites, *dis_, nullptr);
  }
  std::optional<ins::Disassembler> dis_;
};

// xor ecx,ecx; xor edx,edx; mov eax,imm32; wrpkru; cmp eax,imm32; jne +0
const Bytes kGateShaped = {0x31, 0xc9, 0x31, 0xd2, 0xb8, 0x54, 0x55, 0x55, 0x55, 0x0f, 0x01, 0xef,
                           0x3d, 0x54, 0x55, 0x55, 0x55, 0x0f, 0x85, 0,    0,    0,    0};

TEST_F(Classification, OnlyARegisteredAddressIsSafe) {
  const Bytes code = Place(kGateShaped, 16);
  auto unregistered = Inspect(code, 0x400000);
  ASSERT_EQ(unregistered.size(), 1u);
  EXPECT_EQ(unregistered[0].address, 0x400000u + 16 + 9);
  EXPECT_EQ(unregistered[0].verdict, Verdict::kUnsafeInstruction) << "gate-shaped is not enough";
  EXPECT_TRUE(unregistered[0].context.at_boundary);
  ASSERT_EQ(unregistered[0].context.overlapping.size(), 1u);
  EXPECT_EQ(unregistered[0].context.overlapping[0].text, "wrpkru");
  EXPECT_EQ(unregistered[0].context.before.back().text, "mov eax, 0x55555554");
  EXPECT_EQ(unregistered[0].context.after.front().text, "cmp eax, 0x55555554");
  auto registered = Inspect(code, 0x400000, {0x400000 + 16 + 9});
  ASSERT_EQ(registered.size(), 1u);
  EXPECT_EQ(registered[0].verdict, Verdict::kGateSite);
  auto elsewhere = Inspect(code, 0x400000, {0x400000 + 16 + 10});
  EXPECT_EQ(elsewhere[0].verdict, Verdict::kUnsafeInstruction) << "a near miss is not a gate site";
}

TEST_F(Classification, UnintendedOccurrencesAreFlaggedWithTheirHost) {
  auto f = Inspect(Place({0xb8, 0x90, 0x0f, 0x01, 0xef}, 32), 0x1000);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].verdict, Verdict::kUnsafeUnintended);
  EXPECT_FALSE(f[0].context.at_boundary);
  ASSERT_EQ(f[0].context.overlapping.size(), 1u);
  EXPECT_EQ(f[0].context.overlapping[0].text, "mov eax, 0xef010f90");
  // Spanning two instructions: both are listed.
  auto span = Inspect(Place({0x04, 0x0f, 0x01, 0xef, 0xc3}, 32), 0x1000);
  ASSERT_EQ(span.size(), 1u);
  EXPECT_EQ(span[0].verdict, Verdict::kUnsafeUnintended);
  EXPECT_EQ(span[0].context.overlapping.size(), 2u);
  // XRSTOR bytes inside another instruction's immediate.
  auto in_imm = Inspect(Place({0xb8, 0x0f, 0xae, 0x28, 0x90}, 32), 0x1000);
  ASSERT_EQ(in_imm.size(), 1u);
  EXPECT_EQ(in_imm[0].verdict, Verdict::kUnsafeUnintended);
  // A real xrstor64.
  auto x = Inspect(Place({0x48, 0x0f, 0xae, 0x2c, 0x24}, 32), 0x1000);
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(x[0].kind, PatternKind::kXrstor);
  // The 0F byte sits after REX.W: still the opcode of a real instruction.
  EXPECT_EQ(x[0].verdict, Verdict::kUnsafeInstruction);
  EXPECT_TRUE(x[0].context.at_boundary);
  ASSERT_EQ(x[0].context.overlapping.size(), 1u);
  EXPECT_EQ(x[0].context.overlapping[0].text, "xrstor64 ptr [rsp]");
}

TEST_F(Classification, PatternsAcrossAdjacentRegionsAreFound) {
  const Bytes left = Place({0x0f}, 255);
  const Bytes right = Place({0x01, 0xef}, 0);
  auto adjacent = ins::InspectRegions(
      {{0x2000 + 256, right.data(), right.size(), "b"}, {0x2000, left.data(), 256, "a"}}, {}, *dis_, nullptr);
  ASSERT_EQ(adjacent.size(), 1u);
  EXPECT_EQ(adjacent[0].address, 0x2000u + 255);
  auto gap =
      ins::InspectRegions({{0x2000, left.data(), 256, "a"}, {0x2000 + 4096, right.data(), right.size(), "b"}},
                          {}, *dis_, nullptr);
  EXPECT_TRUE(gap.empty()) << "not adjacent: no pattern";
}

// The naive oracle: every offset, byte by byte.
std::vector<ins::PatternHit> Naive(const Bytes& b) {
  std::vector<ins::PatternHit> out;
  for (size_t i = 0; i + 3 <= b.size(); ++i) {
    if (b[i] != 0x0f) continue;
    if (b[i + 1] == 0x01 && b[i + 2] == 0xef) out.push_back({i, PatternKind::kWrpkru});
    if (b[i + 1] == 0xae && ((b[i + 2] >> 3) & 7) == 5 && (b[i + 2] >> 6) != 3)
      out.push_back({i, PatternKind::kXrstor});
  }
  return out;
}

// A million random buffers, biased towards the interesting bytes: no miss,
// no extra hit, and no hit outside the gate sites classified as safe.
TEST_F(Classification, RandomBuffersMatchTheOracle) {
  std::mt19937_64 rng(20261123);
  const uint8_t interesting[] = {0x0f, 0x0f, 0x01, 0xef, 0xae, 0x28, 0x2c, 0x68, 0xe8, 0xee, 0x48};
  size_t total_hits = 0, safe = 0;
  for (int round = 0; round < 1000000; ++round) {
    Bytes b(rng() % 97);
    for (auto& x : b)
      x = rng() % 3 == 0 ? static_cast<uint8_t>(rng()) : interesting[rng() % sizeof interesting];
    const auto expected = Naive(b);
    const auto got = ins::FindPatterns(b.data(), b.size());
    ASSERT_EQ(got.size(), expected.size()) << "round " << round;
    for (size_t k = 0; k < got.size(); ++k) {
      ASSERT_EQ(got[k].offset, expected[k].offset) << "round " << round;
      ASSERT_EQ(got[k].kind, expected[k].kind) << "round " << round;
    }
    total_hits += got.size();
    if (round % 50 == 0 && !got.empty()) {  // classification, on a sample (Capstone is slower)
      std::set<uint64_t> sites;
      for (const auto& h : got) {
        if (rng() % 2) sites.insert(0x10000 + h.offset);
      }
      for (const auto& f : Inspect(b, 0x10000, sites)) {
        ASSERT_EQ(f.verdict == Verdict::kGateSite, sites.count(f.address) == 1) << "round " << round;
        safe += f.verdict == Verdict::kGateSite;
      }
    }
  }
  EXPECT_GT(total_hits, 100000u) << "the generator must exercise the search";
  EXPECT_GT(safe, 0u);
}

// Every pre-filter the CPU offers (SSE2 always, AVX2 where usable), on
// random buffers long enough to use the 256-offset and 32-offset AVX2 loops
// and the byte-by-byte tail: the same hits as the oracle, in order.
TEST(SearchPaths, EveryPathMatchesTheOracle) {
  std::mt19937_64 rng(20261201);
  const uint8_t interesting[] = {0x0f, 0x0f, 0x01, 0xef, 0xae, 0x28, 0x2c, 0x68, 0xe8, 0xee, 0x48};
  std::vector<ins::SearchPath> paths = {ins::SearchPath::kAuto, ins::SearchPath::kSse2};
  if (ins::SearchPathAvailable(ins::SearchPath::kAvx2)) paths.push_back(ins::SearchPath::kAvx2);
  size_t total = 0;
  for (int round = 0; round < 20000; ++round) {
    Bytes b(rng() % 1200);
    const bool sparse = round % 2 == 0;  // mostly benign bytes: the fast "no candidate" branch
    for (auto& x : b) {
      x = sparse ? (rng() % 64 == 0 ? interesting[rng() % sizeof interesting] : 0x90)
                 : (rng() % 3 == 0 ? static_cast<uint8_t>(rng()) : interesting[rng() % sizeof interesting]);
    }
    const auto expected = Naive(b);
    total += expected.size();
    for (const auto path : paths) {
      const auto got = ins::FindPatternsWith(path, b.data(), b.size());
      ASSERT_EQ(got.size(), expected.size()) << "round " << round << " path " << static_cast<int>(path);
      for (size_t k = 0; k < got.size(); ++k) {
        ASSERT_EQ(got[k].offset, expected[k].offset) << "round " << round;
        ASSERT_EQ(got[k].kind, expected[k].kind) << "round " << round;
      }
    }
  }
  EXPECT_GT(total, 10000u) << "the generator must exercise the search";
}

// Buffers that start at a page's first byte or end at its last, with an
// inaccessible page on both sides: every path finds a pattern in the first
// and in the last 3 bytes of every length, and never reads outside.
TEST(SearchPaths, PageEdgesAreExactAndNeverOverread) {
  const size_t page = 4096;
  auto* map = static_cast<uint8_t*>(mmap(nullptr, 4 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(map, MAP_FAILED);
  uint8_t* mid = map + page;  // two readable pages between two PROT_NONE ones
  ASSERT_EQ(mprotect(mid, 2 * page, PROT_READ | PROT_WRITE), 0);
  std::vector<ins::SearchPath> paths = {ins::SearchPath::kSse2};
  if (ins::SearchPathAvailable(ins::SearchPath::kAvx2)) paths.push_back(ins::SearchPath::kAvx2);
  const uint8_t* end = mid + 2 * page;
  for (size_t len = 0; len <= 2 * page; len += (len < 600 ? 1 : 61)) {
    for (const auto path : paths) {
      // Ends at the last readable byte: WRPKRU in the last 3 bytes.
      memset(mid, 0x90, 2 * page);
      uint8_t* tail = const_cast<uint8_t*>(end) - len;
      if (len >= 3) memcpy(const_cast<uint8_t*>(end) - 3, kWrpkru.data(), 3);
      auto hits = ins::FindPatternsWith(path, tail, len);
      ASSERT_EQ(hits.size(), len >= 3 ? 1u : 0u) << "len " << len;
      if (len >= 3) EXPECT_EQ(hits[0].offset, len - 3);
      // 2 bytes of a pattern at the very end must not be reported.
      memset(mid, 0x90, 2 * page);
      const_cast<uint8_t*>(end)[-2] = 0x0f;
      const_cast<uint8_t*>(end)[-1] = 0x01;
      EXPECT_TRUE(ins::FindPatternsWith(path, tail, len).empty()) << "len " << len;
      // Starts at the first readable byte: XRSTOR at offset 0 and at the end.
      memset(mid, 0x90, 2 * page);
      const uint8_t xrstor[] = {0x0f, 0xae, 0x2c};
      if (len >= 3) {
        memcpy(mid, xrstor, 3);
        memcpy(mid + len - 3, xrstor, 3);
      }
      hits = ins::FindPatternsWith(path, mid, len);
      ASSERT_EQ(hits.size(), len >= 6 ? 2u : (len >= 3 ? 1u : 0u)) << "len " << len;
      if (len >= 3) EXPECT_EQ(hits.back().offset, len - 3);
    }
  }
  munmap(map, 4 * page);
}

// A run of adjacent regions is read in place, not joined into a copy: the
// findings (address, region, verdict, context) are those of the same bytes
// as one region, wherever the joins fall, including inside a hit and inside
// the context sweep.
TEST_F(Classification, SplitRegionsGiveTheFindingsOfOneBuffer) {
  std::mt19937_64 rng(7);
  // Real code with a real WRPKRU, an XRSTOR64 and an unintended WRPKRU inside a mov imm32.
  Bytes code;
  for (int rep = 0; rep < 40; ++rep) {
    const Bytes chunk = {0x48, 0x89, 0xc3, 0x31, 0xc9, 0x0f, 0x01, 0xef, 0x48, 0x0f, 0xae, 0x2c,
                         0x24, 0xb8, 0x0f, 0x01, 0xef, 0x00, 0x48, 0x83, 0xc4, 0x08, 0xc3, 0x90};
    code.insert(code.end(), chunk.begin(), chunk.end());
  }
  const uint64_t base = 0x400000;
  const auto whole = Inspect(code, base);
  ASSERT_EQ(whole.size(), 120u);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> cuts = {0, code.size()};
    for (int c = 0; c < 1 + round % 6; ++c) cuts.push_back(rng() % code.size());
    std::sort(cuts.begin(), cuts.end());
    std::vector<ins::Region> regions;
    for (size_t k = 0; k + 1 < cuts.size(); ++k) {
      if (cuts[k + 1] == cuts[k]) continue;
      regions.push_back(
          {base + cuts[k], code.data() + cuts[k], cuts[k + 1] - cuts[k], "r" + std::to_string(k)});
    }
    std::shuffle(regions.begin(), regions.end(), rng);
    const auto split = ins::InspectRegions(regions, {}, *dis_, nullptr);
    ASSERT_EQ(split.size(), whole.size()) << "round " << round;
    for (size_t k = 0; k < split.size(); ++k) {
      EXPECT_EQ(split[k].address, whole[k].address);
      EXPECT_EQ(split[k].kind, whole[k].kind);
      EXPECT_EQ(split[k].verdict, whole[k].verdict);
      EXPECT_EQ(split[k].context.at_boundary, whole[k].context.at_boundary);
      ASSERT_EQ(split[k].context.overlapping.size(), whole[k].context.overlapping.size());
      for (size_t i = 0; i < split[k].context.overlapping.size(); ++i)
        EXPECT_EQ(split[k].context.overlapping[i].text, whole[k].context.overlapping[i].text);
      EXPECT_EQ(split[k].context.before.size(), whole[k].context.before.size());
      EXPECT_EQ(split[k].context.after.size(), whole[k].context.after.size());
      // Named after the region that holds its 0F byte.
      for (const auto& r : regions) {
        if (split[k].address >= r.address && split[k].address < r.address + r.len)
          EXPECT_EQ(split[k].object, r.object);
      }
    }
  }
}

// Gate sites without context: classified by address, no Capstone sweep.
TEST_F(Classification, GateSitesNeedNoContext) {
  const Bytes b = Place(kGateShaped, 100);
  const auto f = ins::InspectRegions({{0x1000, b.data(), b.size(), "g"}}, {0x1000 + 109}, *dis_, nullptr,
                                     /*describe_gate_sites=*/false);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].verdict, Verdict::kGateSite);
  EXPECT_TRUE(f[0].context.overlapping.empty());
}

}  // namespace
