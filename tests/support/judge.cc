// The judge (see judge.h). Channels between the judge and its child:
//   secret   socket, judge -> child: the secret, read only by trusted code;
//   control  socket, both ways: the child's domain keys ('K'), its requests
//            to be scanned ('E'), and the judge's "scanned" replies ('D');
//   stdout, stderr, evidence: pipes, child -> judge.
// Sockets rather than pipes for what the judge writes: send(MSG_NOSIGNAL)
// gets EPIPE instead of a SIGPIPE when the child has died.
#include "tests/support/judge.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "cordon/cordon.h"

namespace cordon::testing {
namespace {

// ---- Child side ----

struct ChildChannels {
  int secret = -1;
  int control = -1;
  int evidence = -1;
};
ChildChannels g_child;

[[noreturn]] void ChildFail(const char* what) {
  fprintf(stderr, "judge: %s (errno %d: %s)\n", what, errno, strerror(errno));
  _exit(1);
}

void WriteAll(int fd, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) ChildFail("a write to the judge failed");
    b += w;
    n -= static_cast<size_t>(w);
  }
}

// Runs inside the trusted domain, through a gate: the secret goes from the
// socket into trusted memory and nowhere else. (read(2) into a page of the
// trusted key works only here, where PKRU opens that key.)
uint64_t ReadSecretInside(uint64_t dst, uint64_t fd, uint64_t n, uint64_t, uint64_t) {
  auto* p = reinterpret_cast<uint8_t*>(dst);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = read(static_cast<int>(fd), p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  close(static_cast<int>(fd));
  return got == n ? 0 : 1;
}

// The same inside another domain, into a block of its own heap that its code
// allocates; returns the block (0 on failure).
uint64_t AllocAndReadSecretInside(uint64_t fd, uint64_t n, uint64_t, uint64_t, uint64_t) {
  void* p = nullptr;
  if (cordon_domain_alloc(cordon_current_domain(), 16, n, &p) != CORDON_OK) return 0;
  return ReadSecretInside(reinterpret_cast<uint64_t>(p), fd, n, 0, 0) == 0 ? reinterpret_cast<uint64_t>(p)
                                                                           : 0;
}

// ---- Judge side ----

struct Mapping {
  uintptr_t start = 0, end = 0;
  std::string perms, name;
  int pkey = -1;
  size_t rss_kb = 0;
};

std::vector<Mapping> ReadSmaps(pid_t pid) {
  std::vector<Mapping> maps;
  FILE* f = fopen(("/proc/" + std::to_string(pid) + "/smaps").c_str(), "re");
  if (f == nullptr) return maps;
  char* line = nullptr;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    if (line[0] >= 'A' && line[0] <= 'Z') {  // a field of the current mapping
      if (maps.empty()) continue;
      unsigned long v = 0;
      if (sscanf(line, "Rss: %lu kB", &v) == 1) maps.back().rss_kb = v;
      int k = -1;
      if (sscanf(line, "ProtectionKey: %d", &k) == 1) maps.back().pkey = k;
      continue;
    }
    Mapping m;
    char perms[8] = {};
    int name_at = 0;
    unsigned long start = 0, end = 0;
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &name_at) < 3) continue;
    m.start = start;
    m.end = end;
    m.perms = perms;
    m.name = line + name_at;
    while (!m.name.empty() && (m.name.back() == '\n' || m.name.back() == ' ')) m.name.pop_back();
    if (m.name.empty()) m.name = "[anon]";
    maps.push_back(m);
  }
  free(line);
  fclose(f);
  return maps;
}

struct Patterns {
  std::vector<std::string> all;  // raw quarters, lowercase hex quarters, uppercase hex quarters
};

Patterns MakePatterns(const uint8_t* secret) {
  Patterns p;
  char lower[2 * kJudgeSecretSize + 1], upper[2 * kJudgeSecretSize + 1];
  for (size_t i = 0; i < kJudgeSecretSize; ++i) {
    snprintf(lower + 2 * i, 3, "%02x", secret[i]);
    snprintf(upper + 2 * i, 3, "%02X", secret[i]);
  }
  constexpr size_t q = kJudgeSecretSize / 4;
  for (size_t i = 0; i < 4; ++i) {
    p.all.emplace_back(reinterpret_cast<const char*>(secret) + i * q, q);
    p.all.emplace_back(lower + 2 * i * q, 2 * q);
    p.all.emplace_back(upper + 2 * i * q, 2 * q);
  }
  explicit_bzero(lower, sizeof lower);
  explicit_bzero(upper, sizeof upper);
  return p;
}

