/*
 * fuzz_helper.c - libFuzzer harness for the pure parts of daemon/helper.c: hreply_parse on
 * arbitrary reply lines and hreq_basic_line on arbitrary credentials.
 *
 * The line is given in a buffer of exactly its length (ASan catches a write to line[len]).
 * Besides crashes, the harness abort()s on an inconsistent result: a failed parse that leaves
 * a code or a pointer, a pointer outside the line or a string not NUL-terminated inside it, a
 * user, group or token that is empty or carries a control byte (they reach headers and logs),
 * a message with one, more groups than HREPLY_MAX_GROUPS; and for hreq_basic_line: an output
 * with a byte outside the unreserved set, '%' and the one blank, or one that does not
 * %-decode back to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/helper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_check(int ok)
{
	if (!ok)
		abort();
}

/* s lies inside [buf, buf+len) and its NUL too; it has no control byte when strict. */
static void
fz_str(const char *s, const char *buf, size_t len, int strict)
{
	fz_check(s >= buf && s < buf + len);
	const char *nul = memchr(s, '\0', (size_t)(buf + len - s));
	fz_check(nul != NULL);
	if (strict)
		fz_check(nul > s);
	for (const char *p = s; p < nul; p++)
		fz_check((unsigned char)*p >= 0x20 && *p != 0x7f);
}

static void
fz_reply(const uint8_t *data, size_t size)
{
	char *line = malloc(size ? size : 1);
	struct hreply hr;

	if (line == NULL)
		return;
	memcpy(line, data, size);
	int rc = hreply_parse(line, size, &hr);
	if (rc != 0) {
		fz_check(rc == -1 && hr.code == HR_UNKNOWN && hr.user == NULL && hr.token == NULL &&
		         hr.message == NULL && hr.ngroups == 0);
	} else {
		fz_check(hr.code != HR_UNKNOWN && hr.ngroups <= HREPLY_MAX_GROUPS);
		if (hr.user)
			fz_str(hr.user, line, size, 1);
		if (hr.token)
			fz_str(hr.token, line, size, 1);
		if (hr.message)
			fz_str(hr.message, line, size, 0);
		for (size_t i = 0; i < hr.ngroups; i++)
			fz_str(hr.groups[i], line, size, 1);
	}
	free(line);
}

static int
fz_hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode s[0..n) (escapes must be whole) into dec; return its length. */
static size_t
fz_decode(const char *s, size_t n, char *dec)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			fz_check(i + 2 < n);
			int a = fz_hex(s[i + 1]), b = fz_hex(s[i + 2]);
			fz_check(a >= 0 && b >= 0);
			dec[k++] = (char)(a * 16 + b);
			i += 2;
		} else {
			dec[k++] = s[i];
		}
	}
	dec[k] = '\0';
	return k;
}

static void
fz_basic(const uint8_t *data, size_t size)
{
	/* user NUL pass: the first NUL splits, the rest is the password up to its own NUL */
	char *in = malloc(size + 2);
	if (in == NULL)
		return;
	memcpy(in, data, size);
	in[size] = in[size + 1] = '\0';
	const char *user = in;
	const char *pass = in + strlen(in) + 1;
	size_t cap = size > 0 ? (size_t)data[0] * 4 : 16;
	char *out = malloc(cap ? cap : 1);
	if (out == NULL) {
		free(in);
		return;
	}
	size_t n = hreq_basic_line(user, pass, out, cap);
	if (n > 0) {
		fz_check(n < cap && out[n] == '\0' && strlen(out) == n);
		const char *sp = memchr(out, ' ', n);
		fz_check(sp != NULL && memchr(sp + 1, ' ', n - (size_t)(sp + 1 - out)) == NULL);
		for (size_t i = 0; i < n; i++) {
			char c = out[i];
			fz_check((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
			         c == '~' || c == '%' || c == ' ');
		}
		char *dec = malloc(n + 1);
		if (dec) {
			size_t ul = (size_t)(sp - out);
			fz_decode(out, ul, dec);
			fz_check(strcmp(dec, user) == 0);
			fz_decode(sp + 1, n - ul - 1, dec);
			fz_check(strcmp(dec, pass) == 0);
			free(dec);
		}
	} else {
		/* only when it may not fit: escaped, it takes up to 3 bytes a byte, a blank, a NUL */
		fz_check(3 * (strlen(user) + strlen(pass)) + 2 > cap);
	}
	free(out);
	free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_reply(data, size);
	fz_basic(data, size);
	return 0;
}
