// Protection-key hardware layer: capability checks, PKRU access and the raw
// pkey system calls. Nothing here writes PKRU: the only WRPKRU instructions
// in the runtime are the audited ones in runtime/gates/gate.S.
#ifndef CORDON_RUNTIME_HARDWARE_PKEY_H_
#define CORDON_RUNTIME_HARDWARE_PKEY_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

namespace cordon::hw {

// No key; also what pkey_alloc's callers must handle as "none left".
inline constexpr int kNoKey = -1;
inline constexpr int kDefaultKey = 0;
inline constexpr int kMaxKeys = 16;

// Rights a PKRU field can express, equal to the kernel's PKEY_DISABLE_*.
enum class Permission : uint32_t {
  kReadWrite = 0,
  kNoAccess = 1,  // PKEY_DISABLE_ACCESS
  kReadOnly = 2,  // PKEY_DISABLE_WRITE
};
#ifdef PKEY_DISABLE_ACCESS
static_assert(static_cast<uint32_t>(Permission::kNoAccess) == PKEY_DISABLE_ACCESS);
static_assert(static_cast<uint32_t>(Permission::kReadOnly) == PKEY_DISABLE_WRITE);
#endif

// PKRU at execve and in signal handlers: key 0 open, every other key
// access-disabled (the kernel's init_pkru_value).
inline constexpr uint32_t kDefaultPkru = 0x55555554u;

// Returns pkru with key's two bits set to perm.
constexpr uint32_t WithPermission(uint32_t pkru, int key, Permission perm) {
  const uint32_t shift = 2u * static_cast<uint32_t>(key);
  return (pkru & ~(3u << shift)) | (static_cast<uint32_t>(perm) << shift);
}
constexpr Permission PermissionOf(uint32_t pkru, int key) {
  return static_cast<Permission>((pkru >> (2u * static_cast<uint32_t>(key))) & 3u);
}

// Cheap check: CPUID says the CPU has PKU and the OS enabled it (OSPKE).
bool CpuHasPku();
// Expensive check: the kernel hands out a key (allocates and frees one).
bool KernelHasPkeys();
// The key pkey_alloc returned (freed again if it is one of 1-15), or -errno.
int ProbePkeyAlloc();
// Both; what initialisation uses.
bool PkeysUsable();

// RDPKRU. Only valid when CpuHasPku().
inline uint32_t ReadPkru() {
  uint32_t eax, edx;
  asm volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
  return eax;
}

// Raw system calls: return the result, or -errno. Never ignore them.
[[nodiscard]] int SysPkeyAlloc(unsigned flags, unsigned access_rights);
[[nodiscard]] int SysPkeyFree(int key);
[[nodiscard]] int SysPkeyMprotect(void* addr, size_t len, int prot, int key);
// Any system call of up to three arguments through the instruction itself:
// no errno, no TLS, no glibc cancellation point, so trusted code may make it
// whatever the calling thread's control block says (docs/threat-model.md).
[[nodiscard]] long RawSyscall3(long nr, long a0, long a1, long a2);

// A system call of at most four arguments with the runtime's token in r8
// and r9, which the kernel ignores for such calls and the lockdown's filter
// checks (docs/lockdown.md). Returns the raw result (-errno on failure).
// Only trusted code holds the token; it must not call this from untrusted
// code, where the registers would show it.
[[nodiscard]] long SysWithToken(long nr, long a0, long a1, long a2, long a3, const uint64_t token[2]);
[[nodiscard]] int SysPkeyMprotectWithToken(void* addr, size_t len, int prot, int key,
                                           const uint64_t token[2]);

}  // namespace cordon::hw

#endif
