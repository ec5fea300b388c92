// Live-process inspection (see process.h).
#include "runtime/inspector/process.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>

namespace cordon::inspector {
namespace {

constexpr int kMadvPopulateRead = 22;  // MADV_POPULATE_READ (Linux 5.14), absent from older headers

}  // namespace

Expected<std::vector<Mapping>> AllMappings(const std::string& pid) {
  const std::string path = "/proc/" + pid + "/maps";
  std::unique_ptr<FILE, int (*)(FILE*)> maps(fopen(path.c_str(), "re"), fclose);
  if (!maps) return Error{"cannot read " + path + ": " + strerror(errno)};
  std::vector<Mapping> out;
  char line[4096 + 256];
  while (fgets(line, sizeof line, maps.get()) != nullptr) {
    uint64_t start, end, offset;
    char perms[8] = {};
    int path_at = 0;
    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %*s %n", &start, &end, perms, &offset,
               &path_at) < 4) {
      continue;
    }
    std::string name = path_at > 0 ? line + path_at : "";
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (name == "[vsyscall]") continue;  // emulated by the kernel; no user code runs there
    out.push_back({start, end, offset, perms, name.empty() ? "[anonymous]" : name});
  }
  return out;
}

Expected<std::vector<Mapping>> ExecutableMappings(const std::string& pid) {
  auto all = AllMappings(pid);
  if (!all.ok()) return Error{all.error()};
  std::vector<Mapping> out;
  for (Mapping& m : *all) {
    if (m.perms[2] == 'x') out.push_back(std::move(m));
  }
  return out;
}

Expected<std::vector<Mapping>> CodeAndItsReadOnlyData(const std::string& pid) {
  auto all = AllMappings(pid);
  if (!all.ok()) return Error{all.error()};
  std::set<std::string> files_with_code;
  for (const Mapping& m : *all) {
    if (m.perms[2] == 'x' && !m.path.empty() && m.path[0] == '/') files_with_code.insert(m.path);
  }
  std::vector<Mapping> out;
  for (Mapping& m : *all) {
    // The vDSO's data pages too: its code reads them, for trusted callers
    // of clock_gettime() as for anyone.
    const bool vdso_data = m.path == "[vvar]" || m.path == "[vvar_vclock]";
    if (m.perms[2] == 'x' || vdso_data || (m.perms[1] != 'w' && files_with_code.count(m.path) != 0)) {
      out.push_back(std::move(m));
    }
  }
  return out;
}

Expected<std::vector<Finding>> InspectProcess(const std::string& pid, const std::set<uint64_t>& gate_sites,
                                              bool sites_from_files, const Disassembler& dis) {
  return InspectProcess(pid, gate_sites, sites_from_files, dis, /*describe_gate_sites=*/true);
}

