// A stand-in for tests/support/judge.h (the judge API of the common brief),
// used only while that header has not been merged: lockdown_root_test.cc
// includes the real one when it exists. Same API and the same rules: the
// secret is random, drawn by the judge (the parent) and read by trusted
// code straight into trusted memory; the judge scans the child's stdout,
// stderr, evidence, and its untrusted memory (every readable mapping whose
// protection key is 0) for the secret's raw bytes or its hex.
#ifndef CORDON_TESTS_PKU_JUDGE_STANDIN_H_
#define CORDON_TESTS_PKU_JUDGE_STANDIN_H_

#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

#include "cordon/cordon.h"
#include "tests/support/child.h"

namespace cordon::testing {

inline constexpr size_t kJudgeSecretSize = 32;

struct Verdict {
  ChildOutcome outcome;
  std::string out;
  bool leaked = false;
  std::string leak_where;
  bool memory_scanned = false;
};

namespace judge_detail {
struct ChildSide {
  int secret_fd = -1, evidence_fd = -1, expose_fd = -1, ack_fd = -1;
};
inline ChildSide& Child() {
  static ChildSide c;
  return c;
}
inline uint64_t ReadSecretInside(uint64_t fd, uint64_t dst, uint64_t, uint64_t, uint64_t) {
  size_t got = 0;
  while (got < kJudgeSecretSize) {
    const ssize_t n =
        read(static_cast<int>(fd), reinterpret_cast<uint8_t*>(dst) + got, kJudgeSecretSize - got);
    if (n <= 0) return 1;
    got += static_cast<size_t>(n);
  }
  return 0;
}
inline std::string Hex(const uint8_t* p, size_t n, bool upper) {
  std::string s;
  char b[3];
  for (size_t i = 0; i < n; ++i) {
    snprintf(b, sizeof b, upper ? "%02X" : "%02x", p[i]);
    s += b;
  }
  return s;
}
inline bool Contains(const std::string& hay, const uint8_t* secret) {
  if (memmem(hay.data(), hay.size(), secret, kJudgeSecretSize) != nullptr) return true;
  for (bool upper : {false, true}) {
    if (hay.find(Hex(secret, kJudgeSecretSize, upper)) != std::string::npos) return true;
  }
  return false;
}
inline void WriteAll(int fd, const void* p, size_t n) {
  const auto* c = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t w = write(fd, c, n);
    if (w <= 0) return;
    c += w;
    n -= static_cast<size_t>(w);
  }
}
// Scans the child's key-0 readable mappings; returns where the secret is.
inline std::string ScanMemory(pid_t pid, const uint8_t* secret) {
  FILE* f = fopen(("/proc/" + std::to_string(pid) + "/smaps").c_str(), "re");
  if (f == nullptr) return "";
  const int mem = open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  std::string found;
  char line[512];
  uint64_t start = 0, end = 0;
  char perms[8] = "";
  std::string name;
  const auto scan = [&] {
    if (mem < 0 || perms[0] != 'r' || name.find("[vvar") != std::string::npos ||
        name.find("[vsyscall]") != std::string::npos || !found.empty()) {
      return;
    }
    std::string bytes(end - start, '\0');
    const ssize_t n = pread(mem, bytes.data(), bytes.size(), static_cast<off_t>(start));
    if (n <= 0) return;
    bytes.resize(static_cast<size_t>(n));
    if (Contains(bytes, secret)) {
      char where[96];
      snprintf(where, sizeof where, "memory %#" PRIx64 "-%#" PRIx64 " ", start, end);
      found = where + name;
    }
  };
  while (fgets(line, sizeof line, f) != nullptr) {
    uint64_t s, e;
    char p[8];
    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &s, &e, p) == 3 &&
        strchr(line, '-') < strchr(line, ' ')) {
      start = s;
      end = e;
      memcpy(perms, p, sizeof perms);
      const char* slash = strchr(line, '/');
      const char* bracket = strchr(line, '[');
      name = slash != nullptr ? slash : bracket != nullptr ? bracket : "";
      if (!name.empty() && name.back() == '\n') name.pop_back();
      continue;
    }
    int key;
    if (sscanf(line, "ProtectionKey: %d", &key) == 1 && key == 0) scan();
  }
  fclose(f);
  if (mem >= 0) close(mem);
  return found;
}
}  // namespace judge_detail

