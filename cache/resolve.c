/* SPDX-License-Identifier: MIT */
/* resolve.c - one getaddrinfo() worker thread feeding the lws loop.
 * The loop and the thread share only struct resolve_shared: two lists
 * (queued, done), the request in getaddrinfo(), a stop flag and the
 * eventfd, all under one mutex. It is reference-counted so that a thread
 * stuck in getaddrinfo() can be detached at shutdown and free it later.
 * Requests themselves are allocated and freed on the loop only; the thread
 * copies the host name before it unlocks, so a request may be cancelled
 * while its lookup runs (the thread then throws the answer away).
 * Must not: call lws or log from the thread, write the eventfd after stop
 * (lws closes it), or run a callback from inside resolve_start(). */
#define LOG_MOD "resolve"
#include "resolve.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define RESOLVE_JOIN_MS 1000         /* resolve_free() waits this long for the thread */
#define RESOLVE_PROTOCOL "otagw-resolve"

enum resolve_state {
	RQ_LITERAL,                  /* answered by a zero-delay sul */
	RQ_QUEUED,                   /* in sh->queue */
	RQ_RUNNING,                  /* sh->running: inside getaddrinfo() */
	RQ_DONE,                     /* in sh->done, waiting for the loop */
};

struct resolve_req {
	struct resolve *r;
	lws_dll2_t all;              /* r->all: loop only */
	lws_sorted_usec_list_t sul;  /* literal answer or deadline: loop only */
	resolve_cb cb;
	void *arg;
	/* under sh->mu */
	struct resolve_req *next;    /* in sh->queue or sh->done */
	enum resolve_state state;
	int rc;
	char host[RESOLVE_HOST_MAX];
	char addr[RESOLVE_ADDR_MAX];
};

struct resolve_shared {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct resolve_req *queue;   /* FIFO, at most RESOLVE_QUEUE_MAX */
	struct resolve_req *done;    /* FIFO */
	struct resolve_req *running; /* NULL once cancelled */
	unsigned queued;
	int efd;                     /* written only while !stop */
	bool stop;
	int refs;                    /* loop side + thread */
};

struct resolve {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws *wsi;             /* the adopted eventfd, NULL once closed */
	struct resolve_shared *sh;
	pthread_t thread;
	bool thread_started;
	bool adopted;                /* lws owns the eventfd from then on */
	unsigned timeout_ms;
	lws_dll2_owner_t all;        /* every live request */
};

static int resolve_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
			  void *in, size_t len);

/* const so that a vhost still being torn down by lws never points into freed memory */
static const struct lws_protocols resolve_protocols[] = {
	{ RESOLVE_PROTOCOL, resolve_lws_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- shared state ------------------------------------------------------- */

static void shared_put(struct resolve_shared *sh)
{
	int left;

	pthread_mutex_lock(&sh->mu);
	left = --sh->refs;
	pthread_mutex_unlock(&sh->mu);
	if (left)
		return;
	pthread_cond_destroy(&sh->cv);
	pthread_mutex_destroy(&sh->mu);
	free(sh);
}

static void list_append(struct resolve_req **head, struct resolve_req *q)
{
	while (*head)
		head = &(*head)->next;
	q->next = NULL;
	*head = q;
}

static bool list_remove(struct resolve_req **head, struct resolve_req *q)
{
	for (; *head; head = &(*head)->next) {
		if (*head == q) {
			*head = q->next;
			q->next = NULL;
			return true;
		}
	}
	return false;
}

/* Takes q out of the shared lists (caller holds sh->mu). */
static void shared_unlink(struct resolve_shared *sh, struct resolve_req *q)
{
	switch (q->state) {
	case RQ_QUEUED:
		if (list_remove(&sh->queue, q))
			sh->queued--;
		break;
	case RQ_RUNNING:
		if (sh->running == q)
			sh->running = NULL;
		break;
	case RQ_DONE:
		list_remove(&sh->done, q);
		break;
	case RQ_LITERAL:
		break;
	}
}

/* ---- the worker thread -------------------------------------------------- */

static int resolve_eai(int eai)
{
	switch (eai) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
#endif
		return -ENOENT;
	case EAI_AGAIN:
	case EAI_FAIL:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	default:
		return -EIO;
	}
}

/* getaddrinfo() for host; the first IPv4 answer, else the first IPv6 one. */
static int resolve_lookup(const char *host, char addr[RESOLVE_ADDR_MAX])
{
	struct addrinfo hints, *res = NULL, *ai, *pick = NULL;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc)
		return resolve_eai(rc);
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
		if (!pick && ai->ai_family == AF_INET6)
			pick = ai;
	}
	rc = -ENOENT;
	if (pick && !getnameinfo(pick->ai_addr, pick->ai_addrlen, addr, RESOLVE_ADDR_MAX, NULL,
				 0, NI_NUMERICHOST))
		rc = 0;
	freeaddrinfo(res);
	return rc;
}

