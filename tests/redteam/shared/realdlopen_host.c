/* Attack 4 (shared build, preload): after the plugin's lockdown, bypass the
 * exported (inspecting) dlopen of libcordon.so by calling glibc's own
 * (dlsym RTLD_NEXT, and dlmopen, which is not interposed) on a library with
 * a stray WRPKRU (tests/install/preload/unsafe.c). If it loads, its WRPKRU
 * gives all rights and the secret is read.
 * usage: LD_PRELOAD=libcordon.so realdlopen_host PLUGIN UNSAFE MODE(next|mopen): next = dlvsym(dlopen@GLIBC_2.34) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char** argv) {
  if (argc != 4) return 2;
  void* pl = dlopen(argv[1], RTLD_NOW);
  if (!pl) return 3;
  int (*start)(int) = (int (*)(int))dlsym(pl, "plugin_start");
  if (!start || start(dup(2)) != 0) return 5;
  void* h;
  if (strcmp(argv[3], "next") == 0) {
    /* RTLD_NEXT from the executable finds the preloaded one; ask for the
     * versioned glibc definition instead. */
    void* (*real)(const char*, int) = (void* (*)(const char*, int))dlvsym(RTLD_DEFAULT, "dlopen", "GLIBC_2.34");
    printf("attack: glibc dlopen at %p (interposed one at %p)\n", (void*)real, (void*)dlsym(RTLD_DEFAULT, "dlopen"));
    fflush(stdout);
    h = real(argv[2], RTLD_NOW);
  } else {
    fflush(stdout);
    h = dlmopen(LM_ID_NEWLM, argv[2], RTLD_NOW);
  }
  printf("attack: unsafe library %s (%s)\n", h ? "LOADED" : "refused", h ? "" : dlerror());
  return 0;
}
