/*
 * serve.c: the listener.
 *
 * The parent process waits on the rendezvous for offers and is the only
 * one that talks to the store.  Each offer it takes goes to a child
 * process of its own, which gathers candidates, makes the answer, punches
 * and runs the session; so one offer that is bogus, refused or abandoned
 * never delays the next caller, and a child that fails takes nothing else
 * down.  A child hands its answer to the parent over a SOCK_SEQPACKET
 * socket, which is also the rendezvous wait's wake descriptor (SIGCHLD
 * writes to it too), and the parent deletes the answer when the child is
 * gone, whatever became of it.
 *
 * A child that connects takes a session slot (in memory shared by the
 * processes), and one that connects while every slot is taken tells its
 * caller that the listener is busy.  Sessions on stdin and stdout have
 * one slot: while a session has them, the parent leaves further offers in
 * the store, as a listener that served one session at a time always did,
 * to be taken when it ends, if their callers still wait; with -k, a child
 * that connects meanwhile waits for its turn, its session kept alive.  Sessions that
 * run a command each (-e, -c) have --max-conns slots, and the parent goes
 * on taking offers, so that a caller over the limit is told at once.
 *
 * The children also share the budget for birthday probes (punch.h), and
 * whether stdin has ended, which stays so across -k sessions.
 *
 * In passphrase mode each caller that fails the passphrase is one online
 * guess.  The child that refused it counts it in shared memory before the
 * caller can learn of it (sess_conf's guessed), so that ending the child
 * at once cannot hide it, and wakes the parent, which then takes no offer
 * for a while (one it took meanwhile waits in memory),
 * twice as long after each failure in a row, and works on one offer at a
 * time until a caller connects: a guesser gets at most the offers taken
 * at once (max_kids), at most 10 more in 17 minutes (pauses of 1, 2, ...
 * 512 s), then one every BACKOFF_MAX_US, 96 a day; each session that
 * connects starts the count again.  Callers cannot be told apart before
 * they prove something (their addresses are their own word), so
 * the listener as a whole slows down, for everyone: who can post offers
 * can delay a listener, as who can delete them can stop it.
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p2pcat.h"
#include "punch.h"
#include "serve.h"
#include "signal.h"
#include "util.h"

#define STOP_GRACE_US	2000000	/* children have this long to end on SIGTERM */
/* A child's exit status that only the parent sees: its caller failed the
 * passphrase.  The guess is counted in shared memory, and the child said
 * why; the status only keeps the parent from calling it a caller that did
 * not connect.  Apart from p2pcat.h's. */
#define KID_PASSPHRASE	64
/* After n failed passphrases in a row, no offer is taken for
 * BACKOFF_MIN_US * 2^(n-1), at most BACKOFF_MAX_US. */
#define BACKOFF_MIN_US	1000000ULL
#define BACKOFF_MAX_US	(900ULL * 1000000)

/* Messages from a child to the parent. */
enum {
	UP_WAKE = 'W',		/* nothing: SIGCHLD, a signal or a guess woke us */
	UP_ANSWER = 'A',	/* post this answer */
	UP_CONNECTED = 'C',	/* the caller proved its keys */
	UP_SLOT = 'S',		/* and took a session slot */
};

struct up_msg {
	uint8_t type;
	pid_t pid;
	char id[SIG_ID_LEN + 1];
	uint16_t len;
	uint8_t blob[SIG_MAX_BLOB];
};

/* What the processes share, in MAP_SHARED memory. */
struct shared {
	pthread_mutex_t mu;		/* process-shared, robust */
	bool in_eof;			/* stdin has ended */
	unsigned guesses;		/* failed passphrases (atomic) */
	struct punch_budget spray;
	/* c->max_sessions entries, the children in a session, or 0; then
	 * c->max_kids: whether the child at that index of struct serve's
	 * kid[] has connected (set under mu, so that the parent never
	 * ends a session that has begun as an abandoned offer). */
	pid_t slot[];
};

struct kid {
	pid_t pid;			/* 0: a free entry */
	char id[SIG_ID_LEN + 1];	/* the offer it works on */
	uint64_t born;			/* now_us() */
	bool answered;			/* its answer is in the store */
	bool connected;			/* its caller took the answer */
	bool evicted;			/* we ended it for a newer offer */
	char tag[9];			/* its messages' tag */
};

