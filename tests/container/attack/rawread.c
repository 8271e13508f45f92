/* rawread: a static attacker that bypasses libc's open family (and so any
 * LD_PRELOAD hook) by issuing raw system calls. Built with `gcc -static` on
 * the host by tests/container/run.sh and bind-mounted into the container.
 *
 *   rawread FILE [PID...]
 *
 * Tries open, openat, openat2 and open_by_handle_at on FILE and prints what
 * it could read; then reads /proc/PID/environ for each PID; then tries
 * io_uring_setup. Output starts with the marker RAWREAD-START so the test
 * can tell the attack really ran. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

struct open_how_ { unsigned long long flags, mode, resolve; };

static void dump(const char *what, long fd) {
    char buf[4096];
    if (fd < 0) {
        printf("%s: denied errno=%ld (%s)\n", what, -fd, strerror((int)-fd));
        return;
    }
    printf("%s: OPENED fd=%ld, content follows\n", what, fd);
    for (;;) {
        long n = syscall(SYS_read, fd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0) printf("\n%s: read failed errno=%d (%s)\n", what, errno, strerror(errno));
            break;
        }
        for (long i = 0; i < n; i++) if (buf[i] == 0) buf[i] = '\n';
        fwrite(buf, 1, (size_t)n, stdout);
    }
    printf("\n%s: end\n", what);
    syscall(SYS_close, fd);
}

static long raw(long r) { return r < 0 ? -errno : r; }

int main(int argc, char **argv) {
    printf("RAWREAD-START uid=%d euid=%d pid=%d ppid=%d\n", getuid(), geteuid(), getpid(), getppid());
    if (argc < 2) return 2;
    const char *path = argv[1];
    char what[256];
    snprintf(what, sizeof what, "open(%s)", path);
    dump(what, raw(syscall(SYS_open, path, O_RDONLY)));
    snprintf(what, sizeof what, "openat(%s)", path);
    dump(what, raw(syscall(SYS_openat, AT_FDCWD, path, O_RDONLY)));
    struct open_how_ how = { O_RDONLY, 0, 0 };
    snprintf(what, sizeof what, "openat2(%s)", path);
    dump(what, raw(syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how)));

    struct { unsigned int bytes; int type; unsigned char h[128]; } fh;
    int mnt = 0;
    fh.bytes = sizeof fh.h;
    long r = raw(syscall(SYS_name_to_handle_at, AT_FDCWD, path, &fh, &mnt, 0));
    if (r < 0) {
        printf("name_to_handle_at: errno=%ld (%s)\n", -r, strerror((int)-r));
    } else {
        long mfd = raw(syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY | O_DIRECTORY));
        dump("open_by_handle_at", raw(syscall(SYS_open_by_handle_at, mfd, &fh, O_RDONLY)));
    }
    for (int i = 2; i < argc; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/%s/environ", argv[i]);
        dump(p, raw(syscall(SYS_openat, AT_FDCWD, p, O_RDONLY)));
    }
    unsigned char params[120];
    memset(params, 0, sizeof params);
    r = raw(syscall(SYS_io_uring_setup, 4, params));
    if (r < 0) printf("io_uring_setup: errno=%ld (%s)\n", -r, strerror((int)-r));
    else printf("io_uring_setup: ALLOWED fd=%ld\n", r);
    printf("RAWREAD-END\n");
    fflush(stdout);
    return 0;
}
