// Pattern search (see patterns.h): an SSE2 pre-filter for "0F followed by
// 01 or AE" 16 offsets at a time, then an exact check of each candidate.
#include "runtime/inspector/patterns.h"

#include <emmintrin.h>

namespace cordon::inspector {

const char* PatternName(PatternKind kind) {
  return kind == PatternKind::kWrpkru ? "WRPKRU" : "XRSTOR";
}

bool MatchAt(const uint8_t* p, PatternKind* kind) {
  if (p[0] != 0x0f) return false;
  if (p[1] == 0x01 && p[2] == 0xef) {
    *kind = PatternKind::kWrpkru;
    return true;
  }
  // 0F AE /5: ModRM reg field 5, and a memory operand (mod != 11).
  if (p[1] == 0xae && ((p[2] >> 3) & 7) == 5 && (p[2] >> 6) != 3) {
    *kind = PatternKind::kXrstor;
    return true;
  }
  return false;
}

namespace {

// Calls visit(hit) for every hit in order, until it returns false.
template <typename Visit>
void ScanPatterns(const uint8_t* data, size_t len, Visit visit) {
  if (len < 3) return;
  const size_t last = len - 3;  // last offset where a pattern fits
  size_t i = 0;
  const __m128i k0f = _mm_set1_epi8(0x0f);
  const __m128i k01 = _mm_set1_epi8(0x01);
  const __m128i kae = _mm_set1_epi8(static_cast<char>(0xae));
  // Offsets i..i+15 need bytes up to i+17 for the exact check; the vector
  // loads read up to i+16, so stop 18 bytes short and finish byte by byte.
  while (i + 18 <= len) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i + 1));
    const __m128i second = _mm_or_si128(_mm_cmpeq_epi8(b, k01), _mm_cmpeq_epi8(b, kae));
    unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, k0f), second)));
    while (mask != 0) {
      const size_t at = i + static_cast<size_t>(__builtin_ctz(mask));
      PatternKind kind;
      if (MatchAt(data + at, &kind) && !visit(PatternHit{at, kind})) return;
      mask &= mask - 1;
    }
    i += 16;
  }
  for (; i <= last; ++i) {
    PatternKind kind;
    if (MatchAt(data + i, &kind) && !visit(PatternHit{i, kind})) return;
  }
}

}  // namespace

std::vector<PatternHit> FindPatterns(const uint8_t* data, size_t len) {
  std::vector<PatternHit> hits;
  ScanPatterns(data, len, [&](PatternHit h) {
    hits.push_back(h);
    return true;
  });
  return hits;
}

std::optional<PatternHit> FirstPattern(const uint8_t* data, size_t len) {
  std::optional<PatternHit> first;
  ScanPatterns(data, len, [&](PatternHit h) {
    first = h;
    return false;
  });
  return first;
}

}  // namespace cordon::inspector
