/* open + read + close of one file, N times (after 1,000 warm-up rounds);
 * prints "ns_per_open <nanoseconds per iteration>".  Usage: openloop PATH N */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  long n = atol(argv[2]);
  char buf[256];
  struct timespec a, b;
  for (int w = 0; w < 1000; w++) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    if (read(fd, buf, sizeof buf) < 0) return 1;
    close(fd);
  }
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    if (read(fd, buf, sizeof buf) < 0) return 1;
    close(fd);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("ns_per_open %.1f\n", ns / n);
  return 0;
}
