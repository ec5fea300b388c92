// ELF64 parsing with every offset and size checked against the file.
#include "runtime/inspector/elf_file.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "runtime/base/file.h"

namespace cordon::inspector {
namespace {

// Whether [offset, offset + count * size) lies inside a buffer of len bytes.
bool Fits(uint64_t offset, uint64_t count, uint64_t size, size_t len) {
  uint64_t bytes, end;
  if (__builtin_mul_overflow(count, size, &bytes) || __builtin_add_overflow(offset, bytes, &end))
    return false;
  return end <= len;
}

// The file's bytes, as Parse checks them.
struct Bytes {
  const uint8_t* p;
  size_t n;
  const uint8_t* data() const { return p; }
  size_t size() const { return n; }
};

template <typename T>
T Read(const Bytes& b, uint64_t offset) {
  T v;
  memcpy(&v, b.data() + offset, sizeof v);
  return v;
}

// A NUL-terminated string inside [table, table + size).
std::optional<std::string> StringAt(const Bytes& b, uint64_t table, uint64_t size, uint64_t index) {
  if (index >= size || !Fits(table, 1, size, b.size())) return std::nullopt;
  const char* start = reinterpret_cast<const char*>(b.data() + table + index);
  const void* nul = memchr(start, 0, size - index);
  if (nul == nullptr) return std::nullopt;
  return std::string(start, static_cast<const char*>(nul));
}

Error Malformed(const std::string& name, const std::string& what) {
  return Error{name + ": malformed ELF file: " + what};
}

}  // namespace

Expected<ElfFile> ElfFile::Load(const std::string& path) {
  return Map(path, true);
}

Expected<ElfFile> ElfFile::LoadHeaders(const std::string& path) {
  return Map(path, false);
}

Expected<ElfFile> ElfFile::Map(const std::string& path, bool symbols) {
  const Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return Error{path + ": cannot open: " + strerror(errno)};
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return Error{path + ": not a regular file"};
  // mmap refuses length 0: an empty file gets Parse's verdict on no bytes.
  if (st.st_size == 0) return Parse({}, path);
  // MAP_PRIVATE is no snapshot: a write to the file shows through and a
  // truncation makes reads past the new end raise SIGBUS, as they would for
  // ld.so, which maps the same file. Parse checks every offset against the
  // size mapped here, so a change under it can make an answer wrong (as a
  // racing read() could) but never reads outside the mapping.
  auto mapping = std::make_shared<Mapping>(Mapping::ReadOnly(fd.get(), static_cast<size_t>(st.st_size)));
  if (!mapping->ok()) return Error{path + ": cannot map: " + strerror(errno)};
  const uint8_t* data = mapping->data();
  const size_t size = mapping->size();
  return ParseOwned(std::move(mapping), data, size, path, symbols);
}

Expected<ElfFile> ElfFile::Parse(std::vector<uint8_t> bytes, const std::string& name) {
  auto owned = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  const uint8_t* data = owned->data();
  const size_t size = owned->size();
  return ParseOwned(std::move(owned), data, size, name);
}

Expected<ElfFile> ElfFile::ParseOwned(std::shared_ptr<const void> owner, const uint8_t* data, size_t size,
                                      const std::string& name, bool symbols) {
  const Bytes b{data, size};
  if (b.size() < SELFMAG || memcmp(b.data(), ELFMAG, SELFMAG) != 0) return Error{name + ": not an ELF file"};
  if (b.size() < sizeof(Elf64_Ehdr)) return Malformed(name, "shorter than an ELF header");
  const auto eh = Read<Elf64_Ehdr>(b, 0);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64) {
    return Error{name + ": not a 64-bit little-endian x86-64 ELF file"};
  }
  ElfFile f;
  if (eh.e_phnum != 0) {
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || !Fits(eh.e_phoff, eh.e_phnum, sizeof(Elf64_Phdr), b.size())) {
      return Malformed(name, "program headers lie outside the file");
    }
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
      const auto ph = Read<Elf64_Phdr>(b, eh.e_phoff + i * sizeof(Elf64_Phdr));
      if (ph.p_type != PT_LOAD) continue;
      if (!Fits(ph.p_offset, 1, ph.p_filesz, b.size()))
        return Malformed(name, "a loadable segment is truncated");
      f.segments_.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz, ph.p_memsz, (ph.p_flags & PF_X) != 0});
    }
  }
  if (eh.e_shnum != 0) {
    if (eh.e_shentsize != sizeof(Elf64_Shdr) || !Fits(eh.e_shoff, eh.e_shnum, sizeof(Elf64_Shdr), b.size())) {
      return Malformed(name, "section headers lie outside the file");
    }
    if (eh.e_shstrndx >= eh.e_shnum) return Malformed(name, "bad section-name table index");
    const auto strtab = Read<Elf64_Shdr>(b, eh.e_shoff + eh.e_shstrndx * sizeof(Elf64_Shdr));
    std::vector<Elf64_Shdr> headers;
    for (unsigned i = 0; i < eh.e_shnum; ++i) {
      const auto sh = Read<Elf64_Shdr>(b, eh.e_shoff + i * sizeof(Elf64_Shdr));
      headers.push_back(sh);
      auto sname = StringAt(b, strtab.sh_offset, strtab.sh_size, sh.sh_name);
      if (!sname) return Malformed(name, "a section name lies outside the name table");
      if (sh.sh_type != SHT_NOBITS && sh.sh_type != SHT_NULL &&
          !Fits(sh.sh_offset, 1, sh.sh_size, b.size())) {
        return Malformed(name, "section " + *sname + " is truncated");
      }
      f.sections_.push_back({*sname, sh.sh_addr, sh.sh_offset, sh.sh_size, sh.sh_flags, sh.sh_type});
    }
    for (const Elf64_Shdr& sh : headers) {
      if (!symbols) break;
      if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) continue;
      if (sh.sh_entsize != sizeof(Elf64_Sym) || sh.sh_link >= headers.size()) {
        return Malformed(name, "bad symbol table header");
      }
      const Elf64_Shdr& names = headers[sh.sh_link];
      for (uint64_t k = 0; k < sh.sh_size / sizeof(Elf64_Sym); ++k) {
        const auto sym = Read<Elf64_Sym>(b, sh.sh_offset + k * sizeof(Elf64_Sym));
        if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC && ELF64_ST_TYPE(sym.st_info) != STT_NOTYPE) continue;
        if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
        auto sname = StringAt(b, names.sh_offset, names.sh_size, sym.st_name);
        if (!sname) return Malformed(name, "a symbol name lies outside its string table");
        if (sname->empty()) continue;
        f.symbols_.push_back({*sname, sym.st_value, sym.st_size});
      }
    }
    std::sort(f.symbols_.begin(), f.symbols_.end(), [](const ElfSymbol& a, const ElfSymbol& c) {
      return a.value < c.value || (a.value == c.value && a.size > c.size);
    });
  }
  f.owner_ = std::move(owner);
  f.data_ = data;
  f.size_ = size;
  return f;
}

