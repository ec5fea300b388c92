/* Cordon C API: protection-key domains, audited call gates and a trusted heap.
 *
 * Every function returns a cordon_status (0 on success, a negative code on
 * failure) unless it says otherwise; cordon_strerror() turns a code into a
 * sentence that says what happened and what to do. C++ programs should use
 * <cordon/cordon.hpp>, which wraps this header. */
#ifndef CORDON_CORDON_H_
#define CORDON_CORDON_H_

#include <stddef.h>
#include <stdint.h>

#include "cordon/version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cordon_status {
  CORDON_OK = 0,
  CORDON_E_NO_PKU = -1,              /* CPU or kernel lacks protection keys */
  CORDON_E_ALREADY_INITIALIZED = -2, /* cordon_init() was called before */
  CORDON_E_NOT_INITIALIZED = -3,     /* cordon_init() has not succeeded */
  CORDON_E_INVALID_ARGUMENT = -4,    /* a null, zero, misaligned or out-of-range value */
  CORDON_E_NO_MEMORY = -5,           /* the domain's heap or reservation is exhausted */
  CORDON_E_NO_KEYS = -6,             /* no protection key left for a new domain */
  CORDON_E_LOCKED = -7,              /* not allowed after cordon_lockdown() */
  CORDON_E_TABLE_FULL = -8,          /* the domain's entry table is full */
  CORDON_E_DOUBLE_FREE = -9,         /* the block was already free */
  CORDON_E_INVALID_POINTER = -10,    /* not a block of a Cordon heap */
  CORDON_E_WRONG_DOMAIN = -11,       /* the caller's domain may not do this */
  CORDON_E_NO_AVX = -12,             /* the CPU lacks AVX, needed to scrub registers */
  CORDON_E_SYSCALL = -13,            /* a system call failed, or did not do what it reported */
  CORDON_E_TOO_MANY_DOMAINS = -14,   /* the runtime's domain limit is reached */
  CORDON_E_UNSAFE_CODE = -15,        /* executable memory holds a WRPKRU/XRSTOR that cannot be neutralized */
  CORDON_E_LAZY_BINDING = -16,       /* neutralizing ld.so's XRSTOR needs LD_BIND_NOW=1 */
  CORDON_E_UNGATED_CODE = -17,       /* CORDON_TRUSTED functions compiled without the pass plugin */
  CORDON_E_THREADS = -18,            /* cordon_lockdown() with other threads running */
  CORDON_E_NO_LANDLOCK = -19,        /* the kernel has no Landlock, which the lockdown needs */
  CORDON_E_LOCKDOWN_FAILED = -20,    /* the process cannot be locked down (stderr says why) */
  CORDON_E_BUSY = -21,               /* another thread is using the code block or virtual domain now */
  CORDON_E_NO_CODE_REGION = -22,     /* cordon_options.code_size was 0: no code can be published */
  CORDON_E_NO_FSGSBASE = -23,   /* the CPU or kernel lacks FSGSBASE, or the C library is not glibc 2.34+ */
  CORDON_E_ROOT_SET = -24,      /* the domain's root was set before (cordon_domain_set_root) */
  CORDON_E_FILE_REACHABLE = -25 /* another path reaches the file (cordon_lockdown_close_file) */
} cordon_status;

/* What cordon_init() does with a WRPKRU or XRSTOR found outside its gates. */
typedef enum cordon_inspect_policy {
  /* A real instruction is overwritten with UD2 (on a private copy of its
   * page); one hidden inside other instructions makes init fail. */
  CORDON_INSPECT_NEUTRALIZE = 0,
  /* Any occurrence outside the gates makes init fail. */
  CORDON_INSPECT_REFUSE = 1
} cordon_inspect_policy;

/* Domain handles. 0 is the untrusted rest of the process. */
typedef int cordon_domain_t;
#define CORDON_DOMAIN_UNTRUSTED 0
#define CORDON_DOMAIN_UNKNOWN (-1) /* PKRU matches no domain (see cordon_current_domain) */

