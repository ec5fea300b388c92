// Read-back of protection keys (readback.h).
#include "runtime/hardware/readback.h"

#include <cstdio>
#include <memory>

#include "cordon/cordon.h"
#include "runtime/hardware/pkey.h"
#include "runtime/hardware/smaps.h"

namespace cordon::hw {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// What /proc/self/status says about seccomp: a filter that already exists
// is a reason to check results (which the runtime always does), and the
// likeliest cause when they are false.
std::string SeccompNote() {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen("/proc/self/status", "re"), fclose);
  char line[256];
  while (f && fgets(line, sizeof line, f.get()) != nullptr) {
    int mode;
    if (sscanf(line, "Seccomp: %d", &mode) == 1 && mode == 2) {
      return "; a seccomp filter was installed before cordon_init() (Seccomp: 2 in /proc/self/status), and "
             "it "
             "can fake the results of the system calls that set up protection keys";
    }
  }
  return "";
}

}  // namespace

std::string CheckKeyed(uint64_t start, uint64_t end, int key, const char* what) {
  const auto maps = MappingsIn(start, end);
  if (!maps) return "cannot read /proc/self/smaps to check the protection keys";
  return CheckKeyed(*maps, start, end, key, what);
}

std::string CheckKeyed(const std::vector<MappingInfo>& maps, uint64_t start, uint64_t end, int key,
                       const char* what) {
  auto first = maps.begin();
  while (first != maps.end() && first->end <= start) ++first;
  if (first == maps.end() || first->start != start || first->perms.compare(0, 2, "rw") != 0) {
    return std::string(what) + " at " + Hex(start) + " does not start with read-write pages";
  }
  for (auto it = first; it != maps.end() && it->start < end; ++it) {
    const MappingInfo& m = *it;
    if (m.perms[1] != 'w') continue;
    if (m.pkey != key) {
      return std::string(what) + " at " + Hex(m.start) + "-" + Hex(m.end) + " has protection key " +
             std::to_string(m.pkey) + " instead of " + std::to_string(key);
    }
    if (m.vm_flags.find(" dd") == std::string::npos) {
      return std::string(what) + " at " + Hex(m.start) + "-" + Hex(m.end) +
             " would go into a core dump (no MADV_DONTDUMP)";
    }
  }
  return "";
}

std::string CheckAllocatedKey(int key) {
  if (key > kDefaultKey && key < kMaxKeys) return "";
  return "pkey_alloc gave key " + std::to_string(key) + ", which no domain can use";
}

Error Unprotected(const std::string& what) {
  return Error{"protection keys not set up: " + what +
                   "; the kernel did not do what its system calls reported" + SeccompNote() +
                   ". Nothing is protected; the process should exit",
               CORDON_E_SYSCALL};
}

}  // namespace cordon::hw
