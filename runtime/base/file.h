// Files and mappings owned by RAII: an Fd closes its descriptor, a Mapping
// unmaps its pages. Both move and neither copies, so each is released once.
#ifndef CORDON_RUNTIME_BASE_FILE_H_
#define CORDON_RUNTIME_BASE_FILE_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace cordon {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  bool ok() const { return fd_ >= 0; }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

class Mapping {
 public:
  Mapping() = default;
  // Maps the first length bytes of fd read-only and private; ok() is false
  // (and errno says why) if mmap fails. Why not for length 0: mmap refuses
  // an empty mapping (EINVAL), so callers handle empty files themselves.
  static Mapping ReadOnly(int fd, size_t length) {
    void* p = mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd, 0);
    return p == MAP_FAILED ? Mapping() : Mapping(p, length);
  }
  ~Mapping() { reset(); }
  Mapping(Mapping&& other) noexcept
      : addr_(std::exchange(other.addr_, nullptr)), length_(std::exchange(other.length_, 0)) {}
  Mapping& operator=(Mapping&& other) noexcept {
    if (this != &other) {
      reset();
      addr_ = std::exchange(other.addr_, nullptr);
      length_ = std::exchange(other.length_, 0);
    }
    return *this;
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  bool ok() const { return addr_ != nullptr; }
  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }
  size_t size() const { return length_; }
  void reset() {
    if (addr_ != nullptr) munmap(addr_, length_);
    addr_ = nullptr;
    length_ = 0;
  }

 private:
  Mapping(void* addr, size_t length) : addr_(addr), length_(length) {}
  void* addr_ = nullptr;
  size_t length_ = 0;
};

// The whole text of a small file (a /proc or /sys one), or "" if it cannot
// be opened.
inline std::string ReadWholeFile(const std::string& path) {
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) return "";
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  fclose(f);
  return s;
}

}  // namespace cordon

#endif
