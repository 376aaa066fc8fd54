/*
 * unit_punch: punch_gather's wait for a TURN server that does not
 * answer (or answers the Bindings and not the Allocate) sleeps in poll
 * until something is due, and ends when gathering's 2.5 s are up.
 *
 * The clock is the test's (util_test_set_clock) and so is poll(2): this
 * test is linked with -Wl,--wrap=poll, and a poll moves the clock as
 * far as it would have waited.  A poll that would not wait, again and
 * again with nothing due, is a busy loop: after SPIN of them in a row
 * the clock jumps past the end, so that gathering ends, and the test
 * fails.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "punch.h"
#include "stun.h"
#include "util.h"

int __real_poll(struct pollfd *, nfds_t, int);
int __wrap_poll(struct pollfd *, nfds_t, int);

#define T0	(1000ULL * 1000000)
#define SPIN	100

static uint64_t clock_us = T0;
static int server = -1, polls, zeros;
static bool spun, answer_bindings;

/* Answer the Binding requests waiting at the server (the TTL probes
 * punch_gather sends it), and drop the rest. */
static void
serve(void)
{
	uint8_t buf[STUN_MSG_MAX];
	struct sockaddr_storage from;
	socklen_t fl = sizeof from;
	struct stun_view v;
	struct stun_msg m;
	ssize_t n;

	while ((n = recvfrom(server, buf, sizeof buf, MSG_DONTWAIT,
	    (struct sockaddr *)&from, &fl)) >= 0) {
		if (!answer_bindings || stun_parse(buf, n, &v) == -1 ||
		    v.method != STUN_BINDING || v.cls != STUN_REQUEST)
			continue;
		stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_SUCCESS), v.txid);
		stun_add_addr(&m, STUN_ATTR_XOR_MAPPED_ADDRESS, (struct sockaddr *)&from);
		if (stun_finish(&m, NULL, 0, STUN_FINGERPRINT) == 0)
			sendto(server, m.buf, m.len, 0, (struct sockaddr *)&from, fl);
		fl = sizeof from;
	}
}

int
__wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	serve();
	polls++;
	if (timeout != 0) {
		zeros = 0;
		clock_us += (uint64_t)timeout * 1000;
	} else if (++zeros == SPIN) {
		spun = true;
		clock_us += 60000000;
	}
	return __real_poll(fds, nfds, 0);
}

/* Gather against the silent server: whether it ended, without
 * spinning, when gathering's time for TURN was up. */
static void
gather(bool bindings)
{
	struct punch_conf c = { .caller = true };
	struct cand cands[PUNCH_MAX_CANDS];
	static struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;
	struct punch *p;
	char url[64];
	int i, n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (server == -1 &&
	    ((server = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(server, (struct sockaddr *)&sa, sizeof sa) == -1 ||
	    getsockname(server, (struct sockaddr *)&sa, &sl) == -1)) {
		perror("unit_punch: server socket");
		failures++;
		return;
	}
	snprintf(url, sizeof url, "turn://u:p@127.0.0.1:%u", ntohs(sa.sin_port));
	c.turn = url;
	answer_bindings = bindings;
	polls = zeros = 0;
	spun = false;
	clock_us = T0;
	CHECK((p = punch_new(&c)) != NULL);
	if (p == NULL)
		return;
	CHECK(punch_gather(p, T0 + 10000000) == 0);
	CHECK(!spun);
	/* Retransmissions, TTL rounds, and the end: a few polls. */
	CHECK(polls < 30);
	CHECK(clock_us == T0 + 2500000);
	n = punch_local(p, cands, PUNCH_MAX_CANDS);
	for (i = 0; i < n; i++)
		CHECK(cands[i].type == CAND_HOST);
	punch_free(p);
}

int
main(void)
{
	util_test_set_clock(&clock_us);
	gather(false);
	gather(true);
	printf("unit_punch: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
