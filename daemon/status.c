/*
 * status.c - the status page as a response source (rsrc.h; issue 11): a request addressed to
 * the proxy itself whose path is under a <Location> with "SetHandler gatehouse-status" is
 * answered here through webui/ (ui_handle), never forwarded.
 *
 * One struct status_req per such request, owned by the connection (proxy.c) as its source and
 * driven by its CP_SOURCE phase: the source's head() steps
 *
 *   BODY (read a POST body, at most UI_BODY_MAX: 413 beyond) -> CALL (access: the Location's
 *   Require rules, then Basic credentials when a rule needs a user; ui_handle) -> [VERIFY,
 *   ASYNC: wait for rsrc_wake] -> SEND (the head is known)
 *
 * then body() hands the rendered page over as the client's output has room -> DONE.
 *
 * Everything runs on the connection's worker thread. An asynchronous page (UI_ASYNC) calls
 * back through status_call_done on the same thread; the source's free (rsrc_free) cancels it
 * first when the client goes away. Every response carries ui_security_headers() and Cache-Control
 * no-store (it is one of them).
 */
#include "daemon/explain.h"
#include "daemon/status.h"

#include "daemon/cfg.h"
#include "daemon/h1.h"
#include "daemon/history.h"
#include "daemon/log.h"
#include "daemon/rsrc.h"
#include "daemon/stats.h"
#include "daemon/uicache.h"
#include "daemon/worker.h"
#include "webui/auth.h"
#include "webui/ui.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define STATUS_MAGIC 0x53544154u    /* "STAT" */
#define STATUS_FIELD_MAX 8192       /* a header field kept for the page (Cookie, Accept) */

enum status_state { ST_BODY = 0, ST_CALL, ST_VERIFY, ST_ASYNC, ST_SEND, ST_DONE };

struct status_job;

struct status_req {
	struct rsrc src;                 /* first: the connection holds it as its source */
	unsigned magic;
	enum status_state state;
	struct worker *w;
	struct cfg *cfg;                 /* a reference: the snapshot the request started with */
	const struct cfg_location *loc;
	struct sockaddr_storage peer;
	char client[64];
	char *path;                      /* after the Location prefix, without the query */
	char *query;
	char *cookie, *accept, *ctype, *authz;
	enum ui_method method;
	int redirect;                    /* "/gatehouse" for "/gatehouse/": 301 */
	/* the request body */
	enum h1_framing framing;
	uint64_t remaining;
	struct h1_chunked ch;
	char *body;
	size_t body_len;
	int body_err;                    /* 413 or 400 decided while reading */
	int expect_100;                  /* Expect: 100-continue, no interim answer sent yet */
	/* the call and its answer */
	struct status_ctx ctx;
	struct ui_call call;
	int called;                      /* ui_handle ran: call.resp is to be freed */
	char user[AUTH_USER_MAX + 1];
	struct status_job *job;          /* a password being verified (ST_VERIFY), or NULL */
	char fields[2048];               /* the head's own fields (security, the page's) */
	int head_made;
	size_t body_off;
};

/* the password verifier (below) */
static void *status_verifier_main(void *arg);
static void status_job_cancel(struct status_req *s);
static int status_verifier_up;

/* ---- the table webui/ reads through ---- */

static struct ui_ops status_ops;
static struct auth_limit *status_limit;   /* failed logins per client, all workers */
static struct auth_vcache *status_vcache; /* verified credentials, all workers */
static char status_secret[65];
static pthread_once_t status_ops_once = PTHREAD_ONCE_INIT;

