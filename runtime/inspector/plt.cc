// PLT pinning (see plt.h): which entries, and their new bytes.
#include "runtime/inspector/plt.h"

#include <elf.h>
#include <link.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "runtime/inspector/elf_file.h"
#include "runtime/inspector/patterns.h"

namespace cordon::inspector {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint8_t kInt3 = 0xcc;
constexpr uint8_t kNop = 0x90;

struct Object {
  std::string path;
  uint64_t base;
  uint64_t relro_start = 0, relro_end = 0;  // what ld.so made read-only
  uint64_t jmprel = 0, pltrelsz = 0;
};

int CollectObject(dl_phdr_info* info, size_t, void* arg) {
  auto& out = *static_cast<std::vector<Object>*>(arg);
  Object o;
  o.base = info->dlpi_addr;
  o.path = info->dlpi_name != nullptr && info->dlpi_name[0] != '\0' ? info->dlpi_name : "/proc/self/exe";
  const ElfW(Dyn)* dyn = nullptr;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_DYNAMIC) dyn = reinterpret_cast<const ElfW(Dyn)*>(o.base + ph.p_vaddr);
    if (ph.p_type == PT_GNU_RELRO) {
      // ld.so protects whole pages only: the part of the last page past
      // the segment stays writable (ld.so's _dl_protect_relro).
      o.relro_start = (o.base + ph.p_vaddr) & ~(kPage - 1);
      o.relro_end = (o.base + ph.p_vaddr + ph.p_memsz) & ~(kPage - 1);
    }
  }
  if (dyn == nullptr) return 0;
  // ld.so relocates some of these in place, and not others.
  const auto absolute = [&](uint64_t v) { return v < o.base ? v + o.base : v; };
  for (; dyn->d_tag != DT_NULL; ++dyn) {
    if (dyn->d_tag == DT_JMPREL) o.jmprel = absolute(dyn->d_un.d_ptr);
    if (dyn->d_tag == DT_PLTRELSZ) o.pltrelsz = dyn->d_un.d_val;
  }
  if (o.jmprel != 0 && o.pltrelsz != 0) out.push_back(std::move(o));
  return 0;
}

// The target of an entry in one of EncodePinnedEntry's forms, if it is one.
std::optional<uint64_t> PinnedTarget(uint64_t entry, const uint8_t* e) {
  const auto int3_from = [&](size_t i) {
    for (; i < kPltEntrySize; ++i) {
      if (e[i] != kInt3) return false;
    }
    return true;
  };
  size_t nops = 0;
  while (nops + 5 <= kPltEntrySize && e[nops] == kNop) ++nops;
  if (nops + 5 <= kPltEntrySize && e[nops] == 0xe9 && int3_from(nops + 5)) {
    int32_t rel;
    memcpy(&rel, e + nops + 1, 4);
    return entry + nops + 5 + static_cast<int64_t>(rel);
  }
  const uint8_t jmp_rip0[6] = {0xff, 0x25, 0, 0, 0, 0};
  if (memcmp(e, jmp_rip0, 6) == 0 && int3_from(14)) {
    uint64_t target;
    memcpy(&target, e + 6, 8);
    return target;
  }
  return std::nullopt;
}

bool FormsPattern(const uint8_t* bytes, size_t len) {
  return FirstPattern(bytes, len).has_value();
}

}  // namespace

std::optional<std::vector<uint8_t>> EncodePinnedEntry(uint64_t entry, uint64_t target,
                                                      const uint8_t before2[2], const uint8_t after2[2]) {
  const auto fits = [&](const uint8_t* e) {
    uint8_t window[2 + kPltEntrySize + 2];
    memcpy(window, before2, 2);
    memcpy(window + 2, e, kPltEntrySize);
    memcpy(window + 2 + kPltEntrySize, after2, 2);
    return !FormsPattern(window, sizeof window);
  };
  std::vector<uint8_t> e(kPltEntrySize, kInt3);
  // JMP rel32, after 0 to 11 NOPs: each start gives another rel32, so a
  // WRPKRU or XRSTOR that one displacement forms by chance (about one
  // target in a few hundred thousand) does not leave the entry unpinnable,
  // which would refuse the lockdown.
  for (size_t nops = 0; nops + 5 <= kPltEntrySize; ++nops) {
    const int64_t rel = static_cast<int64_t>(target - (entry + nops + 5));
    if (rel < INT32_MIN || rel > INT32_MAX) break;
    std::fill(e.begin(), e.end(), kInt3);
    std::fill(e.begin(), e.begin() + static_cast<std::ptrdiff_t>(nops), kNop);
    e[nops] = 0xe9;
    const auto r = static_cast<int32_t>(rel);
    memcpy(&e[nops + 1], &r, 4);
    if (fits(e.data())) return e;
  }
  std::fill(e.begin(), e.end(), kInt3);
  const uint8_t jmp_rip0[6] = {0xff, 0x25, 0, 0, 0, 0};  // JMP [RIP+0]: the next 8 bytes
  memcpy(&e[0], jmp_rip0, 6);
  memcpy(&e[6], &target, 8);
  if (fits(e.data())) return e;
  return std::nullopt;
}

