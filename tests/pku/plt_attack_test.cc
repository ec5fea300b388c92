// Writable PLT slots (runtime/inspector/plt.h): Debian's libc.so.6 is
// linked without -z now, so its .got.plt stays writable after start-up,
// and its own calls jump through it (__strcpy_chk calls strlen and memcpy
// there). Untrusted code that rewrites a slot after the lockdown must not
// send trusted code that calls such a function anywhere: the lockdown
// pinned every PLT entry that jumps through a writable slot to the slot's
// target.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "cordon/cordon.h"
#include "runtime/inspector/plt.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"

extern "C" char* __strcpy_chk(char* dst, const char* src, size_t dst_len);

namespace {

using cordon::testing::ExpectHeldToTheEnd;
using cordon::testing::JudgeAttack;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::LockDownForAttack;
using cordon::testing::Verdict;

const uint8_t* g_secret;
int g_key;
uint8_t g_stolen[cordon::testing::kJudgeSecretSize];  // untrusted: what the attacker got
std::atomic<int> g_evil_calls{0};
std::atomic<int> g_evil_with_rights{0};

// The attacker's strlen: if it runs with the domain's key open, it copies
// the secret out; it answers like strlen either way.
size_t EvilStrlen(const char* s) {
  g_evil_calls.fetch_add(1);
  uint32_t pkru;
  __asm__ volatile("xor %%ecx, %%ecx\n rdpkru" : "=a"(pkru) : : "rcx", "rdx");
  if (((pkru >> (2 * g_key)) & 3) == 0) {
    g_evil_with_rights.fetch_add(1);
    for (size_t i = 0; i < sizeof g_stolen; ++i) g_stolen[i] = g_secret[i];
  }
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

// A trusted entry built with _FORTIFY_SOURCE would call this for strcpy.
char* (*volatile g_strcpy_chk)(char*, const char*, size_t) = __strcpy_chk;
uint64_t EntryFortifiedCopy(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  char src[8] = "abcdef";
  char dst[16];
  g_strcpy_chk(dst, src, sizeof dst);
  size_t n = 0;
  while (dst[n] != '\0') ++n;
  return n;
}

// The slot __strcpy_chk's call of strlen goes through, found from the code
// the way an attacker would: its first CALL into a PLT entry that jumps
// through [rip+disp32].
uint64_t* StrlenSlotOfStrcpyChk() {
  const auto* f = reinterpret_cast<const uint8_t*>(dlsym(RTLD_DEFAULT, "__strcpy_chk"));
  if (f == nullptr) return nullptr;
  for (int i = 0; i < 64; ++i) {
    if (f[i] != 0xe8) continue;
    int32_t rel;
    memcpy(&rel, f + i + 1, 4);
    const uint8_t* plt = f + i + 5 + rel;
    if (plt[0] != 0xff || plt[1] != 0x25) continue;
    int32_t disp;
    memcpy(&disp, plt + 2, 4);
    return reinterpret_cast<uint64_t*>(const_cast<uint8_t*>(plt) + 6 + disp);
  }
  return nullptr;
}

TEST(PltSlots, ARewrittenSlotOfLibcIsNotFollowedByTrustedCode) {
  const Verdict v = JudgeAttack([] {
    cordon_options o;
    cordon_options_init(&o);
    CHILD_CHECK(cordon_init(&o) == CORDON_OK);
    g_secret = LoadJudgeSecret();
    g_key = cordon_domain_pkey(cordon_trusted_domain());
    cordon_entry copy;
    CHILD_CHECK(cordon_register(cordon_trusted_domain(), EntryFortifiedCopy, "copy", &copy) == CORDON_OK);
    // Found before the lockdown (addresses are no secret); written after.
    uint64_t* slot = StrlenSlotOfStrcpyChk();
    CHILD_CHECK(slot != nullptr);
    CHILD_CHECK(cordon_call(copy, 0, 0, 0, 0, 0) == 6);
    LockDownForAttack(CORDON_VIOLATION_KILL);
    // Nothing is left to pin: every such entry jumps straight to its target.
    const auto left = cordon::inspector::PlanPltPins();
    CHILD_CHECK(left.ok() && left->empty());
    *slot = reinterpret_cast<uint64_t>(&EvilStrlen);  // the slot itself is still writable
    CHILD_CHECK(cordon_call(copy, 0, 0, 0, 0, 0) == 6);
    CHILD_CHECK(g_evil_with_rights.load() == 0);
    CHILD_CHECK(g_evil_calls.load() == 0);
    // Untrusted code's own calls do not follow it either.
    char a[16];
    CHILD_CHECK(g_strcpy_chk(a, "xyz", sizeof a) == a && g_evil_calls.load() == 0);
  });
  ExpectHeldToTheEnd(v);
}

}  // namespace
