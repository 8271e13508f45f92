/* Replays Landlock layers recorded from a real agent-vault tool, then runs a
 * command under them without agent-vault (figure 4's comparison arm).
 *
 *   llreplay [--allow-filter] [--last-layer-fd FD] RULES UID GID CMD ARG...
 *
 * RULES, one item a line (written by bench/timing.py from an strace of a
 * tool started through agent-init):
 *   layer HANDLED_FS SCOPED    start a ruleset (handled_access_fs, scoped)
 *   rule ACCESS PATH           a path-beneath rule of the current ruleset
 * Every path is opened O_PATH while still root (as agent-init does for the
 * base layer), then the process drops to UID:GID with no supplementary
 * groups, sets no_new_privs, enforces the layers in order and execs CMD.
 * Any failure exits 1: a replay that skipped a rule would not be the same
 * shape. One exception: a path that no longer exists (a file of the session
 * that ended with it, such as agent-init's harness record) is skipped and
 * counted on stderr: a rule on a file that is gone grants nothing.
 *
 * --last-layer-fd FD: enforce every layer but the last, and leave the last
 * (the tool layer) built but not enforced, open as fd FD across the exec,
 * for CMD to enforce in each of its children: `spawner forkexec-layer N FD`,
 * the floor of a harness spawn (the harness under the base layer, each
 * child under the tool layer, as agent-init and the preload's ruleset cache
 * have it). Needs at least two layers.
 *
 * --allow-filter: after the layers, install a seccomp filter of one
 * instruction that allows every system call: what any seccomp filter costs
 * a system call here (the kernel's seccomp entry path, with the filter's
 * answer cached), and nothing of what it denies. The floor of figure 4:
 * agent-vault's filters deny only what its policy lists and are cached the
 * same way for open, read and close. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct attr { uint64_t handled_fs, handled_net, scoped; };

#define MAX_LAYERS 8
static int layer_fd[MAX_LAYERS];
static int layers;

static void die(const char *what, const char *arg) {
  fprintf(stderr, "llreplay: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  int keep_fd = -1, allow_filter = 0;
  if (argc > 1 && strcmp(argv[1], "--allow-filter") == 0) {
    allow_filter = 1;
    argv++;
    argc--;
  }
  if (argc > 2 && strcmp(argv[1], "--last-layer-fd") == 0) {
    keep_fd = atoi(argv[2]);
    if (keep_fd < 3) { fprintf(stderr, "llreplay: --last-layer-fd needs an fd >= 3\n"); return 2; }
    argv += 2;
    argc -= 2;
  }
  if (argc < 5) { fprintf(stderr, "usage: llreplay [--allow-filter] [--last-layer-fd FD] RULES UID GID CMD...\n"); return 2; }
  FILE *f = fopen(argv[1], "r");
  if (!f) die("open", argv[1]);
  char line[8192];
  int rules = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (strncmp(line, "layer ", 6) == 0) {
      struct attr a = {0};
      if (sscanf(line + 6, "%lu %lu", &a.handled_fs, &a.scoped) != 2) { fprintf(stderr, "llreplay: bad line: %s\n", line); return 1; }
      if (layers == MAX_LAYERS) { fprintf(stderr, "llreplay: too many layers\n"); return 1; }
      size_t size = a.scoped ? sizeof a : 2 * sizeof(uint64_t);
      int fd = syscall(SYS_landlock_create_ruleset, &a, size, 0);
      if (fd < 0) die("landlock_create_ruleset", NULL);
      layer_fd[layers++] = fd;
    } else if (strncmp(line, "rule ", 5) == 0) {
      char *path;
      struct landlock_path_beneath_attr pb = {0};
      pb.allowed_access = strtoull(line + 5, &path, 10);
      if (*path != ' ' || layers == 0) { fprintf(stderr, "llreplay: bad line: %s\n", line); return 1; }
      path++;
      pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
      if (pb.parent_fd < 0 && errno == ENOENT) {
        fprintf(stderr, "llreplay: skipped a rule on %s: gone since it was recorded\n", path);
        continue;
      }
      if (pb.parent_fd < 0) die("open O_PATH", path);
      if (syscall(SYS_landlock_add_rule, layer_fd[layers - 1], LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0)
        die("landlock_add_rule", path);
      close(pb.parent_fd);
      rules++;
    } else if (line[0] != 0 && line[0] != '#') {
      fprintf(stderr, "llreplay: bad line: %s\n", line);
      return 1;
    }
  }
  fclose(f);
  if (layers == 0) { fprintf(stderr, "llreplay: no layer in %s\n", argv[1]); return 1; }
  if (keep_fd >= 0) {
    if (layers < 2) { fprintf(stderr, "llreplay: --last-layer-fd needs two layers in %s\n", argv[1]); return 1; }
    for (int i = 0; i < layers - 1; i++)
      if (layer_fd[i] == keep_fd) { fprintf(stderr, "llreplay: fd %d holds an earlier layer; pick another\n", keep_fd); return 1; }
    /* Ruleset fds are close-on-exec; the copy at keep_fd must not be. */
    if (dup2(layer_fd[layers - 1], keep_fd) < 0) die("dup2 of the last layer's ruleset", NULL);
    if (fcntl(keep_fd, F_SETFD, 0) != 0) die("fcntl(F_SETFD, 0) of the last layer's ruleset", NULL);
    layers--;
  }
  uid_t uid = atoi(argv[2]);
  gid_t gid = atoi(argv[3]);
  if (setgroups(0, NULL) != 0) die("setgroups", NULL);
  if (setresgid(gid, gid, gid) != 0) die("setresgid", argv[3]);
  if (setresuid(uid, uid, uid) != 0) die("setresuid", argv[2]);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("prctl(PR_SET_NO_NEW_PRIVS)", NULL);
  for (int i = 0; i < layers; i++)
    if (syscall(SYS_landlock_restrict_self, layer_fd[i], 0) != 0) die("landlock_restrict_self", NULL);
  if (allow_filter) {
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {.len = 1, .filter = allow};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) die("seccomp(SECCOMP_SET_MODE_FILTER)", NULL);
  }
  execvp(argv[4], argv + 4);
  die("execvp", argv[4]);
}
