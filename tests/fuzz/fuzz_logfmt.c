/*
 * fuzz_logfmt.c - libFuzzer harness for the Apache log format compiler and renderer
 * (daemon/logfmt.c).
 *
 * The input is split at its first NUL byte: before it, the format text; after it, a request
 * head that the %{NAME}i and %{NAME}C directives search. Besides crashes, the harness abort()s
 * when a refused format leaves no message or a result, when a rendered line is not terminated
 * where its length says, or when it overruns a small buffer's bound.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/logfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_check(int ok)
{
	if (!ok)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[9000], line[512], big[20000], err[256];
	const uint8_t *nul = memchr(data, 0, size);
	size_t tn = nul ? (size_t)(nul - data) : size;
	struct logfmt *f = NULL;

	if (tn >= sizeof(text))
		return 0;
	memcpy(text, data, tn);
	text[tn] = '\0';
	err[0] = '\0';
	if (logfmt_compile(text, &f, err, sizeof(err)) != 0) {
		fz_check(f == NULL && err[0] != '\0');
		return 0;
	}
	fz_check(f != NULL);
	struct alog_entry e = {
		.start_us = 1764860645123456ull,
		.client = "127.0.0.1",
		.action = "TCP_MISS",
		.status = 200,
		.bytes = 10,
		.body_bytes = 5,
		.method = "GET",
		.url = "http://h/p?q",
		.request_line = "GET http://h/p?q HTTP/1.1",
		.minor = 1,
	};
	if (nul) {
		e.req_head = (const char *)nul + 1;
		e.req_head_len = size - tn - 1;
		e.resp_head = e.req_head;
		e.resp_head_len = e.req_head_len;
	}
	size_t n = logfmt_render(f, &e, line, sizeof(line));
	fz_check(n < sizeof(line) && line[n] == '\0');
	n = logfmt_render(f, &e, big, sizeof(big));
	fz_check(n < sizeof(big) && big[n] == '\0');
	logfmt_free(&f);
	fz_check(f == NULL);
	return 0;
}
