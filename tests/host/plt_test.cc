// PLT pinning's encoder (runtime/inspector/plt.h): a direct jump in reach,
// an absolute one out of reach, and never a WRPKRU or XRSTOR with the
// neighbouring bytes.
#include "runtime/inspector/plt.h"

#include <gtest/gtest.h>

#include <cstring>

#include "runtime/inspector/patterns.h"

namespace {

using cordon::inspector::EncodePinnedEntry;
using cordon::inspector::FirstPattern;
using cordon::inspector::kPltEntrySize;

const uint8_t kNone[2] = {0x90, 0x90};

TEST(PltPin, ATargetInReachGetsJmpRel32) {
  const uint64_t entry = 0x7f0000026010, target = 0x7f00000c5550;
  const auto e = EncodePinnedEntry(entry, target, kNone, kNone);
  ASSERT_TRUE(e.has_value());
  ASSERT_EQ(e->size(), kPltEntrySize);
  EXPECT_EQ((*e)[0], 0xe9);
  int32_t rel;
  memcpy(&rel, e->data() + 1, 4);
  EXPECT_EQ(entry + 5 + static_cast<int64_t>(rel), target);
  for (size_t i = 5; i < kPltEntrySize; ++i) EXPECT_EQ((*e)[i], 0xcc) << i;
}

TEST(PltPin, ATargetOutOfReachGetsAnAbsoluteJump) {
  const uint64_t entry = 0x0000555555554010, target = 0x00007f1234567890;
  const auto e = EncodePinnedEntry(entry, target, kNone, kNone);
  ASSERT_TRUE(e.has_value());
  const uint8_t jmp[6] = {0xff, 0x25, 0, 0, 0, 0};
  EXPECT_EQ(memcmp(e->data(), jmp, 6), 0);
  uint64_t abs;
  memcpy(&abs, e->data() + 6, 8);
  EXPECT_EQ(abs, target);
}

// A rel32 whose bytes would spell XRSTOR [rbp+disp8] (0F AE 6D) starts one
// NOP later, with another rel32; an address that spells one too (in the
// absolute form) and is out of reach has no encoding at all.
TEST(PltPin, NoEncodingFormsAWrpkruOrXrstor) {
  const uint64_t entry = 0x7f0000026010;
  const uint64_t target = entry + 5 + 0x006dae0f;  // rel32 bytes 0f ae 6d 00
  const auto e = EncodePinnedEntry(entry, target, kNone, kNone);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ((*e)[0], 0x90);
  EXPECT_EQ((*e)[1], 0xe9);
  int32_t rel;
  memcpy(&rel, e->data() + 2, 4);
  EXPECT_EQ(entry + 6 + static_cast<int64_t>(rel), target);
  EXPECT_FALSE(FirstPattern(e->data(), e->size()).has_value());
  const uint64_t far_and_bad = 0x00007f00006dae0full;  // absolute bytes 0f ae 6d 00 ...
  EXPECT_FALSE(EncodePinnedEntry(0x0000100000000000, far_and_bad, kNone, kNone).has_value());
}

}  // namespace