typedef struct cordon_options {
  size_t struct_size;       /* sizeof(cordon_options): lets the struct grow */
  size_t heap_size;         /* trusted heap bytes reserved per domain (default 64 MiB) */
  size_t stack_size;        /* trusted stack bytes per thread (default 256 KiB) */
  uint32_t max_threads;     /* threads that may be inside a domain's gates over time (default 64) */
  uint32_t inspect_policy;  /* a cordon_inspect_policy (default CORDON_INSPECT_NEUTRALIZE) */
  size_t code_size;         /* address space for code published at run time (default 256 MiB; 8 KiB to
                               4 GiB, or 0 for none); see cordon_code_publish() */
  int audit_fd;             /* descriptor for the audit stream (docs/audit.md), open for writing;
                               -1 (the default) for none, unless CORDON_AUDIT_FD=N is in the
                               environment. A struct_size without this field means -1. */
  const void* audit_key;    /* the audit stream's 32-byte HMAC-SHA256 key (docs/audit.md,
                               "Authenticated records"), or NULL (the default) for none, unless
                               CORDON_AUDIT_KEY=<64 hex digits> is in the environment. Copied into
                               trusted memory by cordon_init(): wipe your own copy after it. */
  size_t audit_key_size;    /* 32 with a key, 0 without; a struct_size without these fields: no key */
  size_t virtual_heap_size; /* trusted heap bytes reserved per virtual domain (default 4 MiB; 64 KiB
                               to 256 MiB); a struct_size without this field means the default */
} cordon_options;

/* Fills *opts with the defaults. */
void cordon_options_init(cordon_options* opts);

/* Checks the CPU and kernel, creates the trusted domain, and leaves the
 * calling thread untrusted. opts may be NULL for the defaults. On a machine
 * without PKU it fails closed with CORDON_E_NO_PKU. */
int cordon_init(const cordon_options* opts);

/* Whether cordon_init() has succeeded. */
int cordon_is_initialized(void);

/* The trusted domain created by cordon_init(). */
cordon_domain_t cordon_trusted_domain(void);

/* Creates another domain (before lockdown only). The first
 * CORDON_PHYSICAL_DOMAIN_LIMIT domains (the trusted one included) get a
 * protection key of their own; later ones are virtual (below), so creation
 * goes on far past the hardware's 15 keys. */
#define CORDON_PHYSICAL_DOMAIN_LIMIT 11
int cordon_domain_create(const char* name, cordon_domain_t* out);

/* ---- Virtual domains (docs/virtual-domains.md) ----
 *
 * A virtual domain has its own memory, entry points and heap, like any
 * domain, but no fixed key: the runtime keeps the domains in use on the
 * keys left after the physical domains (an LRU cache of keys), and an
 * evicted domain's pages carry the parking key, which every thread's PKRU
 * denies. Entering an evicted domain brings it back, through the same
 * cordon_call(). Entries of a virtual domain take five arguments like any
 * other; pass-generated gates (CORDON_TRUSTED) and cordon_sigaction() belong
 * to physical domains only. */

/* Creates a virtual domain even while keys are left (before lockdown only).
 * CORDON_E_TOO_MANY_DOMAINS once its address space (docs) is full;
 * CORDON_E_NO_KEYS if fewer than three keys were left for the parking key,
 * the directory and one key to run domains on. */
int cordon_domain_create_virtual(const char* name, cordon_domain_t* out);

/* 1 for a virtual domain, 0 for any other handle. */
int cordon_domain_is_virtual(cordon_domain_t domain);

/* Keeps a virtual domain on a key of its own until cordon_domain_unpin():
 * its calls never miss. At least one key stays unpinned
 * (CORDON_E_NO_KEYS). A physical domain is always pinned (CORDON_OK). */
int cordon_domain_pin(cordon_domain_t domain);
int cordon_domain_unpin(cordon_domain_t domain);

/* Parks a virtual domain now (its pages move to the parking key); for
 * benchmarks and tests of the miss path. CORDON_E_BUSY while a thread is
 * inside it or it is pinned. */
