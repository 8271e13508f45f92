/* Forges a launch registration the way a tool would try: one datagram to
 * agent-init's launch socket naming a launcher's device and inode, with
 * descriptors of its choosing and one end of a socket pair for the reply.
 * Built with gcc -static (no preload at all: raw system calls only).
 * Usage: forge_launch SOCKET DEV INO MODE PATH
 *   MODE none:  no proof descriptor (only the reply end is passed);
 *        opath: PATH opened O_PATH (allowed under Landlock);
 *        read:  PATH opened for reading (the probe: denied to a tool).
 * Prints "ACCEPTED" (exit 0), "REFUSED" (exit 1) or "OPEN-DENIED <error>"
 * (exit 2: the descriptor could not even be opened). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: forge_launch SOCKET DEV INO none|opath|read PATH\n");
    return 64;
  }
  int proof = -1;
  if (strcmp(argv[4], "opath") == 0) {
    proof = open(argv[5], O_PATH | O_CLOEXEC);
  } else if (strcmp(argv[4], "read") == 0) {
    proof = open(argv[5], O_RDONLY | O_CLOEXEC);
  }
  if (strcmp(argv[4], "none") != 0 && proof < 0) {
    printf("OPEN-DENIED %s\n", strerror(errno));
    return 2;
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    perror("socketpair");
    return 70;
  }
  char req[128];
  int n = snprintf(req, sizeof req, "agent-vault-launch-1%c%s%c%s%c-%c", 0, argv[2], 0,
                   argv[3], 0, 0);
  int fds[2];
  int nfds = 0;
  if (proof >= 0) fds[nfds++] = proof;
  fds[nfds++] = pair[1];
  char control[CMSG_SPACE(sizeof fds)];
  memset(control, 0, sizeof control);
  struct iovec iov = {req, (size_t)n};
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
  struct msghdr msg = {0};
  msg.msg_name = &addr;
  msg.msg_namelen = sizeof addr;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
  memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0 || sendmsg(s, &msg, 0) < 0) {
    printf("SEND-FAILED %s\n", strerror(errno));
    return 3;
  }
  close(pair[1]);
  struct pollfd p = {pair[0], POLLIN, 0};
  char reply[8] = {0};
  if (poll(&p, 1, 10000) == 1 && read(pair[0], reply, sizeof reply - 1) == 2 &&
      memcmp(reply, "ok", 2) == 0) {
    printf("ACCEPTED\n");
    return 0;
  }
  printf("REFUSED\n");
  return 1;
}
