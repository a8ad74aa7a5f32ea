/*
 * fuzz_cfg.c - libFuzzer harness for the configuration loader (daemon/cfg.c) and the policy
 * objects it compiles (policy/).
 *
 * Each input is loaded with cfg_load_string(). The loader must either succeed or produce a
 * "NAME:LINE: message" error, never crash or leak; a loaded snapshot is then exercised: its
 * ACL is asked about a few URLs and clients (with and without a client name, where a second
 * question with the name must not ask for the name again), its CONNECT ports are probed, and
 * an extra reference is taken and dropped. An accepted input also goes through gatehouse -M
 * (cfg_dump, from a file in FZ_DIR): when that loads too, its output must load again.
 *
 * The harness keeps a few files in FZ_DIR (a fixed name, so that seeds can name it: "Include
 * /tmp/gh-fuzz-cfg/a.conf", wildcards under it, a file that includes itself). It does not
 * chdir: libFuzzer's corpus and artifact paths may be relative.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/cfg.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_INPUT (64 * 1024)

#define FZ_DIR "/tmp/gh-fuzz-cfg"

static void
fz_check(int ok)
{
	if (!ok)
		abort();
}

static void
fz_write(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", FZ_DIR, name);
	f = fopen(path, "w");
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Several fuzzers may share the directory: the files are always the same. */
	mkdir(FZ_DIR, 0700);
	mkdir(FZ_DIR "/inc", 0700);
	fz_write("a.conf", "Workers 2\n<Proxy *>\n  Require ip 10.0.0.0/8\n</Proxy>\n");
	fz_write("inc/b.conf", "ProxyVia On\n");
	fz_write("inc/c.conf", "AllowCONNECT 443\nInclude ../a.conf\n");
	fz_write("self.conf", "Include self.conf\n");
	return 0;
}

static void
fz_sockaddr(struct sockaddr_storage *ss, const char *text)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		fz_check(inet_pton(AF_INET6, text, &s6->sin6_addr) == 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		fz_check(inet_pton(AF_INET, text, &s4->sin_addr) == 1);
	}
}

static void
fz_exercise(struct cfg *c)
{
	static const char *const methods[] = { "GET", "PURGE", "CONNECT", "POST" };
	static const char *const urls[] = {
		"http://example.com/", "https://www.example.com/a.exe", "example.com:443",
		"http://intranet/x?y", "", "*",
	};
	static const char *const clients[] = { "127.0.0.1", "10.1.2.3", "8.8.8.8", "::1",
	                                       "::ffff:192.168.1.1", "2001:db8::1" };
	static const char *const names[] = { "", "www.example.com", "host.example.org." };
	struct cfg *extra = cfg_ref(c);

	fz_check(extra == c);
	fz_check(c->nlisten >= 1 && c->nlisten <= CFG_MAX_LISTEN);
	fz_check(c->path != NULL);
	for (size_t u = 0; u < sizeof(urls) / sizeof(urls[0]); u++) {
		for (size_t k = 0; k < sizeof(clients) / sizeof(clients[0]); k++) {
			struct sockaddr_storage ss;
			const char *rule = NULL;
			enum pol_verdict v;

			fz_sockaddr(&ss, clients[k]);
			const char *m = methods[(u + k) % (sizeof(methods) / sizeof(methods[0]))];

			v = pol_acl_check(c->acl, m, urls[u], strlen(urls[u]), (struct sockaddr *)&ss,
			                  NULL, &rule);
			fz_check(rule != NULL);
			fz_check(v == POL_ALLOW || v == POL_DENY || v == POL_NEED_NAME ||
			         v == POL_NEED_USER);
			for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
				static const char *const groups[] = { "hr", "staff" };
				enum pol_verdict w, x, e;
				const struct pol_why *why = NULL;

				w = pol_acl_check(c->acl, m, urls[u], strlen(urls[u]),
				                  (struct sockaddr *)&ss, names[n], &rule);

				/* with a name only a user may still be missing, and the answer cannot
				 * contradict a final answer given without one; a rule that needed a
				 * user without the name still needs it with one */
				fz_check(w == POL_ALLOW || w == POL_DENY || w == POL_NEED_USER);
				fz_check(v == POL_NEED_NAME || v == w);
				/* with a name and a user (issue 14) the answer is final, and agrees
				 * with every final answer given with less */
				struct who who = { .addr = (struct sockaddr *)&ss, .name = names[n],
				                   .user = "alice", .groups = groups, .ngroups = 2 };
				x = pol_acl_decide(c->acl, m, urls[u], strlen(urls[u]), &who, &why, NULL);
				fz_check(why != NULL && why->full != NULL);
				fz_check(x == POL_ALLOW || x == POL_DENY);
				fz_check(w == POL_NEED_USER || w == x);
				/* exempt (the PAC file) never asks for a user */
				who.user = NULL;
				who.groups = NULL;
				who.ngroups = 0;
				who.exempt = 1;
				e = pol_acl_decide(c->acl, m, urls[u], strlen(urls[u]), &who, &why, NULL);
				fz_check(e == POL_ALLOW || e == POL_DENY);
			}
		}
	}
	for (unsigned port = 0; port < 70000; port += 997)
		(void)pol_ports_has(c->allow_connect, port);
	fz_check(cfg_log_level_name(c->log_level) != NULL);
	cfg_unref(&extra);
	fz_check(extra == NULL);
}

/* -M round trip (issue 9): what cfg_dump prints is a configuration the loader accepts. */
static void
fz_round_trip(const char *text)
{
	char in[256], out[256], err[512], *dump = NULL;
	size_t len = 0;
	struct cfg *c = NULL;
	FILE *f;

	snprintf(in, sizeof(in), "%s/rt-%ld-in.conf", FZ_DIR, (long)getpid());
	snprintf(out, sizeof(out), "%s/rt-%ld-out.conf", FZ_DIR, (long)getpid());
	fz_write(in + sizeof(FZ_DIR), text);
	f = open_memstream(&dump, &len);
	if (!f)
		return;
	/* From a file, relative Includes resolve elsewhere than from the string: it may fail. */
	if (cfg_dump(in, f, err, sizeof(err)) != 0) {
		fclose(f);
		free(dump);
		unlink(in);
		return;
	}
	fclose(f);
	fz_write(out + sizeof(FZ_DIR), dump);
	if (cfg_load(out, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "-M output refused: %s\n--- input:\n%s\n--- -M:\n%s\n", err, text,
		        dump);
		abort();
	}
	cfg_unref(&c);
	free(dump);
	unlink(in);
	unlink(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, err[512];
	struct cfg *c = NULL;
	int rc;

	if (size > FZ_MAX_INPUT)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	rc = cfg_load_string("fuzz.conf", text, &c, err, sizeof(err));
	if (rc == 0) {
		fz_check(c != NULL);
		fz_exercise(c);
		cfg_unref(&c);
		fz_check(c == NULL);
		fz_round_trip(text);
	} else {
		/* An error names the text or an included file, then the line. */
		fz_check(rc == -1 && c == NULL);
		fz_check(err[0] != '\0');
		fz_check(strchr(err, ':') != NULL);
	}
	free(text);
	return 0;
}