Expected<std::vector<Finding>> InspectProcess(const std::string& pid, const std::set<uint64_t>& gate_sites,
                                              bool sites_from_files, const Disassembler& dis,
                                              bool describe_gate_sites) {
  auto mappings = ExecutableMappings(pid);
  if (!mappings.ok()) return Error{mappings.error()};
  const bool self = pid == "self";
  int mem = -1;
  std::vector<std::vector<uint8_t>> copies;
  copies.reserve(mappings->size());
  std::vector<Region> regions;
  for (const Mapping& m : *mappings) {
    if (self && m.perms[0] == 'r') {  // in place: no copy
      // Map in every page with one call instead of a fault per page (most
      // of a cold start-up scan); an older kernel just says EINVAL.
      (void)madvise(reinterpret_cast<void*>(m.start), m.end - m.start, kMadvPopulateRead);
      regions.push_back({m.start, reinterpret_cast<const uint8_t*>(m.start), m.end - m.start, m.path});
      continue;
    }
    if (mem < 0) {
      mem = open(("/proc/" + pid + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
      if (mem < 0) return Error{"cannot open /proc/" + pid + "/mem: " + strerror(errno)};
    }
    std::vector<uint8_t> bytes(m.end - m.start);
    const ssize_t got = pread(mem, bytes.data(), bytes.size(), static_cast<off_t>(m.start));
    if (got != static_cast<ssize_t>(bytes.size())) {
      // A short read is no errno: the mapping shrank or went away since
      // the maps file was read (the process is still running).
      char where[64];
      snprintf(where, sizeof where, "%#" PRIx64 "-%#" PRIx64, m.start, m.end);
      const std::string why =
          got < 0 ? strerror(errno)
                  : "short read, " + std::to_string(got) + " of " + std::to_string(bytes.size()) +
                        " bytes (the mapping changed while it was read; is the process still starting up?)";
      close(mem);
      return Error{"cannot read " + m.path + " at " + where + ": " + why};
    }
    copies.push_back(std::move(bytes));
    regions.push_back({m.start, copies.back().data(), copies.back().size(), m.path});
  }
  if (mem >= 0) close(mem);

  // The files behind the mappings, loaded when first needed: their load
  // bias gives symbols (and, for another process, gate sites).
  struct Placed {
    std::shared_ptr<ElfFile> file;
    int64_t bias;
  };
  std::map<std::string, std::shared_ptr<ElfFile>> files;
  auto place = [&](const Mapping& m) -> std::optional<Placed> {
    if (m.path.empty() || m.path[0] != '/') return std::nullopt;
    auto& slot = files[m.path];
    if (!slot) {
      auto loaded = ElfFile::Load(m.path);
      if (!loaded.ok()) return std::nullopt;  // replaced since mapped: the bytes are still scanned
      slot = std::make_shared<ElfFile>(std::move(*loaded));
    }
    for (const ElfSegment& s : slot->segments()) {
      if (m.offset >= s.offset && m.offset < s.offset + s.filesz) {
        return Placed{slot, static_cast<int64_t>(m.start - (s.vaddr + (m.offset - s.offset)))};
      }
    }
    return std::nullopt;
  };
  std::set<uint64_t> sites = gate_sites;
  if (sites_from_files) {
    for (const Mapping& m : *mappings) {
      const auto p = place(m);
      if (!p) continue;
      if (auto gs = p->file->GateSites(); gs.ok()) {
        for (uint64_t a : *gs) sites.insert(static_cast<uint64_t>(static_cast<int64_t>(a) + p->bias));
      }
    }
  }
  if (self) {
    // This process: dladdr names symbols from the loaded dynamic symbol
    // tables, where reading the files would dominate start-up (10 ms for
    // libc alone). The runtime's own gate sites need no names.
    return InspectRegions(
        regions, sites, dis,
        [&](Finding* f) {
          Dl_info info;
          if (gate_sites.count(f->address) != 0 || dladdr(reinterpret_cast<void*>(f->address), &info) == 0)
            return;
          if (info.dli_sname != nullptr) {
            f->symbol = info.dli_sname;
            f->symbol_address = reinterpret_cast<uint64_t>(info.dli_saddr);
          }
        },
        describe_gate_sites);
  }
  return InspectRegions(
      regions, sites, dis,
      [&](Finding* f) {
        for (const Mapping& m : *mappings) {
          if (f->address < m.start || f->address >= m.end) continue;
          const auto p = place(m);
          if (!p) return;
          const uint64_t vaddr = static_cast<uint64_t>(static_cast<int64_t>(f->address) - p->bias);
          f->file_offset = p->file->OffsetOf(vaddr);
          if (const ElfSection* s = p->file->SectionAt(vaddr)) f->section = s->name;
          if (const ElfSymbol* sym = p->file->SymbolAt(vaddr)) {
            f->symbol = sym->name;
            f->symbol_address = static_cast<uint64_t>(static_cast<int64_t>(sym->value) + p->bias);
          }
          return;
        }
      },
      describe_gate_sites);
}

Expected<std::vector<std::string>> LoadedFilesWithSection(const std::string& name) {
  auto mappings = ExecutableMappings("self");
  if (!mappings.ok()) return Error{mappings.error()};
  std::set<std::string> seen;
  std::vector<std::string> out;
  for (const Mapping& m : *mappings) {
    if (m.path.empty() || m.path[0] != '/' || !seen.insert(m.path).second) continue;
    auto file = ElfFile::LoadHeaders(m.path);
    if (!file.ok()) continue;
    for (const ElfSection& s : file->sections()) {
      if (s.name == name && s.size != 0) {
        out.push_back(m.path);
        break;
      }
    }
  }
  return out;
}

}  // namespace cordon::inspector
