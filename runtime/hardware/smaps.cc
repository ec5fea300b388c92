// /proc/self/smaps parser for protection-key read-back.
#include "runtime/hardware/smaps.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>

namespace cordon::hw {

std::optional<MappingInfo> FindMapping(const void* addr, const char* smaps_path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(smaps_path, "re"), fclose);
  if (!f) return std::nullopt;
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  std::optional<MappingInfo> current;
  char line[512];
  while (fgets(line, sizeof line, f.get()) != nullptr) {
    uintptr_t start, end;
    char perms[8];
    // A mapping header looks like "7f00-7f10 rw-p 00000000 00:00 0 [path]".
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &start, &end, perms) == 3 &&
        strchr(line, '-') < strchr(line, ' ')) {
      if (current) return current;  // the match's lines are over
      if (a >= start && a < end) current = MappingInfo{start, end, perms, -1, ""};
      continue;
    }
    if (!current) continue;
    int key;
    if (sscanf(line, "ProtectionKey: %d", &key) == 1) {
      current->pkey = key;
    } else if (strncmp(line, "VmFlags:", 8) == 0) {
      current->vm_flags = line + 8;
      while (!current->vm_flags.empty() && current->vm_flags.back() == '\n') current->vm_flags.pop_back();
      return current;  // the last line of a mapping
    }
  }
  return current;
}

std::optional<std::vector<MappingInfo>> MappingsIn(uintptr_t start, uintptr_t end, const char* smaps_path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(smaps_path, "re"), fclose);
  if (!f) return std::nullopt;
  std::vector<MappingInfo> out;
  bool in = false;
  char line[512];
  while (fgets(line, sizeof line, f.get()) != nullptr) {
    uintptr_t s, e;
    char perms[8];
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &s, &e, perms) == 3 &&
        strchr(line, '-') < strchr(line, ' ')) {
      in = s < end && e > start;
      if (in) out.push_back(MappingInfo{s, e, perms, -1, ""});
      continue;
    }
    if (!in) continue;
    int key;
    if (sscanf(line, "ProtectionKey: %d", &key) == 1) {
      out.back().pkey = key;
    } else if (strncmp(line, "VmFlags:", 8) == 0) {
      out.back().vm_flags = line + 8;
      while (!out.back().vm_flags.empty() && out.back().vm_flags.back() == '\n')
        out.back().vm_flags.pop_back();
    }
  }
  return out;
}

}  // namespace cordon::hw