int cordon_domain_evict(cordon_domain_t domain);

/* The parking key, or -1 when no virtual domain exists. */
int cordon_parking_pkey(void);

/* Rights on a domain's heap (a virtual domain's whole data: heap, root and
 * header), for every thread at once, with the semantics of libmpk's
 * mpk_mprotect: from the return of cordon_domain_set_rights() on, no thread
 * reads or writes beyond them, whether it was running, blocked in a system
 * call or inside the domain when the call was made. Rights are a ceiling on
 * the domain's own code: untrusted code never gains any. The trusted
 * domain's rights cannot change (CORDON_E_WRONG_DOMAIN). Callable after the
 * lockdown. */
enum { CORDON_RIGHTS_NONE = 0, CORDON_RIGHTS_READ = 1, CORDON_RIGHTS_READ_WRITE = 3 };
int cordon_domain_set_rights(cordon_domain_t domain, int rights);
/* The domain's current rights (a CORDON_RIGHTS_* value), or a status. */
int cordon_domain_rights(cordon_domain_t domain);

/* The domain's name, or NULL for an unknown handle. */
const char* cordon_domain_name(cordon_domain_t domain);

/* The protection key of a domain (0 for the untrusted domain), or -1. A
 * virtual domain's key is the one it holds now: a key it runs on, or the
 * parking key when evicted (it changes at the next call). */
int cordon_domain_pkey(cordon_domain_t domain);

/* The whole region of a domain's memory (state, trusted stacks, heap). */
int cordon_domain_region(cordon_domain_t domain, const void** start, size_t* size);

/* The domain the calling thread is in now, read from PKRU. */
cordon_domain_t cordon_current_domain(void);

/* The domain whose memory holds addr, or CORDON_DOMAIN_UNTRUSTED. */
cordon_domain_t cordon_domain_of(const void* addr);

/* Whether [addr, addr+len) lies wholly outside every domain's memory: the
 * check trusted code must make before it reads or writes through a pointer
 * that untrusted code passed in. An empty range is untrusted; a range that
 * wraps around the address space is not. */
int cordon_is_untrusted_range(const void* addr, size_t len);

/* A domain's root: the one block its own code finds its state by. Code in a
 * domain must not trust a pointer kept in untrusted memory (a global of the
 * program or a plugin), since untrusted code can aim it anywhere, even
 * inside a secret. Instead, set-up code running inside the domain (an entry
 * point) records a block of the domain's memory once, and every later entry
 * asks for it. Both act on the domain the caller is in now (from PKRU).
 *
 * cordon_domain_set_root(): inside a domain only (CORDON_E_WRONG_DOMAIN from
 * untrusted code), before cordon_lockdown() (CORDON_E_LOCKED), once
 * (CORDON_E_ROOT_SET), with a root that lies in the current domain's memory
 * (CORDON_E_INVALID_ARGUMENT otherwise, also for NULL).
 * cordon_domain_root(): the root of the domain the caller is in, or NULL
 * when none was set, before cordon_init(), or from untrusted code. */
int cordon_domain_set_root(void* root);
void* cordon_domain_root(void);

/* ---- Entry points and gates ---- */

/* A registered entry point. Only cordon_register() makes valid ones. */
typedef struct cordon_entry {
  cordon_domain_t domain;
  uint32_t id;
} cordon_entry;

/* Entry points take up to five integer or pointer arguments and return one
 * 64-bit integer (or pointer). Floating-point and aggregate values do not
 * cross gates. */
