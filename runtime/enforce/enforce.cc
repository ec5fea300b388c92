// Inspection at initialisation and at dlopen (see enforce.h).
#include "runtime/enforce/enforce.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "cordon/cordon.h"
#include "runtime/base/check.h"
#include "runtime/enforce/code_copy.h"
#include "runtime/enforce/relocate.h"
#include "runtime/gates/gate_config.h"
#include "runtime/inspector/plt.h"
#include "runtime/inspector/process.h"

namespace cordon::enforce {

using inspector::CodeAndItsReadOnlyData;
using inspector::Disassembler;
using inspector::ElfFile;
using inspector::ElfSegment;
using inspector::ElfSymbol;
using inspector::Finding;
using inspector::InspectProcess;
using inspector::InspectRegions;
using inspector::IsUnsafe;
using inspector::kPltEntrySize;
using inspector::Mapping;
using inspector::PatternKind;
using inspector::PatternName;
using inspector::PlanPltPins;
using inspector::PltPin;
using inspector::Region;
using inspector::Verdict;
using inspector::VerdictName;

namespace {

constexpr uint64_t kPage = 4096;

std::set<uint64_t> RuntimeGateSites() {
  std::set<uint64_t> sites;
  for (size_t i = 0; i < gates::SiteCount(); ++i) sites.insert(gates::SiteAt(i).address);
  return sites;
}

bool IsDynamicLoader(const std::string& object) {
  return object.find("/ld-linux") != std::string::npos;
}

// Whether some loaded object can still bind a PLT slot lazily, which goes
// through ld.so's _dl_runtime_resolve_xsave* trampolines (and their XRSTOR).
bool LazyBindingPossible() {
  const char* env = getenv("LD_BIND_NOW");
  if (env != nullptr && env[0] != '\0') return false;
  bool lazy = false;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          if (info->dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
          const auto* dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
          bool has_plt = false, now = false;
          for (; dyn->d_tag != DT_NULL; ++dyn) {
            if (dyn->d_tag == DT_JMPREL || (dyn->d_tag == DT_PLTRELSZ && dyn->d_un.d_val != 0))
              has_plt = true;
            if (dyn->d_tag == DT_BIND_NOW) now = true;
            if (dyn->d_tag == DT_FLAGS && (dyn->d_un.d_val & DF_BIND_NOW)) now = true;
            if (dyn->d_tag == DT_FLAGS_1 && (dyn->d_un.d_val & DF_1_NOW)) now = true;
          }
          if (has_plt && !now) *static_cast<bool*>(data) = true;
        }
        return 0;
      },
      &lazy);
  return lazy;
}

// Overwrites the 0F byte and the next one with UD2 (0F 0B) on a private
// copy of the page(s). The pattern cannot re-form: no pattern starts with
// 0F 0F or has 0B as its second byte.
bool Neutralize(uint64_t address, std::string* why) {
  const uint64_t first = address & ~(kPage - 1);
  const uint64_t span = ((address + 1) & ~(kPage - 1)) == first ? kPage : 2 * kPage;
  return ReplaceWithCopy(
      first, span, PROT_READ | PROT_EXEC,
      [&](uint8_t* bytes) {
        bytes[address - first] = 0x0f;
        bytes[address - first + 1] = 0x0b;
      },
      why);
}

std::string Describe(const Finding& f) {
  char buf[96];
  snprintf(buf, sizeof buf, "%s at %#lx", PatternName(f.kind), static_cast<unsigned long>(f.address));
  std::string s = buf;
  s += " in " + f.object;
  if (!f.symbol.empty()) s += " (" + f.symbol + ")";
  return s;
}

