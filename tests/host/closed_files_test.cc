// The checks behind cordon_lockdown_close_file() that need no protection
// keys (runtime/lockdown/closed_files.h): which mounts reach a file, read
// from mountinfo text, and the refusals of AddClosedFile for files the
// lockdown could not close. The lockdown's own closing is a PKU test
// (tests/pku/closed_files_test.cc).
#include "runtime/lockdown/closed_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string>

#include "cordon/cordon.h"
#include "tests/support/temp_dir.h"

namespace {

using cordon::testing::TempDir;

using cordon::lockdown::AddClosedFile;
using cordon::lockdown::FileSystemPath;
using cordon::lockdown::MountRoutes;
using cordon::lockdown::OverlayRoute;
using cordon::lockdown::SwapFiles;

// A root file system on 8:1, /home a second one (8:2), /srv/keys a bind
// mount of 8:1's /etc/ssl, and /run/one a bind mount of a single file.
const char kMounts[] =
    "21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "22 21 8:2 / /home rw,relatime shared:2 - ext4 /dev/sda2 rw\n"
    "23 21 0:5 / /proc rw - proc proc rw\n"
    "24 21 8:1 /etc/ssl /srv/keys rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "25 21 8:1 /etc/hostname /run/one rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "26 22 8:2 /alice/with\\040space /mnt/sp rw - ext4 /dev/sda2 rw\n"
    "30 21 0:40 /@var /var rw - btrfs /dev/sdb1 rw,subvol=/@var\n"
    "31 21 0:40 /@data /data rw - btrfs /dev/sdb1 rw,subvol=/@data\n"
    "40 21 0:50 / /merged rw - overlay overlay "
    "rw,lowerdir=/lower1:/srv/lower\\0542,upperdir=/up,workdir=/work\n"
    "41 21 0:51 / /new rw - overlay overlay rw,lowerdir+=/l3,datadir+=/d4,upperdir=/up2,workdir=/w2\n";

std::string FsPath(int id, dev_t dev, const std::string& path, dev_t* fs_dev = nullptr) {
  dev_t d = 0;
  std::string p = FileSystemPath(kMounts, id, dev, path, &d);
  if (fs_dev != nullptr) *fs_dev = d;
  return p;
}

TEST(ClosedFilesHost, FileSystemPathsComeFromTheLongestMountThatHoldsThePath) {
  EXPECT_EQ(FsPath(-1, makedev(8, 1), "/etc/ssl/private/k.pem"), "/etc/ssl/private/k.pem");
  EXPECT_EQ(FsPath(-1, makedev(8, 2), "/home/alice/k.pem"), "/alice/k.pem");
  EXPECT_EQ(FsPath(-1, makedev(8, 1), "/srv/keys/private/k.pem"), "/etc/ssl/private/k.pem");
  EXPECT_EQ(FsPath(-1, makedev(8, 2), "/mnt/sp/k"), "/alice/with space/k");
  // A device that holds no such path.
  EXPECT_EQ(FsPath(-1, makedev(8, 3), "/etc/k"), "");
  // "/homework" is not under "/home".
  EXPECT_EQ(FsPath(-1, makedev(8, 2), "/homework/k"), "");
  // By mount id: a btrfs subvolume's files carry a device number (here
  // 0:99) that no mountinfo line has; the mount's own device comes back.
  dev_t fs_dev = 0;
  EXPECT_EQ(FsPath(30, makedev(0, 99), "/var/k.pem", &fs_dev), "/@var/k.pem");
  EXPECT_EQ(fs_dev, makedev(0, 40));
  EXPECT_EQ(FsPath(-1, makedev(0, 99), "/var/k.pem"), "");
}

TEST(ClosedFilesHost, EveryMountThatShowsTheFileIsARoute) {
  // The root mount and the bind mount of /etc/ssl.
  EXPECT_EQ(MountRoutes(kMounts, makedev(8, 1), "/etc/ssl/private/k.pem"), 2);
  // Only the root mount shows /etc/passwd.
  EXPECT_EQ(MountRoutes(kMounts, makedev(8, 1), "/etc/passwd"), 1);
  // The single-file bind mount counts for that file.
  EXPECT_EQ(MountRoutes(kMounts, makedev(8, 1), "/etc/hostname"), 2);
  // "/etc/ssl" does not show "/etc/sslx".
  EXPECT_EQ(MountRoutes(kMounts, makedev(8, 1), "/etc/sslx/k"), 1);
  EXPECT_EQ(MountRoutes(kMounts, makedev(8, 2), "/alice/k.pem"), 1);
  EXPECT_EQ(MountRoutes(kMounts, makedev(8, 2), "/alice/with space/k"), 2);
}

void Touch(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path;
  close(fd);
}

TEST(ClosedFilesHost, BtrfsSubvolumesAreRoutesOfTheirOwn) {
  EXPECT_EQ(MountRoutes(kMounts, makedev(0, 40), "/@var/k.pem"), 1);
  EXPECT_EQ(MountRoutes(kMounts, makedev(0, 40), "/@data/k.pem"), 1);
}

bool NoneReachable(const std::string&) {
  return false;
}
bool AllReachable(const std::string&) {
  return true;
}

TEST(ClosedFilesHost, AnOverlayThatShowsTheFileIsARoute) {
  // A file in a layer of an overlay (each of its layer options).
  EXPECT_NE(OverlayRoute(kMounts, -1, "/lower1/k.pem", NoneReachable), "");
  EXPECT_NE(OverlayRoute(kMounts, -1, "/srv/lower,2/k.pem", NoneReachable), "");
  EXPECT_NE(OverlayRoute(kMounts, -1, "/up/sub/k.pem", NoneReachable), "");
  EXPECT_NE(OverlayRoute(kMounts, -1, "/l3/k.pem", NoneReachable), "");
  EXPECT_NE(OverlayRoute(kMounts, -1, "/d4/k.pem", NoneReachable), "");
  EXPECT_NE(OverlayRoute(kMounts, -1, "/up2/k.pem", NoneReachable), "");
  EXPECT_EQ(OverlayRoute(kMounts, -1, "/upx/k.pem", NoneReachable), "");
  EXPECT_EQ(OverlayRoute(kMounts, -1, "/etc/k.pem", AllReachable), "");
  // A file on the overlay: a route when a layer is reachable from here (an
  // overlay root whose layers are mounted too), none in a container whose
  // layers are the host's.
  EXPECT_NE(OverlayRoute(kMounts, 40, "/merged/k.pem", AllReachable), "");
  EXPECT_EQ(OverlayRoute(kMounts, 40, "/merged/k.pem", NoneReachable), "");
}

TEST(ClosedFilesHost, SwapFilesAreListedAndPartitionsAreNot) {
  const char swaps[] =
      "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
      "/dev/sda3                               partition\t2097148\t\t0\t\t-2\n"
      "/swapfile                               file\t\t1048572\t\t0\t\t-3\n"
      "/var/swap\\040two                       file\t\t1048572\t\t0\t\t-4\n";
  const std::vector<std::string> files = SwapFiles(swaps);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], "/swapfile");
  EXPECT_EQ(files[1], "/var/swap two");
  EXPECT_TRUE(SwapFiles("Filename Type Size Used Priority\n").empty());
}

