/*
 * unit_turnchan: the TURN channel table (turnchan.c) on a made-up clock:
 * at most 8 channels, each bound once; refreshed a minute before its 10
 * minutes end only if it carried something (RFC 8656 §12); an idle one
 * expires, keeps its number and peer for 5 more minutes (a lapsed peer
 * gets its own number back meanwhile), then goes to another peer; a
 * refused or unanswered one, or one whose refresh went unanswered,
 * only 5 minutes after the server may have let it go.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "turnchan.h"

#define S	1000000ULL	/* a second, in µs */
#define T0	(1000 * S)

/* Peer i: 192.0.2.i:3000 + i. */
static struct sockaddr_storage
peer(int i)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof ss);
	s4->sin_family = AF_INET;
	s4->sin_port = htons(3000 + i);
	s4->sin_addr.s_addr = htonl(0xc0000200 + i);
	return ss;
}

/* The number of peer i's channel that carries datagrams at now, or 0. */
static int
num(struct tchan_table *t, int i, uint64_t now)
{
	struct sockaddr_storage p = peer(i);
	struct tchan *c = tchan_find(t, &p, now);

	return c ? c->num : 0;
}

/* tchan_want for peer i: the number to bind, or 0. */
static int
want(struct tchan_table *t, int i, uint64_t now)
{
	struct sockaddr_storage p = peer(i);
	struct tchan *c = tchan_want(t, &p, now);

	return c ? c->num : 0;
}

int
main(void)
{
	struct tchan_table t;
	struct tchan *c;
	int i;

	memset(&t, 0, sizeof t);
	CHECK(num(&t, 1, T0) == 0);
	CHECK(tchan_deadline(&t) == UINT64_MAX);
	CHECK(tchan_due(&t, T0) == NULL);

	/* Bound once; usable only once the server said so, though its
	 * ChannelData are taken at once. */
	CHECK(want(&t, 1, T0) == 0x4000);
	CHECK(want(&t, 1, T0 + 1) == 0);
	CHECK(num(&t, 1, T0 + 1) == 0);
	CHECK((c = tchan_by_num(&t, 0x4000)) != NULL && c->state == TCHAN_BINDING);
	CHECK(tchan_by_num(&t, 0x4001) == NULL && tchan_by_num(&t, 0x3fff) == NULL);
	tchan_answer(&t.c[0], true, T0 + S / 100);
	CHECK(num(&t, 1, T0 + S) == 0x4000);
	CHECK(want(&t, 1, T0 + S) == 0);

	/* Eight at most. */
	for (i = 2; i <= 8; i++) {
		CHECK(want(&t, i, T0 + 2 * S) == 0x4000 + i - 1);
		tchan_answer(&t.c[i - 1], true, T0 + 2 * S);
	}
	CHECK(want(&t, 9, T0 + 3 * S) == 0);
	CHECK(num(&t, 9, T0 + 3 * S) == 0);

	/* Only peer 1's carried something: it alone is bound again, a
	 * minute before its 10 minutes end, once. */
	t.c[0].used = T0 + 100 * S;
	CHECK(tchan_deadline(&t) == T0 + 540 * S);
	CHECK(tchan_due(&t, T0 + 539 * S) == NULL);
	CHECK((c = tchan_due(&t, T0 + 540 * S)) == &t.c[0]);
	CHECK(tchan_due(&t, T0 + 540 * S) == NULL);
	tchan_answer(c, true, T0 + 540 * S);
	CHECK(c->expires == T0 + 1140 * S);

	/* The others expire 10 minutes after their ChannelBind went... */
	CHECK(num(&t, 2, T0 + 601 * S) == 0x4001 && num(&t, 2, T0 + 603 * S) == 0);
	CHECK(num(&t, 1, T0 + 603 * S) == 0x4000);
	CHECK(tchan_by_num(&t, 0x4001) == NULL);
	/* ...and keep their numbers 5 more minutes: nobody new gets one,
	 * but a peer whose channel lapsed gets its own number back. */
	CHECK(want(&t, 9, T0 + 700 * S) == 0);
	CHECK(want(&t, 3, T0 + 700 * S) == 0x4002);
	tchan_answer(&t.c[2], true, T0 + 700 * S);
	CHECK(num(&t, 3, T0 + 701 * S) == 0x4002);
	CHECK(want(&t, 9, T0 + 901 * S) == 0);
	CHECK(want(&t, 9, T0 + 902 * S) == 0x4001);
	CHECK(num(&t, 2, T0 + 902 * S) == 0);

	/* Refused: not asked for again until the number would be free
	 * had the server bound it (see below), 15 minutes after it was
	 * asked for; then it gets the lowest free one, peer 1's. */
	tchan_answer(&t.c[1], false, T0 + 903 * S);
	CHECK(want(&t, 9, T0 + 904 * S) == 0);
	CHECK(want(&t, 9, T0 + 1801 * S) == 0);
	CHECK(want(&t, 9, T0 + 1802 * S) == 0x4000);

	/* A ChannelBind that no answer came for counts as refused. */
	tchan_answer(&t.c[0], false, T0 + 1840 * S);
	CHECK(t.c[0].state == TCHAN_GONE && want(&t, 9, T0 + 1841 * S) == 0);

	/* RFC 8656 §12's 5 minutes count from when the server lets the
	 * binding go, 10 minutes after the last ChannelBind it may have
	 * taken, answered or not.  Eight peers take every number; peer 1's
	 * ChannelBind is given up on after 40 s: its number may have been
	 * bound at T0, so it is not another's before T0 + 900 s. */
	memset(&t, 0, sizeof t);
	for (i = 1; i <= 8; i++)
		CHECK(want(&t, i, T0) == 0x4000 + i - 1);
	for (i = 2; i <= 8; i++)
		tchan_answer(&t.c[i - 1], true, T0 + S);
	tchan_answer(&t.c[0], false, T0 + 40 * S);
	CHECK(want(&t, 9, T0 + 400 * S) == 0);
	CHECK(want(&t, 9, T0 + 899 * S) == 0);
	CHECK(want(&t, 9, T0 + 900 * S) == 0x4000);

	/* The same for a refresh that got no answer: peer 1's channel,
	 * bound at T0, refreshed at T0 + 540 s, expires for us at T0 + 600 s
	 * but may last at the server until T0 + 1140 s.  The others' go to
	 * new peers at T0 + 900 s; peer 1 may have its own back. */
	memset(&t, 0, sizeof t);
	for (i = 1; i <= 8; i++) {
		CHECK(want(&t, i, T0) == 0x4000 + i - 1);
		tchan_answer(&t.c[i - 1], true, T0 + S);
	}
	t.c[0].used = T0 + 100 * S;
	CHECK((c = tchan_due(&t, T0 + 540 * S)) == &t.c[0]);
	tchan_answer(c, false, T0 + 580 * S);
	CHECK(num(&t, 1, T0 + 599 * S) == 0x4000 && num(&t, 1, T0 + 600 * S) == 0);
	CHECK(want(&t, 9, T0 + 900 * S) == 0x4001);
	CHECK(want(&t, 10, T0 + 1439 * S) == 0x4002);
	CHECK(want(&t, 1, T0 + 1000 * S) == 0x4000);

	printf("unit_turnchan: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