struct serve {
	const struct serve_conf *c;
	struct sess_conf sess;		/* c->sess, with the shared spray budget */
	struct shared *sh;
	size_t shsize;
	int up[2];			/* [0] the parent reads, [1] children write */
	struct kid *kid;		/* c->max_kids of them */
	int nkids;
	bool served;			/* without -k: a session took stdin/stdout */
	pid_t served_pid;
	int status;			/* that session's exit status */
	bool served_done;
	bool *connected;		/* in sh, after the slots */
	int failures;			/* failed passphrases in a row */
	unsigned guesses;		/* sh->guesses already counted */
	uint64_t backoff_until;		/* no offer is taken before (now_us()) */
	bool failed;			/* the rendezvous failed: take no offer */
};

/* The parent's end of the children's socket, for the SIGCHLD handler. */
static int chld_fd = -1;
/* A child's: the listener has settled on another session (SIGUSR1). */
static volatile sig_atomic_t kid_busy;
static int kid_index;			/* a child's index in kid[] */
static int kid_null = -1;		/* /dev/null, for the handler */

static void
on_chld(int sig)
{
	(void)sig;
	serve_notify();
}

/* SIGUSR1, in a child: another session has stdin and stdout for good.
 * Let go of ours at once (dup2 is async-signal-safe), so that whoever
 * reads the session's output sees its end when it ends, and end ours. */
static void
on_usr1(int sig)
{
	int e = errno;

	(void)sig;
	if (kid_null != -1) {
		dup2(kid_null, 0);
		dup2(kid_null, 1);
	}
	kid_busy = 1;
	errno = e;
}

static int up_send(struct serve *sv, struct up_msg *m);

/* sess_conf's guessed, in a child: count the guess where the parent sees
 * it, then wake the parent, so that it takes no other offer first. */
static void
kid_guessed(void *ctx)
{
	struct serve *sv = ctx;
	struct up_msg m = { .type = UP_WAKE };

	__atomic_add_fetch(&sv->sh->guesses, 1, __ATOMIC_SEQ_CST);
	up_send(sv, &m);
}

struct serve *
serve_new(const struct serve_conf *c)
{
	pthread_mutexattr_t ma;
	struct serve *sv;

	if ((sv = calloc(1, sizeof *sv)) == NULL) {
		log_errno("calloc");
		return NULL;
	}
	sv->c = c;
	sv->up[0] = sv->up[1] = -1;
	if ((sv->kid = calloc(c->max_kids, sizeof *sv->kid)) == NULL) {
		log_errno("calloc");
		goto fail;
	}
	sv->shsize = sizeof *sv->sh + c->max_sessions * sizeof sv->sh->slot[0] +
	    c->max_kids * sizeof *sv->connected;
	sv->sh = mmap(NULL, sv->shsize, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sv->sh == MAP_FAILED) {
		sv->sh = NULL;
		log_errno("mmap");
		goto fail;
	}
	memset(sv->sh, 0, sv->shsize);
	sv->connected = (bool *)(sv->sh->slot + c->max_sessions);
	if (pthread_mutexattr_init(&ma) != 0 ||
	    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&sv->sh->mu, &ma) != 0) {
		log_err("cannot make a shared mutex");
		goto fail;
	}
	pthread_mutexattr_destroy(&ma);
	sv->sh->in_eof = *c->pump->in_eof;
	sv->sh->spray.lock = &sv->sh->mu;
	sv->sess = *c->sess;
	sv->sess.punch.spray = &sv->sh->spray;
	sv->sess.guessed = kid_guessed;
	sv->sess.guessed_ctx = sv;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv->up) == -1) {
		log_errno("socketpair");
		goto fail;
	}
	if (fcntl(sv->up[0], F_SETFL, O_NONBLOCK) == -1) {
		log_errno("fcntl");
		goto fail;
	}
	return sv;
fail:
	serve_free(sv);
	return NULL;
}

void
serve_notify(void)
{
	int e = errno;
	uint8_t m = UP_WAKE;

	if (chld_fd != -1)
		send(chld_fd, &m, 1, MSG_DONTWAIT);
	errno = e;
}

int
serve_wake_fd(const struct serve *sv)
{
	return sv->up[0];
}

void
serve_free(struct serve *sv)
{
	if (sv == NULL)
		return;
	if (sv->up[0] != -1)
		close(sv->up[0]);
	if (sv->up[1] != -1)
		close(sv->up[1]);
	if (sv->sh)
		munmap(sv->sh, sv->shsize);
	free(sv->kid);
	free(sv);
}

