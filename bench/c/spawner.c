/* The benchmark's C harness and C tool (compiled by bench/run.sh).
 *
 *   spawner forkexec N       N x fork + execve("/bin/true") + waitpid;
 *                            prints "us_per_spawn <mean microseconds>"
 *   spawner posix_spawn N    the same with posix_spawn(3)
 *   spawner forkexec-layer N FD
 *                            the same as forkexec, but each child, before its
 *                            execve, does what agent-vault's harness child
 *                            does (strace -f of a harness spawn through
 *                            agent-init: prctl(PR_SET_NO_NEW_PRIVS) and
 *                            landlock_restrict_self of the tool layer's
 *                            ruleset, built once in the parent, as the
 *                            preload's cache has it; no seccomp call) and
 *                            nothing else. FD is that ruleset, left open by
 *                            `llreplay --last-layer-fd FD`; the parent makes
 *                            it close-on-exec, as the preload's cached one is,
 *                            so /bin/true does not inherit it. Started under
 *                            llreplay's base layer with an empty library in
 *                            LD_PRELOAD, it is the floor of a harness spawn
 *                            (bench/timing.py). Any failure in a child exits
 *                            126 and fails the run.
 *   spawner posix_spawn-layer N FD
 *                            the same as posix_spawn, but each spawn, as
 *                            agent-vault's harness does it (strace -f of a
 *                            harness's posix_spawn through agent-init),
 *                            runs in a new thread (1 MiB stack, joined
 *                            before the next) that enforces FD's ruleset
 *                            on itself (prctl(PR_SET_NO_NEW_PRIVS),
 *                            landlock_restrict_self) and then calls
 *                            posix_spawn: glibc's posix_spawn child execs
 *                            without going through any interposed function,
 *                            so a preload can restrict it only by
 *                            restricting the thread that spawns it. Under
 *                            llreplay's base layer with an empty library in
 *                            /etc/ld.so.preload, it is the floor of a
 *                            harness's posix_spawn (bench/timing.py). Any
 *                            failure fails the run.
 *   spawner run K CMD ARG... K x fork + execvp(CMD) + waitpid, timing each
 *                            child from fork to reap; prints "ns <t>" per run.
 *                            A non-zero exit of CMD fails the run.
 *
 * Started by `agent-init run` it is the harness and what it spawns is a tool;
 * started by a tool it is itself a tool spawning tools. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int reap(pid_t pid, const char *what) {
  int st;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) { perror("waitpid"); return -1; }
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "spawner: %s: child status 0x%x\n", what, st);
    return -1;
  }
  return 0;
}

/* layer_fd >= 0: the child enforces that Landlock ruleset before execvp. */
static pid_t fork_exec(char *const argv[], int layer_fd) {
  pid_t pid = fork();
  if (pid == 0) {
    if (layer_fd >= 0) {
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        fprintf(stderr, "spawner: prctl(PR_SET_NO_NEW_PRIVS): %s\n", strerror(errno));
        _exit(126);
      }
      if (syscall(SYS_landlock_restrict_self, layer_fd, 0) != 0) {
        fprintf(stderr, "spawner: landlock_restrict_self(fd %d): %s\n", layer_fd, strerror(errno));
        _exit(126);
      }
    }
    execvp(argv[0], argv);
    fprintf(stderr, "spawner: execvp %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  if (pid < 0) perror("fork");
  return pid;
}

struct layered_spawn {
  int layer_fd;
  char **argv;
  pid_t pid;
  int err; /* 0, or an errno; `what` names the call that failed */
  const char *what;
};

/* posix_spawn-layer's thread: restrict itself, then spawn. */
static void *layered_spawn_main(void *arg) {
  struct layered_spawn *s = arg;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    s->err = errno;
    s->what = "prctl(PR_SET_NO_NEW_PRIVS)";
  } else if (syscall(SYS_landlock_restrict_self, s->layer_fd, 0) != 0) {
    s->err = errno;
    s->what = "landlock_restrict_self";
  } else {
    s->err = posix_spawn(&s->pid, s->argv[0], NULL, NULL, s->argv, environ);
    s->what = "posix_spawn";
  }
  return NULL;
}

/* One posix_spawn from a thread under the ruleset `layer_fd`; the pid, or
 * -1 after printing why. */
static pid_t layered_spawn(char **argv, int layer_fd) {
  struct layered_spawn s = {layer_fd, argv, -1, 0, NULL};
  pthread_attr_t attr;
  pthread_t tid;
  int e = pthread_attr_init(&attr);
  if (e == 0) e = pthread_attr_setstacksize(&attr, 1 << 20);
  if (e == 0) e = pthread_create(&tid, &attr, layered_spawn_main, &s);
  pthread_attr_destroy(&attr);
  if (e == 0) e = pthread_join(tid, NULL);
  if (e != 0) {
    fprintf(stderr, "spawner: the spawning thread: %s\n", strerror(e));
    return -1;
  }
  if (s.err != 0) {
    fprintf(stderr, "spawner: %s (fd %d): %s\n", s.what, layer_fd, strerror(s.err));
    return -1;
  }
  return s.pid;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: spawner forkexec|posix_spawn N | forkexec-layer|posix_spawn-layer N FD | run K CMD...\n");
    return 2;
  }
  long n = atol(argv[2]);
  if (strcmp(argv[1], "run") == 0) {
    if (argc < 4) return 2;
    for (long i = 0; i < n; i++) {
      double t = now_ns();
      pid_t pid = fork_exec(argv + 3, -1);
      if (pid < 0 || reap(pid, argv[3]) < 0) return 1;
      printf("ns %.0f\n", now_ns() - t);
      fflush(stdout);
    }
    return 0;
  }
  char *true_argv[] = {"/bin/true", NULL};
  int spawn = strcmp(argv[1], "posix_spawn") == 0;
  int layered_spawns = strcmp(argv[1], "posix_spawn-layer") == 0;
  int layer_fd = -1;
  if (strcmp(argv[1], "forkexec-layer") == 0 || layered_spawns) {
    if (argc < 4) return 2;
    layer_fd = atoi(argv[3]);
    if (fcntl(layer_fd, F_SETFD, FD_CLOEXEC) != 0) {
      fprintf(stderr, "spawner: fcntl(fd %d, F_SETFD, FD_CLOEXEC): %s (no ruleset left open by llreplay?)\n",
              layer_fd, strerror(errno));
      return 1;
    }
  } else if (!spawn && strcmp(argv[1], "forkexec") != 0) {
    return 2;
  }
  /* Warm-up: page in /bin/true and the loader. */
  for (int w = 0; w < 20; w++) {
    pid_t pid = layered_spawns ? layered_spawn(true_argv, layer_fd) : fork_exec(true_argv, layer_fd);
    if (pid < 0 || reap(pid, "/bin/true") < 0) return 1;
  }
  double t = now_ns();
  for (long i = 0; i < n; i++) {
    pid_t pid;
    if (layered_spawns) {
      pid = layered_spawn(true_argv, layer_fd);
      if (pid < 0) return 1;
    } else if (spawn) {
      int e = posix_spawn(&pid, "/bin/true", NULL, NULL, true_argv, environ);
      if (e != 0) { fprintf(stderr, "posix_spawn: %s\n", strerror(e)); return 1; }
    } else {
      pid = fork_exec(true_argv, layer_fd);
      if (pid < 0) return 1;
    }
    if (reap(pid, "/bin/true") < 0) return 1;
  }
  printf("us_per_spawn %.2f\n", (now_ns() - t) / n / 1000.0);
  return 0;
}
