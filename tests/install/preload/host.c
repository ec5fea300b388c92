/* A program that knows nothing of Cordon: it is not linked with it and
 * includes none of its headers. It loads a plugin (plugin.c) with dlopen,
 * as a server loads an OpenSSL provider, and runs with libcordon.so
 * preloaded (LD_PRELOAD), which the plugin's calls into the runtime bind
 * to. After the plugin has locked the process down, it asks dlopen for a
 * library with a stray WRPKRU, which the preloaded runtime refuses.
 * usage: host [--preload LIBCORDON] PLUGIN JUDGE_FD UNSAFE_LIBRARY
 * (--preload: run again with LD_PRELOAD=LIBCORDON, for the test places
 * that cannot set the environment themselves). */
#define _GNU_SOURCE /* setenv, execv under -std=c11 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc == 6 && strcmp(argv[1], "--preload") == 0) {
    if (setenv("LD_PRELOAD", argv[2], 1) != 0) return 2;
    argv[2] = argv[0];
    execv("/proc/self/exe", argv + 2);
    perror("host: execv");
    return 2;
  }
  if (argc != 4) {
    fprintf(stderr, "usage: host [--preload LIBCORDON] PLUGIN JUDGE_FD UNSAFE_LIBRARY\n");
    return 2;
  }
  void* plugin = dlopen(argv[1], RTLD_NOW);
  if (plugin == NULL) {
    fprintf(stderr, "host: %s\n", dlerror());
    return 3;
  }
  int (*start)(int) = (int (*)(int))dlsym(plugin, "plugin_start");
  uint64_t (*digest)(uint64_t) = (uint64_t(*)(uint64_t))dlsym(plugin, "plugin_digest");
  int (*attack)(void) = (int (*)(void))dlsym(plugin, "plugin_attack");
  if (start == NULL || digest == NULL || attack == NULL) return 4;
  /* The plugin closes the descriptor it is given: a copy of the judge's. */
  if (start(dup(atoi(argv[2]))) != 0) return 5;
  const uint64_t a = digest(1), b = digest(1), c = digest(2);
  printf("host: digests agree %s, differ by nonce %s\n", a == b ? "yes" : "no", a != c ? "yes" : "no");
  const int stopped = attack();
  void* unsafe = dlopen(argv[3], RTLD_NOW);
  printf("host: unsafe library %s\n", unsafe == NULL ? "refused" : "LOADED");
  fflush(stdout);
  return a == b && a != c && stopped == 1 && unsafe == NULL ? 0 : 1;
}
