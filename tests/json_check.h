/*
 * json_check.h - a JSON syntax check (RFC 8259) for tests and fuzz harnesses: enough to tell a
 * valid document from a broken one (numbers as integers, the nesting bounded), so that what a
 * renderer writes can be checked without a JSON library. Header-only; each user includes it
 * once.
 */
#ifndef GH_TESTS_JSON_CHECK_H
#define GH_TESTS_JSON_CHECK_H

#include <ctype.h>
#include <string.h>

static const char *tj_value(const char *p, const char *e, int depth);

static const char *
tj_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

static const char *
tj_string(const char *p, const char *e)
{
	if (p >= e || *p++ != '"')
		return NULL;
	while (p < e && *p != '"') {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			p++;
			if (p >= e)
				return NULL;
			if (*p == 'u') {
				int i;

				for (i = 1; i <= 4; i++)
					if (p + i >= e || !isxdigit((unsigned char)p[i]))
						return NULL;
				p += 4;
			} else if (strchr("\"\\/bfnrt", *p) == NULL) {
				return NULL;
			}
		}
		p++;
	}
	return p < e ? p + 1 : NULL;
}

static const char *
tj_value(const char *p, const char *e, int depth)
{
	p = tj_ws(p, e);
	if (p >= e || depth > 20)
		return NULL;
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		int obj = *p == '{';

		p = tj_ws(p + 1, e);
		if (p < e && *p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = tj_string(tj_ws(p, e), e);
				if (p == NULL)
					return NULL;
				p = tj_ws(p, e);
				if (p >= e || *p++ != ':')
					return NULL;
			}
			p = tj_value(p, e, depth + 1);
			if (p == NULL)
				return NULL;
			p = tj_ws(p, e);
			if (p < e && *p == ',') {
				p++;
				continue;
			}
			return p < e && *p == close ? p + 1 : NULL;
		}
	}
	if (*p == '"')
		return tj_string(p, e);
	if (e - p >= 4 && memcmp(p, "null", 4) == 0)
		return p + 4;
	if (*p == '-' || (*p >= '0' && *p <= '9')) {
		p++;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
		return p;
	}
	return NULL;
}

/* Is p..e one JSON value with only white space around it? */
static int
tj_valid_span(const char *p, const char *e)
{
	p = tj_value(p, e, 0);
	return p != NULL && tj_ws(p, e) == e;
}

#endif
