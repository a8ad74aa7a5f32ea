/*
 * pauth_neg.c - proxy authentication with Negotiate (Kerberos / SPNEGO, RFC 4559) through a
 * Squid Negotiate helper (negotiate_kerberos_auth), issue 14.
 *
 * Called by pauth_identify (pauth.c) only; see pauth_negotiate in pauth.h. The exchange:
 *   client "Proxy-Authorization: Negotiate TOKEN"
 *     -> helper "YR TOKEN" (a new exchange, any child) or "KK TOKEN" (the next leg of an
 *        exchange in progress, on the child that began it: pc->neg_child)
 *     <- "TT TOKEN"                 more legs: 407 "Proxy-Authenticate: Negotiate TOKEN"
 *        "AF TOKEN USER" / "OK token=.. user=.. [group=..]"   done: the user
 *        "NA TOKEN REASON" / "ERR .."                          refused: a failure
 *        "BH REASON"                                          the helper could not use the
 *                                                             token (see neg_finish)
 * Invariants:
 *   - SPNEGO is connection-oriented: the identity belongs to the client connection
 *     (pc->neg_user_ok), never to the process-wide result cache. Tokens are one-time (the
 *     acceptor keeps a replay cache); caching them would only keep garbage.
 *   - Except on their own connection: curl (and other clients that send the header
 *     pre-emptively) repeats the token that succeeded on every request. Such a request is
 *     the connection's user without a helper round trip (pc->neg_accepted, compared whole).
 *     Safe because it grants nothing new: whoever can send bytes on this connection already
 *     is that user, as a request without Proxy-Authorization is (RFC 4559 binds the
 *     identity to the connection). A replay of the token on another connection still goes
 *     to the helper, whose replay cache refuses it; a different token on this connection
 *     (another user, a renewed ticket) goes to the helper and starts over; a reload's new
 *     settings (pauth_conn_under) or a Basic login since (cred_expires_ms) forget it.
 *   - A helper request in flight is pc->pending; its answer lands in pc->answer and
 *     pc->pending_done, then pc->wake runs on the worker's loop and the caller calls again.
 *   - The token is never logged (it is a credential for its lifetime).
 */
#include "daemon/pauth.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/cfg.h"
#include "daemon/log.h"

/* A Kerberos token with a large PAC is tens of kilobytes (Windows' MaxTokenSize is 48000
 * bytes, 64000 in base64); the header cap of the request line bounds it earlier anyway. */
#define NEG_TOKEN_MAX 64000

/* The helper's name for messages: the basename of the command's first word. */
static void
neg_helper_name(const struct pauth_cfg *cfg, char *out, size_t cap)
{
	const char *cmd = cfg->negotiate_helper.cmd ? cfg->negotiate_helper.cmd : "";
	while (*cmd == ' ' || *cmd == '\t' || *cmd == '"')
		cmd++;
	size_t n = strcspn(cmd, " \t\"");
	const char *slash = cmd;
	for (size_t i = 0; i < n; i++)
		if (cmd[i] == '/')
			slash = cmd + i + 1;
	n -= (size_t)(slash - cmd);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, slash, n);
	out[n] = '\0';
	if (n == 0)
		snprintf(out, cap, "the Negotiate helper");
}

/* Is token plain base64 (RFC 4648 alphabet, '=' only as trailing padding)? The helper gets it
 * on one line, so a blank, CR or LF must never reach it. */
static int
neg_token_valid(const char *t, size_t len)
{
	if (len == 0 || len > NEG_TOKEN_MAX || len % 4 != 0)
		return 0;
	size_t pad = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad)
			return 0;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return 0;
	}
	return pad <= 2;
}

/* Forget what the connection proved and any exchange in progress (a new token starts over). */
static void
neg_forget(struct pauth_conn *pc)
{
	pauth_conn_forget_user(pc);
	pc->neg_user_ok = 0;
	free(pc->neg_token);
	pc->neg_token = NULL;
}

static void
neg_add_group(struct pauth_conn *pc, const char *g)
{
	if (g == NULL || *g == '\0' || pc->ngroups >= PAUTH_MAX_GROUPS)
		return;
	for (size_t i = 0; i < pc->ngroups; i++)
		if (strcmp(pc->groups[i], g) == 0)
			return;
	char *copy = strdup(g);
	if (copy)
		pc->groups[pc->ngroups++] = copy;
}

