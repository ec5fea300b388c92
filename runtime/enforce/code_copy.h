// Changing code that may be running: a private anonymous copy of its
// pages, patched, swapped in with one mremap (neutralization, PLT pinning
// and relocation all go through here).
#ifndef CORDON_RUNTIME_ENFORCE_CODE_COPY_H_
#define CORDON_RUNTIME_ENFORCE_CODE_COPY_H_

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace cordon::enforce {

// Reads len bytes of this process's memory at address into out, through
// /proc/self/mem, so that execute-only pages can be read too.
inline bool ReadCode(uint64_t address, size_t len, void* out) {
  const int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  if (mem < 0 && errno == EACCES) {
    // A process that changed its uid is not dumpable, and its /proc files
    // are root's: /proc/self/mem does not open (a server's worker that
    // locks down after setuid()). Its own memory still reads through
    // process_vm_readv, for readable pages. (Only before the lockdown, like
    // every caller here: after it dlopen is refused before any inspection,
    // and the filter refuses process_vm_readv.)
    iovec local{out, len}, remote{reinterpret_cast<void*>(address), len};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
  }
  if (mem < 0) return false;
  const bool ok = pread(mem, out, len, static_cast<off_t>(address)) == static_cast<ssize_t>(len);
  close(mem);
  return ok;
}

// Replaces [first, first+span) with a private anonymous copy of itself,
// changed by patch and given prot, swapped in with one mremap so that the
// code stays executable for other threads throughout.
template <typename Patch>
inline bool ReplaceWithCopy(uint64_t first, uint64_t span, int prot, Patch patch, std::string* why) {
  void* copy = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (copy == MAP_FAILED) {
    *why = std::string("mmap: ") + strerror(errno);
    return false;
  }
  const bool copied = ReadCode(first, span, copy);
  if (copied) patch(static_cast<uint8_t*>(copy));
  if (!copied || mprotect(copy, span, prot) != 0 ||
      mremap(copy, span, span, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(first)) == MAP_FAILED) {
    *why = std::string("cannot copy the pages: ") + strerror(errno);
    munmap(copy, span);
    return false;
  }
  return true;
}

}  // namespace cordon::enforce

#endif
