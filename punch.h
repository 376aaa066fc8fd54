/*
 * punch.h: candidates, paths and hole punching.
 *
 * A punch owns the UDP socket and every path to the peer: it gathers our
 * candidates, probes every candidate of the peer at once, and sends the
 * session's packets on the best path that works.  It never sees a key:
 * the caller's probes are built by the session (they carry its handshake),
 * the listener's are plain KNOCKs that only open its NAT, and a path is
 * chosen only when the session says it has authenticated a packet that
 * came over it (punch_confirm), and moved only to an address that
 * answered a PATH_CHALLENGE (punch_response).
 */
#ifndef PUNCH_H
#define PUNCH_H

#include <sys/socket.h>
#include <sys/types.h>

#include <pthread.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PUNCH_MAX_CANDS	32
#define PUNCH_MAX_STUN	4

enum cand_type { CAND_HOST = 0, CAND_SRFLX = 1, CAND_RELAY = 2, CAND_PRFLX = 3 };

struct cand {
	uint8_t type;			/* enum cand_type */
	struct sockaddr_storage addr;	/* AF_INET or AF_INET6 */
};

/* Birthday probes a process may send at guessed ports, across all its
 * sessions (a token bucket; zeroed is full).  An offer that claims a
 * symmetric NAT makes the listener spray its address: offers forged one
 * after another must not turn a listener into a flood. */
struct punch_budget {
	bool init;
	double tokens;
	uint64_t at;
	/* Where the budget is shared by processes (a listener's children),
	 * the process-shared robust mutex that guards it; else NULL. */
	pthread_mutex_t *lock;
};

struct punch_conf {
	int port;			/* local UDP port; 0: any */
	bool caller;			/* we made the offer */
	int nstun;
	const char *stun[PUNCH_MAX_STUN];	/* "host:port" STUN servers */
	const char *turn;		/* "turn://user:pass@host:port" or NULL */
	struct punch_budget *spray;	/* shared by sessions, or NULL */
};

/* Builds the caller's probe into buf: its length, or 0. */
typedef size_t (*punch_probe_fn)(void *ctx, uint8_t *buf, size_t cap);

struct punch;

/* A punch with its socket and host candidates, or NULL after printing
 * why.  Freed by punch_free (closes the socket), a no-op on NULL. */
struct punch *punch_new(const struct punch_conf *c);
void punch_free(struct punch *p);
/* Gather server-reflexive and relayed candidates (STUN, TURN), waiting at
 * most until deadline (now_us() time): 0, or -1 after printing why. */
int punch_gather(struct punch *p, uint64_t deadline);
/* A STUN server ("host:port", "[v6addr]:port", or "host" for port
 * 3478) or, with turn, a TURN URL ("turn://user:pass@host:port"), as
 * settings give them: whether it is well formed and, with lookup,
 * whether its host resolves.  0; 1 when the resolver could not be
 * reached (EAI_AGAIN: each session tries again); -1 otherwise; said
 * why, either way, never the credentials. */
int punch_check_server(const char *spec, bool turn, bool lookup);
/* Whether UDP port (not 0) can be bound now: 0, or -1 after printing why. */
int punch_port_check(int port);
int punch_fd(const struct punch *p);
/* Our candidates to advertise: their count (at most max). */
int punch_local(const struct punch *p, struct cand *c, int max);

/* Start probing the peer's candidates.  The caller's probes come from fn;
 * the listener sends KNOCKs.  Both carry the connection ids. */
void punch_start(struct punch *p, uint32_t my_cid, uint32_t peer_cid,
    const struct cand *remote, int n, punch_probe_fn fn, void *ctx);

/* Every datagram the socket receives goes here first.  1: it is a p2pcat
 * packet for the session, now in buf[0, *len) (unwrapped if it came over
 * the relay), from the peer's address *from over path *via; 0: the punch
 * took it (STUN, TURN, KNOCK, noise). */
int punch_input(struct punch *p, uint64_t now, uint8_t *buf, size_t *len,
    struct sockaddr_storage *from, int *via);
/* The session authenticated a fresh packet of len bytes that arrived as
 * (from, via), one that carries more than PATH_CHALLENGE or
 * PATH_RESPONSE frames: the peer is alive.  The first one chooses the
 * path; a later one from elsewhere only starts checking that address
 * (see punch_challenge), and the path moves there once it answers. */
void punch_confirm(struct punch *p, uint64_t now,
    const struct sockaddr_storage *from, int via, size_t len);
