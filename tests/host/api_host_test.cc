// The C API where PKU is not needed: argument checks, calls before
// initialisation, and failing closed (on hosts with and without PKU).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "cordon/cordon.hpp"
#include "runtime/domains/domain.h"
#include "runtime/hardware/cpu.h"
#include "runtime/hardware/pkey.h"
#include "tests/support/child.h"

namespace {

using cordon::testing::RunInChild;

uint64_t Nop(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  return 0;
}

TEST(ApiBeforeInit, EverythingReportsNotInitialised) {
  void* p = nullptr;
  cordon_entry e;
  cordon_domain_t d;
  int local;
  EXPECT_EQ(cordon_is_initialized(), 0);
  EXPECT_EQ(cordon_malloc(16, &p), CORDON_E_NOT_INITIALIZED);
  EXPECT_EQ(cordon_free(&local), CORDON_E_NOT_INITIALIZED);
  EXPECT_EQ(cordon_register(cordon::domains::kTrustedDomain, Nop, "nop", &e), CORDON_E_NOT_INITIALIZED);
  EXPECT_EQ(cordon_domain_create("x", &d), CORDON_E_NOT_INITIALIZED);
  const unsigned char ret = 0xc3;
  EXPECT_EQ(cordon_code_reserve(4096, &p), CORDON_E_NOT_INITIALIZED);
  EXPECT_EQ(cordon_code_load(&ret, 1, &p), CORDON_E_NOT_INITIALIZED);
  EXPECT_EQ(cordon_code_publish(&local, &ret, 1), CORDON_E_NOT_INITIALIZED);
  EXPECT_EQ(cordon_code_release(&local), CORDON_E_NOT_INITIALIZED);
  EXPECT_EQ(cordon_lockdown(), CORDON_E_NOT_INITIALIZED);
  cordon_lockdown_options lo;
  cordon_lockdown_options_init(&lo);
  EXPECT_EQ(lo.violation, CORDON_VIOLATION_KILL);
  EXPECT_EQ(cordon_lockdown_ex(&lo), CORDON_E_NOT_INITIALIZED);
  lo.violation = 7;  // arguments are checked first, on any machine
  EXPECT_EQ(cordon_lockdown_ex(&lo), CORDON_E_INVALID_ARGUMENT);
  lo.violation = CORDON_VIOLATION_KILL;
  lo.struct_size = 0;
  EXPECT_EQ(cordon_lockdown_ex(&lo), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_current_domain(), CORDON_DOMAIN_UNTRUSTED);
  EXPECT_EQ(cordon_trusted_domain(), CORDON_DOMAIN_UNKNOWN);
  EXPECT_EQ(cordon_domain_name(cordon::domains::kTrustedDomain), nullptr);
  EXPECT_EQ(p, nullptr);
}

TEST(ApiBeforeInit, CallStopsTheProcessWithAMessage) {
  const auto o = RunInChild([] { (void)cordon_call(cordon_entry{1, 8}, 0, 0, 0, 0, 0); });
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.exit_code, CORDON_VIOLATION_EXIT);
  EXPECT_NE(o.err.find("cordon_register() did not make"), std::string::npos) << o.err;
}

TEST(ApiInit, BadOptionsAreRefusedBeforeAnythingHappens) {
  cordon_options o;
  cordon_options_init(&o);
  o.max_threads = 0;
  EXPECT_EQ(cordon_init(&o), CORDON_E_INVALID_ARGUMENT);
  cordon_options_init(&o);
  o.stack_size = 1024;
  EXPECT_EQ(cordon_init(&o), CORDON_E_INVALID_ARGUMENT);
  cordon_options_init(&o);
  o.heap_size = SIZE_MAX;
  EXPECT_EQ(cordon_init(&o), CORDON_E_INVALID_ARGUMENT);
  cordon_options_init(&o);
  o.struct_size = sizeof(cordon_options) + 8;
  EXPECT_EQ(cordon_init(&o), CORDON_E_INVALID_ARGUMENT);
  cordon_options_init(&o);
  o.code_size = (size_t{4} << 30) + 4096;
  EXPECT_EQ(cordon_init(&o), CORDON_E_INVALID_ARGUMENT);
  o.code_size = 4096;  // a block needs a page and its guard page
  EXPECT_EQ(cordon_init(&o), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_is_initialized(), 0);
}