/* The helper's answer arrived (on the worker's loop). */
static void
neg_reply_cb(void *arg, const struct hpool_reply *rep)
{
	struct pauth_conn *pc = arg;
	pc->pending = NULL;
	free(pc->answer);
	pc->answer = NULL;
	pc->answer_status = (int)rep->status;
	if (rep->status == HP_OK) {
		pc->answer = strndup(rep->line ? rep->line : "", rep->len);
		/* A TT keeps the exchange on this child; the next leg is pinned to it. */
		pc->neg_child = rep->child;
	} else {
		pc->neg_child = HPOOL_ANY;
	}
	pc->pending_done = 1;
	if (pc->wake)
		pc->wake(pc->wake_arg);
}

/* Map the answer to a result. The line is modified (hreply_parse splits it in place). token:
 * what the request sent (the caller calls again with the same arguments after PAUTH_WAIT), kept
 * on success as pc->neg_accepted. */
static enum pauth_res
neg_finish(struct pauth *pa, struct pauth_conn *pc, struct pauth_req *r, const char *token,
           size_t len, struct who *who)
{
	const struct pauth_cfg *cfg = r->cfg;
	char name[64];
	neg_helper_name(cfg, name, sizeof name);
	int status = pc->answer_status;
	char *line = pc->answer;
	pc->answer = NULL;
	pc->pending_done = 0;

	if (status != HP_OK || line == NULL) {
		pc->neg_child = HPOOL_ANY;
		free(line);
		if (line == NULL && status == HP_OK)
			status = HP_DIED;  /* out of memory copying the answer: as good as none */
		snprintf(r->msg, sizeof r->msg, "the Negotiate helper %s %s", name,
		         status == HP_TIMEOUT ? "timed out" :
		         status == HP_OVERLOAD ? "is overloaded (too many requests waiting)" :
		         "died or could not be started");
		log_msg(CFG_LL_WARN, "proxy authentication: %s from %s", r->msg,
		        r->addr_text ? r->addr_text : "?");
		return PAUTH_UNAVAILABLE;
	}

	struct hreply h;
	enum pauth_res res;
	if (hreply_parse(line, strlen(line), &h) != 0)
		h.code = HR_UNKNOWN;
	switch (h.code) {
	case HR_TT:
		if (h.token == NULL || !neg_token_valid(h.token, strlen(h.token)))
			goto garbled;
		free(pc->neg_token);
		pc->neg_token = strdup(h.token);
		snprintf(r->msg, sizeof r->msg, "Negotiate continues");
		res = PAUTH_CHALLENGE;
		break;
	case HR_AF:
	case HR_OK:
	case HR_LD:
		if (h.user == NULL || *h.user == '\0')
			goto garbled;
		neg_forget(pc);
		pc->neg_child = HPOOL_ANY;
		pc->user = strdup(h.user);
		if (pc->user == NULL) {
			snprintf(r->msg, sizeof r->msg, "out of memory");
			res = PAUTH_UNAVAILABLE;
			break;
		}
		for (size_t i = 0; i < h.ngroups; i++)
			neg_add_group(pc, h.groups[i]);
		if (cfg->groups) {
			const char *gs[PAUTH_MAX_GROUPS];
			size_t n = pauth_groups_of(cfg->groups, pc->user, gs, PAUTH_MAX_GROUPS);
			for (size_t i = 0; i < n; i++)
				neg_add_group(pc, gs[i]);
		}
		/* The final leg's token (mutual authentication) is not sent back: a proxy's 200
		 * comes from the origin, and clients do not require it. */
		pc->neg_user_ok = 1;
		/* Out of memory: no shortcut, the next request asks the helper as before. */
		if (token && len > 0 && (pc->neg_accepted = malloc(len)) != NULL) {
			memcpy(pc->neg_accepted, token, len);
			pc->neg_accepted_len = len;
		}
		pc->cred_cfg = cfg;
		memcpy(pc->cred_id, cfg->id, sizeof(pc->cred_id));
		pauth_who_fill(pc, who);
		r->msg[0] = '\0';
		res = PAUTH_OK;
		break;
	case HR_NA:
	case HR_ERR:
	case HR_BH: {
		/* negotiate_kerberos_auth answers BH to a token it cannot accept (another realm,
		 * a service key it does not have, an expired or replayed ticket): that is the
		 * client's failure, a 407 counted by the limiter as Squid treats it, not a 503. */
		char why[160];
		snprintf(why, sizeof why, "Negotiate refused by %s%s%.100s", name,
		         h.message ? ": " : "", h.message ? h.message : "");
		pc->neg_child = HPOOL_ANY;
		free(pc->neg_token);
		pc->neg_token = NULL;
		res = pauth_fail(pa, r, h.user, why);
		if (res != PAUTH_LIMITED)
			snprintf(r->msg, sizeof r->msg, "%s", why);
		break;
	}
	default:
	garbled:
		pc->neg_child = HPOOL_ANY;
		snprintf(r->msg, sizeof r->msg, "the Negotiate helper %s gave an answer Gatehouse "
		         "does not understand", name);
		log_msg(CFG_LL_WARN, "proxy authentication: %s", r->msg);
		res = PAUTH_UNAVAILABLE;
		break;
	}
	free(line);
	return res;
}