const ElfSection* ElfFile::SectionAt(uint64_t vaddr) const {
  for (const ElfSection& s : sections_) {
    if ((s.flags & SHF_ALLOC) && s.size != 0 && vaddr >= s.addr && vaddr - s.addr < s.size) return &s;
  }
  return nullptr;
}

const ElfSymbol* ElfFile::SymbolAt(uint64_t vaddr) const {
  auto it = std::upper_bound(symbols_.begin(), symbols_.end(), vaddr,
                             [](uint64_t v, const ElfSymbol& s) { return v < s.value; });
  if (it == symbols_.begin()) return nullptr;
  const ElfSymbol* best = &*std::prev(it);
  // Prefer a symbol that really contains the address, among equals.
  for (auto j = std::prev(it);; --j) {
    if (j->size != 0 && vaddr < j->value + j->size) return &*j;
    if (j == symbols_.begin() || j->value != best->value) break;
  }
  return best;
}

std::optional<uint64_t> ElfFile::OffsetOf(uint64_t vaddr) const {
  for (const ElfSegment& s : segments_) {
    if (vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz) return s.offset + (vaddr - s.vaddr);
  }
  return std::nullopt;
}

std::vector<std::string> ElfFile::Needed() const {
  std::vector<std::string> out;
  const ElfSection* dynamic = nullptr;
  const ElfSection* dynstr = nullptr;
  for (const ElfSection& s : sections_) {
    if (s.name == ".dynamic" && s.type == SHT_DYNAMIC) dynamic = &s;
    if (s.name == ".dynstr") dynstr = &s;
  }
  if (dynamic == nullptr || dynstr == nullptr) return out;
  for (uint64_t k = 0; k + sizeof(Elf64_Dyn) <= dynamic->size; k += sizeof(Elf64_Dyn)) {
    const auto d = Read<Elf64_Dyn>(Bytes{data_, size_}, dynamic->offset + k);
    if (d.d_tag == DT_NULL) break;
    if (d.d_tag != DT_NEEDED) continue;
    if (auto name = StringAt(Bytes{data_, size_}, dynstr->offset, dynstr->size, d.d_un.d_val))
      out.push_back(*name);
  }
  return out;
}

Expected<std::vector<uint64_t>> ElfFile::GateSites() const {
  std::vector<uint64_t> sites;
  for (const ElfSection& s : sections_) {
    if (s.name != "cordon_gate_sites") continue;
    if (s.size % 8 != 0) return Error{"cordon_gate_sites: size is not a multiple of 8"};
    // Found by fuzz_elf: a section header may place the table past the end
    // of the file (or give it no bytes in the file at all).
    if (s.type == SHT_NOBITS || !Fits(s.offset, 1, s.size, size_)) {
      return Error{"cordon_gate_sites: the section lies outside the file"};
    }
    for (uint64_t k = 0; k < s.size; k += 8) {
      const auto rel = Read<int32_t>(Bytes{data_, size_}, s.offset + k);
      sites.push_back(s.addr + k + static_cast<uint64_t>(static_cast<int64_t>(rel)));
    }
  }
  return sites;
}

}  // namespace cordon::inspector
