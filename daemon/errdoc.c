/*
 * errdoc.c - ErrorDocument (see errdoc.h): classify and check each line when the config is
 * loaded (template files are read then, so a reload re-reads them and a bad one is a FILE:LINE
 * error that keeps the running config), and fill the placeholders per page.
 *
 * Called by cfg.c (errdoc_directive, errdoc_free) on the loading thread and by proxy.c
 * (errdoc_render) on workers; the struct is read-only between the two.
 */
#include "daemon/errdoc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define ERRDOC_MAGIC 0x45444f43u /* "EDOC" */

struct errdoc_ent {
	int status;
	enum errdoc_kind kind;
	char *text;           /* the page template (message or file contents) or the URL */
};

struct errdoc {
	unsigned magic;
	struct errdoc_ent *v;
	size_t n, cap;
};

/* The error statuses the proxy answers with itself (proxy.c, h1.c, cachereq.c). */
static const int errdoc_codes[] = {
	400, 403, 404, 405, 408, 414, 417, 431, 500, 501, 502, 504, 505
};

static const char *const errdoc_names[] = {
	"STATUS", "STATUS_TEXT", "REASON", "URL", "REQUEST_ID", "SERVER_NAME"
};
enum { ERRDOC_V_STATUS, ERRDOC_V_STATUS_TEXT, ERRDOC_V_REASON, ERRDOC_V_URL,
       ERRDOC_V_REQUEST_ID, ERRDOC_V_SERVER_NAME, ERRDOC_NVARS };

/* The placeholder at p ("%{NAME}"): its index and *len its length; -1 unknown, -2 unclosed. */
static int
errdoc_placeholder(const char *p, size_t *len)
{
	const char *end = strchr(p + 2, '}');
	if (end == NULL)
		return -2;
	size_t n = (size_t)(end - (p + 2));
	*len = n + 3;
	for (int i = 0; i < ERRDOC_NVARS; i++)
		if (strlen(errdoc_names[i]) == n && memcmp(p + 2, errdoc_names[i], n) == 0)
			return i;
	return -1;
}

/* Every "%{" in t opens a known placeholder. Returns 0, or -1 with msg. */
static int
errdoc_check(const char *t, char *msg, size_t msglen)
{
	for (const char *p = strstr(t, "%{"); p; p = strstr(p + 1, "%{")) {
		size_t len = 0;
		int k = errdoc_placeholder(p, &len);
		if (k == -2) {
			snprintf(msg, msglen, "ErrorDocument: \"%%{\" without a closing \"}\"");
			return -1;
		}
		if (k < 0) {
			snprintf(msg, msglen, "ErrorDocument: unknown placeholder \"%.*s\" (known: "
			         "%%{STATUS} %%{STATUS_TEXT} %%{REASON} %%{URL} %%{REQUEST_ID} "
			         "%%{SERVER_NAME})", (int)(len < 64 ? len : 64), p);
			return -1;
		}
	}
	return 0;
}