typedef uint64_t (*cordon_entry_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

/* Registers fn as an entry point of domain (before lockdown only). name is
 * copied and used in messages. */
int cordon_register(cordon_domain_t domain, cordon_entry_fn fn, const char* name, cordon_entry* out);

/* Calls a registered entry point through its domain's gate and returns its
 * result. Registers that could carry trusted data are cleared on the way
 * out. A call with a handle that cordon_register() did not make stops the
 * process with a message (exit status 70). */
uint64_t cordon_call(cordon_entry entry, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4);

/* An untrusted function that trusted code may call back. */
typedef uint64_t (*cordon_untrusted_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

/* Called by trusted code inside an entry point: runs fn(a0..a4) as untrusted
 * code, on the stack of the untrusted code that entered the domain, and
 * returns its result, which is an untrusted value. The domain's registers are
 * kept and cleared around the call. The callback may not enter the same
 * domain again: that stops the process. Called from untrusted code, it is a
 * plain call. */
uint64_t cordon_call_untrusted(cordon_untrusted_fn fn, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                               uint64_t a4);

/* The name an entry was registered with, or NULL. */
const char* cordon_entry_name(cordon_entry entry);

/* What the lockdown's seccomp filter does to a forbidden system call. */
enum {
  CORDON_VIOLATION_KILL = 0,           /* a message on stderr, then exit status 70 */
  CORDON_VIOLATION_ERRNO_FOR_TESTS = 1 /* the call fails with EPERM; for tests only */
};

typedef struct cordon_lockdown_options {
  size_t struct_size; /* sizeof(cordon_lockdown_options) */
  int violation;      /* CORDON_VIOLATION_* (default KILL) */
} cordon_lockdown_options;

void cordon_lockdown_options_init(cordon_lockdown_options* opts);

/* Ends the set-up phase: no more domains or entry points, and untrusted code
 * may no longer allocate or free trusted memory. Then locks the process down
 * against code that can make system calls (docs/lockdown.md): executable
 * memory is inspected again and made private, no new executable memory,
 * no memory call may touch trusted memory or the gate config, no access to
 * /proc/<pid>/mem, ptrace, pkeys, io_uring and the other routes around
 * protection keys. Call it once, while the process has a single thread.
 * opts may be NULL for the defaults. */
int cordon_lockdown_ex(const cordon_lockdown_options* opts);
/* cordon_lockdown_ex(NULL). */
int cordon_lockdown(void);

/* Names a file that no code in the process may open once it is locked down:
 * one a domain read a secret from during set-up, such as a private key file
 * (the OpenSSL provider names each key file it loads). Without it, code that
 * runs after the lockdown could read the secret from its file again.
 * cordon_lockdown() closes the file's path to reading with Landlock (it can
 * still be written); every directory on the way stays open, except that a
 * file made in one of them later cannot be read either (it can be written):
 * keep secrets in a directory of their own.
 * Before the lockdown only (CORDON_E_LOCKED). The path must name a regular
 * file outside /proc, /sys and /dev (CORDON_E_INVALID_ARGUMENT). Landlock
 * closes one path, so a file that another path reaches is refused with
 * CORDON_E_FILE_REACHABLE: a second hard link, or a second mount (a bind
 * mount) of the directory that holds it. cordon_lockdown() checks each file
 * again, and refuses while a descriptor or a mapping of one is open (a line
 * on stderr says which and why). A file this process cannot open, behind a
 * permission another user holds, needs no rule and gets none. */
int cordon_lockdown_close_file(const char* path);
int cordon_is_locked_down(void);

/* ---- Signals (docs/signals.md) ----
 * After cordon_lockdown() only the runtime may install signal handlers (the
 * filter refuses rt_sigaction with a new action), and every handler runs
 * through the runtime: the lockdown takes over those already installed.
 * cordon_sigaction() is sigaction() for the program's handlers, before and
 * after lockdown. A handler of a signal that interrupted trusted code runs
 * as untrusted code with a ucontext that holds no trusted state (zero
 * registers; changes to it are ignored), must return, and may not enter
 * the interrupted domain. A fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
 * SIGTRAP from the kernel) in trusted code stops the process.
 * Refused with CORDON_E_INVALID_ARGUMENT: SA_ONSTACK, SA_RESETHAND,
 * SIGKILL, SIGSTOP, SIGSYS (the lockdown's) and glibc's 32 and 33.
 * Before Linux 6.12 only SIGSEGV, SIGBUS, SIGILL and SIGFPE may have a
 * handler after lockdown: another signal's handler makes cordon_lockdown()
 * refuse, and cordon_sigaction() returns CORDON_E_LOCKED for it after
 * lockdown (SIG_DFL and SIG_IGN still work; docs/signals.md). */
struct sigaction;
int cordon_sigaction(int sig, const struct sigaction* act, struct sigaction* oldact);

/* ---- Code published at run time (docs/code.md) ----
 * After cordon_lockdown() no system call can make memory executable; these
 * are the way, before and after it, for JIT compilers and code loaded at
 * run time. The runtime copies the code into pages that only the trusted
 * domain can write, checks every byte offset for WRPKRU and XRSTOR, and
 * only then makes the pages read+execute: never writable while
 * executable, and no other mapping of them exists. Blocks come from the
 * code region that cordon_init() reserves (cordon_options.code_size), in
 * whole pages, each followed by a page that is never executable.
 * Callable from untrusted code and from inside the trusted domain. */

/* Reserves a block of at least size bytes (rounded up to pages) and gives
 * its address, so that code can be generated for where it will run. The
 * block is not accessible until published. */
int cordon_code_reserve(size_t size, void** out);
/* Copies len bytes of machine code from code (untrusted memory) into the
 * reserved or published block, fills the rest of its pages with INT3, and
 * makes it executable. CORDON_E_UNSAFE_CODE, with the places on stderr,
 * if the code holds WRPKRU or XRSTOR anywhere. Publishing over published
 * code replaces it; no thread may be running it meanwhile (its pages are
 * not executable while they are filled). On any failure the block is left
 * reserved and not executable, except that code refused before anything
 * changed (a bad argument, or plainly unsafe code) leaves a published
 * block as it was. */
int cordon_code_publish(void* block, const void* code, size_t len);
/* cordon_code_reserve() then cordon_code_publish(); *out is the code. */
int cordon_code_load(const void* code, size_t len, void** out);
/* Makes the block inaccessible and returns its pages to the region. */
int cordon_code_release(void* block);

/* ---- Trusted heap ----
 * Called from untrusted code (before lockdown) these go through a gate;
 * called from inside the domain they are direct calls. Blocks are zeroed
 * when freed, so fresh blocks are always zero. A size of 0 is an error. */
int cordon_malloc(size_t size, void** out);
int cordon_calloc(size_t count, size_t size, void** out);
int cordon_aligned_alloc(size_t alignment, size_t size, void** out);
/* On failure *out is untouched and ptr stays valid. ptr may be NULL. */
int cordon_realloc(void* ptr, size_t size, void** out);
/* NULL is accepted. A double free or a foreign pointer returns an error and
 * changes nothing. */
int cordon_free(void* ptr);
int cordon_domain_alloc(cordon_domain_t domain, size_t alignment, size_t size, void** out);

/* ---- Annotated entry points (the cordon-gates pass plugin) ----
 * CORDON_TRUSTED marks a function definition, and the declarations in its
 * header, as an entry point of the trusted domain. Compiled by clang 14 with
 * the pass plugin (cordon_enable_gates() in CMake, or
 * -fpass-plugin=CordonGates.so), the function's own name becomes a gated
 * entry and its body runs inside the domain, on the thread's trusted stack;
 * every caller, direct or through a pointer, goes through the gate, and
 * calls between trusted functions go straight to the bodies. cordon_init()
 * registers every such entry point. Arguments: up to 6 integers or pointers
 * and 8 floating-point values; result: one integer or pointer, two
 * integers, or one float or double. Pointers that untrusted code passes in
 * must be checked with cordon_is_untrusted_range(). docs/compiler-pass.md
 * has the details. */
#if defined(__clang__)
#define CORDON_TRUSTED __attribute__((annotate("cordon.trusted"), section("cordon_trusted_unprocessed")))
#else
/* _Pragma takes exactly one string literal: no concatenation, so one line. */
/* clang-format off */
#define CORDON_TRUSTED _Pragma("GCC error \"CORDON_TRUSTED needs clang 14 with the Cordon pass plugin: cordon_enable_gates() in CMake, or -fpass-plugin=CordonGates.so\"")
/* clang-format on */
#endif

typedef struct cordon_generated_entry {
  const char* name;   /* the function's (demangled) name */
  uintptr_t gate;     /* the gated entry: the address callers use */
  uintptr_t body;     /* the body, which runs inside the domain */
  cordon_entry entry; /* the same body, registered for cordon_call() */
} cordon_generated_entry;

/* Entry points the pass plugin generated in this program. */
size_t cordon_generated_entry_count(void);
/* Needs cordon_init(), which registers them. */
int cordon_generated_entry_get(size_t index, cordon_generated_entry* out);

/* ---- Gate sites ---- */
typedef struct cordon_gate_site {
  uintptr_t address;      /* address of the WRPKRU instruction */
  int kind;               /* 1 entry, 2 exit */
  cordon_domain_t domain; /* the domain the gate enters */
} cordon_gate_site;

/* Number of WRPKRU instructions in the runtime's gates; all of them are listed. */
size_t cordon_gate_site_count(void);
int cordon_gate_site_get(size_t index, cordon_gate_site* out);

/* ---- Inspection ----
 * cordon_init() inspects every executable mapping of the process before it
 * creates anything, and dlopen() inspects a library's file (and the
 * dependencies it would load) before any of its code runs. */
typedef struct cordon_inspection_entry {
  uintptr_t address;  /* where the 0F byte was */
  int kind;           /* 0 WRPKRU, 1 XRSTOR */
  int verdict;        /* 0 gate site, 1 real instruction, 2 inside or across other instructions */
  int action;         /* 0 none (a gate site), 1 neutralized with UD2, 2 refused, 3 relocated (an
                         instruction whose displacement held the bytes, moved to a thunk) */
  const char* object; /* mapping or file name */
  const char* symbol; /* nearest symbol, or "" */
} cordon_inspection_entry;

size_t cordon_inspection_count(void);
int cordon_inspection_get(size_t index, cordon_inspection_entry* out);

/* ---- Platform ----
 * One line saying where this process runs: the CPU model, which of pku,
 * ospke and xsavec it reports, and the kernel release, e.g.
 * "AMD EPYC 7B13 (pku, ospke, xsavec), Linux 6.18.4 x86_64". Works before
 * cordon_init() and on machines without PKU. Writes at most size bytes,
 * always NUL-terminated when size > 0, and returns the length of the whole
 * line (like snprintf), so a result >= size means it was cut. */
size_t cordon_describe_platform(char* buf, size_t size);

/* ---- Randomness for trusted code ----
 * Fills buf with len bytes from the kernel's getrandom(), for trusted code
 * (keys, nonces) as for any other. Unlike glibc's getrandom() it is no
 * cancellation point and touches neither errno nor any other thread-local
 * state, which a trusted entry must not depend on (docs/threat-model.md,
 * "glibc's thread state is the caller's"). Returns CORDON_OK, or
 * CORDON_E_INVALID_ARGUMENT (buf NULL with len > 0), or CORDON_E_SYSCALL. */
int cordon_random_bytes(void* buf, size_t len);

/* ---- Version ----
 * The library's version, "MAJOR.MINOR.PATCH": the one it was built as, which
 * may differ from CORDON_VERSION_STRING of the headers a program was compiled
 * with. */
const char* cordon_version(void);

/* ---- Errors ---- */
const char* cordon_strerror(int status);

/* ---- Audit stream (docs/audit.md) ----
 * With cordon_options.audit_fd (or CORDON_AUDIT_FD) the runtime writes one
 * JSON line per security-relevant event to that descriptor. This writes a
 * gate_calls record for every entry point called since cordon_init() (the
 * runtime does the same at exit). CORDON_E_NOT_INITIALIZED without a
 * stream. */
int cordon_audit_flush(void);

/* Exit status of a process stopped for a gate violation. */
#define CORDON_VIOLATION_EXIT 70

#ifdef __cplusplus
}
#endif
#endif
