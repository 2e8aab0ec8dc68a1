/*
 * tor-nodelay: an LD_PRELOAD shim that sets TCP_NODELAY on every TCP socket a process connects or accepts.
 *
 * Why: tor (0.4.9) sets no TCP_NODELAY on its OR, exit or onion-service sockets, so on a fast link (loopback,
 * a LAN) a small write that follows another unacknowledged one waits for the peer's delayed ACK (Nagle's
 * algorithm, RFC 896, meeting delayed ACKs, RFC 1122 §4.2.3.2). On mmogit's private network that pins every
 * round trip at ~88 ms instead of ~1.5 ms. mmogit builds this file with the system C compiler, never
 * downloads it, and preloads it only into the tors of a private network (docs/tor.md, "TCP_NODELAY").
 *
 * Each wrapper calls the real function found with dlsym(RTLD_NEXT) and keeps its return value and errno.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* TCP_NODELAY on `fd` if it is an IPv4/IPv6 stream socket; never changes errno. */
static void set_nodelay(int fd) {
  int saved = errno;
  int type = 0;
  socklen_t len = sizeof type;
  struct sockaddr_storage addr;
  socklen_t alen = sizeof addr;
  if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM &&
      getsockname(fd, (struct sockaddr *)&addr, &alen) == 0 &&
      (addr.ss_family == AF_INET || addr.ss_family == AF_INET6)) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  errno = saved;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  static int (*real)(int, const struct sockaddr *, socklen_t);
  if (!real) real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  /* Before the call: tor connects non-blocking, and the option holds from the first segment on. An unbound
   * socket's getsockname still reports its family. */
  set_nodelay(fd);
  return real(fd, addr, len);
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
  static int (*real)(int, struct sockaddr *, socklen_t *);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  int s = real(fd, addr, len);
  if (s >= 0) set_nodelay(s);
  return s;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  static int (*real)(int, struct sockaddr *, socklen_t *, int);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  int s = real(fd, addr, len, flags);
  if (s >= 0) set_nodelay(s);
  return s;
}