/* Read the template file at path (NUL-terminated text, at most ERRDOC_MAX_BYTES). */
static char *
errdoc_read(const char *path, char *msg, size_t msglen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(msg, msglen, "ErrorDocument: cannot read %.300s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		/* a FIFO or a device could block the loader or never end */
		fclose(f);
		snprintf(msg, msglen, "ErrorDocument: %.300s is not a regular file", path);
		return NULL;
	}
	char *text = malloc(ERRDOC_MAX_BYTES + 2);
	if (text == NULL) {
		fclose(f);
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	size_t len = fread(text, 1, ERRDOC_MAX_BYTES + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(msg, msglen, "ErrorDocument: cannot read %.300s", path);
	} else if (len > ERRDOC_MAX_BYTES) {
		snprintf(msg, msglen, "ErrorDocument: %.300s is larger than %d KiB", path,
		         ERRDOC_MAX_BYTES / 1024);
		bad = 1;
	} else if (memchr(text, '\0', len) != NULL) {
		snprintf(msg, msglen, "ErrorDocument: %.300s is not a text file (it holds NUL bytes)",
		         path);
		bad = 1;
	}
	if (bad) {
		free(text);
		return NULL;
	}
	text[len] = '\0';
	return text;
}

/* "scheme://": 1 for http/https, -1 for another scheme, 0 when arg is not a URL. */
static int
errdoc_url_kind(const char *arg)
{
	size_t n = 0;
	if (!isalpha((unsigned char)arg[0]))
		return 0;
	while (isalnum((unsigned char)arg[n]) || arg[n] == '+' || arg[n] == '-' || arg[n] == '.')
		n++;
	if (strncmp(arg + n, "://", 3) != 0)
		return 0;
	if ((n == 4 && strncasecmp(arg, "http", 4) == 0) ||
	    (n == 5 && strncasecmp(arg, "https", 5) == 0))
		return arg[n + 3] != '\0' && arg[n + 3] != '/' ? 1 : -1;
	return -1;
}

int
errdoc_directive(struct errdoc **ep, const char *code, const char *arg, char *msg,
                 size_t msglen)
{
	int status = 0;
	size_t nc = sizeof(errdoc_codes) / sizeof(errdoc_codes[0]);

	if (strlen(code) == 3 && isdigit((unsigned char)code[0]) &&
	    isdigit((unsigned char)code[1]) && isdigit((unsigned char)code[2]))
		status = atoi(code);
	size_t i;
	for (i = 0; i < nc && errdoc_codes[i] != status; i++)
		;
	if (i == nc) {
		snprintf(msg, msglen, "ErrorDocument: \"%.20s\" is not an error status the proxy "
		         "answers with itself (400 403 404 405 408 414 417 431 500 501 502 504 505)",
		         code);
		return -1;
	}
	if (*arg == '\0') {
		snprintf(msg, msglen, "ErrorDocument: empty document");
		return -1;
	}

	enum errdoc_kind kind = ERRDOC_PAGE;
	char *text = NULL;
	int url = errdoc_url_kind(arg);
	if (strcasecmp(arg, "default") == 0) {
		kind = ERRDOC_NONE;
	} else if (strchr(arg, ' ') != NULL) {
		text = strdup(arg); /* a message, as Apache: any argument with a space */
	} else if (arg[0] == '/') {
		text = errdoc_read(arg, msg, msglen);
		if (text == NULL)
			return -1;
	} else if (url < 0) {
		snprintf(msg, msglen, "ErrorDocument: \"%.200s\": only http:// and https:// URLs "
		         "with a host can be redirected to", arg);
		return -1;
	} else if (url > 0) {
		kind = ERRDOC_REDIRECT;
		text = strdup(arg);
	} else {
		text = strdup(arg);
	}
	if (kind != ERRDOC_NONE && text == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	if (text != NULL && errdoc_check(text, msg, msglen) != 0) {
		free(text);
		return -1;
	}

	struct errdoc *e = *ep;
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL) {
			free(text);
			snprintf(msg, msglen, "out of memory");
			return -1;
		}
		e->magic = ERRDOC_MAGIC;
		*ep = e;
	}
	/* A later line for the same status replaces the earlier one, as in Apache. */
	for (i = 0; i < e->n && e->v[i].status != status; i++)
		;
	if (i == e->n) {
		if (kind == ERRDOC_NONE)
			return 0;
		if (e->n == e->cap) {
			size_t ncap = e->cap ? e->cap * 2 : 8;
			struct errdoc_ent *v = realloc(e->v, ncap * sizeof(*v));
			if (v == NULL) {
				free(text);
				snprintf(msg, msglen, "out of memory");
				return -1;
			}
			e->v = v;
			e->cap = ncap;
		}
		e->n++;
	} else {
		free(e->v[i].text);
	}
	e->v[i].status = status;
	e->v[i].kind = kind;
	e->v[i].text = text;
	return 0;
}

void
errdoc_free(struct errdoc **ep)
{
	struct errdoc *e = *ep;
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].text);
	free(e->v);
	e->magic = 0;
	free(e);
	*ep = NULL;
}

int
errdoc_html_escape(struct buf *b, const char *s)
{
	int rc = 0;
	for (; *s && rc == 0; s++) {
		switch (*s) {
		case '<': rc = buf_append(b, "&lt;", 4); break;
		case '>': rc = buf_append(b, "&gt;", 4); break;
		case '&': rc = buf_append(b, "&amp;", 5); break;
		case '"': rc = buf_append(b, "&quot;", 6); break;
		case '\'': rc = buf_append(b, "&#39;", 5); break;
		default:
			if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
				rc = buf_append(b, "?", 1);
			else
				rc = buf_append(b, s, 1);
		}
	}
	return rc;
}

/* Percent-encode everything but RFC 3986 unreserved characters. */
static int
errdoc_url_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;
	for (; *s && rc == 0; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			rc = buf_append(b, s, 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			rc = buf_append(b, e, 3);
		}
	}
	return rc;
}

enum errdoc_kind
errdoc_render(const struct errdoc *e, const struct errdoc_vars *v, struct buf *out)
{
	if (e == NULL)
		return ERRDOC_NONE;
	const struct errdoc_ent *ent = NULL;
	for (size_t i = 0; i < e->n && ent == NULL; i++)
		if (e->v[i].status == v->status)
			ent = &e->v[i];
	if (ent == NULL || ent->kind == ERRDOC_NONE)
		return ERRDOC_NONE;

	char num[8];
	snprintf(num, sizeof(num), "%d", v->status);
	const char *val[ERRDOC_NVARS] = {
		[ERRDOC_V_STATUS] = num,
		[ERRDOC_V_STATUS_TEXT] = v->status_text,
		[ERRDOC_V_REASON] = v->reason,
		[ERRDOC_V_URL] = v->url,
		[ERRDOC_V_REQUEST_ID] = v->req_id,
		[ERRDOC_V_SERVER_NAME] = v->server_name,
	};
	const char *t = ent->text;
	int rc = 0;
	while (*t && rc == 0) {
		const char *p = strstr(t, "%{");
		size_t lit = p ? (size_t)(p - t) : strlen(t);
		rc = buf_append(out, t, lit);
		t += lit;
		if (p == NULL || rc != 0)
			break;
		size_t len = 0;
		int k = errdoc_placeholder(p, &len); /* checked at load: known and closed */
		if (k < 0) {
			rc = buf_append(out, p, 2);
			t += 2;
			continue;
		}
		const char *s = val[k] ? val[k] : "-";
		rc = ent->kind == ERRDOC_PAGE ? errdoc_html_escape(out, s) : errdoc_url_escape(out, s);
		t += len;
	}
	return rc == 0 ? ent->kind : ERRDOC_NONE;
}
