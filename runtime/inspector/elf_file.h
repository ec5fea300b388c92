// A read-only, bounds-checked view of an ELF64 x86-64 file: executable
// segments, sections, symbols and Cordon's gate-site table. Malformed or
// truncated files give an error naming what is wrong, never a crash. Files
// are mapped, not read; bytes handed to Parse are kept.
#ifndef CORDON_RUNTIME_INSPECTOR_ELF_FILE_H_
#define CORDON_RUNTIME_INSPECTOR_ELF_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/base/expected.h"

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
  // Maps the file read-only (MAP_PRIVATE) and parses it; the mapping lives
  // as long as the ElfFile and its copies.
  static Expected<ElfFile> Load(const std::string& path);
  // Segments and sections only, without the symbol tables (the cheap read
  // of every loaded object at cordon_init()): SymbolAt finds nothing.
  static Expected<ElfFile> LoadHeaders(const std::string& path);
  // Parses bytes already in memory (tests, the fuzzer), keeping them.
  static Expected<ElfFile> Parse(std::vector<uint8_t> bytes, const std::string& name);

  // The whole file.
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
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
  static Expected<ElfFile> Map(const std::string& path, bool symbols);
  static Expected<ElfFile> ParseOwned(std::shared_ptr<const void> owner, const uint8_t* data, size_t size,
                                      const std::string& name, bool symbols = true);

  // What keeps data_ alive (a Mapping or a byte vector), shared so that a
  // copy of the ElfFile points at the same immutable bytes.
  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::vector<ElfSegment> segments_;
  std::vector<ElfSection> sections_;
  std::vector<ElfSymbol> symbols_;  // sorted by value
};

}  // namespace cordon::inspector

#endif
