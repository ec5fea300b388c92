// The filter loader (filter_loader.h). Trusted code: no stdio, no malloc,
// no errno-dependent formatting; its memory is the domain's heap.
#include "runtime/lockdown/filter_loader.h"

#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cordon/cordon.h"
#include "runtime/domains/domain.h"

namespace cordon::lockdown {

uint64_t LoadFilterInside(int d, const sock_filter* program, uint64_t count) {
  // Once: a second filter could only come from untrusted code.
  if (prctl(PR_GET_SECCOMP) != 0 || count == 0 || count > BPF_MAXINSNS ||
      !domains::IsUntrustedRange(program, count * sizeof(sock_filter))) {
    return domains::EncodeStatus(CORDON_E_INVALID_ARGUMENT);
  }
  const size_t bytes = count * sizeof(sock_filter);
  const uint64_t mem = domains::HeapAllocInside(d, bytes, 16);
  if (domains::IsStatus(mem)) return mem;
  auto* copy = reinterpret_cast<sock_filter*>(mem);
  memcpy(copy, program, bytes);
  const uint64_t* token = domains::TokenOf(d);
  const uint32_t from[4] = {
      static_cast<uint32_t>(kPlaceholderToken[0]), static_cast<uint32_t>(kPlaceholderToken[0] >> 32),
      static_cast<uint32_t>(kPlaceholderToken[1]), static_cast<uint32_t>(kPlaceholderToken[1] >> 32)};
  const uint32_t to[4] = {static_cast<uint32_t>(token[0]), static_cast<uint32_t>(token[0] >> 32),
                          static_cast<uint32_t>(token[1]), static_cast<uint32_t>(token[1] >> 32)};
  int found[4] = {};
  for (uint64_t i = 0; i < count; ++i) {
    if (copy[i].code != (BPF_JMP | BPF_JEQ | BPF_K)) continue;
    for (int w = 0; w < 4; ++w) {
      if (copy[i].k == from[w]) {
        copy[i].k = to[w];
        ++found[w];
      }
    }
  }
  long rc = -EINVAL;
  if (found[0] != 0 && found[1] != 0 && found[2] != 0 && found[3] != 0) {
    sock_fprog prog{static_cast<unsigned short>(count), copy};
    rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
    if (rc != 0 && errno != 0) rc = -errno;
  }
  explicit_bzero(copy, bytes);
  (void)domains::HeapFreeInside(d, copy);
  if (rc == 0) return 0;
  return domains::EncodeStatus(rc == -EINVAL ? CORDON_E_INVALID_ARGUMENT : CORDON_E_SYSCALL);
}

}  // namespace cordon::lockdown
