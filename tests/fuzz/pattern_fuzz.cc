// libFuzzer target: the byte search, against a reference written from the
// pattern definitions alone (docs/inspector.md), at every offset. FindPatterns
// and FirstPattern must agree with it exactly, for the whole buffer and for
// every suffix start in the first 64 bytes (so that each alignment the
// vectorized search can meet is tried).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "runtime/inspector/patterns.h"

using namespace cordon::inspector;

namespace {

std::vector<PatternHit> Reference(const uint8_t* p, size_t n) {
  std::vector<PatternHit> hits;
  for (size_t i = 0; i + 3 <= n; ++i) {
    if (p[i] != 0x0f) continue;
    if (p[i + 1] == 0x01 && p[i + 2] == 0xef) {
      hits.push_back({i, PatternKind::kWrpkru});
    } else if (p[i + 1] == 0xae && ((p[i + 2] >> 3) & 7) == 5 && (p[i + 2] >> 6) != 3) {
      hits.push_back({i, PatternKind::kXrstor});  // XRSTOR: 0F AE /5, memory operand
    }
  }
  return hits;
}

void Check(const uint8_t* p, size_t n) {
  const std::vector<PatternHit> want = Reference(p, n), got = FindPatterns(p, n);
  if (got.size() != want.size()) abort();
  for (size_t k = 0; k < want.size(); ++k) {
    if (got[k].offset != want[k].offset || got[k].kind != want[k].kind) abort();
  }
  const auto first = FirstPattern(p, n);
  if (first.has_value() != !want.empty()) abort();
  if (first && (first->offset != want[0].offset || first->kind != want[0].kind)) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy: ASan then sees any read past the end.
  std::vector<uint8_t> buf(data, data + size);
  for (size_t start = 0; start <= size && start < 64; ++start) {
    Check(buf.data() + start, size - start);
  }
  return 0;
}
