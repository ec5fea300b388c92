// Files closed at the lockdown (cordon_lockdown_close_file): files that hold
// a secret a domain read during set-up, such as a private key file, which no
// code in the process may open for reading once it is locked down. Without this, code
// that runs after the lockdown would simply open the file again, however
// well the domain keeps its copy of the key.
//
// Landlock only allows, so the file is closed by granting reading of
// everything else along its path (landlock.h); that closes this one path
// only. A file is
// therefore refused when another path could reach it: a second hard link, or
// a second mount of the part of its file system that holds it. At the
// lockdown each file is checked again, with no descriptor and no mapping of
// it left open, and after the rules the runtime tries to open it and must be
// refused (a faked landlock_restrict_self must not pass).
#ifndef CORDON_RUNTIME_LOCKDOWN_CLOSED_FILES_H_
#define CORDON_RUNTIME_LOCKDOWN_CLOSED_FILES_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/base/expected.h"

namespace cordon::lockdown {

struct ClosedFile {
  std::string path;  // absolute, with no symbolic link, "." or ".." in it
  dev_t dev = 0;
  ino_t ino = 0;
  // At the lockdown: this process cannot open it, and cannot change that
  // (a directory on the way, or the file, another user's and closed to it),
  // so no rule is needed, nor possible (the directory cannot be listed).
  bool by_permissions = false;
  // The file's own permissions when it was named (known: it was resolved
  // then), for a process that later cannot see it (closed_files.cc).
  bool known = false;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  bool has_acl = false;
};

// Resolves path and checks that the lockdown can close it; the Error says
// why not (with CORDON_E_INVALID_ARGUMENT, or CORDON_E_FILE_REACHABLE when
// another path reaches it). On success the file is on the list the lockdown
// closes (once, however often it is named).
Expected<void> AddClosedFile(const char* path);

// The swap files in /proc/swaps's text (type "file", and the backing file
// of a swap area on a loop device, from /sys/block/loopN/loop/backing_file),
// which the lockdown closes too: they hold swapped-out trusted pages.
std::vector<std::string> SwapFiles(const std::string& proc_swaps);

// The list, with the swap files, each file checked again: neither open in a descriptor nor
// mapped, and either closed to this process by permissions it cannot change
// (by_permissions) or still the file named, with one path, in directories
// this process can list. The Error says which and why
// (CORDON_E_FILE_REACHABLE or CORDON_E_LOCKDOWN_FAILED).
Expected<std::vector<ClosedFile>> ClosedFilesForLockdown();

// After the Landlock rules: every closed file must now be refused to this
// process (EACCES on open); the message names the first that is not.
std::string CheckFilesClosed(const std::vector<ClosedFile>& files);

// How many distinct paths reach a file at `fs_path` (its path inside its
// file system) on device `dev`, from /proc/self/mountinfo's text: one per
// mount of that device whose root is the file or a directory above it.
// Pure, for the host tests.
int MountRoutes(const std::string& mountinfo, dev_t dev, const std::string& fs_path);
// The file-system path of the absolute path `path`: the mount with id
// mount_id (statx's, or -1 for "the mount of device dev") with the longest
// mount point that holds path, its root joined with the rest of path, and
// that mount's device in *fs_dev (a btrfs subvolume's files have a device of
// their own); empty when no such mount holds it. Pure.
std::string FileSystemPath(const std::string& mountinfo, int mount_id, dev_t dev, const std::string& path,
                           dev_t* fs_dev);
// Another path to the file at `path` through an overlay, in words, or empty:
// an overlay one of whose layers holds it, or, when the file's own mount
// (mount_id) is an overlay, a layer this process can reach (reachable).
// Pure but for reachable.
std::string OverlayRoute(const std::string& mountinfo, int mount_id, const std::string& path,
                         bool (*reachable)(const std::string& dir));

}  // namespace cordon::lockdown

#endif
