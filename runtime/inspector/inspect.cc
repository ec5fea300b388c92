// Inspection of executable regions (see inspect.h).
#include "runtime/inspector/inspect.h"

#include <algorithm>

namespace cordon::inspector {
namespace {

// How far before a hit the linear sweep starts when no symbol start is known.
// x86 decoding resynchronises within a few instructions.
constexpr uint64_t kSweepLeadIn = 256;
// A symbol start further back than this is not used as the sweep start:
// the nearest symbol of a hit in data can be megabytes away, and dladdr
// knows only exported symbols. Capstone decodes about 30 MB/s, so this
// bound keeps a context under 0.2 ms; past it, the lead-in above is used.
constexpr uint64_t kMaxSweep = 4096;

void InspectRun(const uint8_t* bytes, size_t len, uint64_t address, const std::string& object,
                const std::set<uint64_t>& gate_sites, const Disassembler& dis, const Symbolizer& symbolize,
                bool describe_gate_sites, std::vector<Finding>* out) {
  for (const PatternHit& hit : FindPatterns(bytes, len)) {
    Finding f;
    f.kind = hit.kind;
    f.address = address + hit.offset;
    f.object = object;
    if (symbolize) symbolize(&f);
    uint64_t sweep_from = hit.offset > kSweepLeadIn ? hit.offset - kSweepLeadIn : 0;
    if (!f.symbol.empty() && f.symbol_address >= address && f.symbol_address <= f.address &&
        f.address - f.symbol_address <= kMaxSweep) {
      sweep_from = f.symbol_address - address;
    }
    const bool gate_site = gate_sites.count(f.address) != 0;
    if (!gate_site || describe_gate_sites) {
      f.context =
          dis.Describe(bytes, len, address, static_cast<size_t>(sweep_from), static_cast<size_t>(hit.offset));
    }
    if (gate_site) {
      f.verdict = Verdict::kGateSite;
    } else {
      f.verdict = f.context.at_boundary ? Verdict::kUnsafeInstruction : Verdict::kUnsafeUnintended;
    }
    out->push_back(std::move(f));
  }
}

}  // namespace

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kGateSite:
      return "safe: registered gate site";
    case Verdict::kUnsafeInstruction:
      return "UNSAFE: real instruction outside the gates";
    case Verdict::kUnsafeUnintended:
      return "UNSAFE: unintended, inside or across other instructions";
  }
  return "?";
}

std::vector<Finding> InspectRegions(const std::vector<Region>& regions, const std::set<uint64_t>& gate_sites,
                                    const Disassembler& dis, const Symbolizer& symbolize,
                                    bool describe_gate_sites) {
  std::vector<Region> sorted = regions;
  std::sort(sorted.begin(), sorted.end(),
            [](const Region& a, const Region& b) { return a.address < b.address; });
  std::vector<Finding> out;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i + 1;
    while (j < sorted.size() && sorted[j].address == sorted[j - 1].address + sorted[j - 1].len) ++j;
    if (j == i + 1) {
      InspectRun(sorted[i].bytes, sorted[i].len, sorted[i].address, sorted[i].object, gate_sites, dis,
                 symbolize, describe_gate_sites, &out);
    } else {  // adjacent regions: one buffer, so patterns across the joins are found
      std::vector<uint8_t> joined;
      for (size_t k = i; k < j; ++k)
        joined.insert(joined.end(), sorted[k].bytes, sorted[k].bytes + sorted[k].len);
      InspectRun(joined.data(), joined.size(), sorted[i].address, sorted[i].object, gate_sites, dis,
                 symbolize, describe_gate_sites, &out);
    }
    i = j;
  }
  return out;
}

Expected<std::vector<Finding>> InspectElf(const ElfFile& file, const std::string& name,
                                          const Disassembler& dis) {
  const auto sites = file.GateSites();
  if (!sites.ok()) return Error{name + ": " + sites.error()};
  std::vector<Region> regions;
  for (const ElfSegment& s : file.segments()) {
    if (s.executable && s.filesz != 0) {
      regions.push_back({s.vaddr, file.bytes().data() + s.offset, static_cast<size_t>(s.filesz), name});
    }
  }
  const std::set<uint64_t> site_set(sites->begin(), sites->end());
  return InspectRegions(regions, site_set, dis, [&](Finding* f) {
    f->file_offset = file.OffsetOf(f->address);
    if (const ElfSection* s = file.SectionAt(f->address)) f->section = s->name;
    if (const ElfSymbol* sym = file.SymbolAt(f->address)) {
      f->symbol = sym->name;
      f->symbol_address = sym->value;
    }
  });
}

}  // namespace cordon::inspector