static void
status_ops_make(void)
{
	unsigned char r[32];
	size_t got = 0;
	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n <= 0) {
			/* cannot happen after boot (getrandom blocks until seeded); a secret that
			 * is not secret must never be used: abort rather than serve forgeable tokens */
			log_error("getrandom failed: no CSRF secret for the status page");
			abort();
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(status_secret + 2 * i, 3, "%02x", r[i]);
	if (auth_limit_new(&status_limit, AUTH_LIMIT_SLOTS, AUTH_LIMIT_BURST,
	                   AUTH_LIMIT_REFILL) != 0 ||
	    auth_vcache_new(&status_vcache, AUTH_VCACHE_SLOTS, AUTH_VCACHE_TTL_OK,
	                    AUTH_VCACHE_TTL_FAIL) != 0)
		log_error("out of memory: status page logins will all fail");
	pthread_t t;
	pthread_attr_t attr;
	if (pthread_attr_init(&attr) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, status_verifier_main, NULL) == 0) {
			pthread_setname_np(t, "gh-verify");
			status_verifier_up = 1;
		} else {
			log_warn("cannot start the password verifier thread: status page logins are "
			         "verified on the workers");
		}
		pthread_attr_destroy(&attr);
	}
	status_ops.version = GH_VERSION;
	status_ops.csrf_secret = status_secret;
	/* The areas' tables (stats_ui_ops(), uicache_ops(), explain_ui_ops()) are wired here. */
	status_ops.stats = stats_ui_ops();
	status_ops.cache = uicache_ops();
	status_ops.explain = explain_ui_ops();
	status_ops.series = history_ui_ops();
}

const struct ui_ops *
status_ui_ops(void)
{
	pthread_once(&status_ops_once, status_ops_make);
	return &status_ops;
}

/* ---- a request ---- */

static char *
status_field(const struct h1_head *h, enum h1_field_id id, const char *name)
{
	const struct h1_field *f = id ? h1_field_get(h, id) : h1_field_find(h, name, strlen(name));
	if (f == NULL || f->value.n > STATUS_FIELD_MAX)
		return NULL;
	return strndup(f->value.p, f->value.n);
}

/* The <Location> of cfg that serves path (the last in config order, as Apache's merging
 * would make it win), with *redirect set for the prefix without its final slash. */
static const struct cfg_location *
status_loc_find(const struct cfg *cfg, const char *path, size_t plen, int *redirect)
{
	const struct cfg_location *hit = NULL;
	*redirect = 0;
	for (size_t i = 0; i < cfg->nlocations; i++) {
		const struct cfg_location *l = &cfg->locations[i];
		size_t ll = strlen(l->path);
		if (plen >= ll && memcmp(path, l->path, ll) == 0) {
			hit = l;
			*redirect = 0;
		} else if (ll > 1 && l->path[ll - 1] == '/' && plen == ll - 1 &&
		           memcmp(path, l->path, plen) == 0) {
			hit = l;
			*redirect = 1;
		}
	}
	return hit;
}

static const struct rsrc_ops status_src_ops;
static void status_src_free(struct rsrc *src);

