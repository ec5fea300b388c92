// Inspection: find every WRPKRU and XRSTOR in executable bytes, classify
// each, and describe it for a person.
//
// Classification (docs/inspector.md):
//  - kGateSite: the address is a registered gate site (the only safe kind);
//  - kUnsafeInstruction: a real instruction at an instruction boundary of the
//    linear sweep, such as glibc's pkey_set or ld.so's lazy-binding XRSTOR;
//  - kUnsafeUnintended: inside or across other instructions.
#ifndef CORDON_RUNTIME_INSPECTOR_INSPECT_H_
#define CORDON_RUNTIME_INSPECTOR_INSPECT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/base/expected.h"
#include "runtime/inspector/disassembly.h"
#include "runtime/inspector/elf_file.h"
#include "runtime/inspector/patterns.h"

namespace cordon::inspector {

enum class Verdict { kGateSite, kUnsafeInstruction, kUnsafeUnintended };
const char* VerdictName(Verdict v);
inline bool IsUnsafe(Verdict v) {
  return v != Verdict::kGateSite;
}

struct Finding {
  PatternKind kind;
  uint64_t address;                     // where the 0F byte is (file vaddr, or process address)
  std::optional<uint64_t> file_offset;  // when a file backs it
  std::string object;                   // file or mapping name
  std::string section;                  // empty when unknown
  std::string symbol;                   // empty when unknown
  uint64_t symbol_address = 0;
  Verdict verdict;
  HitContext context;
  // For an unintended hit inside a field that the link chose: the
  // instruction, which the runtime can move to a thunk (Relocatable).
  std::optional<Relocatable> relocation;
};

// Executable bytes at an address.
struct Region {
  uint64_t address;
  const uint8_t* bytes;
  size_t len;
  std::string object;  // name shown in findings
};

// Fills a finding's file offset, section and symbol (symbol_address is also
// where the context sweep starts, when it lies in the same region).
using Symbolizer = std::function<void(Finding*)>;

// Scans the regions (adjacent ones as one stream, so that a pattern spanning
// a boundary is found) and classifies every hit against gate_sites. Gate
// sites get no Capstone context when describe_gate_sites is false.
std::vector<Finding> InspectRegions(const std::vector<Region>& regions, const std::set<uint64_t>& gate_sites,
                                    const Disassembler& dis, const Symbolizer& symbolize,
                                    bool describe_gate_sites = true);

// All executable segments of an ELF file, against the file's own gate sites.
Expected<std::vector<Finding>> InspectElf(const ElfFile& file, const std::string& name,
                                          const Disassembler& dis);

}  // namespace cordon::inspector

#endif