// The offset of the first pattern found in [p, p+n), or -1.
long Find(const Patterns& pats, const void* p, size_t n) {
  long best = -1;
  for (const std::string& s : pats.all) {
    const void* hit = memmem(p, n, s.data(), s.size());
    if (hit == nullptr) continue;
    const long at = static_cast<const char*>(hit) - static_cast<const char*>(p);
    if (best < 0 || at < best) best = at;
  }
  return best;
}

// Reads [addr, addr+len) of the child; pages that cannot be read are
// zero-filled (page by page after a failed chunk).
void ReadMem(int mem, uintptr_t addr, size_t len, std::vector<uint8_t>* buf) {
  buf->assign(len, 0);
  const ssize_t r = pread(mem, buf->data(), len, static_cast<off_t>(addr));
  if (r == static_cast<ssize_t>(len)) return;
  for (size_t off = 0; off < len; off += 4096) {
    if (pread(mem, buf->data() + off, 4096, static_cast<off_t>(addr + off)) != 4096) {
      memset(buf->data() + off, 0, 4096);
    }
  }
}

class Judge {
 public:
  Verdict verdict;

  void Scan(pid_t pid, const Patterns& pats, const std::set<int>& trusted_keys) {
    const std::string dir = "/proc/" + std::to_string(pid);
    const int mem = open((dir + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
    if (mem < 0) {
      fprintf(stderr, "judge: cannot open %s/mem: %s\n", dir.c_str(), strerror(errno));
      return;
    }
    const int pagemap = open((dir + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
    const std::vector<Mapping> maps = ReadSmaps(pid);
    bool ok = !maps.empty();
    std::vector<uint64_t> entries;
    std::vector<uint8_t> buf;
    for (const Mapping& m : maps) {
      // Resident mappings, readable or not: /proc/<pid>/mem reads PROT_NONE
      // and execute-only pages too, and an attacker could park a copy there.
      if (m.perms.empty() || m.rss_kb == 0) continue;
      if (m.name == "[vvar]" || m.name == "[vvar_vclock]" || m.name == "[vsyscall]") continue;
      if (trusted_keys.count(m.pkey) != 0) continue;
      const size_t pages = (m.end - m.start) / 4096;
      // Only the pages that are present: reading untouched anonymous memory
      // is slow under the emulator, and it holds zeros.
      entries.assign(pages, ~uint64_t{0});
      if (pagemap >= 0) {
        const ssize_t want = static_cast<ssize_t>(pages * sizeof(uint64_t));
        if (pread(pagemap, entries.data(), static_cast<size_t>(want),
                  static_cast<off_t>(m.start / 4096 * sizeof(uint64_t))) != want) {
          entries.assign(pages, ~uint64_t{0});
        }
      }
      for (size_t i = 0; i < pages;) {
        if ((entries[i] & (uint64_t{3} << 62)) == 0) {  // neither present nor swapped
          ++i;
          continue;
        }
        size_t j = i;
        while (j < pages && (entries[j] & (uint64_t{3} << 62)) != 0 && j - i < 4096) ++j;
        // A run of present pages, read with an overlap of one pattern into
        // the next run so that nothing straddles a cut unseen.
        const uintptr_t a = m.start + i * 4096;
        size_t len = (j - i) * 4096;
        if (j < pages && (entries[j] & (uint64_t{3} << 62)) != 0) len += 64;
        ReadMem(mem, a, len, &buf);
        const long at = Find(pats, buf.data(), buf.size());
        if (at >= 0) {
          char where[256];
          snprintf(where, sizeof where, "memory %#" PRIxPTR "-%#" PRIxPTR " %s at %#" PRIxPTR, m.start, m.end,
                   m.name.c_str(), a + static_cast<uintptr_t>(at));
          Add(where);
          break;  // one report per mapping
        }
        i = j;
      }
    }
    if (pagemap >= 0) close(pagemap);
    close(mem);
    if (ok) verdict.memory_scanned = true;
  }

  void Add(const std::string& where) {
    verdict.leaked = true;
    if (!verdict.leak_where.empty()) verdict.leak_where += "; ";
    verdict.leak_where += where;
  }
};

bool ReadSome(int fd, std::string* into) {
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    into->append(buf, static_cast<size_t>(n));
    return true;
  }
}

// Tells the judge the keys of every domain that exists now, before any
// attack runs: the physical domains' and, once virtual domains exist, the
// keys their pages carry (a slot key or the parking key) and the parking key.
void ReportDomainKeys() {
  std::set<int> keys;
  for (cordon_domain_t d = 1; d < 16; ++d) {
    const int key = cordon_domain_pkey(d);
    if (key > 0) keys.insert(key);
  }
  if (cordon_parking_pkey() > 0) keys.insert(cordon_parking_pkey());
  for (cordon_domain_t d = 16; cordon_domain_name(d) != nullptr; ++d) {
    const int key = cordon_domain_pkey(d);
    if (key > 0) keys.insert(key);
  }
  uint8_t msg[2 + 16] = {'K', 0};
  for (const int key : keys) msg[2 + msg[1]++] = static_cast<uint8_t>(key);
  WriteAll(g_child.control, msg, 2 + msg[1]);
}

}  // namespace

const uint8_t* LoadJudgeSecret() {
  if (g_child.secret < 0) ChildFail("LoadJudgeSecret() outside JudgeAttack, or twice");
  void* p = nullptr;
  if (cordon_malloc(kJudgeSecretSize, &p) != CORDON_OK) ChildFail("cordon_malloc for the secret failed");
  if (cordon_domain_of(p) != cordon_trusted_domain()) ChildFail("the secret's buffer is not trusted memory");
  cordon_entry read_secret;
  if (cordon_register(cordon_trusted_domain(), ReadSecretInside, "judge_read_secret", &read_secret) !=
      CORDON_OK) {
    ChildFail("cordon_register for the secret failed");
  }
  const uint64_t r = cordon_call(read_secret, reinterpret_cast<uint64_t>(p),
                                 static_cast<uint64_t>(g_child.secret), kJudgeSecretSize, 0, 0);
  g_child.secret = -1;  // closed by the trusted code
  if (r != 0) ChildFail("the secret did not arrive");
  ReportDomainKeys();
  return static_cast<const uint8_t*>(p);
}

const uint8_t* LoadJudgeSecretInto(cordon_domain_t domain) {
  if (g_child.secret < 0) ChildFail("LoadJudgeSecretInto() outside JudgeAttack, or twice");
  cordon_entry read_secret;
  if (cordon_register(domain, AllocAndReadSecretInside, "judge_read_secret_into", &read_secret) !=
      CORDON_OK) {
    ChildFail("cordon_register for the secret failed");
  }
  const uint64_t p =
      cordon_call(read_secret, static_cast<uint64_t>(g_child.secret), kJudgeSecretSize, 0, 0, 0);
  g_child.secret = -1;  // closed by the domain's code
  if (p == 0) ChildFail("the secret did not arrive");
  if (cordon_domain_of(reinterpret_cast<const void*>(p)) != domain) {
    ChildFail("the secret's buffer is not the domain's memory");
  }
  ReportDomainKeys();
  return reinterpret_cast<const uint8_t*>(p);
}

void Evidence(const void* p, size_t n) {
  if (g_child.evidence < 0) ChildFail("Evidence() outside JudgeAttack");
  WriteAll(g_child.evidence, p, n);
}

void ExposeToJudge() {
  if (g_child.control < 0) ChildFail("ExposeToJudge() outside JudgeAttack");
  fflush(nullptr);
  WriteAll(g_child.control, "E", 1);
  char reply = 0;
  for (;;) {
    const ssize_t r = read(g_child.control, &reply, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r != 1 || reply != 'D') ChildFail("the judge did not answer");
    return;
  }
}

Verdict JudgeAttack(const std::function<void()>& attack) {
  int out[2], err[2], ev[2], secret[2], control[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(ev, O_CLOEXEC) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, secret) != 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
    abort();
  }
  ReportingChild child;
  const pid_t pid = child.Fork(
      [&] {
        for (const int fd : {out[0], err[0], ev[0], secret[0], control[0]}) close(fd);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[1]);
        close(err[1]);
        g_child = {secret[1], control[1], ev[1]};
      },
      [&] {
        attack();
        ExposeToJudge();
      });
  for (const int fd : {out[1], err[1], ev[1], secret[1], control[1]}) close(fd);