// Fails closed on every host, for a reason this test can name: without PKU
// init refuses and says to use the VM; with PKU it inspects this program,
// whose inspector fixtures hold unintended WRPKRU/XRSTOR patterns, and
// refuses it. (A CPU and a kernel without PKU are also tested for real in
// the VM on every host: fails_closed_cpu_without_pku@*, fails_closed_kernel_nopku@*.)
// Run in a child so the outcome cannot leak into the other tests.
TEST(ApiInit, FailsClosedOnThisHost) {
  const bool pku = cordon::hw::PkeysUsable();
  const auto o = RunInChild([] {
    const int s = cordon_init(nullptr);
    fprintf(stderr, "%s|%d", cordon_strerror(s), cordon_is_initialized());
    _exit(-s);
  });
  ASSERT_TRUE(o.exited) << o.err;
  EXPECT_NE(o.err.find("|0"), std::string::npos) << "initialised after a refusal: " << o.err;
  if (!pku) {
    EXPECT_EQ(o.exit_code, -CORDON_E_NO_PKU) << o.err;
    EXPECT_NE(o.err.find("run the program under tools/cordon-vm"), std::string::npos) << o.err;
  } else if (!cordon::hw::CpuHasAvx()) {
    EXPECT_EQ(o.exit_code, -CORDON_E_NO_AVX) << o.err;
  } else {
    EXPECT_EQ(o.exit_code, -CORDON_E_UNSAFE_CODE) << o.err;
  }
}

TEST(ApiErrors, EveryStatusHasASentence) {
  for (int s = 0; s >= CORDON_E_FILE_REACHABLE; --s) {
    EXPECT_STRNE(cordon_strerror(s), "unknown Cordon status code") << s;
  }
  EXPECT_STREQ(cordon_strerror(-999), "unknown Cordon status code");
}

TEST(ApiGateSites, AreListedThroughTheCApi) {
  const size_t count =
      7u * 2u * 15u + 8u * 15u + 4u + 1u;  // as GateCode.EveryGateSiteIsAWrpkruFollowedByACheck
  ASSERT_EQ(cordon_gate_site_count(), count);
  cordon_gate_site s;
  ASSERT_EQ(cordon_gate_site_get(0, &s), CORDON_OK);
  EXPECT_EQ(memcmp(reinterpret_cast<const void*>(s.address), "\x0f\x01\xef", 3), 0);
  EXPECT_EQ(cordon_gate_site_get(count, &s), CORDON_E_INVALID_ARGUMENT);
  EXPECT_EQ(cordon_gate_site_get(0, nullptr), CORDON_E_INVALID_ARGUMENT);
}

}  // namespace

// cordon_random_bytes: raw getrandom, any length, no errno.
TEST(ApiRandom, FillsEveryByteAndLeavesErrnoAlone) {
  EXPECT_EQ(cordon_random_bytes(nullptr, 0), CORDON_OK);
  EXPECT_EQ(cordon_random_bytes(nullptr, 1), CORDON_E_INVALID_ARGUMENT);
  for (const size_t len : {size_t{1}, size_t{32}, size_t{4097}, size_t{1} << 20}) {
    std::vector<unsigned char> a(len, 0), b(len, 0);
    errno = 12345;
    ASSERT_EQ(cordon_random_bytes(a.data(), len), CORDON_OK);
    ASSERT_EQ(cordon_random_bytes(b.data(), len), CORDON_OK);
    EXPECT_EQ(errno, 12345);
    if (len >= 32) EXPECT_NE(a, b) << len;  // two draws of 32+ bytes never agree
  }
  // A buffer the kernel cannot write: an error, not a crash.
  EXPECT_EQ(cordon_random_bytes(reinterpret_cast<void*>(16), 16), CORDON_E_SYSCALL);
}
