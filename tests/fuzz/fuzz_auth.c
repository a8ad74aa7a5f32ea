/*
 * fuzz_auth.c - libFuzzer harness for the parsers of webui/auth.c: Basic credentials
 * (auth_basic_decode), the Cookie field (auth_cookie_get), session ids and CSRF tokens, and
 * the htpasswd loader (auth_htpasswd_load, fed through a memfd).
 *
 * Besides crashes, the harness abort()s on an inconsistent result: a decoded user with ':' or
 * a control byte, output longer than its buffer, a cookie value that is not a slice of the
 * input, or a loaded file whose users are not found again. No password is ever verified here
 * (a bcrypt cost in the input could take minutes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "webui/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_check(int ok)
{
	if (!ok)
		abort();
}

static void
fz_basic(const char *s)
{
	char user[32], pass[48];
	if (auth_basic_decode(s, user, sizeof(user), pass, sizeof(pass)) != 0)
		return;
	size_t ul = strlen(user);
	fz_check(ul > 0 && ul < sizeof(user) && strlen(pass) < sizeof(pass));
	fz_check(strchr(user, ':') == NULL);
	for (size_t i = 0; i < ul; i++)
		fz_check((unsigned char)user[i] >= 0x20 && user[i] != 0x7f);
}

static void
fz_cookie(const char *s)
{
	char v[40];
	long n = auth_cookie_get(s, AUTH_SESSION_COOKIE, v, sizeof(v));
	if (n < 0)
		return;
	fz_check((size_t)n < sizeof(v) && strlen(v) == (size_t)n && strstr(s, v) != NULL);
	if (auth_session_valid(v, (size_t)n)) {
		char tok[AUTH_CSRF_LEN + 1];
		fz_check(auth_csrf_token("secret", v, tok) == 0);
		fz_check(auth_csrf_check("secret", v, tok, strlen(tok)));
		fz_check(!auth_csrf_check("other", v, tok, strlen(tok)));
	}
}

static void
fz_htpasswd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-htpasswd", 0);
	if (fd < 0)
		return;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	char path[64], err[512];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct auth_htpasswd *h = NULL;
	if (auth_htpasswd_load(path, &h, err, sizeof(err)) == 0) {
		fz_check(h != NULL);
		/* every "user:" line that loaded is found again (lines as the loader sees them:
		 * blank and '#' lines skipped after leading blanks; an input with a NUL byte is not
		 * counted, fgets and strlen disagree on it) */
		size_t found = 0;
		const char *p = (const char *)data, *end = p + size;
		int nul = memchr(data, '\0', size) != NULL;
		while (!nul && p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			const char *q = p;
			while (q < le && (*q == ' ' || *q == '\t'))
				q++;
			if (q < le && *q != '#' && !(q + 1 == le && *q == '\r')) {
				const char *colon = memchr(p, ':', (size_t)(le - p));
				fz_check(colon != NULL && colon > p && colon - p <= AUTH_USER_MAX);
				char user[AUTH_USER_MAX + 1];
				memcpy(user, p, (size_t)(colon - p));
				user[colon - p] = '\0';
				fz_check(auth_htpasswd_has(h, user));
				found++;
			}
			p = le + 1;
		}
		fz_check(nul || found == auth_htpasswd_count(h));
		auth_htpasswd_free(&h);
		fz_check(h == NULL);
	} else {
		fz_check(h == NULL && err[0] != '\0');
	}
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fz_basic(s);
	fz_cookie(s);
	free(s);
	fz_htpasswd(data, size);
	return 0;
}