  // The secret exists from here on, in this process only.
  uint8_t s[kJudgeSecretSize];
  for (size_t got = 0; got < sizeof s;) {
    const ssize_t r = getrandom(s + got, sizeof s - got, 0);
    if (r > 0)
      got += static_cast<size_t>(r);
    else if (errno != EINTR)
      abort();
  }
  // A child that died already makes this fail with EPIPE; nothing to do then.
  (void)send(secret[0], s, sizeof s, MSG_NOSIGNAL);
  close(secret[0]);
  const Patterns pats = MakePatterns(s);
  explicit_bzero(s, sizeof s);

  Judge judge;
  Verdict& v = judge.verdict;
  std::string evidence, control_in;
  std::set<int> trusted_keys;
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  pollfd fds[5] = {{out[0], POLLIN, 0},
                   {err[0], POLLIN, 0},
                   {ev[0], POLLIN, 0},
                   {control[0], POLLIN, 0},
                   {pidfd, POLLIN, 0}};
  std::string* sinks[3] = {&v.out, &v.outcome.err, &evidence};
  bool dead = false;
  for (;;) {
    const bool open_pipes = fds[0].fd >= 0 || fds[1].fd >= 0 || fds[2].fd >= 0 || fds[3].fd >= 0;
    if (!open_pipes) break;
    // Once the child is dead, what it wrote is in the pipes: drain them, but
    // do not wait for a grandchild that still holds them open.
    const int n = poll(fds, 5, dead ? 2000 : (pidfd < 0 ? 100 : -1));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && dead) break;
    for (int i = 0; i < 3; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        if (!ReadSome(fds[i].fd, sinks[i])) fds[i].fd = -1;
      }
    }
    if (fds[3].fd >= 0 && (fds[3].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      if (!ReadSome(fds[3].fd, &control_in)) fds[3].fd = -1;
      // Parse whole messages: "K" count keys..., "E".
      size_t at = 0;
      while (at < control_in.size()) {
        const char type = control_in[at];
        if (type == 'K') {
          if (at + 2 > control_in.size()) break;
          const size_t count = static_cast<uint8_t>(control_in[at + 1]);
          if (at + 2 + count > control_in.size()) break;
          // Only the first report counts: it comes before any attack runs.
          if (trusted_keys.empty()) {
            for (size_t k = 0; k < count; ++k)
              trusted_keys.insert(static_cast<uint8_t>(control_in[at + 2 + k]));
          }
          at += 2 + count;
        } else if (type == 'E') {
          judge.Scan(pid, pats, trusted_keys);
          (void)send(control[0], "D", 1, MSG_NOSIGNAL);
          ++at;
        } else {
          v.outcome.err += "\njudge: garbage on the control channel\n";
          at = control_in.size();
        }
      }
      control_in.erase(0, at);
    }
    if (pidfd >= 0 && (fds[4].revents & POLLIN) != 0) {
      dead = true;
      fds[4].fd = -1;
    }
    if (pidfd < 0 && !dead) {
      // No pidfd (an old kernel): look at the child's status, leaving it to Reap.
      siginfo_t info = {};
      dead = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
             info.si_pid == pid;
    }
  }
  for (const int fd : {out[0], err[0], ev[0], control[0], pidfd}) {
    if (fd >= 0) close(fd);
  }
  child.Reap(&v.outcome);
  if (Find(pats, v.out.data(), v.out.size()) >= 0) judge.Add("stdout");
  if (Find(pats, v.outcome.err.data(), v.outcome.err.size()) >= 0) judge.Add("stderr");
  if (Find(pats, evidence.data(), evidence.size()) >= 0) judge.Add("evidence");
  if (Find(pats, v.outcome.audit.data(), v.outcome.audit.size()) >= 0) judge.Add("the audit stream");
  return v;
}