Expected<std::vector<PltPin>> PlanPltPins() {
  std::vector<Object> objects;
  dl_iterate_phdr(CollectObject, &objects);
  std::vector<PltPin> pins;
  std::string failure;
  for (const Object& o : objects) {
    // The slots that stay writable, with what they hold now.
    std::map<uint64_t, uint64_t> slots;
    const auto* rela = reinterpret_cast<const ElfW(Rela)*>(o.jmprel);
    for (size_t i = 0; i < o.pltrelsz / sizeof(ElfW(Rela)); ++i) {
      const uint32_t type = ELF64_R_TYPE(rela[i].r_info);
      if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_IRELATIVE) continue;
      const uint64_t slot = o.base + rela[i].r_offset;
      if (slot >= o.relro_start && slot + 8 <= o.relro_end) continue;
      slots[slot] = *reinterpret_cast<const uint64_t*>(slot);
    }
    if (slots.empty()) continue;
    auto elf = ElfFile::Load(o.path);
    if (!elf.ok()) {
      failure = "cannot read " + o.path + " to find its PLT: " + elf.error();
      break;
    }
    // A slot that points back into the object's PLT (.plt or .plt.sec) is
    // still to be bound lazily.
    const auto in_plt = [&](uint64_t a) {
      for (const ElfSection& s : elf->sections()) {
        if ((s.name == ".plt" || s.name == ".plt.sec") && a >= o.base + s.addr &&
            a < o.base + s.addr + s.size) {
          return true;
        }
      }
      return false;
    };
    // Every writable slot must be read by an entry pinned now, or hold the
    // target of one pinned before.
    std::set<uint64_t> read_slots, pinned_targets;
    for (const ElfSection& s : elf->sections()) {
      if (s.name != ".plt" && s.name != ".plt.sec") continue;
      for (uint64_t off = 0; off + kPltEntrySize <= s.size; off += kPltEntrySize) {
        const uint64_t entry = o.base + s.addr + off;
        // The entry and the two bytes on either side, for the pattern check;
        // a neighbour on another page is left to the scan after pinning.
        uint8_t bytes[2 + kPltEntrySize + 2] = {};
        const bool first_in_page = entry % kPage < 2, last_in_page = (entry + kPltEntrySize) % kPage == 0;
        // PLTs are in readable code (ld.so maps code r-x).
        const auto* code = reinterpret_cast<const uint8_t*>(entry);
        memcpy(bytes + 2, code, kPltEntrySize);
        if (!first_in_page) memcpy(bytes, code - 2, 2);
        if (!last_in_page) memcpy(bytes + 2 + kPltEntrySize, code + kPltEntrySize, 2);
        const uint8_t* e = bytes + 2;
        // jmp [rip+disp32] at the start (.plt), or after endbr64 and an
        // optional bnd prefix (.plt.sec).
        // An entry pinned already (an earlier lockdown that was refused
        // later on): its target counts as the slot's reader.
        if (const auto target = PinnedTarget(entry, e)) {
          pinned_targets.insert(*target);
          continue;
        }
        size_t at = 0;
        if (e[0] == 0xf3 && e[1] == 0x0f && e[2] == 0x1e && e[3] == 0xfa) at = e[4] == 0xf2 ? 5 : 4;
        if (e[at] != 0xff || e[at + 1] != 0x25) continue;
        int32_t disp;
        memcpy(&disp, e + at + 2, 4);
        const uint64_t slot = entry + at + 6 + static_cast<int64_t>(disp);
        const auto it = slots.find(slot);
        if (it == slots.end()) continue;
        const uint64_t target = it->second;
        if (in_plt(target)) {
          failure = o.path +
                    " still binds lazily (a PLT slot points back into its PLT); start the program "
                    "with LD_BIND_NOW=1";
          break;
        }
        auto pinned = EncodePinnedEntry(entry, target, bytes, bytes + 2 + kPltEntrySize);
        if (!pinned) {
          failure = "cannot pin a PLT entry of " + o.path + " without forming a WRPKRU or XRSTOR";
          break;
        }
        read_slots.insert(slot);
        PltPin p{entry, {}, {}, o.path};
        memcpy(p.original, e, kPltEntrySize);
        memcpy(p.pinned, pinned->data(), kPltEntrySize);
        pins.push_back(std::move(p));
      }
      if (!failure.empty()) break;
    }
    if (!failure.empty()) break;
    // Fail closed: a slot that no entry found here jumps through (no
    // section headers, a PLT under another name) stays writable and read.
    for (const auto& [slot, value] : slots) {
      if (read_slots.count(slot) != 0 || pinned_targets.count(value) != 0) continue;
      char where[32];
      snprintf(where, sizeof where, "%#lx", static_cast<unsigned long>(slot));
      failure = o.path + " has a writable jump slot at " + where +
                " that no PLT entry the runtime found (.plt, .plt.sec) jumps through; link it with -z now";
      break;
    }
    if (!failure.empty()) break;
  }
  if (!failure.empty()) return Error{failure};
  return pins;
}

}  // namespace cordon::inspector
