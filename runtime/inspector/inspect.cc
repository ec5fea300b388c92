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

// Instruction bytes the context sweep may need past a hit: Describe stops
// starting instructions at hit + 32, and one is at most 15 bytes long.
constexpr uint64_t kSweepTail = 32 + 16;

// A run of adjacent regions, seen as one stream of bytes without copying it:
// offsets are from the first region's address.
class Run {
 public:
  Run(const Region* const* regions, size_t count) : regions_(regions, regions + count) {
    for (const Region* r : regions_) {
      starts_.push_back(total_);
      total_ += r->len;
    }
  }
  uint64_t address() const { return regions_[0]->address; }
  uint64_t size() const { return total_; }
  size_t count() const { return regions_.size(); }
  const Region& region(size_t k) const { return *regions_[k]; }
  uint64_t start(size_t k) const { return starts_[k]; }
  // The region that holds stream offset `at` (< size()).
  size_t RegionAt(uint64_t at) const {
    return static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), at) - starts_.begin()) - 1;
  }
  // Copies stream bytes [from, to) into out.
  void Copy(uint64_t from, uint64_t to, std::vector<uint8_t>* out) const {
    out->clear();
    for (size_t k = 0; k < regions_.size() && from < to; ++k) {
      const uint64_t rs = starts_[k], re = rs + regions_[k]->len;
      if (re <= from) continue;
      const uint64_t a = std::max(from, rs), b = std::min(to, re);
      out->insert(out->end(), regions_[k]->bytes + (a - rs), regions_[k]->bytes + (b - rs));
      from = b;
    }
  }

 private:
  std::vector<const Region*> regions_;
  std::vector<uint64_t> starts_;
  uint64_t total_ = 0;
};

// Every hit of the run, in order: each region is searched in place, and
// around each join only the 4 bytes that a pattern spanning it can use.
std::vector<PatternHit> RunHits(const Run& run) {
  std::vector<PatternHit> hits;
  std::vector<uint8_t> seam;
  for (size_t k = 0; k < run.count(); ++k) {
    const Region& r = run.region(k);
    for (PatternHit h : FindPatterns(r.bytes, r.len)) {
      h.offset += run.start(k);
      hits.push_back(h);
    }
    if (k == 0) continue;
    // Patterns starting in the 2 bytes before the join run into region k.
    const uint64_t join = run.start(k);
    const uint64_t from = join >= 2 ? join - 2 : 0;
    run.Copy(from, std::min(run.size(), join + 2), &seam);
    for (PatternHit h : FindPatterns(seam.data(), seam.size())) {
      h.offset += from;
      if (h.offset < join) hits.push_back(h);
    }
  }
  std::sort(hits.begin(), hits.end(),
            [](const PatternHit& a, const PatternHit& b) { return a.offset < b.offset; });
  hits.erase(std::unique(hits.begin(), hits.end(),
                         [](const PatternHit& a, const PatternHit& b) { return a.offset == b.offset; }),
             hits.end());
  return hits;
}

void InspectRun(const Run& run, const std::set<uint64_t>& gate_sites, const Disassembler& dis,
                const Symbolizer& symbolize, bool describe_gate_sites, std::vector<Finding>* out) {
  const uint64_t address = run.address();
  std::vector<uint8_t> window;
  for (const PatternHit& hit : RunHits(run)) {
    const size_t k = run.RegionAt(hit.offset);
    Finding f;
    f.kind = hit.kind;
    f.address = address + hit.offset;
    f.object = run.region(k).object;
    if (symbolize) symbolize(&f);
    const bool gate_site = gate_sites.count(f.address) != 0;
    if (gate_site && !describe_gate_sites) {  // by address alone: no sweep
      f.verdict = Verdict::kGateSite;
      out->push_back(std::move(f));
      continue;
    }
    uint64_t sweep_from = hit.offset > kSweepLeadIn ? hit.offset - kSweepLeadIn : 0;
    if (!f.symbol.empty() && f.symbol_address >= address && f.symbol_address <= f.address &&
        f.address - f.symbol_address <= kMaxSweep) {
      sweep_from = f.symbol_address - address;
    }
    // The sweep reads [sweep_from, hit + kSweepTail): in place when one
    // region holds it all, else from a copy of just that window.
    const uint64_t sweep_to = std::min(run.size(), hit.offset + kSweepTail);
    const uint64_t rs = run.start(k), re = rs + run.region(k).len;
    if (sweep_from >= rs && sweep_to <= re) {
      f.context = dis.Describe(run.region(k).bytes, run.region(k).len, address + rs,
                               static_cast<size_t>(sweep_from - rs), static_cast<size_t>(hit.offset - rs));
    } else {
      run.Copy(sweep_from, sweep_to, &window);
      f.context = dis.Describe(window.data(), window.size(), address + sweep_from, 0,
                               static_cast<size_t>(hit.offset - sweep_from));
    }
    if (gate_site) {
      f.verdict = Verdict::kGateSite;
    } else {
      f.verdict = f.context.at_boundary ? Verdict::kUnsafeInstruction : Verdict::kUnsafeUnintended;
    }
    if (f.verdict == Verdict::kUnsafeUnintended) {
      // Decoded again in place, when one region holds the instruction: an
      // occurrence across regions is not relocated.
      const Region& r = run.region(k);
      std::optional<size_t> symbol_start;
      if (!f.symbol.empty() && f.symbol_address >= r.address && f.symbol_address <= f.address) {
        symbol_start = static_cast<size_t>(f.symbol_address - r.address);
      }
      f.relocation =
          dis.RelocatableAt(r.bytes, r.len, r.address, static_cast<size_t>(hit.offset - rs), symbol_start);
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
  std::vector<const Region*> sorted;
  for (const Region& r : regions) sorted.push_back(&r);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Region* a, const Region* b) { return a->address < b->address; });
  std::vector<Finding> out;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i + 1;
    while (j < sorted.size() && sorted[j]->address == sorted[j - 1]->address + sorted[j - 1]->len) ++j;
    InspectRun(Run(sorted.data() + i, j - i), gate_sites, dis, symbolize, describe_gate_sites, &out);
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
      regions.push_back({s.vaddr, file.data() + s.offset, static_cast<size_t>(s.filesz), name});
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