struct rsrc *
status_open(struct worker *w, struct cfg *cfg, const char *path, const struct h1_head *h,
               const struct sockaddr_storage *peer, const char *peer_text, int *oom)
{
	*oom = 0;
	if (cfg->nlocations == 0 || path[0] != '/')
		return NULL;
	size_t plen = strcspn(path, "?");
	int redirect;
	const struct cfg_location *loc = status_loc_find(cfg, path, plen, &redirect);
	if (loc == NULL)
		return NULL;
	struct status_req *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		*oom = 1;
		return NULL;
	}
	rsrc_init(&s->src, &status_src_ops);
	s->magic = STATUS_MAGIC;
	s->w = w;
	s->cfg = cfg_ref(cfg);
	s->loc = loc;
	s->peer = *peer;
	snprintf(s->client, sizeof(s->client), "%s", peer_text);
	s->redirect = redirect;
	size_t ll = strlen(loc->path);
	s->path = redirect ? strdup("") : strndup(path + ll, plen - ll);
	s->query = strdup(path[plen] == '?' ? path + plen + 1 : "");
	s->cookie = status_field(h, 0, "cookie");
	s->accept = status_field(h, 0, "accept");
	s->ctype = status_field(h, H1_F_CONTENT_TYPE, NULL);
	s->authz = status_field(h, H1_F_AUTHORIZATION, NULL);
	s->method = h->method == H1_M_GET ? UI_GET : h->method == H1_M_HEAD ? UI_HEAD
	            : h->method == H1_M_POST ? UI_POST : UI_OTHER;
	s->framing = h->framing;
	s->expect_100 = (h->flags & H1_EXPECT_CONTINUE) != 0;
	s->remaining = h->framing == H1_BODY_LENGTH ? h->content_length : 0;
	h1_chunked_init(&s->ch);
	if (s->path == NULL || s->query == NULL) {
		status_src_free(&s->src);
		*oom = 1;
		return NULL;
	}
	if (h->framing == H1_BODY_LENGTH && h->content_length > UI_BODY_MAX)
		s->body_err = 413; /* decided before reading a byte of it */
	else if (h->framing == H1_BODY_CHUNKED || (h->framing == H1_BODY_LENGTH && s->remaining))
		s->state = ST_BODY;
	else
		s->state = ST_CALL;
	if (s->body_err)
		s->state = ST_CALL;
	return &s->src;
}

static struct status_req *
status_of(const struct rsrc *src)
{
	struct status_req *s = (struct status_req *)src;
	assert(s->magic == STATUS_MAGIC);
	return s;
}

static void
status_src_free(struct rsrc *src)
{
	struct status_req *s = status_of(src);
	if (s->state == ST_ASYNC && s->call.cancel != NULL)
		s->call.cancel(&s->call); /* the page must never touch the call again */
	if (s->job != NULL)
		status_job_cancel(s);
	if (s->called)
		ui_out_free(&s->call.resp.body);
	free(s->path);
	free(s->query);
	free(s->cookie);
	free(s->accept);
	free(s->ctype);
	free(s->authz);
	free(s->body);
	cfg_unref(&s->cfg);
	s->magic = 0;
	free(s);
}

static int
status_src_wants_input(const struct rsrc *src)
{
	return status_of(src)->state == ST_BODY;
}

static const char *
status_src_user(const struct rsrc *src)
{
	const struct status_req *s = status_of(src);
	return s->user[0] ? s->user : "-";
}

/* Read body bytes from in. Returns 1 on progress, 0 when more input is needed. */
static int
status_read_body(struct status_req *s, struct rsrc_io *io)
{
	struct buf *in = io->in;
	int read_eof = io->read_eof;
	if (s->expect_100 && buf_len(in) == 0 && buf_room(io->out) >= 32) {
		/* the client waits for this before it sends the body */
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		buf_append(io->out, cont, sizeof(cont) - 1);
		io->bytes_out += sizeof(cont) - 1;
		s->expect_100 = 0;
		return 1;
	}
	s->expect_100 = 0;
	if (s->body == NULL && (s->body = malloc(UI_BODY_MAX + 1)) == NULL) {
		s->body_err = 500;
		s->state = ST_CALL;
		return 1;
	}
	int progress = 0;
	while (buf_len(in) > 0 && s->state == ST_BODY) {
		if (s->framing == H1_BODY_LENGTH) {
			size_t n = buf_len(in) < s->remaining ? buf_len(in) : (size_t)s->remaining;
			memcpy(s->body + s->body_len, buf_head(in), n); /* remaining <= UI_BODY_MAX */
			s->body_len += n;
			s->remaining -= n;
			buf_consume(in, n);
			progress = 1;
			if (s->remaining == 0)
				s->state = ST_CALL;
			continue;
		}
		size_t used = 0;
		struct h1_str span = { NULL, 0 };
		int kind = H1_SPAN_DATA;
		const char *why = NULL;
		int r = h1_chunked_step(&s->ch, buf_head(in), buf_len(in), &used, &span, &kind, &why);
		if (r == H1_ERR) {
			s->body_err = 400;
			s->state = ST_CALL;
			return 1;
		}
		if (span.n > 0 && kind == H1_SPAN_DATA) {
			if (s->body_len + span.n > UI_BODY_MAX) {
				s->body_err = 413;
				s->state = ST_CALL;
				return 1;
			}
			memcpy(s->body + s->body_len, span.p, span.n);
			s->body_len += span.n;
		}
		buf_consume(in, used);
		if (used > 0 || span.n > 0)
			progress = 1;
		if (r == H1_OK)
			s->state = ST_CALL;
		else if (used == 0 && span.n == 0)
			break;
	}
	if (s->state == ST_BODY && read_eof) {
		s->body_err = 400; /* the client closed in the middle of its body */
		s->state = ST_CALL;
		return 1;
	}
	if (s->body)
		s->body[s->body_len] = '\0';
	return progress;
}

