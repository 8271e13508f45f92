/* An attacker's own LD_PRELOAD library: its open family goes straight to
 * the system call, so the agent-vault preload's hooks never run. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

static int raw(int dirfd, const char *p, int f, va_list ap) {
  int m = (f & O_CREAT) ? va_arg(ap, int) : 0;
  return syscall(SYS_openat, dirfd, p, f, m);
}
int open(const char *p, int f, ...) { va_list ap; va_start(ap, f); int r = raw(AT_FDCWD, p, f, ap); va_end(ap); return r; }
int open64(const char *p, int f, ...) { va_list ap; va_start(ap, f); int r = raw(AT_FDCWD, p, f, ap); va_end(ap); return r; }
int openat(int d, const char *p, int f, ...) { va_list ap; va_start(ap, f); int r = raw(d, p, f, ap); va_end(ap); return r; }
int openat64(int d, const char *p, int f, ...) { va_list ap; va_start(ap, f); int r = raw(d, p, f, ap); va_end(ap); return r; }
