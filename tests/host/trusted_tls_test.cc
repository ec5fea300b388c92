// The trusted TCB builder (runtime/domains/trusted_tls.h) on any host: the
// template read from glibc, and a TCB that glibc accepts as a thread's own
// (errno, pthread_self(), thread_local) once fs points at it, built from
// nothing in the caller's TCB.
#include "runtime/domains/trusted_tls.h"

#include <ctype.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "tests/support/fs_base.h"

namespace {

using cordon::domains::BuildTrustedTcb;
using cordon::domains::ProcessTlsTemplate;
using cordon::domains::TcbAreaBytes;
using cordon::domains::TlsTemplate;
using cordon::testing::FsBase;
using cordon::testing::SetFsBase;

thread_local int t_initialized = 31337;  // .tdata
thread_local int t_zero;                 // .tbss

// Out of line: the compiler takes &errno for a constant of the function
// (__errno_location is "const"), and would reuse the caller's across the
// fs switch.
[[gnu::noinline]] int ErrnoNow() {
  return errno;
}
[[gnu::noinline]] uint64_t ErrnoAddress() {
  return reinterpret_cast<uint64_t>(&errno);
}
[[gnu::noinline]] int CloseFails() {
  return close(-1) == -1 ? errno : 0;
}

struct Area {
  unsigned char* p = nullptr;
  size_t n = 0;
  explicit Area(size_t bytes) : n(bytes) {
    void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p = m == MAP_FAILED ? nullptr : static_cast<unsigned char*>(m);
  }
  ~Area() {
    if (p != nullptr) munmap(p, n);
  }
};

TEST(TrustedTls, TemplateDescribesThisProcess) {
  std::string why;
  const TlsTemplate* t = ProcessTlsTemplate(&why);
  ASSERT_NE(t, nullptr) << why;
  EXPECT_EQ(t->below % 4096, 0u);
  EXPECT_EQ(t->above % 4096, 0u);
  EXPECT_EQ(TcbAreaBytes(), t->below + t->above);
  EXPECT_GE(t->nmodules, 2u);  // this executable and libc at least
  // glibc's own thread id is where the template says.
  int tid;
  memcpy(&tid, reinterpret_cast<unsigned char*>(pthread_self()) + t->tid_offset, sizeof tid);
  EXPECT_EQ(tid, static_cast<int>(syscall(SYS_gettid)));
}

// Built into plain memory with the caller's TLS changed first: nothing of
// the change shows, and glibc runs on the TCB as on a thread's own.
TEST(TrustedTls, GlibcRunsOnABuiltTcbThatHoldsNothingOfTheCallers) {
  const TlsTemplate* t = ProcessTlsTemplate(nullptr);
  ASSERT_NE(t, nullptr);
  Area area(TcbAreaBytes());
  ASSERT_NE(area.p, nullptr);
  t_initialized = 1;
  t_zero = 2;
  errno = 1234;
  const uint64_t tid = static_cast<uint64_t>(syscall(SYS_gettid));
  const uint64_t canary = 0x1122334455667700ull;
  const uint64_t tp = BuildTrustedTcb(*t, area.p, static_cast<uint32_t>(tid), canary);
  ASSERT_EQ(tp, reinterpret_cast<uint64_t>(area.p) + t->below);
  ASSERT_EQ(tp % 4096, 0u);

  const uint64_t fs = FsBase();
  int seen_init = 0, seen_zero = -1, seen_errno = -1, after_close = 0;
  uint64_t self = 0, seen_canary = 0, errno_at = 0;
  SetFsBase(tp);
  // Only code that needs no lock, no allocation and no output runs here.
  seen_init = t_initialized;
  seen_zero = t_zero;
  seen_errno = ErrnoNow();
  self = reinterpret_cast<uint64_t>(pthread_self());
  __asm__ volatile("mov %%fs:0x28, %0" : "=r"(seen_canary));
  errno_at = ErrnoAddress();
  after_close = CloseFails();
  const bool ctype_ok = isdigit('5') && !isdigit('x') && toupper('b') == 'B';
  char num[16];
  snprintf(num, sizeof num, "%.1f", 2.5);
  SetFsBase(fs);
  EXPECT_TRUE(ctype_ok);
  EXPECT_STREQ(num, "2.5");
  // No word of the TCB leads to the global locale object (untrusted
  // memory); the TLS locale pointers lead into the TCB's own copy.
  size_t into_global = 0, into_copy = 0;
  for (size_t off = 0; off + 8 <= area.n; off += 8) {
    uint64_t v;
    memcpy(&v, area.p + off, 8);
    if (v >= t->locale && v < t->locale + cordon::domains::kLocaleBytes) ++into_global;
    if (v >= reinterpret_cast<uint64_t>(area.p) && v < reinterpret_cast<uint64_t>(area.p) + area.n &&
        v >= tp + t->pthread_size) {
      ++into_copy;
    }
  }
  EXPECT_EQ(into_global, 0u);
  EXPECT_GE(into_copy, 2u);  // __libc_tsd_LOCALE and at least one _nl_current_LC_*

  EXPECT_EQ(seen_init, 31337);  // the image, not the caller's value
  EXPECT_EQ(seen_zero, 0);
  EXPECT_EQ(seen_errno, 0);
  EXPECT_EQ(self, tp);
  EXPECT_EQ(seen_canary, canary);
  EXPECT_GE(errno_at, reinterpret_cast<uint64_t>(area.p));
  EXPECT_LT(errno_at, tp);
  EXPECT_EQ(after_close, EBADF);
  EXPECT_EQ(ErrnoNow(), 1234);  // the caller's untouched
  EXPECT_EQ(t_initialized, 1);
  int built_tid;
  memcpy(&built_tid, area.p + t->below + t->tid_offset, sizeof built_tid);
  EXPECT_EQ(built_tid, static_cast<int>(tid));
}

}  // namespace
