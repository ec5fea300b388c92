// /proc/self/smaps parser for protection-key read-back.
//
// Why it is written by hand: cordon_init() reads smaps several times (each
// tagging step is read back before it is trusted), and with a few hundred
// mappings a sscanf per line cost as much as the kernel's own formatting,
// about 1 ms a read. Lines are told apart by their first character: a
// mapping's header starts with its start address in lowercase hex, every
// field line with a capitalised name. Only the header, "ProtectionKey:" and
// "VmFlags:" lines are parsed.
#include "runtime/hardware/smaps.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace cordon::hw {
namespace {

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// "7f00-7f10 rw-p 00000000 00:00 0 [path]" into m; false if it is not one.
bool ParseHeader(const char* line, MappingInfo& m) {
  char* p = nullptr;
  const unsigned long long start = strtoull(line, &p, 16);
  if (p == line || *p != '-') return false;
  const char* q = p + 1;
  const unsigned long long end = strtoull(q, &p, 16);
  if (p == q || *p != ' ') return false;
  const char* perms = p + 1;
  size_t n = 0;
  while (n < 7 && perms[n] != '\0' && perms[n] != ' ' && perms[n] != '\n') ++n;
  if (n == 0 || perms[n] != ' ') return false;
  m = MappingInfo{static_cast<uintptr_t>(start), static_cast<uintptr_t>(end), std::string(perms, n), -1, ""};
  return true;
}

// Calls fn(mapping) for each mapping of the file, in order, until fn returns
// false. False if the file cannot be read.
template <typename Fn>
bool ForEachMapping(const char* smaps_path, Fn fn) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(smaps_path, "re"), fclose);
  if (!f) return false;
  // One read() per 64 KiB rather than per 1 KiB: each read of a /proc file
  // is a trip through the kernel's seq_file code.
  setvbuf(f.get(), nullptr, _IOFBF, 64 * 1024);
  std::optional<MappingInfo> current;
  char line[4096];
  bool line_start = true;  // a line longer than the buffer comes in pieces: only its first is parsed
  while (fgets(line, sizeof line, f.get()) != nullptr) {
    const bool first_piece = line_start;
    line_start = strchr(line, '\n') != nullptr;
    if (!first_piece) continue;
    MappingInfo header;
    if (IsHexDigit(line[0]) && ParseHeader(line, header)) {
      if (current && !fn(*current)) return true;
      current = std::move(header);
    } else if (!current) {
      continue;
    } else if (strncmp(line, "ProtectionKey:", 14) == 0) {
      char* end = nullptr;
      const long key = strtol(line + 14, &end, 10);
      if (end != line + 14) current->pkey = static_cast<int>(key);
    } else if (strncmp(line, "VmFlags:", 8) == 0) {
      current->vm_flags = line + 8;
      while (!current->vm_flags.empty() && current->vm_flags.back() == '\n') current->vm_flags.pop_back();
    }
  }
  if (current) fn(*current);
  return true;
}

}  // namespace

std::optional<MappingInfo> FindMapping(const void* addr, const char* smaps_path) {
  const auto a = reinterpret_cast<uintptr_t>(addr);
  std::optional<MappingInfo> found;
  (void)ForEachMapping(smaps_path, [&](const MappingInfo& m) {
    if (a >= m.start && a < m.end) found = m;
    return !found && m.start <= a;  // mappings come in address order
  });
  return found;
}

std::optional<std::vector<MappingInfo>> MappingsIn(uintptr_t start, uintptr_t end, const char* smaps_path) {
  std::vector<MappingInfo> out;
  if (!ForEachMapping(smaps_path, [&](const MappingInfo& m) {
        if (m.start < end && m.end > start) out.push_back(m);
        return m.start < end;
      })) {
    return std::nullopt;
  }
  return out;
}

}  // namespace cordon::hw
