// Pattern search (see patterns.h): a vector pre-filter for "0F followed by
// 01 or AE", then an exact check of each candidate. AVX2 (32 offsets a
// vector, eight vectors per test) where CPUID and XCR0 say it is usable,
// SSE2 (16 offsets) otherwise; both check every offset, and the last few
// offsets of a buffer are checked byte by byte, so no load ever reads past
// data + len.
#include "runtime/inspector/patterns.h"

#include <cpuid.h>
#include <emmintrin.h>
#include <immintrin.h>

#include <atomic>

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

// AVX2 usable: CPUID.7.0:EBX.AVX2, CPUID.1:ECX.OSXSAVE and AVX, and XCR0
// enabling SSE and AVX state (the kernel may disable AVX state).
bool DetectAvx2() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  if ((ecx & bit_OSXSAVE) == 0 || (ecx & bit_AVX) == 0) return false;
  unsigned xcr0_lo, xcr0_hi;
  asm volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 6) != 6) return false;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ebx & bit_AVX2) != 0;
}

// Cached after the first call. The cache is ordinary memory: a forged value
// can only pick the other (equally exact) search, or make it fault on a CPU
// without AVX2; it can never make a search skip an offset.
bool HaveAvx2() {
  static std::atomic<int> cached{0};  // 0 unknown, 1 no, 2 yes
  int v = cached.load(std::memory_order_relaxed);
  if (v == 0) {
    v = DetectAvx2() ? 2 : 1;
    cached.store(v, std::memory_order_relaxed);
  }
  return v == 2;
}

// Reports the candidates of a mask of offsets from `at`; false once visit
// asked to stop.
template <typename Visit>
inline bool VisitMask(const uint8_t* data, size_t at, uint32_t mask, Visit& visit) {
  while (mask != 0) {
    const size_t off = at + static_cast<size_t>(__builtin_ctz(mask));
    PatternKind kind;
    if (MatchAt(data + off, &kind) && !visit(PatternHit{off, kind})) return false;
    mask &= mask - 1;
  }
  return true;
}

// The candidate offsets at..at+31 (0xFF in the lanes of "0F then 01 or AE").
__attribute__((target("avx2"), always_inline)) inline __m256i CandidatesAvx2(const uint8_t* data, size_t at) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + at));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + at + 1));
  const __m256i second = _mm256_or_si256(_mm256_cmpeq_epi8(b, _mm256_set1_epi8(0x01)),
                                         _mm256_cmpeq_epi8(b, _mm256_set1_epi8(static_cast<char>(0xae))));
  return _mm256_and_si256(_mm256_cmpeq_epi8(a, _mm256_set1_epi8(0x0f)), second);
}

// Offsets [*i, ...) 256 and then 32 at a time while the exact check of the
// last offset stays inside the buffer; *i is where it stopped.
template <typename Visit>
__attribute__((target("avx2"))) bool ScanAvx2(const uint8_t* data, size_t len, size_t* i, Visit& visit) {
  size_t at = *i;
  // 256 offsets: the loads read up to at + 256, the exact checks up to
  // at + 257. Candidates are rare, so one test covers eight vectors.
  while (at + 258 <= len) {
    const __m256i m0 = CandidatesAvx2(data, at), m1 = CandidatesAvx2(data, at + 32),
                  m2 = CandidatesAvx2(data, at + 64), m3 = CandidatesAvx2(data, at + 96),
                  m4 = CandidatesAvx2(data, at + 128), m5 = CandidatesAvx2(data, at + 160),
                  m6 = CandidatesAvx2(data, at + 192), m7 = CandidatesAvx2(data, at + 224);
    const __m256i any = _mm256_or_si256(_mm256_or_si256(_mm256_or_si256(m0, m1), _mm256_or_si256(m2, m3)),
                                        _mm256_or_si256(_mm256_or_si256(m4, m5), _mm256_or_si256(m6, m7)));
    if (!_mm256_testz_si256(any, any)) {
      const __m256i ms[8] = {m0, m1, m2, m3, m4, m5, m6, m7};
      for (size_t k = 0; k < 8; ++k) {
        if (!VisitMask(data, at + 32 * k, static_cast<uint32_t>(_mm256_movemask_epi8(ms[k])), visit))
          return false;
      }
    }
    at += 256;
  }
  while (at + 34 <= len) {
    const auto mask = static_cast<uint32_t>(_mm256_movemask_epi8(CandidatesAvx2(data, at)));
    if (!VisitMask(data, at, mask, visit)) return false;
    at += 32;
  }
  *i = at;
  return true;
}

// Calls visit(hit) for every hit in order, until it returns false.
template <typename Visit>
void ScanPatterns(const uint8_t* data, size_t len, SearchPath path, Visit visit) {
  if (len < 3) return;
  const size_t last = len - 3;  // last offset where a pattern fits
  size_t i = 0;
  const bool avx2 = path == SearchPath::kAvx2 || (path == SearchPath::kAuto && HaveAvx2());
  if (avx2 && !ScanAvx2(data, len, &i, visit)) return;
  const __m128i k0f = _mm_set1_epi8(0x0f);
  const __m128i k01 = _mm_set1_epi8(0x01);
  const __m128i kae = _mm_set1_epi8(static_cast<char>(0xae));
  // Offsets i..i+15 need bytes up to i+17 for the exact check; the vector
  // loads read up to i+16, so stop 18 bytes short and finish byte by byte.
  while (i + 18 <= len) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i + 1));
    const __m128i second = _mm_or_si128(_mm_cmpeq_epi8(b, k01), _mm_cmpeq_epi8(b, kae));
    const auto mask = static_cast<uint32_t>(_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, k0f), second)));
    if (!VisitMask(data, i, mask, visit)) return;
    i += 16;
  }
  for (; i <= last; ++i) {
    PatternKind kind;
    if (MatchAt(data + i, &kind) && !visit(PatternHit{i, kind})) return;
  }
}

}  // namespace

bool SearchPathAvailable(SearchPath path) {
  return path != SearchPath::kAvx2 || HaveAvx2();
}

std::vector<PatternHit> FindPatterns(const uint8_t* data, size_t len) {
  return FindPatternsWith(SearchPath::kAuto, data, len);
}

std::vector<PatternHit> FindPatternsWith(SearchPath path, const uint8_t* data, size_t len) {
  std::vector<PatternHit> hits;
  ScanPatterns(data, len, path, [&](PatternHit h) {
    hits.push_back(h);
    return true;
  });
  return hits;
}

std::optional<PatternHit> FirstPattern(const uint8_t* data, size_t len) {
  std::optional<PatternHit> first;
  ScanPatterns(data, len, SearchPath::kAuto, [&](PatternHit h) {
    first = h;
    return false;
  });
  return first;
}

}  // namespace cordon::inspector
