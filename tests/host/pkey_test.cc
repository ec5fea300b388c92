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

TEST(Smaps, FindsThisProcessesOwnMappings) {
  int local = 0;
  auto m = hw::FindMapping(&local);
  ASSERT_TRUE(m.has_value());
  EXPECT_LE(m->start, reinterpret_cast<uintptr_t>(&local));
  EXPECT_GT(m->end, reinterpret_cast<uintptr_t>(&local));
  EXPECT_EQ(m->perms.substr(0, 2), "rw");
}

}  // namespace