void LockDownForAttack(int violation) {
  ReportFaultsOnTheCurrentStack();
  cordon_lockdown_options o;
  cordon_lockdown_options_init(&o);
  o.violation = violation;
  const int s = cordon_lockdown_ex(&o);
  if (s != CORDON_OK) fprintf(stderr, "lockdown: %s\n", cordon_strerror(s));
  CHILD_CHECK(s == CORDON_OK);
}

void ExpectNotLeaked(const Verdict& v) {
  EXPECT_TRUE(v.memory_scanned) << v.outcome.err;
  EXPECT_FALSE(v.leaked) << v.leak_where;
}

void ExpectHeldToTheEnd(const Verdict& v) {
  EXPECT_TRUE(v.outcome.exited) << "signal " << v.outcome.signal << "\n" << v.outcome.err << v.out;
  EXPECT_EQ(v.outcome.exit_code, 0) << v.outcome.err << v.out;
  ExpectNotLeaked(v);
}

namespace {
uint64_t WriteInside(uint64_t fd, uint64_t src, uint64_t n, uint64_t, uint64_t) {
  return static_cast<uint64_t>(write(static_cast<int>(fd), reinterpret_cast<const void*>(src), n));
}
}  // namespace

void WriteSecretToFile(const uint8_t* secret, const std::string& path) {
  cordon_entry write_inside;
  if (cordon_register(cordon_trusted_domain(), WriteInside, "write_inside", &write_inside) != CORDON_OK)
    ChildFail("cannot register the trusted writer");
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) ChildFail(("cannot create " + path + ": " + strerror(errno)).c_str());
  if (cordon_call(write_inside, static_cast<uint64_t>(fd), reinterpret_cast<uint64_t>(secret),
                  kJudgeSecretSize, 0, 0) != kJudgeSecretSize ||
      close(fd) != 0)
    ChildFail(("cannot write the secret to " + path).c_str());
}

void ExposeWhatOpened(int fd, const std::string& how) {
  char buf[256] = {};
  const ssize_t n = pread(fd, buf, sizeof buf, 0);
  Evidence(buf, sizeof buf);
  fprintf(stderr, "read %zd bytes of the closed file through %s\n", n, how.c_str());
  ExposeToJudge();
  _exit(2);
}

}  // namespace cordon::testing