/* Files the answer for the loop unless the request was cancelled or we stop. */
static void worker_answer(struct resolve_shared *sh, int rc, const char *addr)
{
	struct resolve_req *q = sh->running;
	uint64_t one = 1;
	ssize_t n;

	sh->running = NULL;
	if (!q || sh->stop)
		return;
	q->rc = rc;
	util_strlcpy(q->addr, rc ? "" : addr, sizeof(q->addr));
	q->state = RQ_DONE;
	list_append(&sh->done, q);
	/* A full counter (EAGAIN) still wakes the loop; nothing else can fail here. */
	n = write(sh->efd, &one, sizeof(one));
	(void)n;
}

static void *resolve_worker(void *arg)
{
	struct resolve_shared *sh = arg;
	char host[RESOLVE_HOST_MAX], addr[RESOLVE_ADDR_MAX];
	struct resolve_req *q;
	int rc;

	pthread_mutex_lock(&sh->mu);
	for (;;) {
		while (!sh->stop && !sh->queue)
			pthread_cond_wait(&sh->cv, &sh->mu);
		if (sh->stop)
			break;
		q = sh->queue;
		sh->queue = q->next;
		sh->queued--;
		q->next = NULL;
		q->state = RQ_RUNNING;
		sh->running = q;
		memcpy(host, q->host, sizeof(host));
		pthread_mutex_unlock(&sh->mu);
		rc = resolve_lookup(host, addr);   /* q may be freed meanwhile */
		pthread_mutex_lock(&sh->mu);
		worker_answer(sh, rc, addr);
	}
	pthread_mutex_unlock(&sh->mu);
	shared_put(sh);
	return NULL;
}

/* ---- the loop side ------------------------------------------------------ */

/* Unlinks q everywhere and frees it, without calling back. */
static void req_drop(struct resolve_req *q)
{
	struct resolve_shared *sh = q->r->sh;

	pthread_mutex_lock(&sh->mu);
	shared_unlink(sh, q);
	pthread_mutex_unlock(&sh->mu);
	lws_sul_cancel(&q->sul);
	lws_dll2_remove(&q->all);
	free(q);
}

/* Frees q, then tells its owner (so the owner may start a new request). */
static void req_finish(struct resolve_req *q, int rc, const char *addr)
{
	char text[RESOLVE_ADDR_MAX];
	resolve_cb cb = q->cb;
	void *arg = q->arg;

	util_strlcpy(text, addr ? addr : "", sizeof(text));
	req_drop(q);
	cb(arg, rc, rc ? NULL : text);
}

static void req_literal_cb(lws_sorted_usec_list_t *sul)
{
	struct resolve_req *q = lws_container_of(sul, struct resolve_req, sul);

	req_finish(q, 0, q->addr);
}

/* The loop-side deadline: an answer already filed wins over the timeout. */
static void req_timeout_cb(lws_sorted_usec_list_t *sul)
{
	struct resolve_req *q = lws_container_of(sul, struct resolve_req, sul);
	struct resolve_shared *sh = q->r->sh;
	char addr[RESOLVE_ADDR_MAX];
	int rc = -EAGAIN;

	pthread_mutex_lock(&sh->mu);
	if (q->state == RQ_DONE) {
		rc = q->rc;
		memcpy(addr, q->addr, sizeof(addr));
	}
	pthread_mutex_unlock(&sh->mu);
	if (rc == -EAGAIN)
		LOGD("lookup of %s timed out", q->host);
	req_finish(q, rc, rc ? NULL : addr);
}

