// libFuzzer target: the ELF reader and the inspection of an ELF file. Any
// input must give a parsed file or an error, never a crash, an out-of-bounds
// read (AddressSanitizer) or undefined behaviour (UBSan); what parses is then
// queried the way cordon-scan and the runtime query it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "runtime/inspector/disassembly.h"
#include "runtime/inspector/elf_file.h"
#include "runtime/inspector/inspect.h"

using namespace cordon::inspector;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::optional<Disassembler> dis = [] {
    std::string error;
    return Disassembler::Open(&error);
  }();
  auto file = ElfFile::Parse(std::vector<uint8_t>(data, data + size), "fuzz");
  if (!file.ok()) return 0;
  for (const ElfSegment& s : file->segments()) {
    (void)file->SectionAt(s.vaddr);
    (void)file->SymbolAt(s.vaddr + s.memsz / 2);
    (void)file->OffsetOf(s.vaddr + s.filesz);
  }
  (void)file->GateSites();
  (void)file->Needed();
  if (dis) (void)InspectElf(*file, "fuzz", *dis);
  return 0;
}