/* ---- password verification, off the worker threads ----
 *
 * bcrypt costs milliseconds to a quarter of a second (cost 5 to 12), and a worker that ran it
 * would hold every other connection it serves for that long. So a status page request whose
 * rules need a user hands user:password to one verifier thread (a FIFO of jobs) and waits in
 * ST_VERIFY; the verifier runs auth_htpasswd_verify (through the verified-credentials cache:
 * a logged-in browser pays bcrypt once in 5 minutes), puts the job on the done list and wakes
 * the worker (ev_async_send), whose loop calls status_worker_poll(). A client over the
 * failed-login limit gets 429 at once, without a job. The mutex below is taken by status page
 * logins only, never by proxied requests.
 *
 * Lifetime: a job belongs to the verifier while queued or running, to the done list after;
 * the free of its request (client gone, shutdown) detaches it (s = NULL: the
 * verifier frees it) or unlinks and frees it when done. The wake-up is sent under the mutex
 * while the request still holds the job, so the worker (which frees its requests before its
 * loop) is alive for it. */
enum { JOB_QUEUED = 0, JOB_RUNNING, JOB_DONE };

struct status_job {
	struct status_job *next;
	int state;
	struct worker *w;
	struct status_req *s;        /* NULL: the request went away */
	struct cfg *cfg;             /* a reference: keeps the htpasswd file alive */
	const struct auth_htpasswd *users;
	char client[64];
	char user[AUTH_USER_MAX + 1];
	char pass[AUTH_PASS_MAX + 1];
	int64_t now;
	int ok;
};

static pthread_mutex_t status_jobs_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t status_jobs_cv = PTHREAD_COND_INITIALIZER;
static struct status_job *status_todo, **status_todo_tail = &status_todo;
static struct status_job *status_done;
/* Jobs on status_done: read without the mutex by every worker's wake-up (most wake-ups are
 * for other things), changed only by logins. */
static atomic_uint status_done_n;
/* status_verifier_up (declared above): the thread runs; else verification is inline */

static void
status_job_free(struct status_job *j)
{
	explicit_bzero(j->pass, sizeof(j->pass));
	cfg_unref(&j->cfg);
	free(j);
}

/* One verification: 1 when user:pass is right. Counts the outcome in the limiter. */
static int
status_job_check(struct status_job *j)
{
	int ok = auth_htpasswd_verify(j->users, status_vcache, j->user, j->pass, j->now) == 1;
	explicit_bzero(j->pass, sizeof(j->pass));
	if (status_limit != NULL) {
		if (ok)
			auth_limit_reset(status_limit, j->client);
		else
			auth_limit_fail(status_limit, j->client, j->now);
	}
	return ok;
}

