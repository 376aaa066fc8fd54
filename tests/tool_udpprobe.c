/*
 * tool_udpprobe: a small UDP tool to check the NAT lab without p2pcat.
 *
 *   echo ADDR:PORT...           answer on each address: "WHOAMI" gets
 *                               "YOUARE ip:port" (the source seen), other
 *                               datagrams come back unchanged
 *   map [-b port] [-t ttl] [-w ms] DEST...
 *                               from ONE socket ask each DEST "WHOAMI"; print
 *                               "DEST ip:port" per DEST, in order: the same
 *                               port for every DEST means a cone NAT
 *   ping [-b port] [-c n] [-i us] [-s size] [-w ms] DEST
 *                               n numbered datagrams to an echo server; prints
 *                               sent, received, lost, reordered, duplicates
 *                               and rtt min/avg/max in ms
 *   punch [-b port] [-d ms] [-n count] [-t ttl] [-w ms] PEER
 *                               after ms (a stagger between the two sides),
 *                               send to PEER every 20 ms, the first count
 *                               with IP TTL ttl; succeed on a datagram from
 *                               PEER exactly (others are printed as prflx)
 *   send [-b port] [-t ttl] DEST TEXT
 *   recv [-b port] [-w ms]      print the first datagram's source and text
 *
 * Addresses are IPv4 "a.b.c.d:port".  Exit status: 0 success, 1 misuse or
 * a system error, 2 timeout (no answer, no punch, nothing received).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXDEST 16
#define PUNCH_INTERVAL_MS 20
#define PUNCH_LINGER_MS 300   /* keep sending after success so the peer sees us */

static int opt_port, opt_ttl, opt_delay, opt_count = -1, opt_size = 64, opt_wait = 3000;
static long opt_interval = 1000;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void usage(void)
{
	fputs("usage: tool_udpprobe echo ADDR:PORT...\n"
	    "       tool_udpprobe map [-b port] [-t ttl] [-w ms] DEST...\n"
	    "       tool_udpprobe ping [-b port] [-c n] [-i us] [-s size] [-w ms] DEST\n"
	    "       tool_udpprobe punch [-b port] [-d ms] [-n count] [-t ttl] [-w ms] PEER\n"
	    "       tool_udpprobe send [-b port] [-t ttl] DEST TEXT\n"
	    "       tool_udpprobe recv [-b port] [-w ms]\n", stderr);
	exit(1);
}

static long num(const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "tool_udpprobe: bad number `%s'\n", s);
		exit(1);
	}
	return v;
}

static bool parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof host)
		goto bad;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		goto bad;
	sa->sin_port = htons((uint16_t)num(colon + 1, 0, 65535));
	return true;
bad:
	fprintf(stderr, "tool_udpprobe: bad address `%s'\n", s);
	exit(1);
}

static const char *fmt(const struct sockaddr_in *sa)
{
	static char buf[4][32];
	static int i;
	char ip[INET_ADDRSTRLEN];
	i = (i + 1) % 4;
	inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
	snprintf(buf[i], sizeof buf[i], "%s:%u", ip, ntohs(sa->sin_port));
	return buf[i];
}

static bool same(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* A UDP socket bound to addr (or INADDR_ANY:opt_port); exits on failure. */
static int udp_socket(const struct sockaddr_in *addr)
{
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port) };
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("tool_udpprobe: socket");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (!addr)
		addr = &any;
	if (bind(fd, (const struct sockaddr *)addr, sizeof *addr) < 0) {
		fprintf(stderr, "tool_udpprobe: bind %s: %s\n", fmt(addr), strerror(errno));
		exit(1);
	}
	return fd;
}

static void set_ttl(int fd, int ttl)
{
	if (setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) < 0) {
		perror("tool_udpprobe: IP_TTL");
		exit(1);
	}
}

static void send_to(int fd, const void *buf, size_t len, const struct sockaddr_in *to)
{
	/* ECONNREFUSED and friends (ICMP errors) are normal while punching. */
	if (sendto(fd, buf, len, 0, (const struct sockaddr *)to, sizeof *to) < 0 &&
	    errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH)
		fprintf(stderr, "tool_udpprobe: sendto %s: %s\n", fmt(to), strerror(errno));
}

/* Waits up to ms for a datagram; returns its length, or -1 on timeout. */
static ssize_t recv_wait(int fd, void *buf, size_t size, struct sockaddr_in *from, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	for (;;) {
		int n = poll(&pfd, 1, ms < 0 ? 0 : ms);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		socklen_t sl = sizeof *from;
		ssize_t r = recvfrom(fd, buf, size, 0, (struct sockaddr *)from, &sl);
		if (r >= 0)
			return r;
		if (errno != ECONNREFUSED && errno != EINTR && errno != EAGAIN)
			return -1;
	}
}

