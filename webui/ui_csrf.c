/*
 * ui_csrf.c - the status page's sessions and CSRF tokens (the ui_csrf_* of ui_priv.h), on
 * webui/auth.c's pure functions.
 *
 * The session is a random id in cookie gh_session (HttpOnly, SameSite=Strict, Path=the
 * <Location> prefix), set by the first page that shows a form or a token when the browser has
 * none. The token is hex HMAC-SHA256(ops->csrf_secret, session id): nothing is stored on the
 * server, and a restart (a new secret) ends every session. A POST passes only with a session
 * cookie the browser sent and that session's token in the body's csrf field; SameSite=Strict
 * keeps the cookie off cross-site requests besides.
 */
#include "webui/auth.h"
#include "webui/ui_priv.h"

#include <stdio.h>
#include <string.h>

static const char ui_csrf_setcookie[] = "Set-Cookie: " AUTH_SESSION_COOKIE "=";

/* The session id this response already sets (an earlier call on the same page made it). */
static int
ui_csrf_session_set(const struct ui_call *call, char out[AUTH_SESSION_LEN + 1])
{
	const char *p = strstr(call->resp.headers, ui_csrf_setcookie);
	if (p == NULL)
		return -1;
	p += sizeof(ui_csrf_setcookie) - 1;
	if (!auth_session_valid(p, strspn(p, "0123456789abcdef")))
		return -1;
	memcpy(out, p, AUTH_SESSION_LEN);
	out[AUTH_SESSION_LEN] = '\0';
	return 0;
}

/* The session the browser sent: a well-formed gh_session cookie. */
static int
ui_csrf_session_sent(const struct ui_call *call, char out[AUTH_SESSION_LEN + 1])
{
	char v[AUTH_SESSION_LEN + 1];
	long n = auth_cookie_get(call->req.cookie, AUTH_SESSION_COOKIE, v, sizeof(v));
	if (n < 0 || !auth_session_valid(v, (size_t)n))
		return -1;
	memcpy(out, v, sizeof(v));
	return 0;
}

/* The cookie's Path: the prefix when it is plain path characters, else "/" (a prefix with
 * ';' or a control byte must not reach the header). */
static const char *
ui_csrf_path(const char *prefix)
{
	if (prefix == NULL || prefix[0] != '/')
		return "/";
	for (const char *p = prefix; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("/._~-%", c) != NULL))
			return "/";
	}
	return prefix;
}

/* The call's session: sent by the browser, or made now with a Set-Cookie. */
static int
ui_csrf_session(struct ui_call *call, char out[AUTH_SESSION_LEN + 1])
{
	if (ui_csrf_session_set(call, out) == 0 || ui_csrf_session_sent(call, out) == 0)
		return 0;
	if (auth_session_new(out) != 0)
		return -1;
	size_t used = strlen(call->resp.headers);
	int n = snprintf(call->resp.headers + used, sizeof(call->resp.headers) - used,
	                 "%s%s; Path=%s; HttpOnly; SameSite=Strict\r\n", ui_csrf_setcookie, out,
	                 ui_csrf_path(call->req.prefix));
	if (n < 0 || (size_t)n >= sizeof(call->resp.headers) - used) {
		call->resp.headers[used] = '\0';   /* no room: no session, POSTs fail */
		return -1;
	}
	return 0;
}

int
ui_csrf_token(struct ui_call *call, char *out, size_t cap)
{
	char s[AUTH_SESSION_LEN + 1], tok[AUTH_CSRF_LEN + 1];
	if (cap > 0)
		out[0] = '\0';
	if (cap <= AUTH_CSRF_LEN || ui_csrf_session(call, s) != 0 ||
	    auth_csrf_token(call->ops != NULL ? call->ops->csrf_secret : NULL, s, tok) != 0)
		return -1;
	memcpy(out, tok, sizeof(tok));
	return 0;
}

void
ui_csrf_field(struct ui_call *call)
{
	char tok[AUTH_CSRF_LEN + 1];
	if (ui_csrf_token(call, tok, sizeof(tok)) != 0)
		tok[0] = '\0';   /* the form still renders; its POST gets 403 */
	ui_out_printf(&call->resp.body, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", tok);
}

int
ui_csrf_ok(const struct ui_call *call)
{
	char s[AUTH_SESSION_LEN + 1], tok[AUTH_CSRF_LEN + 2];
	if (call->ops == NULL || ui_csrf_session_sent(call, s) != 0)
		return 0;
	long n = ui_param(call->req.body, call->req.body_len, "csrf", tok, sizeof(tok));
	if (n < 0)
		return 0;
	return auth_csrf_check(call->ops->csrf_secret, s, tok, (size_t)n);
}
