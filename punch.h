/*
 * punch.h: candidates and hole punching.  A punch probes every pair of
 * the peer's candidates at once with authenticated probes until one
 * answers; the session feeds it the probe packets it receives.
 */
#ifndef PUNCH_H
#define PUNCH_H

#include <sys/socket.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PUNCH_MAX_CANDS	32

enum cand_type { CAND_HOST = 0, CAND_SRFLX = 1, CAND_RELAY = 2, CAND_PRFLX = 3 };

struct cand {
	uint8_t type;			/* enum cand_type */
	struct sockaddr_storage addr;	/* AF_INET or AF_INET6 */
};

struct punch;

/* A UDP socket (dual-stack when the host has IPv6) bound to port (0: any),
 * non-blocking; the fd, or -1 after printing why. */
int punch_socket(int port);
/* Host candidates: every up, non-link-local address with the socket's
 * port, loopback last.  The count (0..max). */
int punch_gather(int fd, struct cand *c, int max);
/* recvfrom/sendto on a punch_socket, hiding v4-mapped addresses. */
ssize_t punch_recv(int fd, void *buf, size_t cap, struct sockaddr_storage *from);
ssize_t punch_send(int fd, const void *buf, size_t len,
    const struct sockaddr_storage *to);
bool punch_same_addr(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b);
/* "1.2.3.4:5" or "[::1]:5" into buf (at least 64 bytes); returns buf. */
const char *punch_addrstr(const struct sockaddr_storage *a, char *buf, size_t size);

/* A punch on fd from my_cid to the peer's peer_cid, probes authenticated
 * with key.  NULL on ENOMEM.  punch_free(NULL) is a no-op. */
struct punch *punch_new(int fd, const uint8_t key[32], uint32_t my_cid,
    uint32_t peer_cid);
void punch_free(struct punch *p);
void punch_add(struct punch *p, const struct cand *c);
/* Take a received PROBE or PROBE_ACK: 1 when it proved a path (an
 * authenticated answer to our probe), 0 otherwise. */
int punch_input(struct punch *p, uint64_t now, const uint8_t *pkt, size_t len,
    const struct sockaddr_storage *from);
/* Send the probes that are due. */
void punch_output(struct punch *p, uint64_t now);
/* When punch_output must run next (UINT64_MAX: never). */
uint64_t punch_deadline(const struct punch *p);
/* The first address that answered, if any: true and *addr set. */
bool punch_path(const struct punch *p, struct sockaddr_storage *addr);

#endif
