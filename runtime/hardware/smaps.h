// Reads back a mapping's protection key and flags from /proc/self/smaps, so
// that tests and tools can verify what the kernel really tagged.
#ifndef CORDON_RUNTIME_HARDWARE_SMAPS_H_
#define CORDON_RUNTIME_HARDWARE_SMAPS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cordon::hw {

struct MappingInfo {
  uintptr_t start = 0;
  uintptr_t end = 0;
  std::string perms;     // e.g. "rw-p"
  int pkey = -1;         // -1 when the kernel shows no ProtectionKey line
  std::string vm_flags;  // the VmFlags line's two-letter codes, e.g. " rd wr mr mw me dd ac"
};

// The mapping that contains addr, from smaps_path (default /proc/self/smaps).
// nullopt when no mapping contains it or the file cannot be read.
std::optional<MappingInfo> FindMapping(const void* addr, const char* smaps_path = "/proc/self/smaps");

// Every mapping that meets [start, end), in address order; nullopt when the
// file cannot be read.
std::optional<std::vector<MappingInfo>> MappingsIn(uintptr_t start, uintptr_t end,
                                                   const char* smaps_path = "/proc/self/smaps");

}  // namespace cordon::hw

#endif