/*
 * The child.
 */

/* Tell the parent; 0 or -1. */
static int
up_send(struct serve *sv, struct up_msg *m)
{
	size_t n = m->type == UP_ANSWER ? offsetof(struct up_msg, blob) + m->len :
	    offsetof(struct up_msg, len);

	m->pid = getpid();
	while (send(sv->up[1], m, n, MSG_NOSIGNAL) == -1) {
		if (errno != EINTR) {
			log_errno("cannot reach the listener's parent process");
			return -1;
		}
	}
	return 0;
}

/* pump_connect_fn: take a session slot, or tell the caller we are busy. */
static int
kid_connect(void *ctx, struct session *s, struct pump_conf *c)
{
	static bool said;
	struct serve *sv = ctx;
	struct up_msg m = { .type = UP_CONNECTED };
	int i, n = sv->c->max_sessions;

	(void)s;
	(void)c;
	if (!said) {
		util_mutex_lock(&sv->sh->mu);
		__atomic_store_n(&sv->connected[kid_index], true, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&sv->sh->mu);
		if (up_send(sv, &m) == -1)
			return CLOSE_IO;
	}
	said = true;
	util_mutex_lock(&sv->sh->mu);
	for (i = 0; i < n && sv->sh->slot[i] != 0; i++)
		;
	if (i < n)
		sv->sh->slot[i] = getpid();
	pthread_mutex_unlock(&sv->sh->mu);
	if (i == n) {
		/* With -k, sessions on stdin and stdout take turns. */
		if (!sv->c->pump->cmd && sv->c->keep)
			return PUMP_WAIT;
		if (sv->c->pump->cmd)
			log_err("refusing a caller: %d sessions are running "
			    "(--max-conns)", n);
		else
			log_err("refusing a caller: a session is using stdin and stdout");
		return CLOSE_BUSY;
	}
	m.type = UP_SLOT;
	return up_send(sv, &m) == 0 ? 0 : CLOSE_IO;
}

/* Work on one offer: the child's exit status. */
static int
kid_main(struct serve *sv, const struct sig_msg *offer)
{
	const struct serve_conf *c = sv->c;
	uint64_t deadline = now_us() + secs_us(c->wait_s);
	struct up_msg *m = NULL;
	struct pump_conf pc = *c->pump;
	struct session *s;
	int ret = EXIT_NOCONN;

	if ((s = sess_new(&sv->sess)) == NULL)
		return EXIT_NOCONN;
	if ((m = calloc(1, sizeof *m)) == NULL) {
		log_errno("calloc");
		goto out;
	}
	/* Gather now, not before the wait: a NAT forgets an idle mapping
	 * within a minute, and with it our public address. */
	if (sess_gather(s, deadline) == -1)
		goto out;
	m->type = UP_ANSWER;
	memcpy(m->id, offer->id, sizeof m->id);
	if ((m->len = sess_take_offer(s, c->name, offer->id, offer->blob,
	    offer->len, m->blob, sizeof m->blob)) == 0) {
		log_err("ignoring offer %s", offer->id);
		goto out;
	}
	if (up_send(sv, m) == -1)
		goto out;
	pc.on_connect = kid_connect;
	pc.ctx = sv;
	pc.in_eof = &sv->sh->in_eof;
	pc.busy = &kid_busy;
	ret = pump_run(s, &pc, deadline);
	pump_report(s);
	if (sess_error(s) == SESS_PASSPHRASE)
		ret = KID_PASSPHRASE;
out:
	free(m);
	sess_free(s);
	return ret;
}

/* Close every descriptor above stderr but keep. */
static void
close_except(int keep)
{
	int fd;

	if ((keep <= 3 || close_range(3, keep - 1, 0) == 0) &&
	    close_range(keep + 1, ~0U, 0) == 0)
		return;
	for (fd = 3; fd < 1024; fd++)	/* a kernel before close_range */
		if (fd != keep)
			close(fd);
}

