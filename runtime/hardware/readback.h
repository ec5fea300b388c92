// Reading back what the kernel did with the runtime's memory, instead of
// trusting system call results: a seccomp filter installed before
// cordon_init() can make pkey_alloc, pkey_mprotect, mprotect or madvise
// report success while doing nothing (SECCOMP_RET_ERRNO with 0, or a
// supervisor's answer), which would leave "trusted" memory on key 0.
#ifndef CORDON_RUNTIME_HARDWARE_READBACK_H_
#define CORDON_RUNTIME_HARDWARE_READBACK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/base/expected.h"
#include "runtime/hardware/smaps.h"

namespace cordon::hw {

// Why [start, end) is not protected by key as the runtime set it up: it
// must begin with read-write pages, and every writable page must carry the
// key and be excluded from core dumps (MADV_DONTDUMP). Empty when it is.
std::string CheckKeyed(uint64_t start, uint64_t end, int key, const char* what);
// The same against mappings read before (MappingsIn): one read of smaps
// for several checks, since each read costs about a millisecond.
std::string CheckKeyed(const std::vector<MappingInfo>& maps, uint64_t start, uint64_t end, int key,
                       const char* what);

// Why a key that pkey_alloc returned cannot be a domain's; empty if it can.
std::string CheckAllocatedKey(int key);

// The refusal when the protection keys are not what the system calls
// reported (naming a seccomp filter installed before, if /proc/self/status
// shows one), with CORDON_E_SYSCALL.
Error Unprotected(const std::string& what);

}  // namespace cordon::hw

#endif