/* Hands every filed answer to its owner, one at a time, so that an owner's
 * callback may cancel another request in the list. */
static void resolve_drain(struct resolve *r)
{
	struct resolve_shared *sh = r->sh;
	struct resolve_req *q;
	char addr[RESOLVE_ADDR_MAX];
	int rc;

	for (;;) {
		pthread_mutex_lock(&sh->mu);
		q = sh->done;
		if (q) {
			rc = q->rc;
			memcpy(addr, q->addr, sizeof(addr));
		}
		pthread_mutex_unlock(&sh->mu);
		if (!q)
			return;
		req_finish(q, rc, addr);
	}
}

static int resolve_rx(struct resolve *r, struct lws *wsi)
{
	uint64_t n;

	if (read(lws_get_socket_fd(wsi), &n, sizeof(n)) < 0 && errno != EAGAIN) {
		LOGE("reading the resolver eventfd: %s", strerror(errno));
		return -1;
	}
	resolve_drain(r);
	return 0;
}

static int resolve_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
			  void *in, size_t len)
{
	struct resolve *r;

	/* only these two reasons come with a real wsi of our vhost */
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		r = lws_get_vhost_user(lws_get_vhost(wsi));
		return r && r->wsi == wsi ? resolve_rx(r, wsi) : -1;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		r = lws_get_vhost_user(lws_get_vhost(wsi));
		if (r && r->wsi == wsi) {
			r->wsi = NULL;
			if (!r->sh->stop)
				LOGE("resolver eventfd closed: lookups will time out");
		}
		return 0;
	default:
		return 0;
	}
}

/* ---- setup and teardown ------------------------------------------------- */

static int resolve_thread_start(struct resolve *r)
{
	sigset_t all, old;
	int rc;

	/* the loop owns signals (signalfd): the worker must never take one */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r->sh->refs++;
	rc = pthread_create(&r->thread, NULL, resolve_worker, r->sh);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		r->sh->refs--;
		return -rc;
	}
	r->thread_started = true;
	return 0;
}

static int resolve_vhost(struct resolve *r, struct err_info *e)
{
	struct lws_context_creation_info info;
	lws_sock_file_fd_type u;

	memset(&info, 0, sizeof(info));
	info.vhost_name = RESOLVE_PROTOCOL;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = resolve_protocols;
	info.user = r;
	r->vh = lws_create_vhost(r->ctx, &info);
	if (!r->vh)
		return err_set(e, -ENOMEM, "cannot create the resolver vhost");
	u.filefd = r->sh->efd;
	r->wsi = lws_adopt_descriptor_vhost(r->vh, LWS_ADOPT_RAW_FILE_DESC, u, RESOLVE_PROTOCOL,
					    NULL);
	/* on failure lws may or may not have closed it: leak rather than close twice */
	r->adopted = true;
	if (!r->wsi)
		return err_set(e, -ENOMEM, "cannot adopt the resolver eventfd");
	return 0;
}

