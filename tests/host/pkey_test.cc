// Hardware-layer tests that need no PKU: PKRU arithmetic, the Permission
// enum against the kernel's constants, CPU feature sanity, smaps parsing.
#include "runtime/hardware/pkey.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdio>
#include <string>

#include "runtime/hardware/cpu.h"
#include "runtime/hardware/smaps.h"

namespace hw = cordon::hw;

namespace {

TEST(Pkru, PermissionsMatchTheKernelConstants) {
  EXPECT_EQ(static_cast<unsigned>(hw::Permission::kNoAccess), static_cast<unsigned>(PKEY_DISABLE_ACCESS));
  EXPECT_EQ(static_cast<unsigned>(hw::Permission::kReadOnly), static_cast<unsigned>(PKEY_DISABLE_WRITE));
}

TEST(Pkru, FieldArithmetic) {
  EXPECT_EQ(hw::WithPermission(hw::kDefaultPkru, 1, hw::Permission::kReadWrite), 0x55555550u);
  EXPECT_EQ(hw::WithPermission(0, 15, hw::Permission::kReadOnly), 0x80000000u);
  EXPECT_EQ(hw::PermissionOf(hw::kDefaultPkru, 0), hw::Permission::kReadWrite);
  for (int k = 1; k < hw::kMaxKeys; ++k)
    EXPECT_EQ(hw::PermissionOf(hw::kDefaultPkru, k), hw::Permission::kNoAccess);
}

TEST(Cpu, Avx512ImpliesAvx) {
  if (hw::CpuHasAvx512()) {
    EXPECT_TRUE(hw::CpuHasAvx());
  }
}

TEST(Cpu, PkuChecksAgreeWithProcCpuinfo) {
  FILE* f = fopen("/proc/cpuinfo", "r");
  ASSERT_NE(f, nullptr);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  fclose(f);
  const bool listed = text.find(" pku") != std::string::npos && text.find(" ospke") != std::string::npos;
  EXPECT_EQ(hw::CpuHasPku(), listed);
  // The expensive check never claims more than the cheap one.
  if (!hw::CpuHasPku()) {
    EXPECT_FALSE(hw::PkeysUsable());
  }
}

TEST(Smaps, ParsesTheKeyOfTheRightMapping) {
  char path[] = "/tmp/cordon-smaps-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const char* text =
      "00400000-00401000 r-xp 00000000 08:01 42   /bin/x\n"
      "Size:                  4 kB\n"
      "ProtectionKey:         0\n"
      "7f0000000000-7f0000010000 rw-p 00000000 00:00 0 \n"
      "Size:                 64 kB\n"
      "AnonHugePages:         0 kB\n"
      "ProtectionKey:         3\n"
      "7f0000020000-7f0000030000 ---p 00000000 00:00 0 \n"
      "Size:                 64 kB\n";
  ASSERT_EQ(write(fd, text, strlen(text)), static_cast<ssize_t>(strlen(text)));
  close(fd);
  auto m = hw::FindMapping(reinterpret_cast<void*>(0x7f0000008000), path);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->start, 0x7f0000000000u);
  EXPECT_EQ(m->end, 0x7f0000010000u);
  EXPECT_EQ(m->perms, "rw-p");
  EXPECT_EQ(m->pkey, 3);
  auto first = hw::FindMapping(reinterpret_cast<void*>(0x400010), path);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->pkey, 0);
  auto nokey = hw::FindMapping(reinterpret_cast<void*>(0x7f0000020000), path);
  ASSERT_TRUE(nokey.has_value());
  EXPECT_EQ(nokey->pkey, -1) << "no ProtectionKey line";
  EXPECT_FALSE(hw::FindMapping(reinterpret_cast<void*>(0x1000), path).has_value());
  EXPECT_FALSE(hw::FindMapping(reinterpret_cast<void*>(0x1000), "/nonexistent/smaps").has_value());
  unlink(path);
}

// A line longer than the parser's buffer comes in pieces; a piece that
// happens to start like a header (a path continuing with "7f...-...") must
// not be taken for one.
TEST(Smaps, LongLinesAndRangesAreParsedExactly) {
  char path[] = "/tmp/cordon-smaps-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string text = "00400000-00401000 r-xp 00000000 08:01 42   /bin/";
  text += std::string(4095 - text.size(), 'x');
  text += "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n";
  text +=
      "ProtectionKey:         0\n"
      "VmFlags: rd ex mr mw me\n"
      "7f0000010000-7f0000020000 rw-p 00000000 00:00 0 \n"
      "Size:                 64 kB\n"
      "ProtectionKey:         5\n"
      "VmFlags: rd wr mr mw me dd ac\n"
      "7f0000020000-7f0000030000 ---p 00000000 00:00 0 \n"
      "ProtectionKey:         5\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  EXPECT_FALSE(hw::FindMapping(reinterpret_cast<void*>(0x7f0000000800), path).has_value())
      << "a piece of a long line is not a mapping";
  const auto first = hw::FindMapping(reinterpret_cast<void*>(0x400000), path);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->pkey, 0);
  EXPECT_EQ(first->vm_flags, " rd ex mr mw me");
  const auto in = hw::MappingsIn(0x7f0000018000, 0x7f0000028000, path);
  ASSERT_TRUE(in.has_value());
  ASSERT_EQ(in->size(), 2u);
  EXPECT_EQ((*in)[0].start, 0x7f0000010000u);
  EXPECT_EQ((*in)[0].pkey, 5);
  EXPECT_EQ((*in)[0].vm_flags, " rd wr mr mw me dd ac");
  EXPECT_EQ((*in)[1].perms, "---p");
  EXPECT_EQ((*in)[1].pkey, 5) << "the last mapping of the file";
  const auto all = hw::MappingsIn(0, ~uintptr_t{0}, path);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->size(), 3u);
  EXPECT_FALSE(hw::MappingsIn(0, 1, "/nonexistent/smaps").has_value());
  unlink(path);
}

TEST(Smaps, FindsThisProcessesOwnMappings) {
  int local = 0;
  auto m = hw::FindMapping(&local);
  ASSERT_TRUE(m.has_value());
  EXPECT_LE(m->start, reinterpret_cast<uintptr_t>(&local));
  EXPECT_GT(m->end, reinterpret_cast<uintptr_t>(&local));
  EXPECT_EQ(m->perms.substr(0, 2), "rw");
}

}  // namespace