/* Start a child for offer; false when none could be started. */
static bool
spawn(struct serve *sv, const struct sig_msg *offer)
{
	struct kid *k = NULL;
	pid_t pid, parent = getpid();
	sigset_t usr1, old;
	struct sigaction sa;
	int i;

	for (i = 0; i < sv->c->max_kids && k == NULL; i++)
		if (sv->kid[i].pid == 0)
			k = &sv->kid[i];
	if (k == NULL)
		return false;
	memset(k, 0, sizeof *k);
	__atomic_store_n(&sv->connected[k - sv->kid], false, __ATOMIC_SEQ_CST);
	memcpy(k->id, offer->id, sizeof k->id);
	/* The child's messages name its offer, by the start of its id. */
	snprintf(k->tag, sizeof k->tag, "%.8s", offer->id);
	/* SIGUSR1 waits until the child can take it. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	if ((pid = fork()) == -1) {
		log_errno("fork");
		sigprocmask(SIG_SETMASK, &old, NULL);
		return false;
	}
	if (pid == 0) {
		/* A listener killed outright takes its sessions with it, as
		 * one process would have gone. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
			_exit(EXIT_NOCONN);
		/* Nothing of the parent's but stdio and our socket: the
		 * store's connections are the parent's alone. */
		signal(SIGCHLD, SIG_DFL);
		chld_fd = -1;
		close_except(sv->up[1]);
		sv->up[0] = -1;
		log_tag = k->tag;
		kid_index = (int)(k - sv->kid);
		kid_null = open("/dev/null", O_RDWR | O_CLOEXEC);
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_usr1;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		_exit(kid_main(sv, offer));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	k->pid = pid;
	k->born = now_us();
	sv->nkids++;
	return true;
}

/*
 * The parent.
 */

static struct kid *
find_kid(struct serve *sv, pid_t pid)
{
	int i;

	for (i = 0; i < sv->c->max_kids; i++)
		if (sv->kid[i].pid == pid && pid != 0)
			return &sv->kid[i];
	return NULL;
}

/* Without -k, once a session has stdin and stdout no other will: the
 * other children let go of theirs and end, telling their callers we are
 * busy (SIGUSR1), and we let go of ours, so that the reader sees
 * end-of-file when the session closes its output. */
static void
settle_on(struct serve *sv, pid_t pid)
{
	int i, fd;

	sv->served = true;
	sv->served_pid = pid;
	for (i = 0; i < sv->c->max_kids; i++)
		if (sv->kid[i].pid != 0 && sv->kid[i].pid != pid)
			kill(sv->kid[i].pid, SIGUSR1);
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1 ||
	    dup2(fd, 0) == -1 || dup2(fd, 1) == -1)
		log_errno("cannot let go of stdin and stdout");
	if (fd != -1)
		close(fd);
}

/* What the children said. */
static void
take_msgs(struct serve *sv, struct sig *sig)
{
	struct up_msg m;
	struct kid *k;
	ssize_t n;

	while ((n = recv(sv->up[0], &m, sizeof m, MSG_DONTWAIT)) > 0) {
		if (n < (ssize_t)offsetof(struct up_msg, len) ||
		    (k = find_kid(sv, m.pid)) == NULL)
			continue;	/* a wake-up, or from a child now gone */
		m.id[SIG_ID_LEN] = '\0';
		if (m.type == UP_ANSWER && n == (ssize_t)offsetof(struct up_msg, blob) + m.len &&
		    m.len <= SIG_MAX_BLOB && strcmp(m.id, k->id) == 0) {
			if (sig_answer(sig, sv->c->name, k->id, m.blob, m.len,
			    unix_ms() + (uint64_t)(sv->c->wait_s * 1000)) == 0)
				k->answered = true;
			else
				kill(k->pid, SIGTERM);
		} else if (m.type == UP_CONNECTED) {
			/* A caller proved its keys, and the passphrase. */
			k->connected = true;
			sv->failures = 0;
		} else if (m.type == UP_SLOT && !sv->c->keep && !sv->served) {
			settle_on(sv, k->pid);
		}
	}
}

/* Callers that failed the passphrase since we last looked: back off, for
 * each of them. */
static void
count_guesses(struct serve *sv)
{
	unsigned g = __atomic_load_n(&sv->sh->guesses, __ATOMIC_SEQ_CST);
	uint64_t d;

	while (sv->guesses != g) {
		sv->guesses++;
		sv->failures++;
		d = BACKOFF_MAX_US;
		if (sv->failures <= 30 && (BACKOFF_MIN_US << (sv->failures - 1)) < d)
			d = BACKOFF_MIN_US << (sv->failures - 1);
		sv->backoff_until = now_us() + d;
		log_err("a caller failed the passphrase (%d in a row): taking no "
		    "offer for %g s", sv->failures, d / 1e6);
	}
}