/* A run of datagrams back to back: seg bytes each, the last one may be
 * shorter.  UDP GSO sends a run in one go where the kernel can. */
struct punch_run {
	const uint8_t *buf;
	size_t len, seg;
};
#define PUNCH_MAX_RUNS	64
/* A run's bounds: what one UDP GSO send may carry (Linux before 6.9
 * takes at most 64 segments; one IP packet's worth of bytes). */
#define PUNCH_RUN_SEGS	64
#define PUNCH_RUN_BYTES	64000
/* Send n runs to the peer on the best working path: how many went whole
 * (or were lost, as UDP may).  Fewer than n: the socket is full, and run
 * [return] has been advanced past what went; retry the rest on POLLOUT.
 * -1: error. */
int punch_sendv(struct punch *p, struct punch_run *r, int n);
/*
 * Path validation (RFC 9000 §8.2).  punch_challenge is true when a
 * PATH_CHALLENGE is due, with its data in data: to a new address the
 * peer's packets came from, or, on a relay, to the direct path that
 * worked before.  The session seals it and hands it to punch_probe,
 * which sends it there (or not, when that address has not sent us a
 * third of it yet: RFC 9000 §8.1).  The PATH_RESPONSE with that data,
 * whichever way it comes (§8.2.3), is what moves the path there
 * (punch_response): it proves the peer gets what we send there, which
 * a packet from there does not.
 */
#define PUNCH_CHALLENGE_LEN	8
bool punch_challenge(struct punch *p, uint64_t now, uint8_t data[PUNCH_CHALLENGE_LEN]);
void punch_probe(struct punch *p, uint64_t now, const uint8_t *buf, size_t len);
void punch_response(struct punch *p, uint64_t now, const uint8_t data[PUNCH_CHALLENGE_LEN]);
/* The largest datagram punch_probe may send for the PATH_CHALLENGE
 * punch_challenge just made due, and punch_reply to (to, via), from
 * which a datagram of in bytes just came: to an address not validated,
 * three times what came from there less what went (RFC 9000 §8.1);
 * SIZE_MAX when no limit applies. */
size_t punch_probe_room(const struct punch *p);
size_t punch_reply_room(const struct punch *p, const struct sockaddr_storage *to, int via,
    size_t in);
/* Send a PATH_RESPONSE back the way its challenge came (from, via, as
 * punch_input gave them), through our relay if it came that way. */
void punch_reply(struct punch *p, uint64_t now, const struct sockaddr_storage *to, int via,
    const uint8_t *buf, size_t len);
/* Send what is due (probes, knocks, keepalives of the relay). */
void punch_output(struct punch *p, uint64_t now);
/* When punch_output must run next (UINT64_MAX: never). */
uint64_t punch_deadline(const struct punch *p);
/* The time from punch_start to the first confirmed path (µs); for the
 * caller, whose probe the listener answered, one round trip. */
uint64_t punch_first_us(const struct punch *p);
/* The network path the peer is on, as a number: it changes when the
 * path moves to another address of the peer's, or through a TURN relay
 * instead of directly or back, but not to another port alone (RFC 9000
 * §9.4: NAT rebinding).  Back on the network path it left last, the
 * path takes that one's number again; any other gets a new one (0 is
 * the first).  A change tells the session to move the stream's
 * congestion control and RTT to that path (stream_path_move). */
unsigned punch_path_id(const struct punch *p);
/* true once a path has been confirmed. */
bool punch_ready(const struct punch *p);
/* true when the chosen path goes through a TURN relay (ours or the peer's). */
bool punch_relayed(const struct punch *p);
/* The chosen path and why, for -v. */
const char *punch_describe(const struct punch *p, char *buf, size_t size);

/* The next datagram on the punch's sockets, for punch_input to take:
 * its length, with *pkt pointing into the punch's buffer (writable, valid
 * until the next call), or -1 with errno (EAGAIN: nothing waiting).
 * Datagrams are read in batches (recvmmsg) and runs the kernel coalesced
 * (UDP GRO) are split here, so each call returns one datagram. */
ssize_t punch_recv(struct punch *p, uint8_t **pkt, struct sockaddr_storage *from);

/* Helpers on addresses. */
bool punch_same_addr(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b);
/* "1.2.3.4:5" or "[::1]:5" into buf (64 bytes will do); returns buf. */
const char *punch_addrstr(const struct sockaddr_storage *a, char *buf, size_t size);

#endif
