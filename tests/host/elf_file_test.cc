// ElfFile robustness: truncated and corrupted files give errors, never
// crashes; real files give their segments, symbols and gate sites.
#include "runtime/inspector/elf_file.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
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

// A file on disk with these bytes, removed when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::vector<uint8_t>& bytes) {
    char name[] = "/tmp/cordon-elf-test-XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    path_ = name;
    EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    close(fd);
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Load maps the file: an empty file (which mmap refuses) and short or cut
// files give the same errors as the same bytes handed to Parse.
TEST(ElfFile, EmptyAndTruncatedFilesOnDiskGiveClearErrors) {
  const TempFile empty({});
  auto none = ElfFile::Load(empty.path());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().find(empty.path() + ": not an ELF file"), std::string::npos) << none.error();

  const TempFile tiny({0x7f, 'E', 'L', 'F', 2, 1});
  auto short_header = ElfFile::Load(tiny.path());
  ASSERT_FALSE(short_header.ok());
  EXPECT_NE(short_header.error().find("shorter than an ELF header"), std::string::npos)
      << short_header.error();

  const auto full = SelfBytes();
  const TempFile cut(std::vector<uint8_t>(full.begin(), full.begin() + 4096));
  auto truncated = ElfFile::Load(cut.path());
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.error().find("malformed ELF file"), std::string::npos) << truncated.error();

  auto dir = ElfFile::Load("/tmp");
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().find("not a regular file"), std::string::npos) << dir.error();
}

// The bytes outlive the ElfFile they were loaded into: copies and moves
// share the mapping.
TEST(ElfFile, CopiesAndMovesKeepTheMapping) {
  const auto full = SelfBytes();
  auto loaded = ElfFile::Load("/proc/self/exe");
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  ASSERT_EQ(loaded->size(), full.size());
  ElfFile copy = *loaded;
  ElfFile moved = std::move(*loaded);
  EXPECT_EQ(memcmp(copy.data(), full.data(), full.size()), 0);
  EXPECT_EQ(moved.data(), copy.data());
  EXPECT_EQ(copy.segments().size(), moved.segments().size());
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