TEST(ClosedFilesHost, FilesTheLockdownCannotCloseAreRefusedWithAReason) {
  const TempDir d("cordon-closed-host");
  ASSERT_FALSE(d.path().empty());
  const std::string f = d.path() + "/key";
  Touch(f);
  auto r = AddClosedFile(nullptr);
  EXPECT_EQ(r.status(), CORDON_E_INVALID_ARGUMENT);
  r = AddClosedFile(d.path().c_str());
  EXPECT_EQ(r.status(), CORDON_E_INVALID_ARGUMENT);
  EXPECT_NE(r.error().find("not a regular file"), std::string::npos) << r.error();
  r = AddClosedFile((d.path() + "/missing").c_str());
  EXPECT_EQ(r.status(), CORDON_E_INVALID_ARGUMENT);
  EXPECT_NE(r.error().find("No such file"), std::string::npos) << r.error();
  r = AddClosedFile("/proc/self/status");
  EXPECT_EQ(r.status(), CORDON_E_INVALID_ARGUMENT);
  EXPECT_NE(r.error().find("under /proc"), std::string::npos) << r.error();
  // A second hard link: refused, and nothing recorded.
  ASSERT_EQ(link(f.c_str(), (d.path() + "/alias").c_str()), 0);
  r = AddClosedFile(f.c_str());
  EXPECT_EQ(r.status(), CORDON_E_FILE_REACHABLE);
  EXPECT_NE(r.error().find("has 2 hard links"), std::string::npos) << r.error();
  // A symbolic link names its target, which is what gets closed.
  ASSERT_EQ(unlink((d.path() + "/alias").c_str()), 0);
  ASSERT_EQ(symlink(f.c_str(), (d.path() + "/sym").c_str()), 0);
  EXPECT_TRUE(AddClosedFile((d.path() + "/sym").c_str()).ok());
}

}  // namespace