static void *
status_verifier_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&status_jobs_mx);
	for (;;) {
		while (status_todo == NULL)
			pthread_cond_wait(&status_jobs_cv, &status_jobs_mx);
		struct status_job *j = status_todo;
		status_todo = j->next;
		if (status_todo == NULL)
			status_todo_tail = &status_todo;
		if (j->s == NULL) {
			pthread_mutex_unlock(&status_jobs_mx);
			status_job_free(j);
			pthread_mutex_lock(&status_jobs_mx);
			continue;
		}
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&status_jobs_mx);
		int ok = status_job_check(j);
		pthread_mutex_lock(&status_jobs_mx);
		if (j->s == NULL) {
			pthread_mutex_unlock(&status_jobs_mx);
			status_job_free(j);
			pthread_mutex_lock(&status_jobs_mx);
			continue;
		}
		j->ok = ok;
		j->state = JOB_DONE;
		j->next = status_done;
		status_done = j;
		atomic_fetch_add_explicit(&status_done_n, 1, memory_order_release);
		ev_async_send(j->w->loop);
	}
	return NULL;
}

/* The free of a request waiting for its verification. */
static void
status_job_cancel(struct status_req *s)
{
	struct status_job *j = s->job, *free_it = NULL;
	s->job = NULL;
	pthread_mutex_lock(&status_jobs_mx);
	if (j->state == JOB_DONE) {
		for (struct status_job **pp = &status_done; *pp != NULL; pp = &(*pp)->next)
			if (*pp == j) {
				*pp = j->next;
				atomic_fetch_sub_explicit(&status_done_n, 1, memory_order_relaxed);
				break;
			}
		free_it = j;
	} else {
		j->s = NULL; /* the verifier frees it */
	}
	pthread_mutex_unlock(&status_jobs_mx);
	if (free_it)
		status_job_free(free_it);
}

static void status_call_verified(struct status_req *s, int ok, const char *user);
static void status_call_granted(struct status_req *s, enum pol_authz_res res,
                                const char *rule);

static void
status_call_done(struct ui_call *call)
{
	struct status_req *s = (struct status_req *)((char *)call - offsetof(struct status_req, call));
	if (s->magic != STATUS_MAGIC || s->state != ST_ASYNC)
		return;
	s->state = ST_SEND;
	rsrc_wake(&s->src);
}