int resolve_new(struct resolve **out, struct lws_context *ctx, struct err_info *e)
{
	struct resolve *r = calloc(1, sizeof(*r));
	int rc;

	if (!r || !(r->sh = calloc(1, sizeof(*r->sh)))) {
		free(r);
		return err_set(e, -ENOMEM, "out of memory");
	}
	r->ctx = ctx;
	r->timeout_ms = RESOLVE_TIMEOUT_MS;
	pthread_mutex_init(&r->sh->mu, NULL);
	pthread_cond_init(&r->sh->cv, NULL);
	r->sh->refs = 1;
	r->sh->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->sh->efd < 0) {
		rc = err_set(e, -errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	rc = resolve_vhost(r, e);
	if (rc)
		goto fail;
	rc = resolve_thread_start(r);
	if (rc) {
		err_set(e, rc, "cannot start the resolver thread: %s", strerror(-rc));
		goto fail;
	}
	*out = r;
	return 0;
fail:
	resolve_free(r);
	return rc;
}

static struct timespec deadline_in(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Joins the worker, or detaches it when a lookup hangs: it then frees the
 * shared state itself once getaddrinfo() returns. */
static void resolve_thread_stop(struct resolve *r)
{
	struct timespec ts;

	pthread_mutex_lock(&r->sh->mu);
	r->sh->stop = true;
	pthread_cond_broadcast(&r->sh->cv);
	pthread_mutex_unlock(&r->sh->mu);
	if (!r->thread_started)
		return;
	ts = deadline_in(RESOLVE_JOIN_MS);
	if (pthread_timedjoin_np(r->thread, NULL, &ts)) {
		LOGW("a name lookup still hangs: leaving its thread behind");
		pthread_detach(r->thread);
	}
}

/* lws_dll2_foreach_safe(): req_drop() unlinks the element it is given. */
static int req_drop_cb(struct lws_dll2 *d, void *user)
{
	req_drop(lws_container_of(d, struct resolve_req, all));
	return 0;
}

void resolve_free(struct resolve *r)
{
	if (!r)
		return;
	lws_dll2_foreach_safe(&r->all, NULL, req_drop_cb);
	resolve_thread_stop(r);     /* stop first: the thread must not write a closed fd */
	if (r->wsi)
		lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	else if (!r->adopted && r->sh->efd >= 0)
		close(r->sh->efd);
	if (r->vh)
		lws_vhost_destroy(r->vh);
	shared_put(r->sh);
	free(r);
}

void resolve_set_timeout(struct resolve *r, unsigned timeout_ms)
{
	r->timeout_ms = timeout_ms ? timeout_ms : RESOLVE_TIMEOUT_MS;
}

/* ---- requests ----------------------------------------------------------- */

static bool host_valid(const char *host)
{
	size_t n = strnlen(host, RESOLVE_HOST_MAX);
	size_t i;

	if (!n || n >= RESOLVE_HOST_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_' || c == ':' || c == '%'))
			return false;
	}
	return true;
}

/* Writes the canonical text of an IP literal into addr; false for a name. */
static bool host_literal(const char *host, char addr[RESOLVE_ADDR_MAX])
{
	unsigned char bin[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, host, bin) == 1)
		return inet_ntop(AF_INET, bin, addr, RESOLVE_ADDR_MAX) != NULL;
	if (inet_pton(AF_INET6, host, bin) == 1)
		return inet_ntop(AF_INET6, bin, addr, RESOLVE_ADDR_MAX) != NULL;
	return false;
}

static int req_enqueue(struct resolve *r, struct resolve_req *q)
{
	struct resolve_shared *sh = r->sh;
	int rc = 0;

	pthread_mutex_lock(&sh->mu);
	if (sh->queued >= RESOLVE_QUEUE_MAX) {
		rc = -ENOBUFS;
	} else {
		q->state = RQ_QUEUED;
		list_append(&sh->queue, q);
		sh->queued++;
		pthread_cond_signal(&sh->cv);
	}
	pthread_mutex_unlock(&sh->mu);
	return rc;
}

int resolve_start(struct resolve *r, const char *host, resolve_cb cb, void *arg,
		  struct resolve_req **out)
{
	struct resolve_req *q;
	int rc;

	if (!host || !cb || !host_valid(host))
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	util_strlcpy(q->host, host, sizeof(q->host));
	if (host_literal(host, q->addr)) {
		q->state = RQ_LITERAL;
		lws_sul_schedule(r->ctx, 0, &q->sul, req_literal_cb, 1);
	} else {
		rc = req_enqueue(r, q);
		if (rc) {
			free(q);
			return rc;
		}
		lws_sul_schedule(r->ctx, 0, &q->sul, req_timeout_cb,
				 (lws_usec_t)r->timeout_ms * LWS_US_PER_MS);
	}
	lws_dll2_add_tail(&q->all, &r->all);
	if (out)
		*out = q;
	return 0;
}

void resolve_cancel(struct resolve_req *q)
{
	if (q)
		req_drop(q);
}