// Finds a library file the way dlopen would for the common cases: a path,
// or a bare name in LD_LIBRARY_PATH or the standard directories.
std::string Locate(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::vector<std::string> dirs;
  if (const char* env = getenv("LD_LIBRARY_PATH")) {
    std::string list = env;
    for (size_t start = 0; start <= list.size();) {
      const size_t end = list.find(':', start);
      dirs.push_back(list.substr(start, end == std::string::npos ? std::string::npos : end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  for (const char* d : {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib",
                        "/usr/lib", "/usr/local/lib"}) {
    dirs.push_back(d);
  }
  for (const std::string& d : dirs) {
    const std::string candidate = (d.empty() ? "." : d) + "/" + name;
    if (access(candidate.c_str(), R_OK) == 0) return candidate;
  }
  return "";
}

using RealDlopen = void* (*)(const char*, int);
RealDlopen Real() {
  static RealDlopen real = reinterpret_cast<RealDlopen>(dlsym(RTLD_NEXT, "dlopen"));
  return real;
}

bool AlreadyLoaded(const std::string& name) {
  void* h = Real()(name.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (h == nullptr) return false;
  dlclose(h);  // NOLOAD took a reference
  return true;
}

bool CleanRecursive(const std::string& name, std::set<std::string>* seen, const Disassembler& dis,
                    std::string* why) {
  if (!seen->insert(name).second || AlreadyLoaded(name)) return true;
  const std::string path = Locate(name);
  if (path.empty()) {
    *why = "cannot locate " + name + " to inspect it before loading (pass a path to dlopen)";
    return false;
  }
  auto file = ElfFile::Load(path);
  if (!file.ok()) {
    *why = file.error();
    return false;
  }
  std::vector<Region> regions;
  for (const ElfSegment& s : file->segments()) {
    if (s.executable && s.filesz != 0) {
      regions.push_back({s.vaddr, file->data() + s.offset, static_cast<size_t>(s.filesz), path});
    }
  }
  // A library's own gate-site table is not trusted: only the runtime's gates are.
  const auto findings = InspectRegions(regions, {}, dis, [&](Finding* f) {
    if (const ElfSymbol* sym = file->SymbolAt(f->address)) f->symbol = sym->name;
  });
  if (!findings.empty()) {
    *why = std::to_string(findings.size()) + " occurrence(s), first " + Describe(findings[0]) + ": " +
           VerdictName(findings[0].verdict);
    return false;
  }
  for (const std::string& dep : file->Needed()) {
    if (!CleanRecursive(dep, seen, dis, why)) return false;
  }
  return true;
}

}  // namespace

Expected<void> EnforceOnProcess(uint32_t policy, std::vector<ReportEntry>* report,
                                std::vector<std::pair<uint64_t, uint64_t>>* thunk_pages) {
  std::string error;
  auto dis = Disassembler::Open(&error);
  if (!dis) return Error{"cannot inspect executable memory: " + error, CORDON_E_UNSAFE_CODE};
  // Gate sites are safe by address alone, so they get no Capstone sweep:
  // the runtime's own are most of the hits, and their context was most of
  // the cost of start-up.
  const std::set<uint64_t> sites = RuntimeGateSites();
  // Why 4 GiB: a far jump to the 32-bit user code segment (0x23, present on
  // every x86-64 Linux, no system call needed) runs any code below 4 GiB in
  // compatibility mode, where the check after a gate's WRPKRU,
  // `cmp eax, [rip + disp32]`, decodes as `cmp eax, [disp32]`: an absolute
  // load from memory untrusted code maps, so the WRPKRU loads any PKRU it
  // likes. 32-bit code cannot fetch above 4 GiB, where a position-
  // independent executable and every shared library are loaded.
  if (!sites.empty() && *sites.begin() < (uint64_t{1} << 32)) {
    char where[24];
    snprintf(where, sizeof where, "%#lx", static_cast<unsigned long>(*sites.begin()));
    return Error{
        std::string("refusing to run: gate code at ") + where +
            " lies below 4 GiB, where a far jump to 32-bit mode turns its PKRU check into a load from "
            "an address untrusted code chooses; build the program as a position-independent "
            "executable (-fPIE -pie, the compilers' default on Debian)",
        CORDON_E_UNSAFE_CODE};
  }
  auto findings =
      InspectProcess("self", sites, /*sites_from_files=*/false, *dis, /*describe_gate_sites=*/false);
  if (!findings.ok()) {
    return Error{"cannot inspect executable memory: " + findings.error(), CORDON_E_UNSAFE_CODE};
  }
  // Decide everything before changing anything. Every refused occurrence
  // gets a line of the message.
  std::string refused;
  bool loader_xrstor = false;
  std::vector<inspector::Relocatable> to_relocate;
  for (const Finding& f : *findings) {
    Action action = Action::kNone;
    if (f.verdict == Verdict::kUnsafeUnintended && f.relocation && policy != CORDON_INSPECT_REFUSE) {
      action = Action::kRelocated;
      to_relocate.push_back(*f.relocation);
    } else if (f.verdict == Verdict::kUnsafeUnintended ||
               (f.verdict == Verdict::kUnsafeInstruction && policy == CORDON_INSPECT_REFUSE)) {
      action = Action::kRefused;
      refused += std::string("refusing to run: ") + Describe(f) + ": " + VerdictName(f.verdict) + "\n";
    } else if (f.verdict == Verdict::kUnsafeInstruction) {
      action = Action::kNeutralized;
      loader_xrstor |= f.kind == PatternKind::kXrstor && IsDynamicLoader(f.object);
    }
    report->push_back({f.address, f.kind, f.verdict, action, f.object, f.symbol});
  }
  if (!refused.empty()) {
    return Error{refused +
                     "executable memory holds WRPKRU or XRSTOR bytes that cannot be neutralized; remove the "
                     "library that has them, or relink the program if they are in it (cordon-scan FILE shows "
                     "where; docs/inspector.md, \"Chance occurrences\")",
                 CORDON_E_UNSAFE_CODE};
  }
  if (loader_xrstor && LazyBindingPossible()) return Error{"", CORDON_E_LAZY_BINDING};
  auto relocations = PlanRelocations(to_relocate, *dis);
  if (!relocations.ok()) {
    for (ReportEntry& e : *report) {
      if (e.action == Action::kRelocated) e.action = Action::kRefused;
    }
    return Error{"refusing to run: " + relocations.error() +
                     "\nexecutable memory holds WRPKRU or XRSTOR bytes in a displacement that cannot be "
                     "relocated; relink the program (docs/inspector.md, \"Chance occurrences\")",
                 CORDON_E_UNSAFE_CODE};
  }
  for (const ReportEntry& e : *report) {
    if (e.action != Action::kNeutralized) continue;
    std::string why;
    if (!Neutralize(e.address, &why)) {
      char where[24];
      snprintf(where, sizeof where, "%#lx", static_cast<unsigned long>(e.address));
      return Error{std::string("cannot neutralize ") + PatternName(e.kind) + " at " + where + " in " +
                       e.object + ": " + why,
                   CORDON_E_UNSAFE_CODE};
    }
  }
  if (const auto applied = ApplyRelocations(*relocations, thunk_pages); !applied.ok()) {
    return Error{"cannot relocate: " + applied.error(), CORDON_E_UNSAFE_CODE};
  }
  // Verify: nothing but gate sites may remain.
  // Neutralized pages are anonymous mappings next to the file's: the
  // inspection reads the run of mappings in place (only a window around
  // each join and each hit is copied).
  auto after = InspectProcess("self", sites, false, *dis, /*describe_gate_sites=*/false);
  if (!after.ok()) return Error{"", CORDON_E_UNSAFE_CODE};
  for (const Finding& f : *after) {
    if (IsUnsafe(f.verdict)) {
      return Error{Describe(f) + " is still present after neutralization", CORDON_E_UNSAFE_CODE};
    }
  }
  return {};
}

bool PinWritablePlts(std::string* why) {
  auto pins = PlanPltPins();
  if (!pins.ok()) {
    *why = pins.error();
    return false;
  }
  // One private copy per page: entries are 16-aligned in 16-aligned
  // sections, so none spans two pages.
  std::map<uint64_t, std::vector<const PltPin*>> by_page;
  for (const PltPin& p : *pins) by_page[p.address & ~(kPage - 1)].push_back(&p);
  for (const auto& entry : by_page) {
    const uint64_t page = entry.first;
    const std::vector<const PltPin*>& list = entry.second;
    bool unchanged = true;
    const bool copied = ReplaceWithCopy(
        page, kPage, PROT_READ | PROT_EXEC,
        [&](uint8_t* bytes) {
          for (const PltPin* p : list) {
            if (memcmp(bytes + (p->address - page), p->original, kPltEntrySize) != 0) unchanged = false;
          }
          if (!unchanged) return;
          for (const PltPin* p : list) memcpy(bytes + (p->address - page), p->pinned, kPltEntrySize);
        },
        why);
    if (!copied) return false;
    if (!unchanged) {
      *why = "the PLT of " + list.front()->object + " changed while it was being pinned";
      return false;
    }
  }
  return true;
}

bool PrivatizeExecutableMemory(std::string* why) {
  // One read of the maps: the code, and the read-only data of the files
  // with code (made private below too).
  auto all = CodeAndItsReadOnlyData("self");
  if (!all.ok()) {
    *why = all.error();
    return false;
  }
  std::vector<Mapping> code, data;
  for (Mapping& m : *all) {
    if (m.perms[2] == 'x') {
      code.push_back(std::move(m));
    } else if (m.perms[1] != 'w' && !m.path.empty() && m.path[0] == '/') {
      data.push_back(std::move(m));
    }
  }
  for (const Mapping& m : code) {
    if (m.perms[1] == 'w') {
      char where[64];
      snprintf(where, sizeof where, "%#lx-%#lx", static_cast<unsigned long>(m.start),
               static_cast<unsigned long>(m.end));
      *why = std::string("memory at ") + where + " (" + m.path +
             ") is writable and executable at once; map code read-only before cordon_lockdown()";
      return false;
    }
  }
  std::string error;
  auto dis = Disassembler::Open(&error);
  if (!dis) {
    *why = error;
    return false;
  }
  // Copy first, then inspect the copies, then run them: a file (or another
  // mapping of shared memory) can change between any inspection of the
  // mapping and a copy of it, so the bytes that are scanned must be the
  // bytes that will run, in memory only this process can write.
  struct Copy {
    const Mapping* mapping;
    void* bytes;
  };
  std::vector<Copy> copies;
  std::vector<std::vector<uint8_t>> read_back;  // execute-only private code, to scan it
  read_back.reserve(code.size());
  std::vector<Region> regions;
  const auto discard = [&] {
    for (const Copy& c : copies) munmap(c.bytes, c.mapping->end - c.mapping->start);
  };
  // An anonymous private copy of m's bytes (ReadCode: through
  // /proc/self/mem, so that execute-only pages can be copied too), or
  // nullptr with *why saying what failed; what names the bytes in the
  // message.
  const auto private_copy = [&](const Mapping& m, const char* what) -> void* {
    const uint64_t len = m.end - m.start;
    void* copy = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy != MAP_FAILED && ReadCode(m.start, len, copy)) {
      return copy;
    }
    *why =
        std::string("cannot make a private copy of the ") + what + " of " + m.path + ": " + strerror(errno);
    if (copy != MAP_FAILED) munmap(copy, len);
    return nullptr;
  };
  for (const Mapping& m : code) {
    const uint64_t len = m.end - m.start;
    const bool file = !m.path.empty() && m.path[0] == '/';
    if (!file && m.perms[3] != 's') {
      // Already private and anonymous: no file and no other mapping can
      // change it. Scanned where it is.
      if (m.perms[0] == 'r') {
        regions.push_back({m.start, reinterpret_cast<const uint8_t*>(m.start), len, m.path});
        continue;
      }
      read_back.emplace_back(len);
      if (!ReadCode(m.start, len, read_back.back().data())) {
        *why = "cannot read the code of " + m.path + ": " + strerror(errno);
        discard();
        return false;
      }
      regions.push_back({m.start, read_back.back().data(), len, m.path});
      continue;
    }
    void* copy = private_copy(m, "code");
    if (copy == nullptr) {
      discard();
      return false;
    }
    copies.push_back({&m, copy});
    regions.push_back({m.start, static_cast<const uint8_t*>(copy), len, m.path});
  }
  // The read-only data of the files with code (constants, switch tables,
  // relocated read-only pointers) is made private too: a page of a
  // MAP_PRIVATE file mapping that was never written shows what the file
  // holds now, and whoever may write the file (its owner, root) would
  // change what trusted code reads. Not scanned: it is not executable, and
  // the filter keeps it so (seccomp_filter.h, immutable ranges).
  std::vector<Copy> data_copies;
  const auto discard_data = [&] {
    for (const Copy& c : data_copies) munmap(c.bytes, c.mapping->end - c.mapping->start);
  };
  for (const Mapping& m : data) {
    void* copy = private_copy(m, "read-only data");
    if (copy == nullptr) {
      discard();
      discard_data();
      return false;
    }
    data_copies.push_back({&m, copy});
  }
  // Every byte offset of what will be executable, laid out as it will run
  // (adjacent mappings as one stream), against the gate sites.
  for (const Finding& f : InspectRegions(regions, RuntimeGateSites(), *dis, {}, false)) {
    if (IsUnsafe(f.verdict)) {
      *why = Describe(f) + " (" + VerdictName(f.verdict) +
             ") is in the code as it would run after cordon_lockdown(): the file behind it changed after it "
             "was inspected; nothing was made private";
      discard();
      discard_data();
      return false;
    }
  }
  for (const Copy& c : data_copies) {
    const Mapping& m = *c.mapping;
    const uint64_t len = m.end - m.start;
    if (mprotect(c.bytes, len, m.perms[0] == 'r' ? PROT_READ : PROT_NONE) != 0 ||
        mremap(c.bytes, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(m.start)) ==
            MAP_FAILED) {
      *why =
          "cannot put the private copy of the read-only data of " + m.path + " in place: " + strerror(errno);
      return false;
    }
  }
  for (const Copy& c : copies) {
    const Mapping& m = *c.mapping;
    const uint64_t len = m.end - m.start;
    const int prot = (m.perms[0] == 'r' ? PROT_READ : 0) | PROT_EXEC;
    if (mprotect(c.bytes, len, prot) != 0 || mremap(c.bytes, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
                                                    reinterpret_cast<void*>(m.start)) == MAP_FAILED) {
      *why = "cannot put the private copy of the code of " + m.path + " in place: " + strerror(errno);
      return false;
    }
  }
  return true;
}

bool LibraryIsClean(const char* file, std::string* why) {
  std::string error;
  auto dis = Disassembler::Open(&error);
  if (!dis) {
    *why = error;
    return false;
  }
  std::set<std::string> seen;
  return CleanRecursive(file, &seen, *dis, why);
}

}  // namespace cordon::enforce

// ---- dlopen, interposed: libraries are inspected before their code runs ----

namespace {
bool g_inspect_dlopen = false;  // set by cordon_init
bool g_refuse_dlopen = false;   // set by cordon_lockdown
}  // namespace

namespace cordon::enforce {
void EnableDlopenInspection() {
  g_inspect_dlopen = true;
}
void RefuseDlopen() {
  g_refuse_dlopen = true;
}
}  // namespace cordon::enforce

extern "C" void* dlopen(const char* file, int mode) {
  using namespace cordon::enforce;
  if (file == nullptr || !g_inspect_dlopen) return Real()(file, mode);
  if (void* h = Real()(file, mode | RTLD_NOLOAD)) return h;  // already loaded: no new code
  std::string why;
  if (g_refuse_dlopen) {
    why =
        "no library may be loaded after cordon_lockdown(); load libraries during set-up, or publish code "
        "with "
        "cordon_code_load() (docs/code.md)";
  }
  if (!why.empty() || !LibraryIsClean(file, &why)) {
    fprintf(stderr, "cordon: refused dlopen(\"%s\"): %s\n", file, why.c_str());
    // Leave a matching dlerror() message for the caller.
    const std::string marker = std::string("/cordon: library refused by the inspector (see stderr)/") + file;
    (void)Real()(marker.c_str(), RTLD_NOW);
    return nullptr;
  }
  void* h = Real()(file, mode);
  if (h != nullptr) {
    // The file could have changed between the inspection and the load.
    std::vector<ReportEntry> report;
    if (const auto checked = EnforceOnProcess(CORDON_INSPECT_REFUSE, &report); !checked.ok()) {
      // The fatal path: the library's code may already have run.
      cordon::internal::FatalMessage()
          .Add(file)
          .Add(" changed between inspection and loading; process stopped (")
          .Add(checked.error().substr(0, checked.error().find('\n')).c_str())
          .Add(")")
          .Die();
    }
  }
  return h;
}
