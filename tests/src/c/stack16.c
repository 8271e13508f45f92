/* Stack 16 permissive Landlock domains (the kernel's maximum), then exec
 * argv[1..]: any further landlock_restrict_self fails with E2BIG. */
#define _GNU_SOURCE
#include <linux/landlock.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) { perror("prctl"); return 1; }
  for (int i = 0; i < 16; i++) {
    struct landlock_ruleset_attr a;
    memset(&a, 0, sizeof a);
    a.handled_access_fs = LANDLOCK_ACCESS_FS_MAKE_BLOCK; /* handled, never needed */
    int fd = syscall(SYS_landlock_create_ruleset, &a, sizeof a.handled_access_fs, 0);
    if (fd < 0) { perror("landlock_create_ruleset"); return 1; }
    if (syscall(SYS_landlock_restrict_self, fd, 0)) { perror("landlock_restrict_self"); return 1; }
    close(fd);
  }
  execv(argv[1], argv + 1);
  perror("execv");
  return 127;
}
