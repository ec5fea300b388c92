// Landlock rules that keep untrusted code from opening the files that read
// or write this process's memory behind protection keys: /proc/<pid>/mem
// (the kernel ignores pkeys on those "foreign" accesses), the memory files
// of its threads and of other processes (children hold copies of trusted
// memory), /proc/kcore, /dev/mem and friends, and /dev/userfaultfd.
//
// Landlock only allows, so the rules grant read and write access beneath
// every other entry of the directories on the way to those files.
#ifndef CORDON_RUNTIME_LOCKDOWN_LANDLOCK_H_
#define CORDON_RUNTIME_LOCKDOWN_LANDLOCK_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/base/expected.h"
#include "runtime/lockdown/closed_files.h"

namespace cordon::lockdown {

// The Landlock ABI version of the running kernel, or 0 when it has none (not
// built in, or not in the lsm= list).
int LandlockAbi();

// Whether a procfs is mounted anywhere but /proc (a path through it would
// escape the rules); the message says where.
Expected<bool> OnlyOneProcMount();

// Restricts the calling thread (and the threads it creates later). Must run
// with no_new_privs set. The error says which step failed. The closed files
// (closed_files.h) get no rule either: their path is walked like
// /proc/<pid>'s, every other entry on the way granted.
Expected<bool> RestrictMemoryFiles(pid_t pid, const std::vector<ClosedFile>& closed = {});

}  // namespace cordon::lockdown

#endif
