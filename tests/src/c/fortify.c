/* open() through glibc's _FORTIFY_SOURCE entry point (__open_2: flags not
 * known at compile time). Usage: fortify PATH FLAGS */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int flags = atoi(argv[2]);
  int fd = open(argv[1], flags);
  if (fd < 0) {
    printf("DENIED %s\n", strerror(errno));
    return 1;
  }
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = 0;
  printf("READ %s\n", buf);
  return 0;
}
