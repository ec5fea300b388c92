// Byte-level search for the instructions that can change PKRU from user
// space: WRPKRU (0F 01 EF) and XRSTOR/XRSTOR64 (0F AE /5 with a memory
// operand, ModRM mod != 11). Every byte offset is checked, because an
// occurrence may start inside another instruction or span two of them.
//
// Not reported: LFENCE (0F AE E8-EF, mod == 11), the other 0F AE forms
// (FXSAVE, FXRSTOR, LDMXCSR, STMXCSR, XSAVE, XSAVEOPT, CLFLUSH), XRSTORS
// (0F C7 /3, privileged) and RDPKRU (0F 01 EE, reads only).
#ifndef CORDON_RUNTIME_INSPECTOR_PATTERNS_H_
#define CORDON_RUNTIME_INSPECTOR_PATTERNS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace cordon::inspector {

enum class PatternKind : uint8_t { kWrpkru, kXrstor };

const char* PatternName(PatternKind kind);

struct PatternHit {
  uint64_t offset;  // of the 0F byte, from the start of the scanned bytes
  PatternKind kind;
};

// Whether the three bytes at p form one of the patterns.
bool MatchAt(const uint8_t* p, PatternKind* kind);

// All hits in data[0, len). A pattern must lie wholly inside the buffer: to
// cover one that spans two adjacent regions, scan them as one buffer.
std::vector<PatternHit> FindPatterns(const uint8_t* data, size_t len);

// The first hit, or nullopt. Allocates nothing, so trusted code can decide
// with it without keeping anything in memory that untrusted code can write.
std::optional<PatternHit> FirstPattern(const uint8_t* data, size_t len);

// The vector pre-filter a search uses: kAuto picks AVX2 when CPUID and XCR0
// say it is usable, else SSE2. Every path checks every offset and returns
// the same hits; the explicit ones exist so that tests compare them.
enum class SearchPath { kAuto, kSse2, kAvx2 };
// Whether path can run on this CPU (kAvx2 only where AVX2 is usable).
bool SearchPathAvailable(SearchPath path);
// FindPatterns with a chosen pre-filter; path must be available.
std::vector<PatternHit> FindPatternsWith(SearchPath path, const uint8_t* data, size_t len);

}  // namespace cordon::inspector

#endif
