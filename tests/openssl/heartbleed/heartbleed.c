/* libheartbleed.so: a planted memory-disclosure bug for an unmodified
 * program that reads TLS records with SSL_read (`openssl s_server`), loaded
 * with LD_PRELOAD. It stands for Heartbleed (CVE-2014-0160), but reads far
 * more: when a record starts with "HEARTBLEED", it copies EVERY byte of
 * memory the calling thread can read, as the server's own code could, to
 * the file named by $HEARTBLEED_DUMP.
 *
 * How: for each readable mapping of /proc/self/maps, write(2) its pages one
 * at a time from the mapping itself to the dump. The kernel's copy from user
 * memory honours the thread's PKRU, so a page under a protection key this
 * thread may not read fails with EFAULT and nothing of it is written: no
 * signal handler is needed. [vvar] and [vsyscall] are skipped (the first
 * faults on its time-namespace page, the second has no readable pages on
 * modern kernels).
 *
 * Beside the dump, $HEARTBLEED_DUMP.index gets one line per run of dumped
 * pages: "DUMP_OFFSET START-END PERMS NAME", so a finder can say where
 * each byte came from. The summary "heartbleed: dumped N pages (B bytes),
 * M refused" goes to stderr and, as the record's reply, to the client
 * (SSL_write). The record itself is then passed on as read. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct ssl_st SSL;
typedef int (*ssl_read_fn)(SSL*, void*, int);
typedef int (*ssl_write_fn)(SSL*, const void*, int);

static ssl_read_fn real_ssl_read;
static ssl_write_fn real_ssl_write;

static const char kTrigger[] = "HEARTBLEED";

/* Resolved once, at load: the libraries SSL_read lives in are all loaded by
 * then (LD_PRELOAD objects initialize after the program's dependencies are
 * mapped). */
__attribute__((constructor)) static void Resolve(void) {
  real_ssl_read = (ssl_read_fn)dlsym(RTLD_NEXT, "SSL_read");
  real_ssl_write = (ssl_write_fn)dlsym(RTLD_NEXT, "SSL_write");
  if (real_ssl_read == NULL || real_ssl_write == NULL) {
    fprintf(stderr, "heartbleed: SSL_read or SSL_write not found (%s)\n", dlerror());
  }
}

struct Totals {
  unsigned long dumped, refused;
  unsigned long long bytes;
};

/* One mapping, page by page. A page is either written whole or refused
 * (EFAULT: the thread's PKRU denies it, or it is not readable at all). */
static void DumpMapping(int dump, FILE* index, uintptr_t start, uintptr_t end, const char* perms,
                        const char* name, struct Totals* t) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t run_start = 0;
  unsigned long long run_offset = 0;
  for (uintptr_t a = start; a < end; a += page) {
    ssize_t w;
    do {
      w = write(dump, (const void*)a, page);
    } while (w < 0 && errno == EINTR);
    if (w == (ssize_t)page) {
      if (run_start == 0) {
        run_start = a;
        run_offset = t->bytes;
      }
      t->dumped++;
      t->bytes += page;
      continue;
    }
    if (w > 0) { /* a short write (a full disk): keep the dump's pages whole */
      if (ftruncate(dump, (off_t)t->bytes) != 0 || lseek(dump, (off_t)t->bytes, SEEK_SET) < 0)
        t->bytes += (size_t)w;
    }
    t->refused++;
    if (run_start != 0) {
      fprintf(index, "%llu %lx-%lx %s %s\n", run_offset, (unsigned long)run_start, (unsigned long)a, perms,
              name);
      run_start = 0;
    }
  }
  if (run_start != 0) {
    fprintf(index, "%llu %lx-%lx %s %s\n", run_offset, (unsigned long)run_start, (unsigned long)end, perms,
            name);
  }
}

/* Returns the summary line in `out`. */
static void Bleed(char* out, size_t out_len) {
  const char* path = getenv("HEARTBLEED_DUMP");
  if (path == NULL || path[0] == '\0') {
    snprintf(out, out_len, "heartbleed: HEARTBLEED_DUMP is not set\n");
    return;
  }
  char index_path[4096];
  snprintf(index_path, sizeof index_path, "%s.index", path);
  const int dump = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FILE* index = fopen(index_path, "we");
  FILE* maps = fopen("/proc/self/maps", "re");
  if (dump < 0 || index == NULL || maps == NULL) {
    snprintf(out, out_len, "heartbleed: cannot open %s (%s)\n",
             dump < 0        ? path
             : index == NULL ? index_path
                             : "/proc/self/maps",
             strerror(errno));
    if (dump >= 0) close(dump);
    if (index != NULL) fclose(index);
    if (maps != NULL) fclose(maps);
    return;
  }
  /* Read the whole map first: dumping allocates (stdio), which may change
   * it, and a mapping that appears meanwhile holds nothing older. */
  size_t cap = 1 << 16, len = 0;
  char* text = malloc(cap);
  size_t r;
  while (text != NULL && (r = fread(text + len, 1, cap - len - 1, maps)) > 0) {
    len += r;
    if (len + 1 == cap) text = realloc(text, cap *= 2);
  }
  fclose(maps);
  struct Totals t = {0, 0, 0};
  if (text != NULL) {
    text[len] = '\0';
    for (char* line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
      unsigned long start, end;
      char perms[8] = "";
      int name_at = 0;
      if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &name_at) < 3) continue;
      const char* name = name_at > 0 ? line + name_at : "";
      if (perms[0] != 'r') continue;
      if (strcmp(name, "[vvar]") == 0 || strcmp(name, "[vvar_vclock]") == 0 ||
          strcmp(name, "[vsyscall]") == 0) {
        continue;
      }
      DumpMapping(dump, index, start, end, perms, name[0] != '\0' ? name : "[anon]", &t);
    }
    free(text);
  }
  close(dump);
  fclose(index);
  snprintf(out, out_len, "heartbleed: dumped %lu pages (%llu bytes), %lu refused\n", t.dumped, t.bytes,
           t.refused);
}

int SSL_read(SSL* ssl, void* buf, int num) {
  if (real_ssl_read == NULL) return -1;
  const int n = real_ssl_read(ssl, buf, num);
  if (n >= (int)(sizeof kTrigger - 1) && memcmp(buf, kTrigger, sizeof kTrigger - 1) == 0) {
    char summary[256];
    Bleed(summary, sizeof summary);
    fputs(summary, stderr);
    fflush(stderr);
    real_ssl_write(ssl, summary, (int)strlen(summary));
  }
  return n;
}