enum pauth_res
pauth_negotiate(struct pauth *pa, struct pauth_wk *wk, struct pauth_conn *pc, struct pauth_req *r,
                const char *token, size_t len, struct who *who)
{
	const struct pauth_cfg *cfg = r->cfg;

	if (pc->pending_done)
		return neg_finish(pa, pc, r, token, len, who);
	if (pc->pending) {
		/* Called before the answer (a spurious wake): keep waiting, with the new wake. */
		pc->wake = r->wake;
		pc->wake_arg = r->wake_arg;
		return PAUTH_WAIT;
	}

	if (token == NULL) {
		/* cred_expires_ms is 0 after a Negotiate success; a Basic success since then
		 * (a section offering both) set it, and Basic needs its field on every request. */
		if (pc->neg_user_ok && pc->user && pauth_conn_under(pc, cfg) &&
		    pc->cred_expires_ms == 0) {
			pauth_who_fill(pc, who);
			return PAUTH_OK;
		}
		/* The client dropped an exchange in progress: the next challenge is a plain one. */
		free(pc->neg_token);
		pc->neg_token = NULL;
		pc->neg_child = HPOOL_ANY;
		snprintf(r->msg, sizeof r->msg, "proxy authentication required");
		return PAUTH_CHALLENGE;
	}

	/* The very token that proved the connection's user, repeated (see the top). */
	if (pc->neg_user_ok && pc->user && pc->neg_accepted && pauth_conn_under(pc, cfg) &&
	    pc->cred_expires_ms == 0 && len == pc->neg_accepted_len &&
	    CRYPTO_memcmp(token, pc->neg_accepted, len) == 0) {
		pauth_count_conn_hit(pa);
		pauth_who_fill(pc, who);
		return PAUTH_OK;
	}

	if (pauth_limit_check(pa, r))
		return PAUTH_LIMITED;

	/* A token on a connection that already proved someone starts over: the identity is
	 * whatever this token proves (or nobody). An exchange in progress continues (KK) only
	 * while the connection has not finished one. */
	if (pc->neg_user_ok) {
		neg_forget(pc);
		pc->neg_child = HPOOL_ANY;
	}
	free(pc->neg_token);
	pc->neg_token = NULL;

	if (!neg_token_valid(token, len)) {
		pc->neg_child = HPOOL_ANY;
		enum pauth_res res = pauth_fail(pa, r, NULL, "malformed Negotiate token");
		if (res != PAUTH_LIMITED)
			snprintf(r->msg, sizeof r->msg, "malformed Negotiate token");
		return res;
	}

	char err[160], name[64];
	struct hpool *pool = pauth_wk_pool(wk, &cfg->negotiate_helper, err, sizeof err);
	if (pool == NULL) {
		neg_helper_name(cfg, name, sizeof name);
		snprintf(r->msg, sizeof r->msg,
		         "the Negotiate helper %.48s cannot be started: %.100s", name, err);
		return PAUTH_UNAVAILABLE;
	}

	char *line = malloc(len + 4);
	if (line == NULL) {
		snprintf(r->msg, sizeof r->msg, "out of memory");
		return PAUTH_UNAVAILABLE;
	}
	uint32_t child = pc->neg_child;
	memcpy(line, child == HPOOL_ANY ? "YR " : "KK ", 3);
	memcpy(line + 3, token, len);
	line[len + 3] = '\0';

	/* The state first: the answer may come on the very next loop turn. */
	pc->wake = r->wake;
	pc->wake_arg = r->wake_arg;
	pc->pending_done = 0;
	pc->pending = hpool_submit(pool, child, line, len + 3, neg_reply_cb, pc);
	free(line);
	if (pc->pending == NULL) {
		snprintf(r->msg, sizeof r->msg, "out of memory");
		return PAUTH_UNAVAILABLE;
	}
	return PAUTH_WAIT;
}
