/* Calls the hooked open family many times and reports how many heap
 * allocations happened meanwhile (count.so must be preloaded first).
 * Usage: allocprobe READABLE WRITABLE DENIED */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  long (*count)(void) = (long (*)(void))dlsym(RTLD_DEFAULT, "av_alloc_count");
  if (!count) { printf("NO_COUNTER\n"); return 3; }
  int denied = 0;
  /* warm up: one-time init (allowed to allocate) and symbol resolution */
  for (int round = 0; round < 2; round++) {
    long before = count();
    for (int i = 0; i < 1000; i++) {
      int fd = open(argv[1], O_RDONLY);
      if (fd >= 0) close(fd);
      fd = openat(AT_FDCWD, argv[1], O_RDONLY | O_CLOEXEC);
      if (fd >= 0) close(fd);
      fd = open64(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) close(fd);
      fd = open(argv[3], O_RDONLY);
      if (fd >= 0) close(fd); else denied++;
    }
    long after = count();
    if (round == 1) {
      /* control: the counter does see allocations */
      void *volatile m = malloc(16);
      free(m);
      printf("ALLOCS %ld DENIED %d COUNTER %s\n", after - before, denied,
             count() > after ? "WORKS" : "BROKEN");
      return after != before;
    }
  }
  return 0;
}