static int do_echo(int argc, char **argv)
{
	struct pollfd pfd[MAXDEST];
	int n = 0;
	if (argc < 1 || argc > MAXDEST)
		usage();
	for (; n < argc; n++) {
		struct sockaddr_in sa;
		parse_addr(argv[n], &sa);
		pfd[n].fd = udp_socket(&sa);
		pfd[n].events = POLLIN;
	}
	for (;;) {
		unsigned char buf[65536];
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("tool_udpprobe: poll");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct sockaddr_in from;
			socklen_t sl = sizeof from;
			if (!(pfd[i].revents & POLLIN))
				continue;
			ssize_t r = recvfrom(pfd[i].fd, buf, sizeof buf, MSG_DONTWAIT,
			    (struct sockaddr *)&from, &sl);
			if (r < 0)
				continue;
			if (r >= 6 && memcmp(buf, "WHOAMI", 6) == 0)
				r = snprintf((char *)buf, sizeof buf, "YOUARE %s", fmt(&from));
			send_to(pfd[i].fd, buf, (size_t)r, &from);
		}
	}
}

static int do_map(int argc, char **argv)
{
	struct sockaddr_in dst[MAXDEST];
	char seen[MAXDEST][128] = { { 0 } };
	int n = argc, left = argc;
	if (n < 1 || n > MAXDEST)
		usage();
	for (int i = 0; i < n; i++)
		parse_addr(argv[i], &dst[i]);
	int fd = udp_socket(NULL);
	if (opt_ttl)
		set_ttl(fd, opt_ttl);
	uint64_t end = now_us() + (uint64_t)opt_wait * 1000;
	while (left > 0 && now_us() < end) {
		for (int i = 0; i < n; i++)
			if (!seen[i][0])
				send_to(fd, "WHOAMI", 6, &dst[i]);
		uint64_t next = now_us() + 100000;
		for (uint64_t t; left > 0 && (t = now_us()) < next;) {
			char buf[128];
			struct sockaddr_in from;
			ssize_t r = recv_wait(fd, buf, sizeof buf - 1, &from, (int)((next - t) / 1000));
			if (r < 0)
				break;
			buf[r] = '\0';
			for (int i = 0; i < n; i++)
				if (!seen[i][0] && same(&from, &dst[i]) && strncmp(buf, "YOUARE ", 7) == 0) {
					snprintf(seen[i], sizeof seen[i], "%s", buf + 7);
					left--;
				}
		}
	}
	for (int i = 0; i < n; i++)
		printf("%s %s\n", argv[i], seen[i][0] ? seen[i] : "-");
	return left ? 2 : 0;
}

struct ping_hdr {
	uint32_t seq;
	uint64_t sent_us;
};

static int do_ping(int argc, char **argv)
{
	struct sockaddr_in dst;
	if (argc != 1)
		usage();
	parse_addr(argv[0], &dst);
	int count = opt_count < 0 ? 10 : opt_count;
	if (opt_size < (int)sizeof(struct ping_hdr))
		opt_size = sizeof(struct ping_hdr);
	unsigned char *seenmap = calloc((size_t)count + 1, 1);
	unsigned char buf[65536];
	if (!seenmap)
		return 1;
	int fd = udp_socket(NULL);
	int sent = 0, got = 0, reord = 0, dups = 0;
	long maxseq = -1;
	double rmin = 1e18, rmax = 0, rsum = 0;
	uint64_t next = now_us(), deadline = 0;
	memset(buf, 'p', sizeof buf);
	for (;;) {
		uint64_t t = now_us();
		if (sent < count && t >= next) {
			struct ping_hdr h = { .seq = (uint32_t)sent, .sent_us = t };
			memcpy(buf, &h, sizeof h);
			send_to(fd, buf, (size_t)opt_size, &dst);
			sent++;
			next += (uint64_t)opt_interval;
			if (sent == count)
				deadline = t + (uint64_t)opt_wait * 1000;
		}
		if (sent == count && (got - dups == count || t >= deadline))
			break;
		uint64_t until = sent < count ? next : deadline;
		int ms = until > t ? (int)((until - t + 999) / 1000) : 0;
		struct sockaddr_in from;
		unsigned char in[65536];
		ssize_t r = recv_wait(fd, in, sizeof in, &from, ms);
		while (r >= (ssize_t)sizeof(struct ping_hdr)) {
			struct ping_hdr h;
			memcpy(&h, in, sizeof h);
			if (same(&from, &dst) && h.seq < (uint32_t)count) {
				double rtt = (double)(now_us() - h.sent_us) / 1000.0;
				got++;
				if (seenmap[h.seq]) {
					dups++;
				} else {
					seenmap[h.seq] = 1;
					if ((long)h.seq < maxseq)
						reord++;
					else
						maxseq = (long)h.seq;
					rsum += rtt;
					rmin = rtt < rmin ? rtt : rmin;
					rmax = rtt > rmax ? rtt : rmax;
				}
			}
			r = recv_wait(fd, in, sizeof in, &from, -1);
		}
	}
	int uniq = got - dups;
	printf("sent %d received %d lost %d reordered %d duplicates %d rtt %.3f/%.3f/%.3f\n",
	    sent, uniq, sent - uniq, reord, dups, uniq ? rmin : 0,
	    uniq ? rsum / uniq : 0, rmax);
	free(seenmap);
	return uniq > 0 ? 0 : 2;
}

