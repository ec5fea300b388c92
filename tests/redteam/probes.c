// Breadth probes after lockdown, each in a fork child: what stops each one.
#define _GNU_SOURCE
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static char vstack[65536] __attribute__((aligned(16)));
static volatile int vran;
static int vchild(void* a) { (void)a; vran = 1; syscall(SYS_exit, 0); return 0; }

static void on_usr1(int s) { (void)s; }
static int vchild_sig(void* a) {
  (void)a;
  // rsp into trusted memory (just above the secret), then a signal to self.
  uint64_t x = (uint64_t)g_secret + 2048;
  long tid = syscall(SYS_gettid);
  asm volatile("mov r12, rsp\n mov rsp, %0\n mov eax, 234\n mov rdi, %1\n mov rsi, %2\n mov edx, 10\n syscall\n mov rsp, r12\n"
               :: "r"(x), "r"((long)getpid()), "r"(tid) : "rax", "rdi", "rsi", "rdx", "rcx", "r11", "r12", "memory");
  vran = 2;
  syscall(SYS_exit, 0);
  return 0;
}
static void p_vfork_thread_signal(void) {
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_usr1;
  cordon_sigaction(SIGUSR1, &sa, 0);
  long r = clone(vchild_sig, vstack + sizeof vstack,
                 CLONE_VM | CLONE_VFORK | CLONE_THREAD | CLONE_SIGHAND | CLONE_FS | CLONE_FILES, 0, NULL, NULL, NULL);
  printf("  vfork thread + signal with rsp in trusted memory: clone %ld ran %d; secret fnv %016llx\n", r, vran,
         (unsigned long long)cordon_call(g_hash, 0, 0, 0, 0, 0));
}
static void* idle(void* a) { (void)a; sleep(5); return 0; }

static void run(const char* name, void (*fn)(void)) {
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) { fn(); fflush(stdout); _exit(0); }
  int st; waitpid(c, &st, 0);
  printf("probe %-28s -> status %#x\n", name, st);
  fflush(stdout);
}
static void p_vfork_thread(void) {
  // A thread made with CLONE_VFORK is not trapped by the 6.12 clone rule
  // (masked VM|VFORK == VM) and inherits the creator's alternate stack.
  long r = clone(vchild, vstack + sizeof vstack,
                 CLONE_VM | CLONE_VFORK | CLONE_THREAD | CLONE_SIGHAND | CLONE_FS | CLONE_FILES, 0, NULL, NULL, NULL);
  printf("  vfork thread: clone %ld errno %d ran %d\n", r, errno, vran);
}
static void p_mseal(void) {
  long r = syscall(462, (uintptr_t)g_secret & ~4095ul, 4096, 0);
  printf("  mseal(secret page) %ld errno %d\n", r, errno);
}
static void p_newtid_syscall(void) {
  pthread_t t; pthread_create(&t, 0, idle, 0); usleep(100000);
  char path[128]; snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", (long)getpid() + 1);
  int fd = open(path, O_RDONLY); printf("  open %s: %d errno %d\n", path, fd, errno);
  snprintf(path, sizeof path, "/proc/self/task/%d/environ", getpid());
  fd = open(path, O_RDONLY); printf("  open %s: %d errno %d\n", path, fd, errno);
}
static void p_x32(void) { long r = syscall(39 | 0x40000000); printf("  x32 getpid %ld\n", r); }
static void p_brk(void) { void* b = sbrk(0); long r = syscall(SYS_brk, (char*)b - (1 << 20)); printf("  brk shrink %#lx (was %p)\n", r, b); }
static void p_mincore(void) { unsigned char v; long r = mincore((void*)((uintptr_t)g_secret & ~4095ul), 4096, &v); printf("  mincore(secret) %ld v=%d\n", r, v); }
static void p_vmsplice(void) {
  int p[2]; pipe(p); struct iovec io = {g_secret, 32};
  long r = vmsplice(p[1], &io, 1, 0); printf("  vmsplice(secret) %ld errno %d\n", r, errno);
  if (r > 0) { uint8_t b[32]; read(p[0], b, 32); dump("  vmsplice got", b, 32); }
}
static void p_write_secret(void) { long r = write(1, g_secret, 32); printf("\n  write(1, secret) %ld errno %d\n", r, errno); }

int main(void) {
  setup(1);
  run("vfork_thread", p_vfork_thread);
  run("vfork_thread_signal", p_vfork_thread_signal);
  run("mseal", p_mseal);
  run("new tid /proc files", p_newtid_syscall);
  run("x32", p_x32);
  run("brk", p_brk);
  run("mincore", p_mincore);
  run("vmsplice", p_vmsplice);
  run("write(secret)", p_write_secret);
  return 0;
}
