/* Opens a file without libc's open functions: raw openat, raw openat2, or
 * an io_uring IORING_OP_OPENAT. Built with gcc -static (no preload at all).
 * Usage: rawopen openat|openat2|io_uring PATH
 * Prints "READ <content>" (exit 0), "DENIED <error>" (exit 1), or
 * "UNSUPPORTED <why>" (exit 3).
 * Or: rawopen access PATH: raw faccessat2(R_OK, AT_EACCESS); prints
 * "ACCESS OK" (exit 0) or "ACCESS <error>" (exit 1). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int uring_open(const char *path) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  int rfd = syscall(SYS_io_uring_setup, 4, &p);
  if (rfd < 0) {
    printf("UNSUPPORTED io_uring_setup: %s\n", strerror(errno));
    exit(3);
  }
  size_t sqsz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  char *sq = mmap(0, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, rfd, IORING_OFF_SQ_RING);
  char *cq = mmap(0, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, rfd, IORING_OFF_CQ_RING);
  struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_POPULATE, rfd, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) {
    printf("UNSUPPORTED mmap ring: %s\n", strerror(errno));
    exit(3);
  }
  unsigned *sq_tail = (unsigned *)(sq + p.sq_off.tail);
  unsigned mask = *(unsigned *)(sq + p.sq_off.ring_mask);
  unsigned *sq_array = (unsigned *)(sq + p.sq_off.array);
  unsigned tail = *sq_tail, idx = tail & mask;
  struct io_uring_sqe *sqe = &sqes[idx];
  memset(sqe, 0, sizeof *sqe);
  sqe->opcode = IORING_OP_OPENAT;
  sqe->fd = AT_FDCWD;
  sqe->addr = (unsigned long)path;
  sqe->open_flags = O_RDONLY;
  sq_array[idx] = idx;
  __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
  int r = syscall(SYS_io_uring_enter, rfd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
  if (r < 0) {
    printf("UNSUPPORTED io_uring_enter: %s\n", strerror(errno));
    exit(3);
  }
  unsigned head = __atomic_load_n((unsigned *)(cq + p.cq_off.head), __ATOMIC_ACQUIRE);
  unsigned cmask = *(unsigned *)(cq + p.cq_off.ring_mask);
  struct io_uring_cqe *cqe = &((struct io_uring_cqe *)(cq + p.cq_off.cqes))[head & cmask];
  return cqe->res;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  const char *how = argv[1], *path = argv[2];
  int fd;
  if (!strcmp(how, "access")) {
    int r = syscall(SYS_faccessat2, AT_FDCWD, path, R_OK, AT_EACCESS);
    printf("ACCESS %s\n", r == 0 ? "OK" : strerror(errno));
    return r == 0 ? 0 : 1;
  }
  if (!strcmp(how, "openat")) {
    fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY, 0);
    if (fd < 0) fd = -errno;
  } else if (!strcmp(how, "openat2")) {
    struct open_how h;
    memset(&h, 0, sizeof h);
    h.flags = O_RDONLY;
    fd = syscall(SYS_openat2, AT_FDCWD, path, &h, sizeof h);
    if (fd < 0) fd = -errno;
  } else if (!strcmp(how, "io_uring")) {
    fd = uring_open(path);
  } else {
    return 2;
  }
  if (fd < 0) {
    printf("DENIED %s\n", strerror(-fd));
    return 1;
  }
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = 0;
  printf("READ %s\n", buf);
  return 0;
}
