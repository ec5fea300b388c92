// A read-only, bounds-checked view of an ELF64 x86-64 file: executable
// segments, sections, symbols and Cordon's gate-site table. Malformed or
// truncated files give an error naming what is wrong, never a crash.
#ifndef CORDON_RUNTIME_INSPECTOR_ELF_FILE_H_
#define CORDON_RUNTIME_INSPECTOR_ELF_FILE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/expected.h"

namespace cordon::inspector {

struct ElfSegment {
  uint64_t vaddr, offset, filesz, memsz;
  bool executable;
};

struct ElfSection {
  std::string name;
  uint64_t addr, offset, size, flags;
  uint32_t type;
};

struct ElfSymbol {
  std::string name;
  uint64_t value, size;
};

class ElfFile {
 public:
  static Expected<ElfFile> Load(const std::string& path);
  static Expected<ElfFile> Parse(std::vector<uint8_t> bytes, const std::string& name);

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  const std::vector<ElfSegment>& segments() const { return segments_; }
  const std::vector<ElfSection>& sections() const { return sections_; }

  // The allocated section holding vaddr, if any.
  const ElfSection* SectionAt(uint64_t vaddr) const;
  // The symbol that contains vaddr, else the nearest one before it.
  const ElfSymbol* SymbolAt(uint64_t vaddr) const;
  // Addresses (vaddr) of the WRPKRUs listed in the cordon_gate_sites
  // section; empty if the file has none.
  Expected<std::vector<uint64_t>> GateSites() const;
  // DT_NEEDED entries (the libraries this object asks the loader for).
  std::vector<std::string> Needed() const;
  // The file offset that backs vaddr in a PT_LOAD segment.
  std::optional<uint64_t> OffsetOf(uint64_t vaddr) const;

 private:
  std::vector<uint8_t> bytes_;
  std::vector<ElfSegment> segments_;
  std::vector<ElfSection> sections_;
  std::vector<ElfSymbol> symbols_;  // sorted by value
};

}  // namespace cordon::inspector

#endif
