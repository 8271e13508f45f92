/* fork; the child opens /dev/null (a shell's redirection) and execvp()s
 * `true`; the parent waits. Prints "PARENT <pid>" and "CHILD <pid>", so a
 * test can tell the two processes' lines apart in LD_DEBUG's output.
 * Exit status: the child's. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  printf("PARENT %d\n", (int)getpid());
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    printf("CHILD %d\n", (int)getpid());
    fflush(stdout);
    int fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) close(fd);
    char *argv[] = {"true", NULL};
    execvp("true", argv);
    perror("execvp");
    _exit(127);
  }
  int status;
  if (waitpid(pid, &status, 0) < 0) {
    perror("waitpid");
    return 1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
