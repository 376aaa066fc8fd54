/* tun.c: what the TUN test tools (tool_netem, tool_mitm) share. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tun.h"

#define TUN_QLEN 4096	/* the kernel's queue toward us (default 500) */

volatile sig_atomic_t tun_stop;
static volatile sig_atomic_t dump;

static sigset_t waitmask;	/* the mask while tun_wait waits */
static uint64_t rng_state;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		dump = 1;
	else
		tun_stop = 1;
}

/* Catch SIGTERM, SIGINT and SIGUSR1; block them but in tun_wait. */
static void
catch_signals(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGUSR1 };
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		sigaction(sigs[i], &sa, NULL);
		sigaddset(&block, sigs[i]);
	}
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigdelset(&waitmask, sigs[i]);
}

/* Create the TUN device name, set its MTU and queue length and bring it
 * up: its fd, or -1. */
static int
open_tun(const char *name)
{
	const char *prog = program_invocation_short_name;
	struct ifreq ifr;
	int fd, s, ok;

	if (strlen(name) >= IFNAMSIZ) {
		fprintf(stderr, "%s: bad interface `%s'\n", prog, name);
		return -1;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: /dev/net/tun: %s\n", prog, strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "%s: TUNSETIFF `%s': %s\n", prog, name,
		    strerror(errno));
		close(fd);
		return -1;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		fprintf(stderr, "%s: socket: %s\n", prog, strerror(errno));
		close(fd);
		return -1;
	}
	ifr.ifr_mtu = TUN_MTU;
	ok = ioctl(s, SIOCSIFMTU, &ifr) == 0;
	ifr.ifr_qlen = TUN_QLEN;
	ok = ok && ioctl(s, SIOCSIFTXQLEN, &ifr) == 0 &&
	    ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
	ifr.ifr_flags |= IFF_UP;
	ok = ok && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
	if (!ok) {
		fprintf(stderr, "%s: configuring `%s': %s\n", prog, name,
		    strerror(errno));
		close(s);
		close(fd);
		return -1;
	}
	close(s);
	return fd;
}

int
tun_start(const char *name, uint64_t seed)
{
	rng_state = seed;
	catch_signals();
	return open_tun(name);
}

int
tun_wait(int fd, const struct timespec *timeout, void (*report)(void))
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n;

	if (dump) {
		dump = 0;
		report();
	}
	n = ppoll(&pfd, 1, timeout, &waitmask);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		fprintf(stderr, "%s: poll: %s\n", program_invocation_short_name,
		    strerror(errno));
		return -1;
	}
	return n > 0 && (pfd.revents & POLLIN);
}

ssize_t
tun_read(int fd, void *buf, size_t size)
{
	ssize_t len = read(fd, buf, size);

	if (len >= 0)
		return len;
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	fprintf(stderr, "%s: read: %s\n", program_invocation_short_name,
	    strerror(errno));
	return -1;
}

uint64_t
tun_rand(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

bool
tun_chance(double p)
{
	if (p <= 0)
		return false;
	return (double)(tun_rand() >> 11) * 0x1.0p-53 < p;
}
