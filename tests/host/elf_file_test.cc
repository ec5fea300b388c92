// ElfFile robustness: truncated and corrupted files give errors, never
// crashes; real files give their segments, symbols and gate sites.
#include "runtime/inspector/elf_file.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <random>

#include "runtime/gates/gate_config.h"

using cordon::inspector::ElfFile;

namespace {

std::vector<uint8_t> SelfBytes() {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(ElfFile, ReadsThisExecutable) {
  auto f = ElfFile::Load("/proc/self/exe");
  ASSERT_TRUE(f.ok()) << f.error();
  bool exec = false;
  for (const auto& s : f->segments()) exec |= s.executable;
  EXPECT_TRUE(exec);
  auto sites = f->GateSites();
  ASSERT_TRUE(sites.ok());
  EXPECT_EQ(sites->size(), cordon::gates::SiteCount()) << "the file lists the same sites as memory";
}

TEST(ElfFile, ClearErrorsForWhatIsNotAnElfFile) {
  auto missing = ElfFile::Load("/nonexistent/file");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("cannot open"), std::string::npos);
  auto text = ElfFile::Parse(std::vector<uint8_t>(100, 'a'), "text");
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.error().find("not an ELF file"), std::string::npos);
  auto tiny = ElfFile::Parse({0x7f, 'E', 'L', 'F'}, "tiny");
  ASSERT_FALSE(tiny.ok());
  EXPECT_NE(tiny.error().find("shorter than an ELF header"), std::string::npos);
}

TEST(ElfFile, EveryTruncationIsAnErrorOrValid) {
  const auto full = SelfBytes();
  ASSERT_GT(full.size(), 4096u);
  for (size_t len = 0; len < full.size(); len += 1 + len / 8) {
    auto f = ElfFile::Parse(std::vector<uint8_t>(full.begin(), full.begin() + static_cast<long>(len)), "cut");
    if (!f.ok()) {
      EXPECT_FALSE(f.error().empty());
    }
  }
}

TEST(ElfFile, RandomCorruptionNeverCrashes) {
  const auto full = SelfBytes();
  std::mt19937 rng(7);
  size_t errors = 0;
  for (int round = 0; round < 300; ++round) {
    auto b = full;
    // Corrupt the header and header tables, where the offsets live.
    for (int k = 0; k < 8; ++k) b[rng() % 256] = static_cast<uint8_t>(rng());
    const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(full.data());
    for (int k = 0; k < 8; ++k) {
      const size_t at = eh->e_shoff + rng() % (eh->e_shnum * sizeof(Elf64_Shdr));
      if (at < b.size()) b[at] = static_cast<uint8_t>(rng());
    }
    auto f = ElfFile::Parse(std::move(b), "corrupt");
    if (!f.ok()) {
      ++errors;
      continue;
    }
    (void)f->GateSites();
    for (const auto& s : f->sections()) (void)f->SymbolAt(s.addr);
  }
  EXPECT_GT(errors, 0u);
}

}  // namespace
