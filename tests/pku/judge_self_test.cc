// The judge (tests/support/judge.h) can fail: children that let the secret
// out, each by one route, are judged leaked with the route named; an honest
// child is not; a child that dies early is reported as it died, unscanned.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "cordon/cordon.h"
#include "tests/support/child.h"
#include "tests/support/judge.h"

namespace {

using cordon::testing::Evidence;
using cordon::testing::ExposeToJudge;
using cordon::testing::JudgeAttack;
using cordon::testing::kJudgeSecretSize;
using cordon::testing::kSegvPkuErr;
using cordon::testing::LoadJudgeSecret;
using cordon::testing::Verdict;

// The traitor: trusted code that copies trusted bytes out.
uint64_t CopyOut(uint64_t dst, uint64_t src, uint64_t n, uint64_t, uint64_t) {
  memcpy(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
  return 0;
}

struct Child {
  const uint8_t* secret;
  cordon_entry copy_out;
};

Child SetUpChild() {
  CHILD_CHECK(cordon_init(nullptr) == CORDON_OK);
  Child c{LoadJudgeSecret(), {}};
  CHILD_CHECK(cordon_register(cordon_trusted_domain(), CopyOut, "copy_out", &c.copy_out) == CORDON_OK);
  cordon::testing::ReportFaultsOnTheCurrentStack();
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  o.violation = CORDON_VIOLATION_ERRNO_FOR_TESTS;
  CHILD_CHECK(cordon_lockdown_ex(&o) == CORDON_OK);
  return c;
}

uint8_t* FreshPage() {
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHILD_CHECK(p != MAP_FAILED);
  return static_cast<uint8_t*>(p);
}

// Hex of the secret, then everything that held it wiped: only what was
// written out remains.
void WriteHex(int fd, const char* digits) {
  const Child c = SetUpChild();
  uint8_t* raw = FreshPage();
  char* hex = reinterpret_cast<char*>(FreshPage());
  cordon_call(c.copy_out, reinterpret_cast<uint64_t>(raw), reinterpret_cast<uint64_t>(c.secret),
              kJudgeSecretSize, 0, 0);
  for (size_t i = 0; i < kJudgeSecretSize; ++i) {
    hex[2 * i] = digits[raw[i] >> 4];
    hex[2 * i + 1] = digits[raw[i] & 15];
  }
  hex[2 * kJudgeSecretSize] = '\n';
  CHILD_CHECK(write(fd, hex, 2 * kJudgeSecretSize + 1) == 2 * kJudgeSecretSize + 1);
  explicit_bzero(raw, kJudgeSecretSize);
  explicit_bzero(hex, 2 * kJudgeSecretSize);
}

TEST(Judge, AnHonestChildIsNotLeakedAndIsScanned) {
  const Verdict v = JudgeAttack([] {
    const Child c = SetUpChild();
    // The secret is there for trusted code, and closed to this one.
    CHILD_CHECK(cordon_domain_of(c.secret) == cordon_trusted_domain());
    printf("hello\n");
  });
  EXPECT_TRUE(v.outcome.exited) << v.outcome.err;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  EXPECT_EQ(v.out, "hello\n");
  EXPECT_TRUE(v.memory_scanned);
  EXPECT_FALSE(v.leaked) << v.leak_where;
}

TEST(Judge, TheSecretInUntrustedMemoryIsFoundWithItsMapping) {
  const Verdict v = JudgeAttack([] {
    const Child c = SetUpChild();
    uint8_t* page = FreshPage();
    cordon_call(c.copy_out, reinterpret_cast<uint64_t>(page + 100), reinterpret_cast<uint64_t>(c.secret),
                kJudgeSecretSize, 0, 0);
    printf("%p\n", static_cast<void*>(page + 100));
  });
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  EXPECT_TRUE(v.memory_scanned);
  ASSERT_TRUE(v.leaked);
  const std::string at = v.out.substr(0, v.out.find('\n'));
  EXPECT_NE(v.leak_where.find("memory 0x"), std::string::npos) << v.leak_where;
  EXPECT_NE(v.leak_where.find("[anon] at " + at), std::string::npos) << v.leak_where << " vs " << at;
  EXPECT_EQ(v.leak_where.find("stdout"), std::string::npos) << v.leak_where;
}

TEST(Judge, HalfOfTheSecretIsALeakToo) {
  const Verdict v = JudgeAttack([] {
    const Child c = SetUpChild();
    uint8_t* page = FreshPage();
    cordon_call(c.copy_out, reinterpret_cast<uint64_t>(page), reinterpret_cast<uint64_t>(c.secret + 8),
                kJudgeSecretSize / 2, 0, 0);
  });
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  EXPECT_TRUE(v.leaked);
  EXPECT_NE(v.leak_where.find("memory 0x"), std::string::npos) << v.leak_where;
}

TEST(Judge, LowercaseHexOnStdoutIsALeak) {
  const Verdict v = JudgeAttack([] { WriteHex(1, "0123456789abcdef"); });
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  EXPECT_TRUE(v.memory_scanned);
  EXPECT_TRUE(v.leaked);
  EXPECT_EQ(v.leak_where, "stdout");
}

TEST(Judge, UppercaseHexOnStderrIsALeak) {
  const Verdict v = JudgeAttack([] { WriteHex(2, "0123456789ABCDEF"); });
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  EXPECT_TRUE(v.leaked);
  EXPECT_EQ(v.leak_where, "stderr");
}

TEST(Judge, EvidenceIsSearched) {
  const Verdict v = JudgeAttack([] {
    const Child c = SetUpChild();
    uint8_t* page = FreshPage();
    cordon_call(c.copy_out, reinterpret_cast<uint64_t>(page), reinterpret_cast<uint64_t>(c.secret),
                kJudgeSecretSize, 0, 0);
    Evidence(page, kJudgeSecretSize);
    explicit_bzero(page, kJudgeSecretSize);
  });
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  EXPECT_TRUE(v.leaked);
  EXPECT_EQ(v.leak_where, "evidence");
}

TEST(Judge, AChildThatDiesEarlyIsReportedUnscanned) {
  const Verdict exited = JudgeAttack([] {
    SetUpChild();
    fprintf(stderr, "going\n");
    _exit(5);
  });
  EXPECT_TRUE(exited.outcome.exited);
  EXPECT_EQ(exited.outcome.exit_code, 5);
  EXPECT_EQ(exited.outcome.err, "going\n");
  EXPECT_FALSE(exited.memory_scanned);
  EXPECT_FALSE(exited.leaked) << exited.leak_where;
  // Before the secret even arrived.
  const Verdict early = JudgeAttack([] { _exit(6); });
  EXPECT_EQ(early.outcome.exit_code, 6);
  EXPECT_FALSE(early.memory_scanned);
  // Scanned, then killed by a protection-key fault on the secret.
  const Verdict faulted = JudgeAttack([] {
    const Child c = SetUpChild();
    ExposeToJudge();
    fprintf(stderr, "read %d\n", *reinterpret_cast<const volatile uint8_t*>(c.secret));
  });
  EXPECT_EQ(faulted.outcome.signal, SIGSEGV) << faulted.outcome.err;
  EXPECT_EQ(faulted.outcome.fault_code, kSegvPkuErr);
  EXPECT_EQ(faulted.outcome.fault_pkey, 1u);
  EXPECT_TRUE(faulted.memory_scanned);
  EXPECT_FALSE(faulted.leaked) << faulted.leak_where;
  // Killed by a signal the child does not handle.
  const Verdict killed = JudgeAttack([] {
    SetUpChild();
    raise(SIGKILL);
  });
  EXPECT_FALSE(killed.outcome.exited);
  EXPECT_EQ(killed.outcome.signal, SIGKILL);
  EXPECT_FALSE(killed.memory_scanned);
}

TEST(Judge, AGrandchildHoldingTheOutputOpenDoesNotHangTheJudge) {
  const auto start = std::chrono::steady_clock::now();
  const Verdict v = JudgeAttack([] {
    const pid_t grandchild = fork();
    if (grandchild == 0) {
      sleep(1000);
      _exit(0);
    }
    printf("%d\n", grandchild);
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const pid_t grandchild = atoi(v.out.c_str());
  ASSERT_GT(grandchild, 0) << v.out;
  kill(grandchild, SIGKILL);
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err;
  EXPECT_TRUE(v.memory_scanned);
  EXPECT_LT(seconds, 30.0);
}

}  // namespace
