// Relocation of chance occurrences (relocate.h).
#include "runtime/enforce/relocate.h"

#include <dlfcn.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>

#include "runtime/enforce/code_copy.h"
#include "runtime/gates/gate_config.h"
#include "runtime/inspector/patterns.h"
#include "runtime/inspector/process.h"

namespace cordon::enforce {
namespace {

using inspector::Relocatable;
using Form = Relocatable::Form;

constexpr uint64_t kPage = 4096;
// A rel32 reaches ±2 GiB; the margin keeps every field of the thunk page
// in reach whatever the offset in it.
constexpr int64_t kReach = (int64_t{1} << 31) - (int64_t{1} << 20);
// Gate code is never relocated: its shape is part of its proof (the check
// after each WRPKRU, the signal rewind windows). Gates are compact; no
// instruction of theirs is this far from a gate site or rewind window.
constexpr uint64_t kGateNeighbourhood = 16 * 1024;
// Free space left on each side of a thunk page, so that it never sits
// where a mapping grows (the brk heap after the executable).
constexpr uint64_t kSlack = uint64_t{1} << 20;

std::string Hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

bool Fits32(int64_t v) {
  return v >= INT32_MIN && v <= INT32_MAX;
}

void Put32(uint8_t* p, int64_t v) {
  const auto u = static_cast<uint32_t>(static_cast<int32_t>(v));
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(u >> (8 * i));
}

// The thunk for r at address thunk, and the site's new bytes.
bool Encode(const Relocatable& r, uint64_t thunk, std::vector<uint8_t>* site, std::vector<uint8_t>* code) {
  const auto size = static_cast<int64_t>(r.bytes.size());
  const auto at = static_cast<int64_t>(r.address);
  const auto t = static_cast<int64_t>(thunk);
  const auto target = static_cast<int64_t>(r.target);
  *site = r.bytes;
  code->clear();
  auto jump_from_site = [&](uint8_t opcode, uint8_t fill) {  // call or jmp rel32 to the thunk, then fill
    const int64_t rel = t - (at + 5);
    if (!Fits32(rel)) return false;
    (*site)[0] = opcode;
    Put32(site->data() + 1, rel);
    for (size_t i = 5; i < site->size(); ++i) (*site)[i] = fill;
    return true;
  };
  auto jump_to = [&](int64_t from_end, int64_t to) {  // jmp rel32 appended to the thunk
    const int64_t rel = to - from_end;
    if (!Fits32(rel)) return false;
    code->push_back(0xe9);
    code->resize(code->size() + 4);
    Put32(code->data() + code->size() - 4, rel);
    return true;
  };
  switch (r.form) {
    case Form::kBranchRel32: {
      const int64_t rel = t - (at + size);
      if (!Fits32(rel)) return false;
      Put32(site->data() + r.field, rel);
      return jump_to(t + 5, target);
    }
    case Form::kCallIndirect:
    case Form::kJumpIndirect: {
      // Why a NOP after the call: the callee returns to the byte after the
      // 5-byte call, inside what was the 6-byte call; the NOP runs on to
      // where the original returned. Unwinding sees a return address inside
      // the same instruction range of the same function.
      if (r.bytes.size() < 5) return false;
      if (!jump_from_site(r.form == Form::kCallIndirect ? 0xe8 : 0xe9,
                          r.form == Form::kCallIndirect ? 0x90 : 0xcc)) {
        return false;
      }
      const int64_t disp = target - (t + 6);  // jmp [rip + disp32], 6 bytes
      if (!Fits32(disp)) return false;
      *code = {0xff, 0x25, 0, 0, 0, 0};
      Put32(code->data() + 2, disp);
      return true;
    }
    case Form::kRipRelative: {
      if (r.bytes.size() < 5 || !jump_from_site(0xe9, 0xcc)) return false;
      *code = r.bytes;
      const int64_t disp = target - (t + size);
      if (!Fits32(disp)) return false;
      Put32(code->data() + r.field, disp);
      return jump_to(t + size + 5, at + size);
    }
  }
  return false;
}

// No pattern in bytes [from, to) of buf that overlaps [changed_from, changed_to).
bool NoNewPattern(const std::vector<uint8_t>& buf, size_t changed_from, size_t changed_to) {
  for (const inspector::PatternHit& h : inspector::FindPatterns(buf.data(), buf.size())) {
    if (h.offset < changed_to && h.offset + 3 > changed_from) return false;
  }
  return true;
}

// libgcc's FDE lookup (the unwinder's own, over every loaded object's
// .eh_frame_hdr), found at run time so that no link needs libgcc_s: the
// C++ runtime that Cordon needs has loaded it.
struct DwarfEhBases {
  void* tbase;
  void* dbase;
  void* func;
};
using FindFde = const void* (*)(void* pc, DwarfEhBases* bases);

// The start of the function whose unwind entry covers pc, if one does.
std::optional<uint64_t> FunctionStart(uint64_t pc) {
  static const auto find = reinterpret_cast<FindFde>(dlsym(RTLD_DEFAULT, "_Unwind_Find_FDE"));
  if (find == nullptr) return std::nullopt;
  DwarfEhBases bases{};
  if (find(reinterpret_cast<void*>(pc), &bases) == nullptr || bases.func == nullptr) return std::nullopt;
  return reinterpret_cast<uint64_t>(bases.func);
}

bool ReadMemory(uint64_t address, size_t len, std::vector<uint8_t>* out) {
  out->resize(len);
  return ReadCode(address, len, out->data());
}

// Why r must not be relocated, or "" if it may: it lies in one function of
// the unwind tables, and decoding from that function's start (in memory,
// as it runs) finds the same instruction.
std::string NotCode(const Relocatable& r, const inspector::Disassembler& dis) {
  const auto first = FunctionStart(r.address);
  const auto last = FunctionStart(r.address + r.bytes.size() - 1);
  if (!first || first != last || *first > r.address) {
    return "is not inside a function that the unwind tables know (data in code is never rewritten)";
  }
  constexpr uint64_t kMaxFunction = 1024 * 1024;
  if (r.address - *first > kMaxFunction) return "lies more than 1 MiB into its function";
  std::vector<uint8_t> code;
  const uint64_t end = r.address + r.bytes.size();
  if (!ReadMemory(*first, static_cast<size_t>(end - *first), &code)) return "cannot be read back";
  const auto again =
      dis.RelocatableAt(code.data(), code.size(), *first, static_cast<size_t>(r.hit - *first), 0);
  if (!again || again->address != r.address || again->bytes != r.bytes) {
    return "is not where decoding from its function's start finds an instruction";
  }
  return "";
}

bool NearGateCode(uint64_t address) {
  auto near = [&](uint64_t a) { return (a > address ? a - address : address - a) < kGateNeighbourhood; };
  for (size_t i = 0; i < gates::SiteCount(); ++i) {
    if (near(gates::SiteAt(i).address)) return true;
  }
  for (size_t i = 0; i < gates::RewindCount(); ++i) {
    const gates::Rewind w = gates::RewindAt(i);
    if (near(w.first) || near(w.last) || near(w.resume)) return true;
  }
  return false;
}

// Page-aligned addresses of free space in reach of both the site and the
// target, nearest the site first; the pages already chosen are taken.
std::vector<uint64_t> Candidates(const std::vector<inspector::Mapping>& maps, const std::set<uint64_t>& taken,
                                 uint64_t site, uint64_t target) {
  std::vector<uint64_t> out;
  uint64_t prev_end = uint64_t{1} << 32;  // nothing below 4 GiB (compatibility mode reaches it)
  auto consider = [&](uint64_t gap_start, uint64_t gap_end) {
    if (gap_end < gap_start + 2 * kSlack + kPage) return;
    // The top of the gap, below the next mapping (only stacks grow down,
    // and they are far from code), and its bottom.
    for (uint64_t a : {gap_end - kSlack - kPage, gap_start + kSlack}) {
      a &= ~(kPage - 1);
      const auto ds = static_cast<int64_t>(a - site), dt = static_cast<int64_t>(a - target);
      if (std::llabs(ds) < kReach && std::llabs(dt) < kReach && taken.count(a) == 0) out.push_back(a);
    }
  };
  for (const inspector::Mapping& m : maps) {
    if (m.start > prev_end) consider(prev_end, m.start);
    prev_end = std::max(prev_end, m.end);
  }
  std::sort(out.begin(), out.end(), [&](uint64_t a, uint64_t b) {
    return std::llabs(static_cast<int64_t>(a - site)) < std::llabs(static_cast<int64_t>(b - site));
  });
  return out;
}

}  // namespace

Expected<std::vector<RelocationPlan>> PlanRelocations(const std::vector<Relocatable>& instructions,
                                                      const inspector::Disassembler& dis) {
  auto maps = inspector::AllMappings("self");
  if (!maps.ok()) return Error{"cannot plan relocations: " + maps.error()};
  std::vector<RelocationPlan> plans;
  std::set<uint64_t> done, taken;
  for (const Relocatable& r : instructions) {
    if (!done.insert(r.address).second) continue;  // two hits in one instruction
    const std::string what = "`" + r.text + "` at " + Hex(r.address);
    if (NearGateCode(r.address)) return Error{what + " is gate code, which is never relocated"};
    if (const std::string why = NotCode(r, dis); !why.empty()) return Error{what + " " + why};
    std::vector<uint8_t> around;
    if (!ReadMemory(r.address - 2, r.bytes.size() + 4, &around)) {
      return Error{what + " cannot be read back with the 2 bytes on each side"};
    }
    if (!std::equal(r.bytes.begin(), r.bytes.end(), around.begin() + 2)) {
      return Error{what + " changed since it was inspected"};
    }
    bool placed = false;
    for (uint64_t page : Candidates(*maps, taken, r.address, r.target)) {
      // Offsets in the page, 16 apart, until neither the site nor the
      // thunk forms a pattern (the rest of the page is INT3).
      for (uint64_t off = 0; off + 32 <= kPage && !placed; off += 16) {
        RelocationPlan p{r, page, page + off, {}, {}};
        if (!Encode(r, p.thunk, &p.site, &p.thunk_bytes)) break;  // out of reach from this page
        std::vector<uint8_t> site_window = around;
        std::copy(p.site.begin(), p.site.end(), site_window.begin() + 2);
        std::vector<uint8_t> thunk_window(2, 0xcc);
        thunk_window.insert(thunk_window.end(), p.thunk_bytes.begin(), p.thunk_bytes.end());
        thunk_window.insert(thunk_window.end(), 2, 0xcc);
        if (NoNewPattern(site_window, 2, 2 + p.site.size()) &&
            NoNewPattern(thunk_window, 2, 2 + p.thunk_bytes.size())) {
          plans.push_back(std::move(p));
          taken.insert(page);
          placed = true;
        }
      }
      if (placed) break;
    }
    if (!placed) return Error{what + ": no free page in reach gives bytes without a pattern"};
  }
  return plans;
}

Expected<void> ApplyRelocations(const std::vector<RelocationPlan>& plans,
                                std::vector<std::pair<uint64_t, uint64_t>>* thunk_pages) {
  for (const RelocationPlan& p : plans) {
    const std::string what = "`" + p.instruction.text + "` at " + Hex(p.instruction.address);
    void* page = mmap(reinterpret_cast<void*>(p.thunk_page), kPage, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (page == MAP_FAILED || reinterpret_cast<uint64_t>(page) != p.thunk_page) {
      if (page != MAP_FAILED) munmap(page, kPage);
      return Error{"cannot map the thunk page for " + what + ": " + strerror(errno)};
    }
    memset(page, 0xcc, kPage);
    memcpy(static_cast<uint8_t*>(page) + (p.thunk - p.thunk_page), p.thunk_bytes.data(),
           p.thunk_bytes.size());
    if (mprotect(page, kPage, PROT_READ | PROT_EXEC) != 0) {
      munmap(page, kPage);
      return Error{"cannot make the thunk page for " + what + " executable: " + strerror(errno)};
    }
    if (thunk_pages != nullptr) thunk_pages->push_back({p.thunk_page, p.thunk_page + kPage});
    // The site's page, or two when the instruction crosses into the next.
    const uint64_t first = p.instruction.address & ~(kPage - 1);
    const uint64_t last = (p.instruction.address + p.site.size() - 1) & ~(kPage - 1);
    bool unchanged = true;
    std::string why;
    const bool copied = ReplaceWithCopy(
        first, last - first + kPage, PROT_READ | PROT_EXEC,
        [&](uint8_t* bytes) {
          uint8_t* at = bytes + (p.instruction.address - first);
          unchanged = std::equal(p.instruction.bytes.begin(), p.instruction.bytes.end(), at);
          if (unchanged) std::copy(p.site.begin(), p.site.end(), at);
        },
        &why);
    if (!copied) return Error{"cannot patch " + what + ": " + why};
    if (!unchanged) return Error{what + " changed while it was being relocated"};
  }
  return {};
}

}  // namespace cordon::enforce