/* The child k has ended with wait status st (or was ended by us): delete
 * what it left in the store, free its session slot and its entry. */
static void
forget(struct serve *sv, struct sig *sig, struct kid *k, int st)
{
	pid_t pid = k->pid;
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : EXIT_SIGNAL + WTERMSIG(st);
	int i;

	/* A caller that connected took its answer from the store. */
	if (k->answered && !k->connected)
		sig_unanswer(sig, sv->c->name, k->id);
	if (WIFSIGNALED(st) && !k->evicted && WTERMSIG(st) != SIGTERM &&
	    WTERMSIG(st) != SIGKILL)
		log_err("the process for offer %s died of signal %d (%s)",
		    k->id, WTERMSIG(st), strsignal(WTERMSIG(st)));
	util_mutex_lock(&sv->sh->mu);
	for (i = 0; i < sv->c->max_sessions; i++) {
		if (sv->sh->slot[i] != pid)
			continue;
		sv->sh->slot[i] = 0;
		if (!sv->c->keep && !sv->served)
			settle_on(sv, pid);
	}
	__atomic_store_n(&sv->connected[k - sv->kid], false, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&sv->sh->mu);
	if (sv->served && pid == sv->served_pid) {
		sv->status = status;
		sv->served_done = true;
	} else if (k->evicted) {
		log_v(1, "offer %s was given up for a newer one", k->id);
	} else if (status == EXIT_NOCONN && !k->connected) {
		/* A caller that never arrived, or that we refused (the
		 * child said why), is no session served: a stranger
		 * cannot end the listener. */
		log_err("the caller of offer %s did not connect", k->id);
	}
	/* What this session's offer cost, for -v. */
	sig_report(sig, false);
	memset(k, 0, sizeof *k);
	sv->nkids--;
}

/* Reap the children that have ended. */
static void
reap(struct serve *sv, struct sig *sig)
{
	struct kid *k;
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		if ((k = find_kid(sv, pid)) != NULL)
			forget(sv, sig, k, st);
	count_guesses(sv);
}

/* End every child (SIGTERM, then SIGKILL after a grace period). */
static void
stop_kids(struct serve *sv, struct sig *sig)
{
	uint64_t end = now_us() + STOP_GRACE_US;
	int i;

	for (i = 0; i < sv->c->max_kids; i++)
		if (sv->kid[i].pid != 0)
			kill(sv->kid[i].pid, SIGTERM);
	while (sv->nkids > 0) {
		struct pollfd pfd = { .fd = sv->up[0], .events = POLLIN };

		take_msgs(sv, sig);
		reap(sv, sig);
		if (sv->nkids == 0)
			break;
		if (now_us() >= end) {
			for (i = 0; i < sv->c->max_kids; i++)
				if (sv->kid[i].pid != 0)
					kill(sv->kid[i].pid, SIGKILL);
			end = UINT64_MAX;
		}
		poll(&pfd, 1, end == UINT64_MAX ? 100 : timeout_ms(end, now_us()));
	}
}

/* Whether the child at kid[i] has marked itself connected (it does so
 * under sh->mu; read atomically, as accepting() reads it without). */
static bool
kid_said_connected(struct serve *sv, int i)
{
	return __atomic_load_n(&sv->connected[i], __ATOMIC_SEQ_CST);
}

/* The child that has worked longest on an offer whose caller has not
 * connected, or NULL.  With sh->mu held, the answer holds until it is
 * let go. */
static struct kid *
oldest_unconnected(struct serve *sv)
{
	struct kid *old = NULL;
	int i;

	for (i = 0; i < sv->c->max_kids; i++) {
		struct kid *k = &sv->kid[i];

		if (k->pid != 0 && !k->connected && !kid_said_connected(sv, i) &&
		    !k->evicted && (old == NULL || k->born < old->born))
			old = k;
	}
	return old;
}

/* How many children work on an offer whose caller has not connected. */
static int
unconnected(struct serve *sv)
{
	int i, n = 0;

	for (i = 0; i < sv->c->max_kids; i++)
		if (sv->kid[i].pid != 0 && !sv->kid[i].connected &&
		    !kid_said_connected(sv, i))
			n++;
	return n;
}