/* Access, then the page. */
static void
status_call(struct status_req *s)
{
	struct ui_call *c = &s->call;
	const char *rule = NULL;

	memset(c, 0, sizeof(*c));
	s->ctx.w = s->w;
	s->ctx.cfg = s->cfg;
	c->ops = status_ui_ops();
	c->wctx = &s->ctx;
	c->done = status_call_done;
	c->req.method = s->method;
	c->req.path = s->path;
	c->req.query = s->query;
	c->req.body = s->body ? s->body : "";
	c->req.body_len = s->body_len;
	c->req.content_type = s->ctype;
	c->req.accept = s->accept;
	c->req.cookie = s->cookie;
	c->req.prefix = s->loc->path;
	c->req.client = s->client;
	c->req.user = NULL;
	c->req.now = (int64_t)(ev_wall_us(s->w->loop) / 1000000);
	s->called = 1;
	s->state = ST_SEND;

	/* ui_handle sets up resp; the refusals below use ui_page_error on a reset resp too */
	c->resp.status = 200;
	ui_out_init(&c->resp.body);
	snprintf(c->resp.ctype, sizeof(c->resp.ctype), "text/html; charset=utf-8");

	enum pol_authz_res res;
	const struct sockaddr *peer = (const struct sockaddr *)&s->peer;
	if (pol_authz_empty(s->loc->authz)) {
		/* no Require at all: loopback only, as with no <Proxy> section */
		int lo = (peer->sa_family == AF_INET &&
		          ((const uint8_t *)&((const struct sockaddr_in *)peer)->sin_addr)[0] == 127) ||
		         (peer->sa_family == AF_INET6 &&
		          IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)peer)->sin6_addr));
		res = lo ? POL_AUTHZ_GRANTED : POL_AUTHZ_DENIED;
		rule = "no Require in the <Location>: loopback clients only";
	} else {
		res = pol_authz_check(s->loc->authz, peer, NULL, &rule);
	}
	if (res == POL_AUTHZ_NO_USER) {
		int64_t now = (int64_t)(ev_wall_us(s->w->loop) / 1000000);
		struct status_job *j = NULL;
		if (s->authz == NULL || s->loc->users == NULL || status_limit == NULL ||
		    (j = calloc(1, sizeof(*j))) == NULL ||
		    auth_basic_decode(s->authz, j->user, sizeof(j->user), j->pass,
		                      sizeof(j->pass)) != 0) {
			free(j);
			status_call_verified(s, 0, NULL);
			return;
		}
		if (auth_limit_blocked(status_limit, s->client, now)) {
			/* no hashing at all for a client over the limit */
			char msg[128];
			explicit_bzero(j->pass, sizeof(j->pass));
			free(j);
			snprintf(msg, sizeof(msg), "too many failed logins from your address: try "
			         "again in %u seconds", AUTH_LIMIT_REFILL);
			ui_refuse(c, 429, msg);
			snprintf(c->resp.headers, sizeof(c->resp.headers), "Retry-After: %u\r\n",
			         AUTH_LIMIT_REFILL);
			return;
		}
		j->w = s->w;
		j->s = s;
		j->cfg = cfg_ref(s->cfg);
		j->users = s->loc->users;
		j->now = now;
		snprintf(j->client, sizeof(j->client), "%s", s->client);
		if (!status_verifier_up) {
			int ok = status_job_check(j);
			status_call_verified(s, ok, j->user);
			status_job_free(j);
			return;
		}
		s->job = j;
		s->state = ST_VERIFY;
		pthread_mutex_lock(&status_jobs_mx);
		*status_todo_tail = j;
		status_todo_tail = &j->next;
		pthread_cond_signal(&status_jobs_cv);
		pthread_mutex_unlock(&status_jobs_mx);
		return;
	}
	status_call_granted(s, res, rule);
}

/* The verifier's answer for s (ok: the password is right). */
static void
status_call_verified(struct status_req *s, int ok, const char *user)
{
	struct ui_call *c = &s->call;
	const char *rule = NULL;
	s->state = ST_SEND;
	if (!ok) {
		const char *realm = s->loc->auth_name ? s->loc->auth_name : "Gatehouse";
		ui_refuse(c, 401, "this page needs a user name and password");
		snprintf(c->resp.headers, sizeof(c->resp.headers),
		         "WWW-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"\r\n", realm);
		return;
	}
	snprintf(s->user, sizeof(s->user), "%s", user);
	enum pol_authz_res res = pol_authz_check(s->loc->authz, (const struct sockaddr *)&s->peer,
	                                         s->user, &rule);
	if (res == POL_AUTHZ_NO_USER)
		res = POL_AUTHZ_DENIED;
	status_call_granted(s, res, rule);
}

void
status_worker_poll(struct worker *w)
{
	struct status_job *mine = NULL;
	if (atomic_load_explicit(&status_done_n, memory_order_acquire) == 0)
		return; /* the usual case: this wake-up is not for a login */
	pthread_mutex_lock(&status_jobs_mx);
	for (struct status_job **pp = &status_done; *pp != NULL;) {
		struct status_job *j = *pp;
		if (j->w == w) {
			*pp = j->next;
			atomic_fetch_sub_explicit(&status_done_n, 1, memory_order_relaxed);
			j->next = mine;
			mine = j;
		} else {
			pp = &j->next;
		}
	}
	pthread_mutex_unlock(&status_jobs_mx);
	while (mine != NULL) {
		struct status_job *j = mine;
		mine = j->next;
		struct status_req *s = j->s; /* alive: its free would have unlinked the job */
		s->job = NULL;
		status_call_verified(s, j->ok, j->user);
		status_job_free(j);
		rsrc_wake(&s->src);
	}
}

/* Access granted or not, after any password; then the page. */
static void
status_call_granted(struct status_req *s, enum pol_authz_res res, const char *rule)
{
	struct ui_call *c = &s->call;
	if (res != POL_AUTHZ_GRANTED) {
		log_info("%s: status page %s%s denied by %s", s->client, s->loc->path, s->path, rule);
		ui_refuse(c, 403, "access to the status page is denied");
		return;
	}
	c->req.user = s->user[0] ? s->user : NULL;
	if (s->body_err) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the request body is larger than %u bytes", UI_BODY_MAX);
		ui_refuse(c, s->body_err, s->body_err == 413 ? msg : s->body_err == 400
		          ? "bad request body" : "out of memory");
		return;
	}
	if (s->redirect) {
		ui_refuse(c, 301, "moved to the status page");
		snprintf(c->resp.headers, sizeof(c->resp.headers), "Location: %s\r\n", s->loc->path);
		return;
	}
	/* ASYNC first: a page whose callback runs before ui_handle returns (c-ares may answer
	 * at once) finds the state it completes */
	s->state = ST_ASYNC;
	if (ui_handle(c) != UI_ASYNC)
		s->state = ST_SEND;
}