static int do_punch(int argc, char **argv)
{
	struct sockaddr_in peer;
	if (argc != 1)
		usage();
	parse_addr(argv[0], &peer);
	int fd = udp_socket(NULL);
	int low = opt_count < 0 ? 0 : opt_count, sent = 0;
	int defttl = 64;
	socklen_t tl = sizeof defttl;
	getsockopt(fd, IPPROTO_IP, IP_TTL, &defttl, &tl);
	if (low > 0 && opt_ttl)
		set_ttl(fd, opt_ttl);
	uint64_t start = now_us(), end = start + (uint64_t)opt_wait * 1000, ok_at = 0;
	uint64_t next = start + (uint64_t)opt_delay * 1000;
	char prflx[32] = "";
	while (now_us() < end) {
		uint64_t t = now_us();
		if (ok_at && t >= ok_at + PUNCH_LINGER_MS * 1000)
			break;
		if (t >= next) {
			if (sent == low && low > 0 && opt_ttl)
				set_ttl(fd, defttl);
			send_to(fd, "PUNCH", 5, &peer);
			sent++;
			next += PUNCH_INTERVAL_MS * 1000;
		}
		char buf[64];
		struct sockaddr_in from;
		t = now_us();
		ssize_t r = recv_wait(fd, buf, sizeof buf, &from, next > t ? (int)((next - t + 999) / 1000) : 0);
		if (r < 0)
			continue;
		if (same(&from, &peer)) {
			if (!ok_at) {
				ok_at = now_us();
				printf("ok %s after %d packets %.0f ms\n", fmt(&peer), sent,
				    (double)(ok_at - start) / 1000);
				fflush(stdout);
			}
		} else if (strcmp(prflx, fmt(&from)) != 0) {
			snprintf(prflx, sizeof prflx, "%s", fmt(&from));
			printf("prflx %s\n", prflx);
			fflush(stdout);
		}
	}
	if (!ok_at)
		printf("fail %s after %d packets\n", fmt(&peer), sent);
	return ok_at ? 0 : 2;
}

static int do_send(int argc, char **argv)
{
	struct sockaddr_in dst;
	if (argc != 2)
		usage();
	parse_addr(argv[0], &dst);
	int fd = udp_socket(NULL);
	if (opt_ttl)
		set_ttl(fd, opt_ttl);
	send_to(fd, argv[1], strlen(argv[1]), &dst);
	return 0;
}

static int do_recv(int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		usage();
	int fd = udp_socket(NULL);
	char buf[2048];
	struct sockaddr_in from;
	ssize_t r = recv_wait(fd, buf, sizeof buf - 1, &from, opt_wait);
	if (r < 0) {
		printf("nothing\n");
		return 2;
	}
	buf[r] = '\0';
	printf("%s %s\n", fmt(&from), buf);
	return 0;
}

int main(int argc, char **argv)
{
	int c;
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	argv++;
	argc--;
	while ((c = getopt(argc, argv, "b:c:d:i:n:s:t:w:")) != -1) {
		switch (c) {
		case 'b': opt_port = (int)num(optarg, 0, 65535); break;
		case 'c': opt_count = (int)num(optarg, 0, 10000000); break;
		case 'd': opt_delay = (int)num(optarg, 0, 3600000); break;
		case 'i': opt_interval = num(optarg, 0, 10000000); break;
		case 'n': opt_count = (int)num(optarg, 0, 10000000); break;
		case 's': opt_size = (int)num(optarg, 1, 65000); break;
		case 't': opt_ttl = (int)num(optarg, 1, 255); break;
		case 'w': opt_wait = (int)num(optarg, 0, 3600000); break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "echo") == 0)
		return do_echo(argc, argv);
	if (strcmp(mode, "map") == 0)
		return do_map(argc, argv);
	if (strcmp(mode, "ping") == 0)
		return do_ping(argc, argv);
	if (strcmp(mode, "punch") == 0)
		return do_punch(argc, argv);
	if (strcmp(mode, "send") == 0)
		return do_send(argc, argv);
	if (strcmp(mode, "recv") == 0)
		return do_recv(argc, argv);
	usage();
}
