// PLT pinning: libraries linked without -z now (Debian's libc.so.6 and
// libstdc++.so.6 among them) keep their .got.plt writable after start-up,
// on a page they share with .data. Their own calls (libc's internal calls
// to its IFUNC'd string functions, __strcpy_chk's to strlen and memcpy,
// vsnprintf's, ...) jump through it, so untrusted code that rewrites a slot
// would send trusted code that calls such a function to code of its
// choosing, with the domain's rights. With every slot bound at start-up
// (LD_BIND_NOW, which Cordon needs anyway), each PLT entry that jumps
// through a writable slot is rewritten, at lockdown, into a direct jump to
// the slot's target: the slot is then read by nothing, and the code is
// immutable from the lockdown on (docs/lockdown.md, "Code stays as it is").
#ifndef CORDON_RUNTIME_INSPECTOR_PLT_H_
#define CORDON_RUNTIME_INSPECTOR_PLT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/base/expected.h"

namespace cordon::inspector {

inline constexpr size_t kPltEntrySize = 16;

// One PLT entry: where, what it holds now, what it will hold.
struct PltPin {
  uint64_t address;
  uint8_t original[kPltEntrySize];
  uint8_t pinned[kPltEntrySize];
  std::string object;
};

// A 16-byte PLT entry at entry that jumps straight to target: JMP rel32
// where target is in reach (after 0 to 11 NOPs, the first start whose
// rel32 is clean), else JMP [RIP+0] followed by the address; the rest
// INT3. None may form a WRPKRU or XRSTOR with the two bytes before
// (before2) and after (after2) the entry; nullopt if every form would.
std::optional<std::vector<uint8_t>> EncodePinnedEntry(uint64_t entry, uint64_t target,
                                                      const uint8_t before2[2], const uint8_t after2[2]);

// The entries to pin in every loaded object whose PLT jumps through slots
// outside its RELRO range, each slot read now. An error if an object still
// binds lazily (a slot that points back into its own PLT), if an entry
// cannot be encoded, or if a writable slot is one no PLT entry found here
// jumps through (an object without section headers, or a PLT under another
// name): it would stay writable and in use. An entry pinned already (a
// lockdown refused after its pinning) counts as the reader of the slots
// that hold its target, so after the pinning the list is empty.
Expected<std::vector<PltPin>> PlanPltPins();

}  // namespace cordon::inspector

#endif