/* Make room for a new offer when every child is busy with one: end the
 * one that has waited longest for its caller.  Offers cost nothing to
 * forge, so a full house of them must not make the listener deaf; a
 * caller that is real connects within a few round trips.  The choice
 * and the kill are made under sh->mu, which a child takes to say it has
 * connected: a session that has begun is never ended for an offer.
 * true when there is room now. */
static bool
make_room(struct serve *sv, struct sig *sig)
{
	struct kid *k;
	pid_t pid;
	int st;

	take_msgs(sv, sig);
	reap(sv, sig);
	if (sv->nkids < sv->c->max_kids)
		return true;
	util_mutex_lock(&sv->sh->mu);
	if ((k = oldest_unconnected(sv)) != NULL) {
		k->evicted = true;
		kill(k->pid, SIGKILL);
	}
	pthread_mutex_unlock(&sv->sh->mu);
	if (k == NULL)
		return false;
	pid = k->pid;
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	forget(sv, sig, k, st);
	/* A guess it refused before it ended counts. */
	count_guesses(sv);
	return true;
}

/* After a failed passphrase: a pause, then one guess at a time
 * (sessions that run meanwhile are no guesses). */
static bool
backing_off(struct serve *sv)
{
	return now_us() < sv->backoff_until || (sv->failures > 0 && unconnected(sv) > 0);
}

/* Whether to take an offer now. */
static bool
accepting(struct serve *sv)
{
	bool full;

	if (sv->served || sv->failed)
		return false;
	if (sv->nkids >= sv->c->max_kids && oldest_unconnected(sv) == NULL)
		return false;
	if (backing_off(sv))
		return false;
	if (sv->c->pump->cmd)
		return true;	/* a caller over the limit is told */
	/* One session at a time on stdin/stdout: further offers wait. */
	util_mutex_lock(&sv->sh->mu);
	full = sv->sh->slot[0] != 0;
	pthread_mutex_unlock(&sv->sh->mu);
	return !full;
}

int
serve_run(struct serve *sv, struct sig *sig)
{
	const struct serve_conf *c = sv->c;
	struct sigaction sa;
	/* On the stack: a child that takes it leaves with _exit, and no
	 * pointer to a heap copy would be left for a leak checker to see. */
	struct sig_msg offer;
	bool held = false;	/* offer was taken, and waits for the backoff */
	int ret = EXIT_NOCONN, r;

	chld_fd = sv->up[1];
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	log_v(1, "listening as `%s'", c->name);
	for (;;) {
		take_msgs(sv, sig);
		reap(sv, sig);
		if (*c->stop) {
			ret = EXIT_SIGNAL + *c->stop;
			break;
		}
		if (sv->served_done) {
			ret = sv->status;
			break;
		}
		if (sv->failed && sv->nkids == 0) {
			ret = EXIT_NOCONN;
			break;
		}
		if (!accepting(sv)) {
			struct pollfd pfd = { .fd = sv->up[0], .events = POLLIN };
			uint64_t now = now_us();

			if (poll(&pfd, 1, now < sv->backoff_until ?
			    timeout_ms(sv->backoff_until, now) : -1) == -1 && errno != EINTR) {
				log_errno("poll");
				break;
			}
			continue;
		}
		r = held ? 0 : sig_wait_offer(sig, c->name, &offer, UINT64_MAX);
		held = false;
		if (r == -1) {
			/* The sessions that run need the store no more:
			 * they end as they would, then so do we. */
			sv->failed = true;
			if (sv->nkids > 0)
				log_err("no more offers taken: waiting for %d "
				    "session%s to end", sv->nkids, sv->nkids == 1 ? "" : "s");
			continue;
		}
		if (r == 1)
			continue;
		log_v(1, "offer %s received", offer.id);
		if (!make_room(sv, sig)) {
			log_err("dropping offer %s: cannot start a process for it",
			    offer.id);
			continue;
		}
		/* make_room heard the children: a guess counted since we
		 * began to wait holds this offer until the pause is over,
		 * as one left in the store would have waited. */
		if (backing_off(sv)) {
			log_v(1, "offer %s waits: a caller failed the passphrase",
			    offer.id);
			held = true;
			continue;
		}
		if (!spawn(sv, &offer))
			log_err("dropping offer %s: cannot start a process for it",
			    offer.id);
	}
	stop_kids(sv, sig);
	signal(SIGCHLD, SIG_DFL);
	chld_fd = -1;
	return ret;
}