/* Make the response head's parts, once. */
static void
status_head(struct status_req *s, struct rsrc_head *h)
{
	struct ui_resp *r = &s->call.resp;
	if (!s->head_made) {
		s->head_made = 1;
		if (r->body.oom) {
			ui_out_free(&r->body);
			r->status = 500;
			snprintf(r->ctype, sizeof(r->ctype), "text/plain; charset=utf-8");
			ui_out_puts(&r->body, "out of memory rendering the page\n");
		}
		if (r->status < 100 || r->status > 599)
			r->status = 500;
		snprintf(s->fields, sizeof(s->fields), "%s%.512s", ui_security_headers(), r->headers);
	}
	int nobody = r->status == 204 || r->status == 304;
	*h = (struct rsrc_head){ .status = r->status, .reason = ui_status_text(r->status),
	                         .ctype = r->ctype, .fields = s->fields, .log_ctype = r->ctype,
	                         .length = nobody ? RSRC_NO_BODY : (int64_t)r->body.len };
}

static int
status_src_head(struct rsrc *src, struct rsrc_io *io, struct rsrc_head *h)
{
	struct status_req *s = status_of(src);
	switch (s->state) {
	case ST_BODY:
		return status_read_body(s, io);
	case ST_CALL:
		if (s->body_err != 0)
			io->close_after = 1; /* the rest of the body is not read */
		status_call(s);
		return RSRC_PROGRESS;
	case ST_VERIFY:
	case ST_ASYNC:
		return RSRC_WAIT;
	case ST_SEND:
	case ST_DONE:
		break;
	}
	status_head(s, h);
	return RSRC_END;
}

static int
status_src_body(struct rsrc *src, struct rsrc_io *io)
{
	struct status_req *s = status_of(src);
	const struct ui_out *b = &s->call.resp.body;
	size_t n = b->len - s->body_off;
	if (n > io->room)
		n = io->room;
	if (n > 0 && buf_append(io->out, b->p + s->body_off, n) != 0)
		return RSRC_WAIT;
	s->body_off += n;
	io->bytes_out += n;
	if (s->body_off == b->len) {
		s->state = ST_DONE;
		return RSRC_END;
	}
	return n > 0 ? RSRC_PROGRESS : RSRC_WAIT;
}

static const struct rsrc_ops status_src_ops = {
	.name = "status",
	.flags = RSRC_F_READS_BODY | RSRC_F_NOT_TRAFFIC,
	.head = status_src_head,
	.body = status_src_body,
	.wants_input = status_src_wants_input,
	.user = status_src_user,
	.free = status_src_free,
};