inline const uint8_t* LoadJudgeSecret() {
  auto& c = judge_detail::Child();
  void* p = nullptr;
  CHILD_CHECK(cordon_malloc(kJudgeSecretSize, &p) == CORDON_OK);
  cordon_entry read_secret;
  CHILD_CHECK(cordon_register(cordon_trusted_domain(), judge_detail::ReadSecretInside, "judge_read_secret",
                              &read_secret) == CORDON_OK);
  CHILD_CHECK(cordon_call(read_secret, static_cast<uint64_t>(c.secret_fd), reinterpret_cast<uint64_t>(p), 0,
                          0, 0) == 0);
  close(c.secret_fd);
  c.secret_fd = -1;
  return static_cast<const uint8_t*>(p);
}

inline void Evidence(const void* p, size_t n) {
  const uint64_t len = n;
  judge_detail::WriteAll(judge_detail::Child().evidence_fd, &len, sizeof len);
  judge_detail::WriteAll(judge_detail::Child().evidence_fd, p, n);
}

inline void ExposeToJudge() {
  auto& c = judge_detail::Child();
  const char e = 'E';
  judge_detail::WriteAll(c.expose_fd, &e, 1);
  char ack;
  (void)!read(c.ack_fd, &ack, 1);
}

inline Verdict JudgeAttack(const std::function<void()>& attack) {
  int sp[2], ev[2], ex[2], ack[2], out[2], err[2];
  for (int* p : {sp, ev, ex, ack, out, err}) {
    if (pipe2(p, O_CLOEXEC) != 0) abort();
  }
  fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int fd : {sp[1], ev[0], ex[0], ack[1], out[0], out[1], err[0], err[1]}) close(fd);
    judge_detail::Child() = {sp[0], ev[1], ex[1], ack[0]};
    attack();
    fflush(nullptr);
    ExposeToJudge();
    _exit(0);
  }
  for (int fd : {sp[0], ev[1], ex[1], ack[0], out[1], err[1]}) close(fd);
  // Drawn after the fork: the child's copy of this process holds no trace.
  uint8_t secret[kJudgeSecretSize];
  if (getrandom(secret, sizeof secret, 0) != static_cast<ssize_t>(sizeof secret)) abort();
  judge_detail::WriteAll(sp[1], secret, sizeof secret);
  close(sp[1]);
  Verdict v;
  std::string evidence;
  pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {ev[0], POLLIN, 0}};
  pollfd exp{ex[0], POLLIN, 0};
  bool open[4] = {true, true, true, true};
  while (open[0] || open[1] || open[2] || open[3]) {
    pollfd all[4] = {fds[0], fds[1], fds[2], exp};
    for (int i = 0; i < 4; ++i) {
      if (!open[i]) all[i].fd = -1;
    }
    if (poll(all, 4, -1) < 0) continue;
    char buf[65536];
    for (int i = 0; i < 3; ++i) {
      if (open[i] && (all[i].revents & (POLLIN | POLLHUP)) != 0) {
        const ssize_t n = read(all[i].fd, buf, sizeof buf);
        if (n <= 0) {
          open[i] = false;
          continue;
        }
        (i == 0 ? v.out : i == 1 ? v.outcome.err : evidence).append(buf, static_cast<size_t>(n));
      }
    }
    if (open[3] && (all[3].revents & (POLLIN | POLLHUP)) != 0) {
      char e;
      if (read(ex[0], &e, 1) <= 0) {
        open[3] = false;
        continue;
      }
      const std::string where = judge_detail::ScanMemory(pid, secret);
      v.memory_scanned = true;
      if (!where.empty() && !v.leaked) {
        v.leaked = true;
        v.leak_where = where;
      }
      judge_detail::WriteAll(ack[1], "A", 1);
    }
  }
  for (int fd : {sp[1], ev[0], ex[0], ack[1], out[0], err[0]}) close(fd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) {
    v.outcome.exited = true;
    v.outcome.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    v.outcome.signal = WTERMSIG(status);
  }
  const std::pair<const std::string*, const char*> places[] = {
      {&v.out, "stdout"}, {&v.outcome.err, "stderr"}, {&evidence, "evidence"}};
  for (const auto& [text, name] : places) {
    if (!v.leaked && judge_detail::Contains(*text, secret)) {
      v.leaked = true;
      v.leak_where = name;
    }
  }
  return v;
}

}  // namespace cordon::testing

#endif
