/*
 * cfg.c - the configuration loader: Apache httpd directive syntax into one immutable,
 * refcounted struct cfg.
 *
 * Syntax (as Apache's ap_cfg_getline/ap_getword_conf, simplified):
 *  - one directive per line; a backslash as the last character joins the next line (the
 *    backslash and newline are removed); CRLF line ends are accepted; a logical line may hold
 *    up to CFG_LINE_MAX bytes;
 *  - a line whose first non-blank character is '#' is a comment (after joining, as Apache);
 *    a UTF-8 byte order mark at the start of a file is skipped;
 *  - words are separated by blanks; a word may be double-quoted, with \" and \\ as escapes
 *    (any other backslash stays as it is);
 *  - directive names are case-insensitive; <Proxy PATTERN> (also <Proxy ~ REGEX>) and
 *    <ProxyMatch REGEX> open sections closed by </Proxy> and </ProxyMatch>; a section must be
 *    closed in the file that opened it and sections do not nest, except that a section may
 *    hold <Limit METHOD...> and <LimitExcept METHOD...> blocks of access directives (which
 *    then apply to those methods only, replacing the section's own rules for them).
 *  - <IfModule [!]MODULE> and <IfDefine [!]NAME> (issue 9) are Apache's conditional
 *    sections: true for the modules of cfg_modules[] and the names given with -D. They nest,
 *    wrap anything (a <Proxy> section included) and may sit inside <Proxy> and <Limit>.
 *    Every open section is a frame of its file (struct cfg_frame): a closing tag must name
 *    the innermost one. Inside a false one nothing is read but the nesting of sections, as
 *    Apache does (so a directive there is not checked).
 *  - gatehouse -M (cfg_dump) records each directive as it is dispatched, in the order read,
 *    and then prints the default column of cfg_directives[] for those never given.
 *  - Include and IncludeOptional take a glob(3) pattern, expanded in sorted order. Relative
 *    patterns are relative to the directory of the including file (Apache uses ServerRoot,
 *    which we do not have; text loaded by cfg_load_string() is relative to the current
 *    directory). Include of a path without wildcards that does not exist is an error; a
 *    pattern with wildcards may match nothing; IncludeOptional never fails for a missing file.
 *    Directories matched by a wildcard are skipped; naming a directory outright is an error.
 *    Only regular files are read (no FIFOs or devices). Nesting is limited to
 *    CFG_INCLUDE_DEPTH levels and CFG_MAX_FILES files in all. Include is not allowed inside
 *    a section (only access directives are).
 * The first error stops loading: "FILE:LINE: message", or "FILE: message" when no line applies
 * (the top file cannot be read).
 *
 * Decisions that differ from Apache, documented in the default text as well:
 *  - no Listen at all means 127.0.0.1:3128 (Apache refuses to start); "Listen 3128" and
 *    "Listen *:3128" mean 0.0.0.0:3128; host names are not accepted (no blocking lookups).
 *  - Satisfy Any|All is accepted inside sections but has no effect: a section holds 2.4 or 2.2
 *    rules, never both, and 2.4's containers combine rules (issue 14).
 *  - relative AccessLog/ErrorLog/CustomLog/TransferLog paths are relative to the config file's
 *    directory; stored absolute. "-" means standard error; "|program" is a piped log run by
 *    /bin/sh -c; "syslog[:FACILITY]" (ErrorLog only) goes to syslog(3).
 *  - repeated single-value directives: the last one wins; AllowCONNECT and DNSServer replace
 *    the earlier list; Listen accumulates, across files, until ListenReset (ours) forgets
 *    the addresses given so far; the command line's -l / -p (cfg_listen_override) replace
 *    the result of every load.
 *  - the built-in configuration caches and logs; started by a user other than root, it uses
 *    that user's XDG directories (cfg_builtin_text appends CacheRoot and AccessLog lines).
 *  - every file a load reads is recorded (struct cfg files/dirs) so that preflight.c can
 *    check that User can read them again on reload.
 *  - User/Group names are resolved when the file is loaded (an unknown user is a FILE:LINE
 *    error saying how to create it); a root start without User is refused (Apache would
 *    take its compiled-in user), by -t too, and "User root" is allowed on purpose (Apache
 *    refuses it unless built to allow it).
 *  - Apache directives Gatehouse accepts without their effect (CacheEnable disk, CacheDirLevels,
 *    CacheLock, LoadModule of a stood-in module ...) add a notice ("FILE:LINE: message" in
 *    cfg->notices) for -t and the log; those it cannot honour (ProxyPass ...) are errors
 *    saying why (cfg_refused[]).
 * Directives this version does not know are errors: nothing is silently ignored.
 *
 * Called by main (start-up and reload) and the tests; one thread at a time per load. The
 * result is shared by all workers: cfg_ref/cfg_unref use C11 atomics.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <ifaddrs.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/cachecfg.h"
#include "daemon/cfg.h"
#include "daemon/tls.h"
#include "daemon/errdoc.h"
#include "daemon/log.h"
#include "daemon/logfmt.h"
#include "daemon/pauth.h"
#include "daemon/svc.h"
#include "webui/auth.h"

#define CFG_LINE_MAX (16 * 1024)       /* bytes in one logical line */
#define CFG_MAX_ARGS 1024              /* words in one line */
#define CFG_FILE_MAX (4 * 1024 * 1024) /* bytes in one file */
#define CFG_INCLUDE_DEPTH 16
#define CFG_MAX_FILES 1024
#define CFG_BUILTIN_NAME "(built-in)"
#define CFG_PACKAGE_USER "_gatehouse"    /* created by the Debian package's postinst */

const char cfg_default_text[] =
	"# Gatehouse built-in configuration, used when no configuration file is given.\n"
	"# It is also a starting point for your own gatehouse.conf: the syntax is Apache\n"
	"# httpd's, and the directives are those of mod_proxy where one exists.\n"
	"\n"
	"# Listen on the loopback interface only. (Apache requires a Listen line; Gatehouse\n"
	"# uses 127.0.0.1:3128 when there is none. \"Listen 3128\" means all IPv4 addresses.)\n"
	"Listen 127.0.0.1:3128\n"
	"\n"
	"# We are a forward proxy.\n"
	"ProxyRequests On\n"
	"\n"
	"# CONNECT tunnels only to the HTTPS and NNTPS ports.\n"
	"AllowCONNECT 443 563\n"
	"\n"
	"# Who may use the proxy: loopback and the private (RFC 1918) networks. Require host\n"
	"# would match the client's double-reverse-confirmed name; no AuthType: no proxy login.\n"
	"# Satisfy has no effect (<RequireAny>/<RequireAll> instead). Without any <Proxy>\n"
	"# section that applies to a request, only loopback clients are served.\n"
	"<Proxy *>\n"
	"    Require ip 127.0.0.0/8 ::1 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16\n"
	"    # Emptying cache entries (the PURGE method) needs a grant of its own.\n"
	"    <Limit PURGE>\n"
	"        Require local\n"
	"    </Limit>\n"
	"</Proxy>\n"
	"\n"
	"# Started as root, Gatehouse binds its listeners and opens its logs, then runs as this\n"
	"# user (and its primary group, unless Group says otherwise). Without a User line a root\n"
	"# start is refused; \"User root\" keeps root on purpose. Ignored when not started as root.\n"
	"User nobody\n"
	"\n"
	"# The cache: RFC 9111 rules, one LMDB database of at most 1 GiB, every URL. Started as\n"
	"# root, Gatehouse creates the directory, owned by User, before it becomes User. Started\n"
	"# by another user, this built-in configuration caches in that user's directory\n"
	"# instead: $XDG_CACHE_HOME/gatehouse (~/.cache/gatehouse).\n"
	"CacheRoot /var/cache/gatehouse\n"
	"CacheSize 1G\n"
	"CacheEnable lmdb /\n"
	"\n"
	"# One line per request, in Squid's native format; the directory is created like the\n"
	"# cache's. Started by another user: $XDG_STATE_HOME/gatehouse/access.log\n"
	"# (~/.local/state/gatehouse/access.log).\n"
	"AccessLog /var/log/gatehouse/access.log\n"
	"\n"
	"# The error log (standard error here) says where the proxy listens, caches and logs,\n"
	"# when it reloads and stops, and the cache's figures and hit ratio every 10 minutes\n"
	"# (CacheReportInterval); nothing per request is logged at this level.\n"
	"LogLevel notice\n"
	"\n"
	"# The status page (http://127.0.0.1:3128/gatehouse/): what the proxy does, explain a\n"
	"# URL, browse and purge the cache. Served only to requests addressed to the proxy\n"
	"# itself, and here to loopback clients only.\n"
	"<Location /gatehouse/>\n"
	"    SetHandler gatehouse-status\n"
	"    Require ip 127.0.0.1 ::1\n"
	"</Location>\n";

/* An open section: <Proxy>/<ProxyMatch>, <Limit>/<LimitExcept>, <IfModule>/<IfDefine>, or
 * any section inside a false <IfModule>/<IfDefine> (skipped unread, as Apache does). */
#define CFG_MAX_NEST 32
enum cfg_frame_kind { CFG_FR_PROXY = 1, CFG_FR_LIMIT, CFG_FR_COND, CFG_FR_SKIPPED,
                      CFG_FR_LOCATION, CFG_FR_AUTHZ /* <RequireAll> ... in <Location> */ };
struct cfg_frame {
	enum cfg_frame_kind kind;
	char name[48];                   /* canonical ("IfModule"), or as written when skipped */
	unsigned line;
};

/* One file (or string) being parsed. */
struct cfg_src {
	const char *name;                /* for messages */
	char *dir;                       /* absolute directory for relative paths */
	int depth;                       /* Include nesting, 0 for the top file */
	struct pol_acl_section *sec;     /* open section, or NULL */
	const char *sec_name;            /* "Proxy" or "ProxyMatch" */
	unsigned sec_line;
	struct pol_acl_section *lim;     /* open <Limit>/<LimitExcept> inside sec, or NULL */
	const char *lim_name;            /* "Limit" or "LimitExcept" */
	unsigned lim_line;
	struct pauth_cfg *auth;          /* the open section's Auth* settings (issue 14), or NULL;
	                                 * already in c->auths, finished at the section's end */
	unsigned auth_lines[8];          /* where each kind was given (cfg_pauth_*), for messages */
	int in_loc;                      /* a <Location> is open: c->locations[loc_i] */
	size_t loc_i;
	unsigned line;                   /* line of the directive being handled */
	/* Section nesting (issue 9): every open <...> of this file, innermost last. skipping is
	 * 0, or the index + 1 of the false <IfModule>/<IfDefine> whose lines are being skipped. */
	struct cfg_frame frames[CFG_MAX_NEST];
	unsigned nframes;
	unsigned skipping;
	char buf[CFG_LINE_MAX + 1];      /* the logical line */
	char *argv[CFG_MAX_ARGS];
};

struct cfg_parse {
	struct cfg *c;
	char *err;
	size_t errlen;
	unsigned nfiles;
	/* Apache compatibility and -M (issue 9, part 3) */
	FILE *dump;                      /* gatehouse -M: the directives as parsed, or NULL */
	unsigned char *given;            /* per cfg_directives[] entry: given at least once */
	unsigned long dir_levels, dir_length; /* CacheDirLevels, CacheDirLength (0: not given) */
	char notice_first_enable[512];   /* FILE:LINE of the first CacheEnable */
	char https_where[512];           /* FILE:LINE of the last "Listen ... https" */
	unsigned ssl_ncert, ssl_nkey;    /* SSLCertificateFile / SSLCertificateKeyFile lines so
	                                  * far: the n-th key goes with the n-th certificate */
};

struct cfg_directive;
typedef int cfg_handler_f(struct cfg_parse *ps, struct cfg_src *src,
                          const struct cfg_directive *d, char **argv, size_t argc);

#define CFG_IN_TOP 0x1u
#define CFG_IN_SECTION 0x2u
#define CFG_NO_DEFAULT 0x4u      /* -M prints nothing when not given (Include, LoadModule ...) */

struct cfg_directive {
	const char *name;
	cfg_handler_f *fn;
	int min, max;              /* arguments after the name; max -1: no limit */
	unsigned ctx;              /* CFG_IN_* */
	/* numeric directives (cfg_d_number) */
	size_t off;                /* unsigned field in struct cfg */
	unsigned long lo, hi;      /* range as written */
	unsigned scale;            /* multiplier to the stored unit (1000: seconds to ms) */
	const char *unit;          /* "a number", "seconds", "milliseconds" */
	/* gatehouse -M (issue 9): the arguments that mean the default, printed when the
	 * directive is not given; "(...)" says in words what applies instead; NULL: not set. */
	const char *dflt;
};

/* ---- messages ---- */

__attribute__((format(printf, 3, 4)))
static int
cfg_fail(struct cfg_parse *ps, struct cfg_src *src, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (ps->errlen == 0)
		return -1;
	if (src)
		n = snprintf(ps->err, ps->errlen, "%s:%u: ", src->name, src->line);
	if (n < 0)
		n = 0;
	if ((size_t)n < ps->errlen) {
		va_start(ap, fmt);
		vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static const char *cfg_where(struct cfg_src *src, char *buf, size_t len);
static int cfg_notice_at(struct cfg_parse *ps, struct cfg_src *src, const char *where,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define cfg_notice(ps, src, ...) \
	cfg_notice_at(ps, src, cfg_where(src, (char[512]){ 0 }, 512), __VA_ARGS__)

static int
cfg_nomem(struct cfg_parse *ps, struct cfg_src *src)
{
	return cfg_fail(ps, src, "out of memory");
}

/* ---- small parsers ---- */

static int
cfg_is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Strict unsigned decimal: digits only, at most 10 of them, value in [lo, hi]. */
static int
cfg_number(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Match word against a NULL-terminated list, case-insensitively. Returns the index or -1. */
static int
cfg_keyword(const char *word, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strcasecmp(word, list[i]) == 0)
			return i;
	return -1;
}

static int
cfg_onoff(struct cfg_parse *ps, struct cfg_src *src, const char *name, const char *arg, int *out)
{
	static const char *const words[] = { "Off", "On", NULL };
	int k = cfg_keyword(arg, words);

	if (k < 0)
		return cfg_fail(ps, src, "%s: expected On or Off, got \"%.200s\"", name, arg);
	*out = k;
	return 0;
}

/* dir + "/" + path, or a copy of path when it is absolute. */
static char *
cfg_join(const char *dir, const char *path)
{
	char *s = NULL;

	if (path[0] == '/')
		return strdup(path);
	if (asprintf(&s, "%s/%s", dir, path) < 0)
		return NULL;
	return s;
}

/* The absolute directory holding path (a file name as given), or the current directory. */
static char *
cfg_dir_of(const char *path)
{
	char cwd[4096];
	const char *slash = path ? strrchr(path, '/') : NULL;
	char *dir, *abs;

	if (slash && path[0] == '/') {
		if (slash == path)
			return strdup("/");
		return strndup(path, (size_t)(slash - path));
	}
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), ".");
	if (!slash)
		return strdup(cwd);
	dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return NULL;
	abs = cfg_join(cwd, dir);
	free(dir);
	return abs;
}

/* ---- what a load read (issue 9: checked as User by preflight.c) ---- */

/* Append a copy of path to *list (no duplicates). Returns 0 or -1 when out of memory. */
static int
cfg_record(char ***list, size_t *n, const char *path)
{
	char **v, *dup;

	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i], path) == 0)
			return 0;
	dup = strdup(path);
	v = dup ? realloc(*list, (*n + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(dup);
		return -1;
	}
	v[(*n)++] = dup;
	*list = v;
	return 0;
}

static void
cfg_record_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* The directory an Include wildcard lists: the pattern up to the component holding the
 * first wildcard ("/etc/gatehouse/conf.d/x*.conf" lists "/etc/gatehouse/conf.d"). */
static int
cfg_record_glob_dir(struct cfg *c, const char *pattern)
{
	size_t w = strcspn(pattern, "*?[");
	char *dir = strndup(pattern, w);
	char *slash;
	int rc;

	if (!dir)
		return -1;
	/* Include patterns are absolute (cfg_join with the including file's directory). */
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	rc = cfg_record(&c->dirs, &c->ndirs, dir);
	free(dir);
	return rc;
}

/* Split s into words in place (see the file comment for quoting). Returns the count, or -1
 * with *why. */
static int
cfg_tokenize(char *s, char **argv, size_t max, const char **why)
{
	size_t n = 0;

	for (;;) {
		while (cfg_is_blank((unsigned char)*s))
			s++;
		if (!*s)
			break;
		if (n == max) {
			*why = "too many arguments";
			return -1;
		}
		if (*s == '"') {
			char *out = s, *in = s + 1;

			argv[n++] = out;
			for (;;) {
				if (!*in) {
					*why = "unterminated quoted string";
					return -1;
				}
				if (*in == '\\' && (in[1] == '"' || in[1] == '\\')) {
					*out++ = in[1];
					in += 2;
				} else if (*in == '"') {
					break;
				} else {
					*out++ = *in++;
				}
			}
			in++;
			if (*in && !cfg_is_blank((unsigned char)*in)) {
				*why = "text after closing quote";
				return -1;
			}
			*out = '\0';
			s = in;
		} else {
			argv[n++] = s;
			while (*s && !cfg_is_blank((unsigned char)*s))
				s++;
			if (*s)
				*s++ = '\0';
		}
	}
	return (int)n;
}

static int cfg_parse_file(struct cfg_parse *ps, struct cfg_src *from, const char *path,
                          int depth);

/* ---- directive handlers ---- */

static int
cfg_d_number(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
             char **argv, size_t argc)
{
	unsigned long v;

	(void)argc;
	if (cfg_number(argv[1], d->lo, d->hi, &v) != 0)
		return cfg_fail(ps, src, "%s: expected %s from %lu to %lu, got \"%.200s\"", d->name,
		                d->unit, d->lo, d->hi, argv[1]);
	*(unsigned *)((char *)ps->c + d->off) = (unsigned)(v * d->scale);
	return 0;
}

/* "3128", "*:3128", "1.2.3.4:3128", "[::1]:3128" into l. Returns 0, -1 for a bad address,
 * -2 for a bad port. */
static int
cfg_listen_parse(const char *text, struct cfg_listen *l)
{
	char host[64], a[INET6_ADDRSTRLEN];
	const char *port;
	unsigned long p;
	size_t hlen;

	memset(l, 0, sizeof(*l));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':')
			return -1;
		hlen = (size_t)(close - text - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -1;
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		port = close + 2;
		if (cfg_number(port, 1, 65535, &p) != 0)
			return -2;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&l->addr;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		l->addrlen = sizeof(*s6);
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(l->text, sizeof(l->text), "[%s]:%u", a, (unsigned)p);
		return 0;
	}

	struct sockaddr_in *s4 = (struct sockaddr_in *)&l->addr;
	const char *colon = strrchr(text, ':');

	if (colon) {
		hlen = (size_t)(colon - text);
		if (hlen == 0 || hlen >= sizeof(host) || memchr(text, ':', hlen))
			return -1;
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		port = colon + 1;
	} else {
		snprintf(host, sizeof(host), "*");
		port = text;
	}
	if (strcmp(host, "*") == 0) {
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
	} else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
		return -1;
	}
	if (cfg_number(port, 1, 65535, &p) != 0)
		return -2;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)p);
	l->addrlen = sizeof(*s4);
	inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
	snprintf(l->text, sizeof(l->text), "%s:%u", a, (unsigned)p);
	return 0;
}

/* Is either of two same-family, same-port listeners the wildcard address? */
static int
cfg_listen_overlaps(const struct cfg_listen *a, const struct cfg_listen *b)
{
	if (a->addr.ss_family != b->addr.ss_family)
		return 0;
	if (a->addr.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->addr, *y = (const void *)&b->addr;

		return x->sin_port == y->sin_port && (x->sin_addr.s_addr == htonl(INADDR_ANY) ||
		                                      y->sin_addr.s_addr == htonl(INADDR_ANY));
	}
	const struct sockaddr_in6 *x = (const void *)&a->addr, *y = (const void *)&b->addr;

	return x->sin6_port == y->sin6_port && (IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) ||
	                                        IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr));
}

static int
cfg_d_listen(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
             char **argv, size_t argc)
{
	struct cfg *c = ps->c;
	struct cfg_listen l;
	int rc;

	rc = cfg_listen_parse(argv[1], &l);
	if (rc == -2)
		return cfg_fail(ps, src, "%s: bad port \"%.200s\"", d->name, argv[1]);
	if (rc != 0)
		return cfg_fail(ps, src, "%s: expected PORT, ADDR:PORT or [ADDR]:PORT with a "
		                "numeric address, got \"%.200s\"", d->name, argv[1]);
	/* Apache's optional protocol argument: "https" is a TLS listener (tls.h). */
	if (argc == 3) {
		static const char *const protos[] = { "http", "https", NULL };
		int k = cfg_keyword(argv[2], protos);

		if (k < 0)
			return cfg_fail(ps, src, "%s: expected http or https after the address, got "
			                "\"%.200s\"", d->name, argv[2]);
		l.https = k;
		if (l.https)
			cfg_where(src, ps->https_where, sizeof(ps->https_where));
	}
	for (size_t i = 0; i < c->nlisten; i++) {
		if (strcmp(c->listen[i].text, l.text) == 0)
			return cfg_fail(ps, src, "%s: %s given twice", d->name, l.text);
		if (cfg_listen_overlaps(&c->listen[i], &l))
			return cfg_fail(ps, src, "%s: %s overlaps %s", d->name, l.text,
			                c->listen[i].text);
	}
	if (c->nlisten == CFG_MAX_LISTEN)
		return cfg_fail(ps, src, "%s: more than %d addresses", d->name, CFG_MAX_LISTEN);
	c->listen[c->nlisten++] = l;
	return 0;
}

/* ListenReset: forget the Listen addresses given so far, so that a file read later (a
 * conf.d file) can replace the main file's list instead of adding to it. */
static int
cfg_d_listen_reset(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                   char **argv, size_t argc)
{
	(void)src;
	(void)d;
	(void)argv;
	(void)argc;
	ps->c->nlisten = 0;
	return 0;
}

/* ---- TLS (issue 13): the SSL* directives, Apache's names; tls.c builds the contexts ---- */

/* Replace *field (and *where) with a copy of val and this line's FILE:LINE. */
static int
cfg_set_str_where(struct cfg_parse *ps, struct cfg_src *src, char **field, char **where,
                  char *val)
{
	char w[512];

	if (!val)
		return cfg_nomem(ps, src);
	free(*field);
	*field = val;
	if (where) {
		free(*where);
		*where = strdup(cfg_where(src, w, sizeof(w)));
		if (!*where)
			return cfg_nomem(ps, src);
	}
	return 0;
}

/* The arguments joined by single spaces ("all -SSLv3"), as written. */
static char *
cfg_args_join(char **argv, size_t argc)
{
	size_t n = 1;
	char *s, *p;

	for (size_t i = 1; i < argc; i++)
		n += strlen(argv[i]) + 1;
	s = malloc(n);
	if (!s)
		return NULL;
	p = s;
	for (size_t i = 1; i < argc; i++)
		p += sprintf(p, "%s%s", i > 1 ? " " : "", argv[i]);
	*p = '\0';
	return s;
}

/* SSLCertificateFile, SSLCertificateKeyFile, SSLCertificateChainFile,
 * SSLProxyCACertificateFile, SSLProxyCACertificatePath, SSLProxyMachineCertificateFile: a
 * path relative to the configuration's directory. The files are read by tls_set_build (which
 * names this line when one is wrong) and, as User, by every reload: preflight.c checks that
 * User can read them. A directory (CACertificatePath) is not recorded. */
static int
cfg_d_ssl_file(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
               char **argv, size_t argc)
{
	struct cfg *c = ps->c;
	char **field, **where = NULL;
	char *path;

	(void)argc;
	if (argv[1][0] == '\0')
		return cfg_fail(ps, src, "%s: empty file name", d->name);
	if (strcasecmp(d->name, "SSLCertificateFile") == 0) {
		/* Apache: repeated, one certificate per key type, each with its own key line */
		unsigned n = ps->ssl_ncert++;
		if (n > CFG_SSL_MORE_MAX)
			return cfg_fail(ps, src, "%s: more than %d certificates (one per key type: "
			                "RSA, ECDSA ...)", d->name, CFG_SSL_MORE_MAX + 1);
		if (n == 0)
			field = &c->ssl_cert_file, where = &c->ssl_cert_where;
		else
			field = &c->ssl_more[n - 1].cert, where = &c->ssl_more[n - 1].cert_where;
		if (n > 0 && c->nssl_more < n)
			c->nssl_more = n;
	} else if (strcasecmp(d->name, "SSLCertificateKeyFile") == 0) {
		unsigned n = ps->ssl_nkey++;
		if (n > CFG_SSL_MORE_MAX)
			return cfg_fail(ps, src, "%s: more than %d keys (one per "
			                "SSLCertificateFile)", d->name, CFG_SSL_MORE_MAX + 1);
		if (n == 0)
			field = &c->ssl_key_file, where = &c->ssl_key_where;
		else
			field = &c->ssl_more[n - 1].key, where = &c->ssl_more[n - 1].key_where;
		if (n > 0 && c->nssl_more < n)
			c->nssl_more = n;
	} else if (strcasecmp(d->name, "SSLCertificateChainFile") == 0)
		field = &c->ssl_chain_file, where = &c->ssl_chain_where;
	else if (strcasecmp(d->name, "SSLProxyCACertificateFile") == 0)
		field = &c->ssl_proxy_ca_file, where = &c->ssl_proxy_ca_where;
	else if (strcasecmp(d->name, "SSLProxyMachineCertificateFile") == 0)
		field = &c->ssl_proxy_machine_cert, where = &c->ssl_proxy_machine_where;
	else
		field = &c->ssl_proxy_ca_path;
	path = cfg_join(src->dir, argv[1]);
	if (cfg_set_str_where(ps, src, field, where, path) != 0)
		return -1;
	if (field != &c->ssl_proxy_ca_path && cfg_record(&c->files, &c->nfiles, path) != 0)
		return cfg_nomem(ps, src);
	return 0;
}

/* SSLProtocol / SSLProxyProtocol [+|-]PROTO ...: Apache's syntax, checked here, kept as written
 * for tls.c. A word without a sign sets the list, "+" adds, "-" takes away; "all" is every
 * protocol Gatehouse speaks, TLSv1.2 and TLSv1.3. SSLv3, TLSv1 and TLSv1.1 may only be taken
 * away ("all -SSLv3 -TLSv1 -TLSv1.1", common in Apache configurations). */
static int
cfg_d_ssl_protocol(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                   char **argv, size_t argc)
{
	static const char *const names[] = { "all", "TLSv1.2", "TLSv1.3", "SSLv3", "TLSv1",
	                                     "TLSv1.1", "SSLv2", NULL };
	static const unsigned bits[] = { 3, 1, 2, 0, 0, 0, 0 };
	struct cfg *c = ps->c;
	unsigned set = 0;
	int proxy = strcasecmp(d->name, "SSLProxyProtocol") == 0;

	for (size_t i = 1; i < argc; i++) {
		const char *w = argv[i];
		char sign = (w[0] == '+' || w[0] == '-') ? w[0] : 0;
		int k = cfg_keyword(w + (sign != 0), names);

		if (k < 0)
			return cfg_fail(ps, src, "%s: unknown protocol \"%.100s\" (expected all, "
			                "TLSv1.2 or TLSv1.3, each with an optional + or -)", d->name, w);
		if (bits[k] == 0 && sign != '-')
			return cfg_fail(ps, src, "%s: %s is not supported: Gatehouse speaks TLSv1.2 and "
			                "TLSv1.3 only (\"-%s\" is accepted)", d->name, names[k],
			                names[k]);
		if (sign == '+')
			set |= bits[k];
		else if (sign == '-')
			set &= ~bits[k];
		else
			set = bits[k];
	}
	if (set == 0)
		return cfg_fail(ps, src, "%s: no protocol left (TLSv1.2 and TLSv1.3 are the ones "
		                "Gatehouse speaks)", d->name);
	if (proxy)
		return cfg_set_str_where(ps, src, &c->ssl_proxy_protocol,
		                         &c->ssl_proxy_protocol_where, cfg_args_join(argv, argc));
	return cfg_set_str_where(ps, src, &c->ssl_protocol, &c->ssl_protocol_where,
	                         cfg_args_join(argv, argc));
}

/* SSLCipherSuite / SSLProxyCipherSuite [SSL|TLSv1.3] SPEC: one list per protocol, as in
 * Apache 2.4 (SSL, the default, is TLS 1.2 and below; TLSv1.3 the TLS 1.3 suites, which
 * OpenSSL sets apart), so that a TLS 1.2 line and a TLS 1.3 line combine and a later line
 * replaces only its own protocol's. The list is kept as written; tls_set_build gives it to
 * OpenSSL and names this line when OpenSSL refuses it. */
static int
cfg_d_ssl_ciphers(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                  char **argv, size_t argc)
{
	struct cfg *c = ps->c;
	int proxy = strcasecmp(d->name, "SSLProxyCipherSuite") == 0;
	int tls13 = 0;

	if (argc == 3) {
		if (strcasecmp(argv[1], "TLSv1.3") == 0)
			tls13 = 1;
		else if (strcasecmp(argv[1], "SSL") != 0)
			return cfg_fail(ps, src, "%s: expected SSL or TLSv1.3 before the cipher "
			                "list, got \"%.100s\"", d->name, argv[1]);
	}
	if (argv[argc - 1][0] == '\0')
		return cfg_fail(ps, src, "%s: empty cipher list", d->name);
	if (proxy && tls13)
		return cfg_set_str_where(ps, src, &c->ssl_proxy_ciphers13,
		                         &c->ssl_proxy_ciphers13_where, strdup(argv[argc - 1]));
	if (proxy)
		return cfg_set_str_where(ps, src, &c->ssl_proxy_ciphers, &c->ssl_proxy_ciphers_where,
		                         strdup(argv[argc - 1]));
	if (tls13)
		return cfg_set_str_where(ps, src, &c->ssl_ciphers13, &c->ssl_ciphers13_where,
		                         strdup(argv[argc - 1]));
	return cfg_set_str_where(ps, src, &c->ssl_ciphers, &c->ssl_ciphers_where,
	                         strdup(argv[argc - 1]));
}

/* SSLProxyVerify require|none: Apache's optional and optional_no_ca would accept what fails
 * verification while looking safe; they are refused. */
static int
cfg_d_ssl_proxy_verify(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                       char **argv, size_t argc)
{
	static const char *const words[] = { "none", "require", NULL };
	int k = cfg_keyword(argv[1], words);

	(void)argc;
	if (k < 0)
		return cfg_fail(ps, src, "%s: expected require or none, got \"%.100s\"", d->name,
		                argv[1]);
	ps->c->ssl_proxy_verify = k;
	return 0;
}

/* FTPTLS Off|Try|Require (ours): AUTH TLS towards FTP servers (ftp.c). */
static int
cfg_d_ftp_tls(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
              char **argv, size_t argc)
{
	static const char *const words[] = { "Off", "Try", "Require", NULL };
	int k = cfg_keyword(argv[1], words);

	(void)argc;
	if (k < 0)
		return cfg_fail(ps, src, "%s: expected Off, Try or Require, got \"%.100s\"", d->name,
		                argv[1]);
	ps->c->ftp_tls = k == 0 ? CFG_FTPTLS_OFF : k == 1 ? CFG_FTPTLS_TRY : CFG_FTPTLS_REQUIRE;
	return 0;
}

/* SSLEngine, SSLProxyEngine: Apache switches; a Listen line with "https" and https:// URLs
 * are what turn TLS on in Gatehouse. */
static int
cfg_d_ssl_engine(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                 char **argv, size_t argc)
{
	int on;

	(void)argc;
	if (cfg_onoff(ps, src, d->name, argv[1], &on) != 0)
		return -1;
	if (strcasecmp(d->name, "SSLEngine") == 0)
		return cfg_notice(ps, src, "%s %s: has no effect; a listener speaks TLS when its "
		                  "Listen line says https (Listen 3129 https)", d->name, argv[1]);
	return cfg_notice(ps, src, "%s %s: has no effect; Gatehouse always speaks TLS to https:// "
	                  "parents and origins", d->name, argv[1]);
}

static int
cfg_d_proxy_requests(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                     char **argv, size_t argc)
{
	(void)argc;
	return cfg_onoff(ps, src, d->name, argv[1], &ps->c->proxy_requests);
}

static int
cfg_d_chain_auth(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                 char **argv, size_t argc)
{
	(void)argc;
	return cfg_onoff(ps, src, d->name, argv[1], &ps->c->chain_auth);
}

static int
cfg_d_via(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d, char **argv,
          size_t argc)
{
	static const char *const words[] = { "Off", "On", "Full", "Block", NULL };
	static const enum cfg_via vals[] = { CFG_VIA_OFF, CFG_VIA_ON, CFG_VIA_FULL, CFG_VIA_BLOCK };
	int k = cfg_keyword(argv[1], words);

	(void)argc;
	if (k < 0)
		return cfg_fail(ps, src, "%s: expected On, Off, Full or Block, got \"%.200s\"",
		                d->name, argv[1]);
	ps->c->via = vals[k];
	return 0;
}

static int
cfg_d_bad_header(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                 char **argv, size_t argc)
{
	static const char *const words[] = { "IsError", "Ignore", "StartBody", NULL };
	static const enum cfg_bad_header vals[] = {
		CFG_BADHDR_ISERROR, CFG_BADHDR_IGNORE, CFG_BADHDR_STARTBODY
	};
	int k = cfg_keyword(argv[1], words);

	(void)argc;
	if (k < 0)
		return cfg_fail(ps, src, "%s: expected IsError, Ignore or StartBody, "
		                "got \"%.200s\"", d->name, argv[1]);
	ps->c->bad_header = vals[k];
	return 0;
}

static int
cfg_d_allow_connect(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                    char **argv, size_t argc)
{
	struct pol_ports *p;
	const char *bad;

	if (pol_ports_new(&p, argv + 1, argc - 1, &bad) != 0) {
		if (!bad)
			return cfg_nomem(ps, src);
		return cfg_fail(ps, src, "%s: bad port \"%.200s\"", d->name, bad);
	}
	pol_ports_free(&ps->c->allow_connect);
	ps->c->allow_connect = p;
	char where[512];
	snprintf(where, sizeof(where), "%s:%u", src->name, src->line);
	free(ps->c->allow_connect_where);
	if ((ps->c->allow_connect_where = strdup(where)) == NULL)
		return cfg_nomem(ps, src);
	return 0;
}

static int
cfg_d_max_forwards(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                   char **argv, size_t argc)
{
	unsigned long v;

	(void)argc;
	if (strcmp(argv[1], "-1") == 0) {
		ps->c->max_forwards = -1;
		return 0;
	}
	if (cfg_number(argv[1], 0, 65535, &v) != 0)
		return cfg_fail(ps, src, "%s: expected -1 or a number from 0 to 65535, "
		                "got \"%.200s\"", d->name, argv[1]);
	ps->c->max_forwards = (int)v;
	return 0;
}

static int
cfg_d_dns_server(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                 char **argv, size_t argc)
{
	struct sockaddr_storage servers[RES_MAX_SERVERS];

	for (size_t i = 1; i < argc; i++) {
		const char *why = "bad address";

		if (res_server_parse(argv[i], &servers[i - 1], &why) != 0)
			return cfg_fail(ps, src, "%s: bad address \"%.200s\": %s", d->name, argv[i],
			                why ? why : "bad address");
	}
	memcpy(ps->c->dns.servers, servers, (argc - 1) * sizeof(servers[0]));
	ps->c->dns.nservers = (unsigned)(argc - 1);
	return 0;
}

static int
cfg_d_dns_cache_ttl(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                    char **argv, size_t argc)
{
	unsigned long lo, hi;

	(void)argc;
	for (int i = 1; i <= 2; i++)
		if (cfg_number(argv[i], d->lo, d->hi, i == 1 ? &lo : &hi) != 0)
			return cfg_fail(ps, src, "%s: expected seconds from %lu to %lu, "
			                "got \"%.200s\"", d->name, d->lo, d->hi, argv[i]);
	if (lo > hi)
		return cfg_fail(ps, src, "%s: minimum %lu is greater than maximum %lu", d->name, lo,
		                hi);
	ps->c->dns.ttl_min = (unsigned)lo;
	ps->c->dns.ttl_max = (unsigned)hi;
	return 0;
}

/* A log destination: "-" is standard error; relative paths are made absolute. */
/* ---- issue 9: piped logs, LogFormat, CustomLog, TransferLog ---- */

/* "|program" (Apache's "|$program" too): run by /bin/sh -c; stored as "|program". */
static int
cfg_log_pipe(struct cfg_parse *ps, struct cfg_src *src, const char *name, const char *arg,
             char **out)
{
	const char *cmd = arg + 1;
	char *p;

	if (*cmd == '|')
		return cfg_fail(ps, src, "%s: \"||program\" (without a shell) is not supported; "
		                "use \"|program\", which runs it with /bin/sh -c", name);
	if (*cmd == '$')
		cmd++;
	while (cfg_is_blank(*cmd))
		cmd++;
	if (!*cmd)
		return cfg_fail(ps, src, "%s: \"|\" names no program", name);
	p = malloc(strlen(cmd) + 2);
	if (!p)
		return cfg_nomem(ps, src);
	p[0] = '|';
	strcpy(p + 1, cmd);
	free(*out);
	*out = p;
	return 0;
}

static int cfg_log_path(struct cfg_parse *ps, struct cfg_src *src, const char *name,
                        const char *arg, char **out);

/* LogFormat FORMAT [NICKNAME]: compiled now, so that a bad % directive names this line. */
static int
cfg_d_log_format(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                 char **argv, size_t argc)
{
	struct cfg *c = ps->c;
	struct logfmt *f = NULL;
	char why[256];
	char *text;

	if (logfmt_compile(argv[1], &f, why, sizeof(why)) < 0)
		return cfg_fail(ps, src, "%s: %s", d->name, why);
	logfmt_free(&f);
	text = strdup(argv[1]);
	if (!text)
		return cfg_nomem(ps, src);
	if (argc == 2) {
		free(c->log_default_format);
		c->log_default_format = text;
		return 0;
	}
	if (!argv[2][0] || strchr(argv[2], '%')) {
		free(text);
		return cfg_fail(ps, src, "%s: bad nickname \"%.100s\" (LogFormat FORMAT NICKNAME: "
		                "the format comes first)", d->name, argv[2]);
	}
	for (size_t i = 0; i < c->nlog_formats; i++) {
		if (strcmp(c->log_formats[i].name, argv[2]) == 0) {
			free(c->log_formats[i].text);
			c->log_formats[i].text = text;
			return 0;
		}
	}
	struct cfg_logformat *v = realloc(c->log_formats, (c->nlog_formats + 1) * sizeof(*v));
	char *name = strdup(argv[2]);

	if (v)
		c->log_formats = v;
	if (!v || !name) {
		free(text);
		free(name);
		return cfg_nomem(ps, src);
	}
	v[c->nlog_formats].name = name;
	v[c->nlog_formats].text = text;
	c->nlog_formats++;
	return 0;
}

/* CustomLog FILE|"|program" FORMAT|NICKNAME and TransferLog FILE|"|program". */
static int
cfg_d_custom_log(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                 char **argv, size_t argc)
{
	struct cfg *c = ps->c;
	struct cfg_customlog cl;
	int transfer = strcasecmp(d->name, "TransferLog") == 0;
	char where[600];

	if (argc == 4)
		return cfg_fail(ps, src, "%s: conditional logging (\"%.100s\") is not supported",
		                d->name, argv[3]);
	memset(&cl, 0, sizeof(cl));
	cl.transfer = transfer;
	if (cfg_log_path(ps, src, d->name, argv[1], &cl.target) != 0)
		return -1;
	snprintf(where, sizeof(where), "%s:%u", src->name, src->line);
	cl.where = strdup(where);
	if (!transfer && strchr(argv[2], '%')) {
		struct logfmt *f = NULL;
		char why[256];

		if (logfmt_compile(argv[2], &f, why, sizeof(why)) < 0) {
			free(cl.target);
			free(cl.where);
			return cfg_fail(ps, src, "%s: %s", d->name, why);
		}
		logfmt_free(&f);
		cl.format = strdup(argv[2]);
	} else if (!transfer) {
		cl.nick = strdup(argv[2]);
	}
	struct cfg_customlog *v = realloc(c->custom_logs, (c->ncustom_logs + 1) * sizeof(*v));

	if (v)
		c->custom_logs = v;
	if (!v || !cl.where || (!transfer && !cl.format && !cl.nick)) {
		free(cl.target);
		free(cl.where);
		free(cl.format);
		free(cl.nick);
		return cfg_nomem(ps, src);
	}
	v[c->ncustom_logs++] = cl;
	return 0;
}

/* When loading ends: nicknames to formats (LogFormat may follow CustomLog, as in Apache). */
static int
cfg_logs_finish(struct cfg *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->ncustom_logs; i++) {
		struct cfg_customlog *cl = &c->custom_logs[i];
		const char *text = NULL;

		if (cl->transfer) {
			text = c->log_default_format ? c->log_default_format : logfmt_nickname("common");
		} else if (cl->nick) {
			for (size_t k = 0; k < c->nlog_formats; k++)
				if (strcmp(c->log_formats[k].name, cl->nick) == 0)
					text = c->log_formats[k].text;
			if (!text)
				text = logfmt_nickname(cl->nick);
			if (!text && strcmp(cl->nick, "squid") == 0) {
				cl->squid = 1;
				continue;
			}
			if (!text) {
				snprintf(err, errlen, "%s: CustomLog: unknown format nickname \"%.100s\" "
				         "(define it with LogFormat, or use common, combined or squid)",
				         cl->where, cl->nick);
				return -1;
			}
		} else {
			continue;
		}
		cl->format = strdup(text);
		if (!cl->format) {
			snprintf(err, errlen, "%s: out of memory", cl->where);
			return -1;
		}
	}
	return 0;
}

static void
cfg_logs_free(struct cfg *c)
{
	for (size_t i = 0; i < c->nlog_formats; i++) {
		free(c->log_formats[i].name);
		free(c->log_formats[i].text);
	}
	free(c->log_formats);
	free(c->log_default_format);
	for (size_t i = 0; i < c->ncustom_logs; i++) {
		free(c->custom_logs[i].target);
		free(c->custom_logs[i].format);
		free(c->custom_logs[i].nick);
		free(c->custom_logs[i].where);
	}
	free(c->custom_logs);
}

static int
cfg_log_path(struct cfg_parse *ps, struct cfg_src *src, const char *name, const char *arg,
             char **out)
{
	char *p;

	if (!*arg)
		return cfg_fail(ps, src, "%s: empty file name", name);
	if (arg[0] == '|')
		return cfg_log_pipe(ps, src, name, arg, out);
	if (log_syslog_spec(arg) != -2) {
		int fac = log_syslog_spec(arg);

		if (strcmp(name, "ErrorLog") != 0)
			return cfg_fail(ps, src, "%s: syslog is only for ErrorLog; give a file name, "
			                "\"-\" or \"|program\" (such as \"|/usr/bin/logger -t "
			                "gatehouse\")", name);
		if (fac < 0)
			return cfg_fail(ps, src, "%s: unknown syslog facility \"%.100s\" (expected "
			                "daemon, user, local0 to local7, ...)", name, arg + 7);
		p = strdup(arg);
		if (!p)
			return cfg_nomem(ps, src);
		free(*out);
		*out = p;
		return 0;
	}
	p = strcmp(arg, "-") == 0 ? strdup("-") : cfg_join(src->dir, arg);
	if (!p)
		return cfg_nomem(ps, src);
	free(*out);
	*out = p;
	return 0;
}

static int
cfg_d_access_log(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                 char **argv, size_t argc)
{
	static const char *const words[] = { "squid", "combined", NULL };
	static const enum cfg_log_format vals[] = { CFG_LOG_SQUID, CFG_LOG_COMBINED };
	enum cfg_log_format f = CFG_LOG_SQUID;

	if (argc == 3) {
		int k = cfg_keyword(argv[2], words);

		if (k < 0)
			return cfg_fail(ps, src, "%s: expected squid or combined, got \"%.200s\"",
			                d->name, argv[2]);
		f = vals[k];
	}
	if (cfg_log_path(ps, src, d->name, argv[1], &ps->c->access_log) != 0)
		return -1;
	ps->c->access_log_format = f;
	return 0;
}

static int
cfg_d_error_log(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                char **argv, size_t argc)
{
	(void)argc;
	return cfg_log_path(ps, src, d->name, argv[1], &ps->c->error_log);
}

static const char *const cfg_level_names[] = {
	"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace", NULL
};

static int
cfg_d_log_level(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                char **argv, size_t argc)
{
	const char *a = argv[1];
	int k = cfg_keyword(a, cfg_level_names);

	(void)argc;
	/* Apache's trace1..trace8 are all our one trace level; plain "trace" is not Apache's. */
	if (k == CFG_LL_TRACE)
		k = -1;
	if (k < 0 && strncasecmp(a, "trace", 5) == 0 && a[5] >= '1' && a[5] <= '8' && !a[6])
		k = CFG_LL_TRACE;
	if (k < 0)
		return cfg_fail(ps, src, "%s: expected emerg, alert, crit, error, warn, notice, "
		                "info, debug or trace1 to trace8, got \"%.200s\"", d->name, a);
	ps->c->log_level = (enum cfg_log_level)k;
	return 0;
}

/* User NAME|#UID: resolved now, so that -t reports an unknown user with its line. */
static int
cfg_d_user(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
           char **argv, size_t argc)
{
	const char *why = "lookup failed";
	uid_t uid;
	gid_t gid;
	char *name;

	(void)argc;
	if (svc_user_lookup(argv[1], &uid, &gid, &why) != 0) {
		if (strcmp(why, "no such user") != 0)
			return cfg_fail(ps, src, "%s: \"%.200s\": %s", d->name, argv[1], why);
		/* The shipped file names _gatehouse, which only the package creates. */
		return cfg_fail(ps, src, "%s: \"%.200s\": no such user: %screate it (adduser "
		                "--system --group %.200s), or name another User", d->name, argv[1],
		                strcmp(argv[1], "_gatehouse") == 0 ? "install the gatehouse package "
		                "(which creates it), " : "", argv[1]);
	}
	name = strdup(argv[1]);
	if (!name)
		return cfg_nomem(ps, src);
	free(ps->c->user);
	ps->c->user = name;
	ps->c->uid = uid;
	if (!ps->c->group)
		ps->c->gid = gid; /* the user's primary group, unless Group was given */
	return 0;
}

static int
cfg_d_group(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
            char **argv, size_t argc)
{
	const char *why = "lookup failed";
	gid_t gid;
	char *name;

	(void)argc;
	if (svc_group_lookup(argv[1], &gid, &why) != 0) {
		if (strcmp(why, "no such group") != 0)
			return cfg_fail(ps, src, "%s: \"%.200s\": %s", d->name, argv[1], why);
		return cfg_fail(ps, src, "%s: \"%.200s\": no such group: %screate it (addgroup "
		                "--system %.200s), or name another Group", d->name, argv[1],
		                strcmp(argv[1], "_gatehouse") == 0 ? "install the gatehouse package "
		                "(which creates it), " : "", argv[1]);
	}
	name = strdup(argv[1]);
	if (!name)
		return cfg_nomem(ps, src);
	free(ps->c->group);
	ps->c->group = name;
	ps->c->gid = gid;
	return 0;
}

/* PidFile FILE: relative to the config file's directory, as the logs. */
static int
cfg_d_pid_file(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
               char **argv, size_t argc)
{
	char *p;

	(void)argc;
	if (!*argv[1] || strcmp(argv[1], "-") == 0)
		return cfg_fail(ps, src, "%s: expected a file name", d->name);
	p = cfg_join(src->dir, argv[1]);
	if (!p)
		return cfg_nomem(ps, src);
	free(ps->c->pid_file);
	ps->c->pid_file = p;
	return 0;
}

static int
cfg_d_include(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
              char **argv, size_t argc)
{
	int optional = strcmp(d->name, "IncludeOptional") == 0;
	char *pattern;
	glob_t g;
	int rc = 0;

	(void)argc;
	if (src->depth >= CFG_INCLUDE_DEPTH)
		return cfg_fail(ps, src, "Include nested too deeply (loop?)");
	if (!*argv[1])
		return cfg_fail(ps, src, "%s: empty file name", d->name);
	pattern = cfg_join(src->dir, argv[1]);
	if (!pattern)
		return cfg_nomem(ps, src);

	if (!strpbrk(argv[1], "*?[")) {
		struct stat st;

		if (optional && stat(pattern, &st) != 0 && errno == ENOENT)
			rc = 0;
		else
			rc = cfg_parse_file(ps, src, pattern, src->depth + 1);
		free(pattern);
		return rc;
	}

	if (cfg_record_glob_dir(ps->c, pattern) != 0) {
		free(pattern);
		return cfg_nomem(ps, src);
	}
	memset(&g, 0, sizeof(g));
	switch (glob(pattern, GLOB_MARK, NULL, &g)) {
	case 0:
		break;
	case GLOB_NOMATCH:
		globfree(&g);
		free(pattern);
		return 0;
	case GLOB_NOSPACE:
		globfree(&g);
		free(pattern);
		return cfg_nomem(ps, src);
	default:
		rc = cfg_fail(ps, src, "%s: cannot read \"%.200s\"", d->name, pattern);
		globfree(&g);
		free(pattern);
		return rc;
	}
	/* glob sorts its results (no GLOB_NOSORT); GLOB_MARK flags directories with '/'. */
	for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
		const char *p = g.gl_pathv[i];
		size_t len = strlen(p);

		if (len > 0 && p[len - 1] == '/')
			continue;
		rc = cfg_parse_file(ps, src, p, src->depth + 1);
	}
	globfree(&g);
	free(pattern);
	return rc;
}

/* Where access directives go: the open <Limit> block, else the open section. */
static struct pol_acl_section *
cfg_rules_sec(struct cfg_src *src)
{
	return src->lim ? src->lim : src->sec;
}

/* Tell the section the FILE:LINE of the access rule about to be added (the status page's
 * explain names it). */
static int
cfg_rule_line(struct cfg_src *src)
{
	char where[512];
	snprintf(where, sizeof(where), "%s:%u", src->name, src->line);
	return pol_acl_rule_line(cfg_rules_sec(src), where);
}

/* Access directives: only inside a section (the dispatcher checks). */
static int
cfg_d_require(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
              char **argv, size_t argc)
{
	const char *why;

	if (cfg_rule_line(src) != 0)
		return cfg_nomem(ps, src);
	if (pol_acl_require(cfg_rules_sec(src), argv + 1, argc - 1, &why) != 0)
		return cfg_fail(ps, src, "%s: %s", d->name, why);
	return 0;
}

static int
cfg_d_order(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
            char **argv, size_t argc)
{
	const char *why;

	(void)argc;
	if (cfg_rule_line(src) != 0)
		return cfg_nomem(ps, src);
	if (pol_acl_order(cfg_rules_sec(src), argv[1], &why) != 0)
		return cfg_fail(ps, src, "%s: %s", d->name, why);
	return 0;
}

static int
cfg_d_allow(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
            char **argv, size_t argc)
{
	const char *why;

	if (strcasecmp(argv[1], "from") != 0)
		return cfg_fail(ps, src, "%s: expected \"from\", got \"%.200s\"", d->name, argv[1]);
	if (cfg_rule_line(src) != 0)
		return cfg_nomem(ps, src);
	if (pol_acl_allow(cfg_rules_sec(src), strcmp(d->name, "Deny") == 0, argv + 2, argc - 2, &why) != 0)
		return cfg_fail(ps, src, "%s: %s", d->name, why);
	return 0;
}

static int
cfg_d_satisfy(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
              char **argv, size_t argc)
{
	static const char *const words[] = { "Any", "All", NULL };

	(void)argc;
	/* Accepted for Apache compatibility; it changes nothing: 2.2 and 2.4 rules never meet in
	 * one section, and the containers combine 2.4 rules. */
	if (cfg_keyword(argv[1], words) < 0)
		return cfg_fail(ps, src, "%s: expected Any or All, got \"%.200s\"", d->name,
		                argv[1]);
	return 0;
}

/* ---- intranet policy (policy/pol.h: ProxyBlock, NoProxy, ProxyRemote, ProxyDomain, PAC) ---- */

static const char *
cfg_where(struct cfg_src *src, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%u", src->name, src->line);
	return buf;
}

static int
cfg_d_block(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
            char **argv, size_t argc)
{
	char where[512];
	const char *err = NULL;

	cfg_where(src, where, sizeof(where));
	for (size_t i = 1; i < argc; i++) {
		int rc = strcasecmp(d->name, "ProxyBlock") == 0
		                 ? pol_block_add(ps->c->pol, argv[i], where, &err)
		                 : pol_noproxy_add(ps->c->pol, argv[i], where, &err);
		if (rc != 0)
			return cfg_fail(ps, src, "%s: \"%.200s\": %s", d->name, argv[i],
			                err ? err : "out of memory");
	}
	return 0;
}

static int
cfg_d_remote(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
             char **argv, size_t argc)
{
	char where[512];
	const char *err = NULL;
	const char *userpass = argc > 3 ? argv[3] : NULL;
	int rc;

	cfg_where(src, where, sizeof(where));
	if (strcasecmp(d->name, "ProxyRemote") == 0)
		rc = pol_remote_add(ps->c->pol, argv[1], argv[2], userpass, where, &err);
	else
		rc = pol_remote_match_add(ps->c->pol, argv[1], argv[2], userpass, where, &err);
	if (rc != 0)
		return cfg_fail(ps, src, "%s: %s", d->name, err ? err : "out of memory");
	return 0;
}

static int
cfg_d_domain(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
             char **argv, size_t argc)
{
	char where[512];
	const char *err = NULL;

	(void)argc;
	cfg_where(src, where, sizeof(where));
	if (pol_domain_set(ps->c->pol, argv[1], where, &err) != 0)
		return cfg_fail(ps, src, "%s: \"%.200s\": %s", d->name, argv[1],
		                err ? err : "out of memory");
	return 0;
}

static int
cfg_d_fallback(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
               char **argv, size_t argc)
{
	static const char *const words[] = { "none", "direct", NULL };
	int k = cfg_keyword(argv[1], words);

	(void)argc;
	if (k < 0)
		return cfg_fail(ps, src, "%s: expected direct or none, got \"%.200s\"", d->name,
		                argv[1]);
	if (strcasecmp(d->name, "ProxyRemoteFallback") == 0) {
		char where[512];
		pol_remote_fallback_direct(ps->c->pol, k);
		pol_remote_fallback_where(ps->c->pol, cfg_where(src, where, sizeof(where)));
	}
	else
		ps->c->pac_fallback_direct = k;
	return 0;
}

static int
cfg_d_pac_proxy(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                char **argv, size_t argc)
{
	struct cfg *c = ps->c;

	for (size_t i = 1; i < argc; i++) {
		/* "https://HOST:PORT": an HTTPS proxy, "HTTPS HOST:PORT" in the PAC (issue 13) */
		const char *a = argv[i] + (strncasecmp(argv[i], "https://", 8) == 0 ? 8 : 0);
		const char *colon = strrchr(a, ':');
		char *end = NULL;
		unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;

		if (!colon || colon == a || !end || *end || colon[1] == '\0' || port < 1 ||
		    port > 65535 || strpbrk(a, " \t;\"'\\/") != NULL)
			return cfg_fail(ps, src, "%s: expected HOST:PORT or https://HOST:PORT, got "
			                "\"%.200s\"", d->name, argv[i]);
	}
	for (size_t i = 0; i < c->npac_proxies; i++)
		free(c->pac_proxies[i]);
	free(c->pac_proxies);
	c->npac_proxies = 0;
	c->pac_proxies = calloc(argc - 1, sizeof(char *));
	if (!c->pac_proxies)
		return cfg_nomem(ps, src);
	for (size_t i = 1; i < argc; i++) {
		c->pac_proxies[i - 1] = strdup(argv[i]);
		if (!c->pac_proxies[i - 1])
			return cfg_nomem(ps, src);
		c->npac_proxies = i;
	}
	return 0;
}

static int
cfg_d_pac_file(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
               char **argv, size_t argc)
{
	struct cfg *c = ps->c;
	char *path;
	FILE *f;
	char *text = NULL;
	size_t len = 0, cap = 0;

	(void)argc;
	if (!*argv[1])
		return cfg_fail(ps, src, "%s: empty file name", d->name);
	path = cfg_join(src->dir, argv[1]);
	if (!path)
		return cfg_nomem(ps, src);
	f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		cfg_fail(ps, src, "%s: cannot read %.300s: %s", d->name, path, strerror(e));
		free(path);
		return -1;
	}
	for (;;) {
		if (cap - len < 4096) {
			char *n;
			if (cap >= 128 * 1024) {
				fclose(f);
				free(text);
				cfg_fail(ps, src, "%s: %.300s is larger than 128 KiB", d->name, path);
				free(path);
				return -1;
			}
			cap = cap ? cap * 2 : 8192;
			n = realloc(text, cap);
			if (!n) {
				fclose(f);
				free(text);
				free(path);
				return cfg_nomem(ps, src);
			}
			text = n;
		}
		size_t k = fread(text + len, 1, cap - len, f);
		len += k;
		if (k == 0)
			break;
	}
	fclose(f);
	if (cfg_record(&c->files, &c->nfiles, path) != 0) {
		free(text);
		free(path);
		return cfg_nomem(ps, src);
	}
	free(c->pac_file);
	free(c->pac_text);
	c->pac_file = path;
	c->pac_text = text;
	c->pac_len = len;
	return 0;
}

/* Remember where CacheRoot was set, for the messages of preflight.c. */
static int
cfg_cache_root_where(struct cfg_parse *ps, struct cfg_src *src)
{
	char where[512], *w;

	cfg_where(src, where, sizeof(where));
	w = strdup(where);
	if (!w)
		return cfg_nomem(ps, src);
	free(ps->c->cache_root_where);
	ps->c->cache_root_where = w;
	return 0;
}

/* Cache*: parsed by cachecfg.c, which says what is wrong; the place is added here. */
static int
cfg_d_cache(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
            char **argv, size_t argc)
{
	char msg[512];

	(void)d;
	if (cachecfg_directive(ps->c->cache, argv, argc, msg, sizeof(msg)) < 0)
		return cfg_fail(ps, src, "%s", msg);
	cfg_where(src, msg, sizeof(msg));
	if (cachecfg_note_where(ps->c->cache, msg) < 0)
		return cfg_nomem(ps, src);
	if (strcasecmp(argv[0], "CacheRoot") == 0)
		return cfg_cache_root_where(ps, src);
	return 0;
}

/* ---- Apache compatibility (issue 9, part 3): modules, defines, ServerName, notices ---- */

/* The Apache modules Gatehouse stands in for: <IfModule> is true for these and only these,
 * and LoadModule of one of them is accepted with a notice. */
static const char *const cfg_modules[] = {
	"proxy", "proxy_http", "proxy_ftp", "proxy_connect", "cache", "cache_disk", "status",
	"log_config", "authz_core", "authz_host", "auth_basic", "authn_file", "ssl", NULL
};

/* -D NAME from the command line; set by main before the first load, read by every load. */
static char *cfg_defines[CFG_MAX_DEFINES];
static size_t cfg_ndefines;

int
cfg_define(const char *name)
{
	char *copy;

	if (!name || !*name || name[0] == '!' || strpbrk(name, " \t\r\n\v\f>\"") ||
	    cfg_ndefines == CFG_MAX_DEFINES)
		return -1;
	copy = strdup(name);
	if (!copy)
		return -1;
	cfg_defines[cfg_ndefines++] = copy;
	return 0;
}

void
cfg_defines_clear(void)
{
	while (cfg_ndefines > 0)
		free(cfg_defines[--cfg_ndefines]);
}

static int
cfg_defined(const char *name)
{
	for (size_t i = 0; i < cfg_ndefines; i++)
		if (strcmp(cfg_defines[i], name) == 0) /* case-sensitive, as Apache */
			return 1;
	return 0;
}

/* "mod_proxy.c", "proxy_module" and "mod_proxy" all name module "proxy". */
int
cfg_module_present(const char *module)
{
	char name[64];
	size_t n = strlen(module);

	if (n >= sizeof(name))
		return 0;
	if (n > 2 && strcasecmp(module + n - 2, ".c") == 0 && strncasecmp(module, "mod_", 4) == 0)
		snprintf(name, sizeof(name), "%.*s", (int)(n - 6), module + 4);
	else if (n > 7 && strcasecmp(module + n - 7, "_module") == 0)
		snprintf(name, sizeof(name), "%.*s", (int)(n - 7), module);
	else if (strncasecmp(module, "mod_", 4) == 0)
		snprintf(name, sizeof(name), "%s", module + 4);
	else
		return 0;
	return cfg_keyword(name, cfg_modules) >= 0;
}

/* A notice: an Apache directive accepted without its Apache effect. Collected as
 * "FILE:LINE: message\n" lines for -t and the error log. */
__attribute__((format(printf, 4, 5)))
static int
cfg_notice_at(struct cfg_parse *ps, struct cfg_src *src, const char *where, const char *fmt,
              ...)
{
	struct cfg *c = ps->c;
	char msg[1024];
	size_t old = c->notices ? strlen(c->notices) : 0;
	va_list ap;
	char *n;
	int len;

	len = snprintf(msg, sizeof(msg), "%.500s: ", where);
	va_start(ap, fmt);
	vsnprintf(msg + len, sizeof(msg) - (size_t)len, fmt, ap);
	va_end(ap);
	len = (int)strlen(msg);
	n = realloc(c->notices, old + (size_t)len + 2);
	if (!n)
		return cfg_nomem(ps, src);
	memcpy(n + old, msg, (size_t)len);
	n[old + (size_t)len] = '\n';
	n[old + (size_t)len + 1] = '\0';
	c->notices = n;
	c->nnotices++;
	return 0;
}

/* After the last directive: ServerName's default, and what the notices must add. */
static int
cfg_compat_finish(struct cfg_parse *ps)
{
	struct cfg *c = ps->c;

	if (!c->server_name) {
		char host[256];

		if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "gatehouse");
		host[sizeof(host) - 1] = '\0';
		c->server_name = strdup(host);
		c->server_host = strdup(host);
		if (!c->server_name || !c->server_host)
			return -1;
	}
	if (c->cache->nenable > 0 && !c->cache->root)
		return cfg_notice_at(ps, NULL, ps->notice_first_enable, "CacheEnable without "
		                     "CacheRoot: nothing is cached until a CacheRoot names the "
		                     "store's directory");
	return 0;
}

/* ServerName [scheme://]host[:port]: a name, IPv4 or [IPv6] address, as Apache. */
static int
cfg_d_server_name(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                  char **argv, size_t argc)
{
	const char *a = argv[1], *host = a, *sep = strstr(a, "://"), *after, *hs;
	char v6[INET6_ADDRSTRLEN + 1];
	struct in6_addr addr6;
	unsigned long port;
	size_t hlen;
	char *name, *hostpart;

	(void)argc;
	if (sep) {
		if (!((sep - a == 4 && strncasecmp(a, "http", 4) == 0) ||
		      (sep - a == 5 && strncasecmp(a, "https", 5) == 0)))
			return cfg_fail(ps, src, "%s: expected http:// or https:// before the "
			                "name, got \"%.200s\"", d->name, a);
		host = sep + 3;
	}
	if (host[0] == '[') {
		const char *close = strchr(host, ']');

		hs = host + 1;
		hlen = close ? (size_t)(close - hs) : 0;
		if (!close || hlen == 0 || hlen >= sizeof(v6))
			return cfg_fail(ps, src, "%s: bad IPv6 address in \"%.200s\"", d->name, a);
		memcpy(v6, hs, hlen);
		v6[hlen] = '\0';
		if (inet_pton(AF_INET6, v6, &addr6) != 1)
			return cfg_fail(ps, src, "%s: bad IPv6 address in \"%.200s\"", d->name, a);
		after = close + 1;
	} else {
		hs = host;
		hlen = strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		              "0123456789.-_");
		after = host + hlen;
		if (hlen == 0 || hlen > 253 || host[0] == '.' || host[0] == '-' ||
		    (*after && *after != ':'))
			return cfg_fail(ps, src, "%s: expected [scheme://]host[:port], got "
			                "\"%.200s\"", d->name, a);
	}
	if (*after == ':') {
		if (cfg_number(after + 1, 1, 65535, &port) != 0)
			return cfg_fail(ps, src, "%s: bad port in \"%.200s\"", d->name, a);
	} else if (*after) {
		return cfg_fail(ps, src, "%s: expected [scheme://]host[:port], got \"%.200s\"",
		                d->name, a);
	}
	name = strdup(host);
	hostpart = strndup(hs, hlen);
	if (!name || !hostpart) {
		free(name);
		free(hostpart);
		return cfg_nomem(ps, src);
	}
	free(ps->c->server_name);
	free(ps->c->server_host);
	ps->c->server_name = name;
	ps->c->server_host = hostpart;
	return 0;
}

/* LoadModule: built in for the modules we stand in for (a notice), an error for others. */
static int
cfg_d_load_module(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                  char **argv, size_t argc)
{
	(void)argc;
	if (cfg_module_present(argv[1]))
		return cfg_notice(ps, src, "%s %.200s: Gatehouse has this module built in; the "
		                  "line has no effect", d->name, argv[1]);
	return cfg_fail(ps, src, "%s %.200s: Gatehouse has no such module (it stands in for "
	                "mod_proxy, mod_proxy_http, mod_proxy_ftp, mod_proxy_connect, mod_cache, "
	                "mod_cache_disk, mod_status, mod_log_config, mod_authz_core, "
	                "mod_authz_host, mod_auth_basic, mod_authn_file and mod_ssl)", d->name, argv[1]);
}

/* mod_cache_disk's layout and mod_cache's lock and handler phase: accepted with a notice,
 * their arguments checked as Apache checks them. */
static int
cfg_d_no_effect(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                char **argv, size_t argc)
{
	const char *n = d->name, *why;
	unsigned long v;
	int on;

	(void)argc;
	if (strcmp(n, "CacheDirLevels") == 0 || strcmp(n, "CacheDirLength") == 0) {
		int levels = strcmp(n, "CacheDirLevels") == 0;

		if (cfg_number(argv[1], 1, 20, &v) != 0)
			return cfg_fail(ps, src, "%s: expected a number from 1 to 20, got "
			                "\"%.200s\"", n, argv[1]);
		*(levels ? &ps->dir_levels : &ps->dir_length) = v;
		if (ps->dir_levels * ps->dir_length > 20)
			return cfg_fail(ps, src, "%s: CacheDirLevels times CacheDirLength must "
			                "not be higher than 20", n);
		why = "the LMDB store (CacheRoot) has no directory tree";
	} else if (strcmp(n, "CacheLock") == 0 || strcmp(n, "CacheQuickHandler") == 0) {
		if (cfg_onoff(ps, src, n, argv[1], &on) != 0)
			return -1;
		why = strcmp(n, "CacheLock") == 0
		          ? "concurrent misses for one URL always wait for a single fetch "
		            "(collapsed forwarding)"
		          : "the cache always answers after the <Proxy> access rules and the "
		            "policy";
	} else if (strcmp(n, "CacheLockPath") == 0) {
		if (!*argv[1])
			return cfg_fail(ps, src, "%s: expected a directory", n);
		why = "collapsed forwarding needs no lock files";
	} else {
		if (cfg_number(argv[1], 1, 2147483647ul, &v) != 0)
			return cfg_fail(ps, src, "%s: expected a number of seconds above 0, got "
			                "\"%.200s\"", n, argv[1]);
		why = "collapsed forwarding needs no lock files";
	}
	return cfg_notice(ps, src, "%s: accepted for Apache compatibility, no effect: %s", n, why);
}

/* ---- the FTP gateway (issue 12): daemon/ftp.c reads these fields ---- */

/* FTPAnonymousPassword WORD: sent as "PASS WORD" after "USER anonymous", so one word of
 * printable ASCII (a space, CR or LF would end or split the command on the control channel). */
static int
cfg_d_ftp_anon_password(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                        char **argv, size_t argc)
{
	const char *w = argv[1];
	size_t n = strlen(w);
	char *copy;

	(void)argc;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)w[i] <= 0x20 || (unsigned char)w[i] >= 0x7f)
			n = 0; /* refused below */
	if (n == 0 || n > 128)
		return cfg_fail(ps, src, "%s: expected one word of printable ASCII without spaces, "
		                "1 to 128 bytes (an e-mail address such as gatehouse@), got "
		                "\"%.200s\"", d->name, w);
	copy = strdup(w);
	if (!copy)
		return cfg_nomem(ps, src);
	free(ps->c->ftp_anon_password);
	ps->c->ftp_anon_password = copy;
	return 0;
}

static int
cfg_d_ftp_active_fallback(struct cfg_parse *ps, struct cfg_src *src,
                          const struct cfg_directive *d, char **argv, size_t argc)
{
	(void)argc;
	return cfg_onoff(ps, src, d->name, argv[1], &ps->c->ftp_active_fallback);
}

/* FTPMaxListingSize BYTES: the listing is held while it is parsed, so this bounds memory per
 * listing; below 4K even a few long lines would not fit. */
static int
cfg_d_ftp_max_listing(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                      char **argv, size_t argc)
{
	uint64_t v;

	(void)argc;
	if (cachecfg_size(argv[1], &v) < 0 || v < (4u << 10) || v > (1u << 30))
		return cfg_fail(ps, src, "%s: expected a size from 4K to 1G (K, M, G suffixes), "
		                "got \"%.200s\"", d->name, argv[1]);
	ps->c->ftp_max_listing = v;
	return 0;
}

/* mod_proxy_ftp's directives. Gatehouse sends an ftp:// path's segments to the server as
 * literal names (one CWD each, then RETR or LIST of the directory itself): a wildcard is never
 * expanded into a listing nor passed to the server as a pattern, and listings are UTF-8 pages.
 * The value that asks for exactly that is accepted with a notice; the others cannot be
 * honoured, and the error says what Gatehouse does instead. */
static int
cfg_d_proxy_ftp(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                char **argv, size_t argc)
{
	const char *n = d->name;
	int on = 0;

	(void)argc;
	if (strcmp(n, "ProxyFtpDirCharset") == 0) {
		if (strcasecmp(argv[1], "UTF-8") != 0 && strcasecmp(argv[1], "UTF8") != 0)
			return cfg_fail(ps, src, "%s %.200s: Gatehouse's FTP listings are UTF-8 pages "
			                "(a name that is not UTF-8 shows U+FFFD for its bad bytes); "
			                "give UTF-8 or remove the line", n, argv[1]);
		return cfg_notice(ps, src, "%s: accepted for Apache compatibility, no effect: FTP "
		                  "listings are always UTF-8", n);
	}
	if (cfg_onoff(ps, src, n, argv[1], &on) != 0)
		return -1;
	if (strcmp(n, "ProxyFtpListOnWildcard") == 0) {
		if (on)
			return cfg_fail(ps, src, "%s On: Gatehouse does not turn a wildcard into a "
			                "listing (\"*\" in an ftp:// path is part of a file name); "
			                "ask for the directory (a trailing \"/\" or \";type=d\") and "
			                "give Off or remove the line", n);
		return cfg_notice(ps, src, "%s Off: accepted for Apache compatibility, no effect: "
		                  "Gatehouse never lists on a wildcard", n);
	}
	if (!on)
		return cfg_fail(ps, src, "%s Off: Gatehouse never passes a wildcard to the FTP "
		                "server as a pattern (each path segment is a literal name); give On "
		                "or remove the line", n);
	return cfg_notice(ps, src, "%s On: accepted for Apache compatibility, no effect: "
	                  "wildcards always reach the FTP server as literal names", n);
}

/* CacheEnable disk|mem|socache PREFIX: the one store there is, LMDB. */
static int
cfg_d_cache_enable(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                   char **argv, size_t argc)
{
	static const char *const types[] = { "disk", "mem", "socache", NULL };
	char *args[3];

	if (!ps->notice_first_enable[0])
		cfg_where(src, ps->notice_first_enable, sizeof(ps->notice_first_enable));
	if (argc != 3 || cfg_keyword(argv[1], types) < 0)
		return cfg_d_cache(ps, src, d, argv, argc);
	args[0] = argv[0];
	args[1] = "lmdb";
	args[2] = argv[2];
	if (cfg_d_cache(ps, src, d, args, argc) != 0)
		return -1;
	return cfg_notice(ps, src, "%s %s: Gatehouse stores every cached object in its LMDB store "
	                  "(CacheRoot); treated as CacheEnable lmdb", d->name, argv[1]);
}

/* Apache directives and sections an admin may carry over that Gatehouse cannot honour: the
 * error says why. A name ending in '*' is a prefix. */
static const struct {
	const char *name, *why;
} cfg_refused[] = {
	{ "ProxyPass*", "Gatehouse is a forward proxy only; reverse proxying is not supported" },
	{ "ProxyPreserveHost", "Gatehouse is a forward proxy only; reverse proxying is not "
	  "supported" },
	{ "ProxySet", "Gatehouse is a forward proxy only; there are no balancers or workers" },
	{ "Balancer*", "Gatehouse is a forward proxy only; there are no balancers" },
	{ "ProxyHTML*", "Gatehouse is a forward proxy only; it does not rewrite pages" },
	{ "SSL*", "not supported (Gatehouse's TLS directives are SSLCertificateFile, "
	  "SSLCertificateKeyFile, SSLCertificateChainFile, SSLProtocol, SSLCipherSuite and "
	  "SSLProxyCACertificateFile, SSLProxyCACertificatePath, SSLProxyVerify, "
	  "SSLProxyMachineCertificateFile, SSLProxyProtocol, SSLProxyCipherSuite)" },
	{ "Rewrite*", "Gatehouse has no mod_rewrite" },
	{ "DocumentRoot", "Gatehouse serves no files" },
	{ "ServerRoot", "Gatehouse has no ServerRoot; relative paths are relative to the "
	  "configuration file's directory" },
	{ "Define", "use \"gatehouse -D NAME\" for <IfDefine NAME>" },
	{ "VirtualHost", "Gatehouse is one server; put the directives at the top level" },
	{ "LocationMatch", "use <Location PATH>: the status page is the only thing served "
	  "there" },
	{ "Directory*", "Gatehouse serves no files" },
	{ "Files*", "Gatehouse serves no files" },
	{ "IfVersion", "Gatehouse has only <IfModule> and <IfDefine>" },
	{ "If", "Gatehouse has only <IfModule> and <IfDefine>" },
	{ "ElseIf", "Gatehouse has only <IfModule> and <IfDefine>" },
	{ "Else", "Gatehouse has only <IfModule> and <IfDefine>" },
	{ "IfFile", "Gatehouse has only <IfModule> and <IfDefine>" },
	{ "IfDirective", "Gatehouse has only <IfModule> and <IfDefine>" },
	{ "IfSection", "Gatehouse has only <IfModule> and <IfDefine>" },
};

static const char *
cfg_refused_why(const char *name)
{
	for (size_t i = 0; i < sizeof(cfg_refused) / sizeof(cfg_refused[0]); i++) {
		const char *r = cfg_refused[i].name;
		size_t n = strlen(r);

		if (r[n - 1] == '*' ? strncasecmp(name, r, n - 1) == 0 : strcasecmp(name, r) == 0)
			return cfg_refused[i].why;
	}
	return NULL;
}

/* gatehouse -M: one word as the tokenizer reads it back. */
static void
cfg_dump_word(FILE *f, const char *w)
{
	if (*w && !strpbrk(w, " \t\r\v\f\"\\") && w[0] != '#') {
		fputs(w, f);
		return;
	}
	fputc('"', f);
	for (; *w; w++) {
		if (*w == '"' || *w == '\\')
			fputc('\\', f);
		fputc(*w, f);
	}
	fputc('"', f);
}

static void
cfg_dump_indent(FILE *f, const struct cfg_src *src)
{
	for (unsigned i = 0; i < src->nframes; i++)
		if (src->frames[i].kind == CFG_FR_PROXY || src->frames[i].kind == CFG_FR_LIMIT ||
		    src->frames[i].kind == CFG_FR_LOCATION || src->frames[i].kind == CFG_FR_AUTHZ)
			fputs("    ", f);
}

/* Directives whose first argument is a file relative to the configuration's directory:
 * -M prints it absolute, so that the text means the same read from anywhere. */
static const char *const cfg_dump_path_args[] = { "AccessLog", "ErrorLog", "PidFile", "PacFile",
	                                         "CustomLog", "TransferLog", "SSLCertificateFile",
	                                         "SSLCertificateKeyFile", "SSLCertificateChainFile",
	                                         "SSLProxyCACertificateFile",
	                                         "SSLProxyCACertificatePath",
	                                         "SSLProxyMachineCertificateFile",
	                                         "AuthUserFile", "AuthGroupFile", NULL };

static void
cfg_dump_directive(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                   char **argv, size_t argc)
{
	FILE *f = ps->dump;

	cfg_dump_indent(f, src);
	fprintf(f, "# %s:%u\n", src->name, src->line);
	cfg_dump_indent(f, src);
	if (d->fn == cfg_d_include)
		fputs("# ", f); /* expanded below */
	fputs(d->name, f);
	for (size_t i = 1; i < argc; i++) {
		fputc(' ', f);
		if (i == 1 && cfg_keyword(d->name, cfg_dump_path_args) >= 0 && argv[1][0] != '/' &&
		    strcmp(argv[1], "-") != 0 && argv[1][0] != '|' &&
		    strncasecmp(argv[1], "syslog", 6) != 0) {
			char *p = cfg_join(src->dir, argv[1]);

			cfg_dump_word(f, p ? p : argv[1]);
			free(p);
		} else {
			cfg_dump_word(f, argv[i]);
		}
	}
	fputc('\n', f);
}

/* -M, after a successful load: the directives of the table that were not given. */
static void
cfg_dump_defaults(struct cfg_parse *ps, const struct cfg_directive *tbl, size_t n)
{
	FILE *f = ps->dump;

	fputs("\n# Not given: the defaults\n", f);
	for (size_t i = 0; i < n; i++) {
		const struct cfg_directive *d = &tbl[i];

		if (ps->given[i] || !(d->ctx & CFG_IN_TOP) || (d->ctx & CFG_NO_DEFAULT))
			continue;
		if (!d->dflt)
			fprintf(f, "# %s: not set\n", d->name);
		else if (d->dflt[0] == '(')
			fprintf(f, "# %s: not set %s\n", d->name, d->dflt);
		else
			fprintf(f, "%s %s\n", d->name, d->dflt);
	}
}

/* ErrorDocument CODE MESSAGE|/FILE|URL|default (issue 9, part 4): errdoc.c says what is
 * wrong; the place is added here. */
static int
cfg_d_error_document(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                     char **argv, size_t argc)
{
	char msg[512];

	(void)d;
	(void)argc;
	if (errdoc_directive(&ps->c->errdocs, argv[1], argv[2], msg, sizeof(msg)) < 0)
		return cfg_fail(ps, src, "%s", msg);
	/* A template file (read now, and again on reload, as User: preflight.c checks it). */
	if (argv[2][0] == '/' && !strchr(argv[2], ' ') &&
	    cfg_record(&ps->c->files, &ps->c->nfiles, argv[2]) != 0)
		return cfg_nomem(ps, src);
	return 0;
}

/* ---- proxy authentication in <Proxy>/<ProxyMatch> (issue 14, daemon/pauth.h) ---- */

enum { CFG_PA_TYPE, CFG_PA_PROVIDER, CFG_PA_USERFILE, CFG_PA_GROUPFILE, CFG_PA_EXTERNAL,
       CFG_PA_NEGOTIATE };

/* The settings of the open section, made on its first Auth* directive. */
static struct pauth_cfg *
cfg_pauth_get(struct cfg_parse *ps, struct cfg_src *src)
{
	struct cfg *c = ps->c;
	struct pauth_cfg *pc, **na;
	char where[512];

	if (src->auth)
		return src->auth;
	na = realloc(c->auths, (c->nauths + 1) * sizeof(*na));
	if (!na)
		return NULL;
	c->auths = na;
	pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	pc->where = strdup(cfg_where(src, where, sizeof(where)));
	if (!pc->where || RAND_bytes(pc->id, sizeof(pc->id)) != 1) {
		free(pc->where);
		free(pc);
		return NULL;
	}
	pc->provider = PAUTH_PROV_NONE;
	pc->external_children = PAUTH_CHILDREN_DEFAULT;
	pc->external.timeout_ms = PAUTH_HELPER_TIMEOUT_DEFAULT * 1000;
	pc->negotiate_children = PAUTH_CHILDREN_DEFAULT;
	pc->negotiate_helper.timeout_ms = PAUTH_HELPER_TIMEOUT_DEFAULT * 1000;
	pc->cache_ttl_s = PAUTH_CACHE_TTL_DEFAULT;
	pc->negative_ttl_s = PAUTH_NEGATIVE_TTL_DEFAULT;
	pc->basic = -1; /* AuthType not given yet */
	c->auths[c->nauths++] = pc;
	memset(src->auth_lines, 0, sizeof(src->auth_lines));
	src->auth = pc;
	return pc;
}

/* A helper command: the first word (blanks split, "..." quotes) is an absolute path to an
 * executable, checked now so that the mistake is the config's, not a 503 at the first login. */
static int
cfg_pauth_cmd(struct cfg_parse *ps, struct cfg_src *src, const char *name, const char *cmd)
{
	char prog[1024];
	const char *p = cmd;
	size_t n = 0;

	while (cfg_is_blank((unsigned char)*p))
		p++;
	if (*p == '"') {
		p++;
		while (*p && *p != '"' && n + 1 < sizeof(prog))
			prog[n++] = *p++;
	} else {
		while (*p && !cfg_is_blank((unsigned char)*p) && n + 1 < sizeof(prog))
			prog[n++] = *p++;
	}
	prog[n] = '\0';
	if (n == 0)
		return cfg_fail(ps, src, "%s: the command is empty", name);
	if (prog[0] != '/')
		return cfg_fail(ps, src, "%s: \"%.200s\" is not an absolute path (helpers run "
		                "without a shell or PATH)", name, prog);
	struct stat st;
	if (stat(prog, &st) != 0)
		return cfg_fail(ps, src, "%s: %.200s: %s", name, prog,
		                errno == ENOENT ? "no such file (is the helper installed? Debian's "
		                "squid package ships them in /usr/lib/squid)" : strerror(errno));
	/* root passes access(X_OK) for any file with one execute bit: check the bits too */
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111) || access(prog, X_OK) != 0)
		return cfg_fail(ps, src, "%s: %.200s: not an executable file", name, prog);
	return 0;
}

static int
cfg_pauth_seconds(struct cfg_parse *ps, struct cfg_src *src, const char *name, const char *v,
                  unsigned long lo, unsigned long hi, unsigned *out)
{
	unsigned long x;

	if (cfg_number(v, lo, hi, &x) != 0)
		return cfg_fail(ps, src, "%s: expected a number of seconds from %lu to %lu, got "
		                "\"%.100s\"", name, lo, hi, v);
	*out = (unsigned)x;
	return 0;
}

/* "N [concurrency=C]" of AuthExternalChildren / AuthNegotiateChildren. */
static int
cfg_pauth_children(struct cfg_parse *ps, struct cfg_src *src, const char *name, char **argv,
                   size_t argc, unsigned *children, unsigned *concurrency)
{
	unsigned long v;

	if (cfg_number(argv[1], 1, 1000, &v) != 0)
		return cfg_fail(ps, src, "%s: expected a number of processes from 1 to 1000, got "
		                "\"%.100s\"", name, argv[1]);
	*children = (unsigned)v;
	for (size_t i = 2; i < argc; i++) {
		if (!concurrency || strncasecmp(argv[i], "concurrency=", 12) != 0)
			return cfg_fail(ps, src, "%s: unknown option \"%.100s\"%s", name, argv[i],
			                concurrency ? " (expected concurrency=C)" : "");
		if (cfg_number(argv[i] + 12, 0, 1000, &v) != 0)
			return cfg_fail(ps, src, "%s: concurrency: expected a number from 0 to 1000, "
			                "got \"%.100s\"", name, argv[i] + 12);
		*concurrency = (unsigned)v;
	}
	return 0;
}

static int
cfg_d_pauth(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
            char **argv, size_t argc)
{
	struct pauth_cfg *pc = cfg_pauth_get(ps, src);
	const char *n = d->name;
	char err[1024];

	if (!pc)
		return cfg_nomem(ps, src);
	if (strcmp(n, "AuthType") == 0) {
		if (strcasecmp(argv[1], "Basic") == 0)
			pc->basic = 1, pc->negotiate = 0;
		else if (strcasecmp(argv[1], "Negotiate") == 0)
			pc->basic = 0, pc->negotiate = 1;
		else if (strcasecmp(argv[1], "None") == 0)
			pc->basic = 0, pc->negotiate = 0;
		else
			return cfg_fail(ps, src, "AuthType %.200s: expected Basic, Negotiate or None",
			                argv[1]);
		free(pc->where);
		if ((pc->where = strdup(cfg_where(src, err, sizeof(err)))) == NULL)
			return cfg_nomem(ps, src);
		src->auth_lines[CFG_PA_TYPE] = src->line;
		return 0;
	}
	if (strcmp(n, "AuthName") == 0) {
		if (argv[1][0] == '\0' || strpbrk(argv[1], "\"\\\r\n") != NULL ||
		    strlen(argv[1]) > 200)
			return cfg_fail(ps, src, "AuthName: the realm must be non-empty, at most 200 "
			                "bytes, without quotes or backslashes");
		free(pc->realm);
		if ((pc->realm = strdup(argv[1])) == NULL)
			return cfg_nomem(ps, src);
		return 0;
	}
	if (strcmp(n, "AuthBasicProvider") == 0) {
		if (argc != 2)
			return cfg_fail(ps, src, "AuthBasicProvider: expected one provider, file or "
			                "external (Gatehouse does not chain providers)");
		if (strcasecmp(argv[1], "file") == 0)
			pc->provider = PAUTH_PROV_FILE;
		else if (strcasecmp(argv[1], "external") == 0)
			pc->provider = PAUTH_PROV_EXTERNAL;
		else
			return cfg_fail(ps, src, "AuthBasicProvider %.200s: unknown provider (expected "
			                "file or external)", argv[1]);
		src->auth_lines[CFG_PA_PROVIDER] = src->line;
		return 0;
	}
	if (strcmp(n, "AuthUserFile") == 0 || strcmp(n, "AuthGroupFile") == 0) {
		int users = n[4] == 'U';
		char *path = cfg_join(src->dir, argv[1]);

		if (!path || cfg_record(&ps->c->files, &ps->c->nfiles, path) != 0) {
			free(path);
			return cfg_nomem(ps, src);
		}
		if (users) {
			struct auth_htpasswd *h = NULL;

			if (auth_htpasswd_load(path, &h, err, sizeof(err)) != 0) {
				free(path);
				return cfg_fail(ps, src, "AuthUserFile: %s", err);
			}
			auth_htpasswd_free(&pc->users);
			free(pc->user_file);
			pc->users = h;
			pc->user_file = path;
			src->auth_lines[CFG_PA_USERFILE] = src->line;
		} else {
			struct pauth_groups *g = NULL;

			if (pauth_groups_load(path, &g, err, sizeof(err)) != 0) {
				free(path);
				return cfg_fail(ps, src, "AuthGroupFile: %s", err);
			}
			pauth_groups_free(&pc->groups);
			free(pc->group_file);
			pc->groups = g;
			pc->group_file = path;
			src->auth_lines[CFG_PA_GROUPFILE] = src->line;
		}
		return 0;
	}
	if (strcmp(n, "AuthExternal") == 0 || strcmp(n, "AuthNegotiateExternal") == 0) {
		int neg = n[4] == 'N';
		struct hpool_cfg *hc = neg ? &pc->negotiate_helper : &pc->external;
		char *cmd;

		if (cfg_pauth_cmd(ps, src, n, argv[1]) != 0)
			return -1;
		if ((cmd = strdup(argv[1])) == NULL)
			return cfg_nomem(ps, src);
		free((char *)hc->cmd);
		hc->cmd = cmd;
		src->auth_lines[neg ? CFG_PA_NEGOTIATE : CFG_PA_EXTERNAL] = src->line;
		return 0;
	}
	if (strcmp(n, "AuthExternalChildren") == 0)
		return cfg_pauth_children(ps, src, n, argv, argc, &pc->external_children,
		                          &pc->external.concurrency);
	if (strcmp(n, "AuthNegotiateChildren") == 0)
		return cfg_pauth_children(ps, src, n, argv, argc, &pc->negotiate_children, NULL);
	if (strcmp(n, "AuthExternalTimeout") == 0) {
		unsigned v = 0;

		if (cfg_pauth_seconds(ps, src, n, argv[1], 1, 3600, &v) != 0)
			return -1;
		pc->external.timeout_ms = v * 1000;
		pc->negotiate_helper.timeout_ms = v * 1000;
		return 0;
	}
	if (strcmp(n, "AuthCacheTTL") == 0)
		return cfg_pauth_seconds(ps, src, n, argv[1], 0, 86400, &pc->cache_ttl_s);
	if (strcmp(n, "AuthNegativeCacheTTL") == 0)
		return cfg_pauth_seconds(ps, src, n, argv[1], 0, 3600, &pc->negative_ttl_s);
	return cfg_fail(ps, src, "%s: not handled", n);
}

/* The message of a finished section's check, at the line of the directive it names. */
__attribute__((format(printf, 4, 5)))
static int
cfg_pauth_fail_at(struct cfg_parse *ps, struct cfg_src *src, unsigned line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	unsigned here = src->line;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line)
		src->line = line;
	cfg_fail(ps, src, "%s", msg);
	src->line = here;
	return -1;
}

/* The end of a <Proxy>/<ProxyMatch> with Auth* directives: the settings are whole, or an
 * error names what is missing; then the ACL gets them (pol_acl_set_authn). */
static int
cfg_pauth_finish(struct cfg_parse *ps, struct cfg_src *src)
{
	struct pauth_cfg *pc = src->auth;
	const unsigned *L = src->auth_lines;
	unsigned at = L[CFG_PA_TYPE] ? L[CFG_PA_TYPE] : src->sec_line;

	src->auth = NULL;
	if (pc->basic < 0)
		return cfg_pauth_fail_at(ps, src, src->sec_line, "<%s>: Auth* directives without "
		                         "AuthType (Basic, Negotiate or None)", src->sec_name);
	/* The provider: as written, else file when AuthUserFile is given, external when
	 * AuthExternal is. */
	if (pc->provider == PAUTH_PROV_NONE) {
		if (pc->user_file)
			pc->provider = PAUTH_PROV_FILE;
		else if (pc->external.cmd)
			pc->provider = PAUTH_PROV_EXTERNAL;
	}
	if (pc->provider == PAUTH_PROV_FILE && !pc->user_file)
		return cfg_pauth_fail_at(ps, src, L[CFG_PA_PROVIDER] ? L[CFG_PA_PROVIDER] : at,
		                         "AuthBasicProvider file needs AuthUserFile (an htpasswd "
		                         "file made with htpasswd -B)");
	if (pc->provider == PAUTH_PROV_EXTERNAL && !pc->external.cmd)
		return cfg_pauth_fail_at(ps, src, L[CFG_PA_PROVIDER] ? L[CFG_PA_PROVIDER] : at,
		                         "AuthBasicProvider external needs AuthExternal \"COMMAND "
		                         "ARGS\" (a Squid Basic helper such as basic_ldap_auth)");
	if (pc->provider == PAUTH_PROV_EXTERNAL && pc->user_file)
		return cfg_pauth_fail_at(ps, src, L[CFG_PA_USERFILE], "AuthUserFile is for "
		                         "AuthBasicProvider file; this section's provider is external "
		                         "(AuthExternal)");
	if (pc->provider == PAUTH_PROV_FILE && pc->external.cmd)
		return cfg_pauth_fail_at(ps, src, L[CFG_PA_EXTERNAL], "AuthExternal is for "
		                         "AuthBasicProvider external; this section's provider is file "
		                         "(AuthUserFile)");
	if (pc->negotiate) {
		if (!pc->negotiate_helper.cmd)
			return cfg_pauth_fail_at(ps, src, at, "AuthType Negotiate needs "
			                         "AuthNegotiateExternal \"COMMAND ARGS\" (Squid's "
			                         "negotiate_kerberos_auth)");
		/* A Basic provider beside Negotiate is offered as the fallback. */
		pc->basic = pc->provider != PAUTH_PROV_NONE;
	} else if (pc->basic) {
		if (pc->provider == PAUTH_PROV_NONE)
			return cfg_pauth_fail_at(ps, src, at, "AuthType Basic needs a provider: "
			                         "AuthUserFile (AuthBasicProvider file) or AuthExternal "
			                         "(AuthBasicProvider external)");
	} else if (L[CFG_PA_NEGOTIATE]) {
		return cfg_pauth_fail_at(ps, src, L[CFG_PA_NEGOTIATE], "AuthNegotiateExternal needs "
		                         "\"AuthType Negotiate\"");
	}
	if (!pc->basic && !pc->negotiate) {
		/* AuthType None: Apache's way to switch off, in this section, what an earlier one
		 * set up. A user term here could only fail (Apache answers 500 "Authentication not
		 * configured?"): the mistake is the config's. */
		const struct pol_why *u = pol_acl_sec_first_user(src->sec);

		if (u != NULL) {
			if (u->line)
				snprintf(ps->err, ps->errlen, "%s: %s: AuthType None (%s) switches "
				         "authentication off in this section: no user can be asked for",
				         u->line, u->text, pc->where);
			else
				cfg_pauth_fail_at(ps, src, at, "%s: AuthType None switches authentication "
				                  "off in this section: no user can be asked for", u->text);
			return -1;
		}
	}
	if (pol_acl_set_authn(src->sec, pc, !pc->basic && !pc->negotiate) != 0)
		return cfg_nomem(ps, src);
	return 0;
}

/* AuthFailureLimit BURST SECONDS: failed logins per client address before it must wait, and
 * the seconds that give one back. */
static int
cfg_d_auth_fail_limit(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_directive *d,
                      char **argv, size_t argc)
{
	unsigned long b, r;

	(void)argc;
	if (cfg_number(argv[1], 1, 100000, &b) != 0)
		return cfg_fail(ps, src, "%s: expected a number of failures from 1 to 100000, got "
		                "\"%.100s\"", d->name, argv[1]);
	if (cfg_number(argv[2], 1, 86400, &r) != 0)
		return cfg_fail(ps, src, "%s: expected seconds from 1 to 86400, got \"%.100s\"",
		                d->name, argv[2]);
	ps->c->auth_fail_burst = (unsigned)b;
	ps->c->auth_fail_refill_s = (unsigned)r;
	return 0;
}

#define CFG_OFF(f) offsetof(struct cfg, f)
#define CFG_NUM(name, field, lo, hi, scale, unit) \
	CFG_NUMD(name, field, lo, hi, scale, unit, NULL)
#define CFG_FN(name, fn, min, max, ctx) CFG_FND(name, fn, min, max, ctx, NULL)
/* ... with the default as -M prints it (issue 9) */
#define CFG_NUMD(name, field, lo, hi, scale, unit, dflt) \
	{ name, cfg_d_number, 1, 1, CFG_IN_TOP, CFG_OFF(field), lo, hi, scale, unit, dflt }
#define CFG_FND(name, fn, min, max, ctx, dflt) { name, fn, min, max, ctx, 0, 0, 0, 0, NULL, dflt }

static const struct cfg_directive cfg_directives[] = {
	CFG_FND("Listen", cfg_d_listen, 1, 2, CFG_IN_TOP, "127.0.0.1:3128"),
	CFG_FND("ProxyRequests", cfg_d_proxy_requests, 1, 1, CFG_IN_TOP, "On"),
	CFG_FND("ProxyVia", cfg_d_via, 1, 1, CFG_IN_TOP, "Off"),
	CFG_FND("AllowCONNECT", cfg_d_allow_connect, 1, -1, CFG_IN_TOP, "443 563"),
	CFG_NUMD("ProxyTimeout", proxy_timeout_ms, 1, 86400, 1000, "seconds", "60"),
	CFG_FND("ProxyMaxForwards", cfg_d_max_forwards, 1, 1, CFG_IN_TOP, "-1"),
	CFG_FND("ProxyBadHeader", cfg_d_bad_header, 1, 1, CFG_IN_TOP, "IsError"),
	CFG_FND("ProxyChainAuth", cfg_d_chain_auth, 1, 1, CFG_IN_TOP, "Off"),
	/* issue 12: the FTP gateway */
	CFG_FND("FTPAnonymousPassword", cfg_d_ftp_anon_password, 1, 1, CFG_IN_TOP, "gatehouse@"),
	CFG_FND("FTPActiveFallback", cfg_d_ftp_active_fallback, 1, 1, CFG_IN_TOP, "Off"),
	CFG_NUMD("FTPDefaultExpire", ftp_default_expire_s, 0, 315360000, 1, "seconds", "3600"),
	CFG_NUMD("FTPListingExpire", ftp_listing_expire_s, 0, 315360000, 1, "seconds", "300"),
	CFG_FND("FTPMaxListingSize", cfg_d_ftp_max_listing, 1, 1, CFG_IN_TOP, "16M"),
	CFG_FN("ProxyFtpListOnWildcard", cfg_d_proxy_ftp, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("ProxyFtpEscapeWildcards", cfg_d_proxy_ftp, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("ProxyFtpDirCharset", cfg_d_proxy_ftp, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FND("DNSServer", cfg_d_dns_server, 1, RES_MAX_SERVERS, CFG_IN_TOP,
	       "(the servers of /etc/resolv.conf)"),
	CFG_NUMD("DNSTimeout", dns.timeout_ms, 10, 60000, 1, "milliseconds", "1500"),
	{ "DNSCacheTTL", cfg_d_dns_cache_ttl, 2, 2, CFG_IN_TOP, 0, 0, 604800, 1, "seconds",
	  "5 3600" },
	CFG_NUMD("DNSNegativeTTL", dns.neg_ttl, 0, 86400, 1, "seconds", "30"),
	CFG_NUMD("Workers", workers, 1, 256, 1, "a number", "(one per CPU)"),
	CFG_FN("AccessLog", cfg_d_access_log, 1, 2, CFG_IN_TOP),
	CFG_FND("ErrorLog", cfg_d_error_log, 1, 1, CFG_IN_TOP, "(standard error)"),
	CFG_FND("LogLevel", cfg_d_log_level, 1, 1, CFG_IN_TOP, "warn"),
	CFG_NUMD("Timeout", timeout_ms, 1, 86400, 1000, "seconds", "60"),
	CFG_NUMD("KeepAliveTimeout", keepalive_timeout_ms, 1, 3600, 1000, "seconds", "5"),
	CFG_NUMD("MaxKeepAliveRequests", max_keepalive_requests, 0, 1000000, 1, "a number", "100"),
	CFG_NUMD("LimitRequestLine", limit_request_line, 64, 65536, 1, "a number", "8190"),
	CFG_NUMD("LimitRequestFieldSize", limit_request_field_size, 64, 65536, 1, "a number",
	         "8190"),
	CFG_NUMD("LimitRequestFields", limit_request_fields, 1, 256, 1, "a number", "100"),
	CFG_NUMD("GracefulShutdownTimeout", graceful_timeout_ms, 1, 86400, 1000, "seconds", "10"),
	CFG_NUMD("UpstreamIdleTimeout", upstream_idle_ms, 1, 86400, 1000, "seconds", "30"),
	CFG_NUMD("MaxConnections", max_connections, 1, 1048576, 1, "a number",
	         "(sized from the file limit)"),
	CFG_NUMD("SendBufferSize", send_buffer_size, 0, 16777216, 1, "a number of bytes",
	         "(64 KiB for clients nearer than 0.5 ms, the kernel's autotuning for others)"),
	CFG_NUMD("MaxConnectionsPerClient", max_conns_per_client, 0, 1048576, 1, "a number",
	         "256"),
	CFG_FN("User", cfg_d_user, 1, 1, CFG_IN_TOP),
	CFG_FND("Group", cfg_d_group, 1, 1, CFG_IN_TOP, "(the primary group of User)"),
	CFG_FN("PidFile", cfg_d_pid_file, 1, 1, CFG_IN_TOP),
	CFG_FN("ProxyBlock", cfg_d_block, 1, -1, CFG_IN_TOP),
	CFG_FN("NoProxy", cfg_d_block, 1, -1, CFG_IN_TOP),
	CFG_FN("ProxyRemote", cfg_d_remote, 2, 3, CFG_IN_TOP),
	CFG_FN("ProxyRemoteMatch", cfg_d_remote, 2, 3, CFG_IN_TOP),
	CFG_FN("ProxyDomain", cfg_d_domain, 1, 1, CFG_IN_TOP),
	CFG_FND("ProxyRemoteFallback", cfg_d_fallback, 1, 1, CFG_IN_TOP, "none"),
	CFG_FND("PacProxy", cfg_d_pac_proxy, 1, -1, CFG_IN_TOP,
	       "(the address the browser fetched the PAC file from)"),
	CFG_FND("PacFallback", cfg_d_fallback, 1, 1, CFG_IN_TOP, "none"),
	CFG_FND("PacFile", cfg_d_pac_file, 1, 1, CFG_IN_TOP, "(generated from the policy)"),
	CFG_FND("CacheRoot", cfg_d_cache, 1, 1, CFG_IN_TOP, "(none: no cache)"),
	CFG_FND("CacheSize", cfg_d_cache, 1, 1, CFG_IN_TOP, "1G"),
	CFG_FN("CacheEnable", cfg_d_cache_enable, 2, 2, CFG_IN_TOP),
	CFG_FN("CacheDisable", cfg_d_cache, 1, 1, CFG_IN_TOP),
	CFG_FND("CacheMaxFileSize", cfg_d_cache, 1, 1, CFG_IN_TOP, "512M"),
	CFG_FND("CacheMinFileSize", cfg_d_cache, 1, 1, CFG_IN_TOP, "0"),
	CFG_FND("CacheIgnoreHeaders", cfg_d_cache, 1, -1, CFG_IN_TOP, "Set-Cookie"),
	CFG_FND("CacheIgnoreNoLastMod", cfg_d_cache, 1, 1, CFG_IN_TOP, "Off"),
	CFG_FND("CacheIgnoreQueryString", cfg_d_cache, 1, 1, CFG_IN_TOP, "Off"),
	CFG_FND("CacheStoreNoStore", cfg_d_cache, 1, 1, CFG_IN_TOP, "Off"),
	CFG_FND("CacheStorePrivate", cfg_d_cache, 1, 1, CFG_IN_TOP, "Off"),
	CFG_FND("CacheLastModifiedFactor", cfg_d_cache, 1, 1, CFG_IN_TOP, "0.1"),
	CFG_FND("CacheMaxExpire", cfg_d_cache, 1, 1, CFG_IN_TOP, "86400"),
	CFG_FND("CacheDefaultExpire", cfg_d_cache, 1, 1, CFG_IN_TOP, "3600"),
	CFG_FND("CacheStaleOnError", cfg_d_cache, 1, 1, CFG_IN_TOP, "On"),
	CFG_FND("CacheDebianArchive", cfg_d_cache, 1, 1, CFG_IN_TOP, "On"),
	/* issue 13: TLS (Apache's mod_ssl names) */
	CFG_FND("SSLCertificateFile", cfg_d_ssl_file, 1, 1, CFG_IN_TOP,
	        "(none: a Listen line with https needs one)"),
	CFG_FND("SSLCertificateKeyFile", cfg_d_ssl_file, 1, 1, CFG_IN_TOP,
	        "(the key is in SSLCertificateFile)"),
	CFG_FND("SSLCertificateChainFile", cfg_d_ssl_file, 1, 1, CFG_IN_TOP,
	        "(the chain is in SSLCertificateFile, after the certificate)"),
	CFG_FND("SSLProtocol", cfg_d_ssl_protocol, 1, -1, CFG_IN_TOP, "all"),
	CFG_FND("SSLCipherSuite", cfg_d_ssl_ciphers, 1, 2, CFG_IN_TOP,
	        "(Mozilla's intermediate profile)"),
	CFG_FND("SSLProxyCACertificateFile", cfg_d_ssl_file, 1, 1, CFG_IN_TOP,
	        "(the system's store)"),
	CFG_FND("SSLProxyCACertificatePath", cfg_d_ssl_file, 1, 1, CFG_IN_TOP, "/etc/ssl/certs"),
	CFG_FND("SSLProxyVerify", cfg_d_ssl_proxy_verify, 1, 1, CFG_IN_TOP, "require"),
	CFG_FND("SSLProxyMachineCertificateFile", cfg_d_ssl_file, 1, 1, CFG_IN_TOP,
	        "(none: no client certificate)"),
	CFG_FND("SSLProxyProtocol", cfg_d_ssl_protocol, 1, -1, CFG_IN_TOP, "all"),
	CFG_FND("SSLProxyCipherSuite", cfg_d_ssl_ciphers, 1, 2, CFG_IN_TOP,
	        "(Mozilla's intermediate profile)"),
	CFG_FND("FTPTLS", cfg_d_ftp_tls, 1, 1, CFG_IN_TOP, "Try"),
	CFG_FN("SSLEngine", cfg_d_ssl_engine, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("SSLProxyEngine", cfg_d_ssl_engine, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	/* issue 9, part 4: error pages */
	CFG_FND("ErrorDocument", cfg_d_error_document, 2, 2, CFG_IN_TOP, "(the built-in pages)"),
	CFG_FN("Include", cfg_d_include, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("IncludeOptional", cfg_d_include, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("Require", cfg_d_require, 1, -1, CFG_IN_SECTION),
	CFG_FN("Order", cfg_d_order, 1, 1, CFG_IN_SECTION),
	CFG_FN("Allow", cfg_d_allow, 2, -1, CFG_IN_SECTION),
	CFG_FN("Deny", cfg_d_allow, 2, -1, CFG_IN_SECTION),
	CFG_FN("Satisfy", cfg_d_satisfy, 1, 1, CFG_IN_SECTION),
	/* issue 14: proxy authentication (pauth.h), per <Proxy>/<ProxyMatch> section */
	CFG_FND("AuthType", cfg_d_pauth, 1, 1, CFG_IN_SECTION, "None"),
	CFG_FND("AuthName", cfg_d_pauth, 1, 1, CFG_IN_SECTION, PAUTH_REALM_DEFAULT),
	CFG_FND("AuthBasicProvider", cfg_d_pauth, 1, -1, CFG_IN_SECTION,
	        "(file with AuthUserFile, external with AuthExternal)"),
	CFG_FN("AuthUserFile", cfg_d_pauth, 1, 1, CFG_IN_SECTION),
	CFG_FN("AuthGroupFile", cfg_d_pauth, 1, 1, CFG_IN_SECTION),
	CFG_FN("AuthExternal", cfg_d_pauth, 1, 1, CFG_IN_SECTION),
	CFG_FND("AuthExternalChildren", cfg_d_pauth, 1, 2, CFG_IN_SECTION, "5"),
	CFG_FND("AuthExternalTimeout", cfg_d_pauth, 1, 1, CFG_IN_SECTION, "10"),
	CFG_FN("AuthNegotiateExternal", cfg_d_pauth, 1, 1, CFG_IN_SECTION),
	CFG_FND("AuthNegotiateChildren", cfg_d_pauth, 1, 1, CFG_IN_SECTION, "5"),
	CFG_FND("AuthCacheTTL", cfg_d_pauth, 1, 1, CFG_IN_SECTION, "300"),
	CFG_FND("AuthNegativeCacheTTL", cfg_d_pauth, 1, 1, CFG_IN_SECTION, "10"),
	CFG_FND("AuthFailureLimit", cfg_d_auth_fail_limit, 2, 2, CFG_IN_TOP, "10 6"),
	/* Apache compatibility (issue 9, part 3): ServerName; accepted, without their effect */
	CFG_FND("ServerName", cfg_d_server_name, 1, 1, CFG_IN_TOP,
	        "(the host name of this machine)"),
	CFG_FN("LoadModule", cfg_d_load_module, 2, 2, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("CacheDirLevels", cfg_d_no_effect, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("CacheDirLength", cfg_d_no_effect, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("CacheLock", cfg_d_no_effect, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("CacheLockPath", cfg_d_no_effect, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("CacheLockMaxAge", cfg_d_no_effect, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FN("CacheQuickHandler", cfg_d_no_effect, 1, 1, CFG_IN_TOP | CFG_NO_DEFAULT),
	/* issue 9, logs (mod_log_config): */
	CFG_FND("LogFormat", cfg_d_log_format, 1, 2, CFG_IN_TOP,
	        "(the nicknames common, combined and squid are predefined)"),
	CFG_FND("CustomLog", cfg_d_custom_log, 2, 3, CFG_IN_TOP, "(none)"),
	CFG_FND("TransferLog", cfg_d_custom_log, 1, 1, CFG_IN_TOP, "(none)"),
	/* issue 9, part 2: out of the box */
	CFG_FN("ListenReset", cfg_d_listen_reset, 0, 0, CFG_IN_TOP | CFG_NO_DEFAULT),
	CFG_FND("CacheReportInterval", cfg_d_cache, 1, 1, CFG_IN_TOP, "600"),
};

static const struct cfg_directive *
cfg_directive_find(const char *name)
{
	for (size_t i = 0; i < sizeof(cfg_directives) / sizeof(cfg_directives[0]); i++)
		if (strcasecmp(cfg_directives[i].name, name) == 0)
			return &cfg_directives[i];
	return NULL;
}

/* "1 argument", "1 or 2 arguments", "1 to 8 arguments", "at least 2 arguments". */
static void
cfg_arity_text(const struct cfg_directive *d, char *buf, size_t len)
{
	if (d->max == d->min)
		snprintf(buf, len, "%d argument%s", d->min, d->min == 1 ? "" : "s");
	else if (d->max < 0)
		snprintf(buf, len, "at least %d argument%s", d->min, d->min == 1 ? "" : "s");
	else if (d->max == d->min + 1)
		snprintf(buf, len, "%d or %d arguments", d->min, d->max);
	else
		snprintf(buf, len, "%d to %d arguments", d->min, d->max);
}

static int cfg_loc_directive(struct cfg_parse *ps, struct cfg_src *src, char **argv,
                             size_t argc);

static int
cfg_directive(struct cfg_parse *ps, struct cfg_src *src, char **argv, size_t argc)
{
	const struct cfg_directive *d = cfg_directive_find(argv[0]);
	size_t nargs = argc - 1;

	if (src->in_loc)
		return cfg_loc_directive(ps, src, argv, argc);
	if (!d) {
		const char *why = cfg_refused_why(argv[0]);

		if (why)
			return cfg_fail(ps, src, "%.200s: %s", argv[0], why);
		return cfg_fail(ps, src, "unknown directive \"%.200s\"", argv[0]);
	}
	if (src->sec && !(d->ctx & CFG_IN_SECTION))
		return cfg_fail(ps, src, "%s not allowed in <%s>", d->name, src->lim ? src->lim_name : src->sec_name);
	if (!src->sec && !(d->ctx & CFG_IN_TOP))
		return cfg_fail(ps, src, "%s: only allowed inside <Proxy> or <ProxyMatch>",
		                d->name);
	if (nargs < (size_t)d->min || (d->max >= 0 && nargs > (size_t)d->max)) {
		char want[64];

		cfg_arity_text(d, want, sizeof(want));
		return cfg_fail(ps, src, "%s: expected %s, got %zu", d->name, want, nargs);
	}
	if (ps->given)
		ps->given[d - cfg_directives] = 1;
	if (ps->dump)
		cfg_dump_directive(ps, src, d, argv, argc);
	return d->fn(ps, src, d, argv, argc);
}

/* ---- <Location> (issue 11): the status page ---- */

static int cfg_frame_push(struct cfg_parse *ps, struct cfg_src *src, enum cfg_frame_kind kind,
                          const char *name);

/* The htpasswd file of AuthUserFile, loaded with the config (a reload reads it again). */
static void
cfg_location_users_free(struct cfg_location *l)
{
	struct auth_htpasswd *h = l->users;

	auth_htpasswd_free(&h);
	l->users = NULL;
}

static int
cfg_location_users_load(struct cfg_parse *ps, struct cfg_src *src, struct cfg_location *l)
{
	struct auth_htpasswd *h = NULL;
	char err[1024];

	if (auth_htpasswd_load(l->auth_user_file, &h, err, sizeof(err)) != 0)
		return cfg_fail(ps, src, "AuthUserFile: %s", err);
	cfg_location_users_free(l); /* a second AuthUserFile replaces the first */
	l->users = h;
	return 0;
}


/* A complete <Location>: it serves the status page, and its authentication is whole. */
static int
cfg_location_check(struct cfg_parse *ps, struct cfg_src *src, struct cfg_location *l,
                   unsigned line)
{
	unsigned here = src->line;
	int rc = 0;

	src->line = line;
	if (!l->handler)
		rc = cfg_fail(ps, src, "<Location %s> without \"SetHandler gatehouse-status\": "
		              "Gatehouse serves nothing under <Location> but its status page", l->path);
	else if (pol_authz_uses_user(l->authz) && (l->auth_basic != 1 || !l->auth_user_file))
		rc = cfg_fail(ps, src, "<Location %s>: Require valid-user or user needs "
		              "\"AuthType Basic\" and AuthUserFile", l->path);
	else if (l->auth_basic == 1 && !l->auth_user_file)
		rc = cfg_fail(ps, src, "<Location %s>: AuthType Basic needs AuthUserFile", l->path);
	else if (l->auth_user_file && l->auth_basic != 1)
		rc = cfg_fail(ps, src, "<Location %s>: AuthUserFile needs \"AuthType Basic\"",
		              l->path);
	if (l->auth_basic < 0)
		l->auth_basic = 0;
	src->line = here;
	return rc;
}

static void
cfg_locations_free(struct cfg *c)
{
	for (size_t i = 0; i < c->nlocations; i++) {
		struct cfg_location *l = &c->locations[i];

		free(l->path);
		free(l->where);
		pol_authz_free(&l->authz);
		free(l->auth_name);
		free(l->auth_user_file);
		free(l->auth_user_where);
		cfg_location_users_free(l);
	}
	free(c->locations);
	c->locations = NULL;
	c->nlocations = 0;
}

/* -M: a line inside <Location> as read. */
static void
cfg_dump_loc_line(struct cfg_parse *ps, struct cfg_src *src, char **argv, size_t argc)
{
	if (!ps->dump)
		return;
	cfg_dump_indent(ps->dump, src);
	fprintf(ps->dump, "# %s:%u\n", src->name, src->line);
	cfg_dump_indent(ps->dump, src);
	for (size_t i = 0; i < argc; i++) {
		char *abs = NULL;

		if (i)
			fputc(' ', ps->dump);
		if (i == 1 && strcasecmp(argv[0], "AuthUserFile") == 0)
			abs = cfg_join(src->dir, argv[1]); /* means the same read from anywhere */
		cfg_dump_word(ps->dump, abs ? abs : argv[i]);
		free(abs);
	}
	fputc('\n', ps->dump);
}

/* A directive inside <Location>: SetHandler, Require, AuthType, AuthName, AuthUserFile,
 * AuthBasicProvider file. */
static int
cfg_loc_directive(struct cfg_parse *ps, struct cfg_src *src, char **argv, size_t argc)
{
	struct cfg_location *l = &ps->c->locations[src->loc_i];
	const char *n = argv[0], *why;
	char where[512];

	snprintf(where, sizeof(where), "%s:%u", src->name, src->line);
	cfg_dump_loc_line(ps, src, argv, argc);
	if (strcasecmp(n, "Require") == 0) {
		if (argc < 2)
			return cfg_fail(ps, src, "Require: expected at least 1 argument, got 0");
		if (pol_authz_require(l->authz, argv + 1, argc - 1, where, &why) != 0)
			return cfg_fail(ps, src, "Require: %s", why);
		return 0;
	}
	if (strcasecmp(n, "SetHandler") == 0) {
		if (argc != 2)
			return cfg_fail(ps, src, "SetHandler: expected 1 argument, got %zu", argc - 1);
		if (strcasecmp(argv[1], "gatehouse-status") != 0)
			return cfg_fail(ps, src, "SetHandler %.200s: the only handler is "
			                "gatehouse-status (the status page)", argv[1]);
		l->handler = 1; /* the section checks at its end that it was given */
		return 0;
	}
	if (strcasecmp(n, "AuthType") == 0) {
		if (argc != 2)
			return cfg_fail(ps, src, "AuthType: expected 1 argument, got %zu", argc - 1);
		if (strcasecmp(argv[1], "Basic") == 0)
			l->auth_basic = 1;
		else if (strcasecmp(argv[1], "None") == 0)
			l->auth_basic = 0;
		else
			return cfg_fail(ps, src, "AuthType %.200s: only Basic (or None) is supported",
			                argv[1]);
		return 0;
	}
	if (strcasecmp(n, "AuthName") == 0) {
		if (argc != 2)
			return cfg_fail(ps, src, "AuthName: expected 1 argument, got %zu", argc - 1);
		if (argv[1][0] == '\0' || strpbrk(argv[1], "\"\\\r\n") != NULL)
			return cfg_fail(ps, src, "AuthName: the realm must be non-empty, without "
			                "quotes or backslashes");
		free(l->auth_name);
		if ((l->auth_name = strdup(argv[1])) == NULL)
			return cfg_nomem(ps, src);
		return 0;
	}
	if (strcasecmp(n, "AuthBasicProvider") == 0) {
		for (size_t i = 1; i < argc; i++)
			if (strcasecmp(argv[i], "file") != 0)
				return cfg_fail(ps, src, "AuthBasicProvider %.200s: only \"file\" "
				                "(AuthUserFile) is supported", argv[i]);
		return 0;
	}
	if (strcasecmp(n, "AuthUserFile") == 0) {
		if (argc != 2)
			return cfg_fail(ps, src, "AuthUserFile: expected 1 argument, got %zu", argc - 1);
		free(l->auth_user_file);
		free(l->auth_user_where);
		l->auth_user_file = cfg_join(src->dir, argv[1]);
		l->auth_user_where = strdup(where);
		if (l->auth_user_file == NULL || l->auth_user_where == NULL)
			return cfg_nomem(ps, src);
		if (cfg_record(&ps->c->files, &ps->c->nfiles, l->auth_user_file) != 0)
			return cfg_nomem(ps, src);
		return cfg_location_users_load(ps, src, l);
	}
	if (cfg_directive_find(n) != NULL)
		return cfg_fail(ps, src, "%s not allowed in <Location>", n);
	return cfg_fail(ps, src, "%.200s: not supported in <Location> (SetHandler, Require, "
	                "AuthType, AuthName, AuthUserFile)", n);
}

/* <Location PATH>, or <RequireAll>/<RequireAny>/<RequireNone> inside one. */
static int
cfg_section_open_loc(struct cfg_parse *ps, struct cfg_src *src, char *line, const char *name)
{
	size_t nlen = strcspn(line + 1, " \t\r\v\f>"), len = strlen(line);
	const char *why;
	int argc;

	while (len > 0 && cfg_is_blank((unsigned char)line[len - 1]))
		len--;
	if (len < 2 || line[len - 1] != '>')
		return cfg_fail(ps, src, "<%s> directive missing closing '>'", name);
	line[len - 1] = '\0';
	argc = cfg_tokenize(line + 1 + nlen, src->argv, CFG_MAX_ARGS, &why);
	if (argc < 0)
		return cfg_fail(ps, src, "<%s>: %s", name, why);
	if (strncasecmp(name, "Require", 7) == 0) {
		const char *canon = strcasecmp(name, "RequireAll") == 0   ? "RequireAll"
		                    : strcasecmp(name, "RequireAny") == 0 ? "RequireAny"
		                    : strcasecmp(name, "RequireNone") == 0 ? "RequireNone" : NULL;

		if (canon == NULL)
			return cfg_fail(ps, src, "unknown section \"<%s>\"", name);
		if (!src->in_loc && !src->sec)
			return cfg_fail(ps, src, "<%s> is only allowed inside <Proxy>, "
			                "<ProxyMatch>, <Limit>, <LimitExcept> or <Location>", canon);
		if (argc != 0)
			return cfg_fail(ps, src, "<%s> takes no arguments", canon);
		if (src->in_loc) {
			if (pol_authz_open(ps->c->locations[src->loc_i].authz, canon, &why) != 0)
				return cfg_fail(ps, src, "<%s>: %s", canon, why);
		} else if (pol_acl_container_open(cfg_rules_sec(src), canon, &why) != 0) {
			return cfg_fail(ps, src, "<%s>: %s", canon, why);
		}
		if (ps->dump) {
			cfg_dump_indent(ps->dump, src);
			fprintf(ps->dump, "<%s>\n", canon);
		}
		return cfg_frame_push(ps, src, CFG_FR_AUTHZ, canon);
	}
	if (src->in_loc)
		return cfg_fail(ps, src, "<%s> not allowed in <Location>", name);
	if (src->sec)
		return cfg_fail(ps, src, "<Location> not allowed in <%s>", src->sec_name);
	if (argc != 1)
		return cfg_fail(ps, src, "<Location>: expected 1 argument, got %d", argc);
	if (src->argv[0][0] != '/' || strpbrk(src->argv[0], "?#*[ ") != NULL || src->argv[0][1] == '\0')
		return cfg_fail(ps, src, "<Location %.200s>: expected a path such as /gatehouse/ "
		                "(starting with '/', not \"/\" alone, no wildcards)", src->argv[0]);
	struct cfg *c = ps->c;
	struct cfg_location *v = realloc(c->locations, (c->nlocations + 1) * sizeof(*v));
	char where[512];

	if (v == NULL)
		return cfg_nomem(ps, src);
	c->locations = v;
	struct cfg_location *l = &v[c->nlocations];
	memset(l, 0, sizeof(*l));
	c->nlocations++;
	snprintf(where, sizeof(where), "%s:%u", src->name, src->line);
	l->path = strdup(src->argv[0]);
	l->where = strdup(where);
	if (l->path == NULL || l->where == NULL || pol_authz_new(&l->authz) != 0)
		return cfg_nomem(ps, src);
	src->in_loc = 1;
	src->loc_i = c->nlocations - 1;
	l->auth_basic = -1; /* not given yet: checked at the end */
	if (ps->dump) {
		cfg_dump_indent(ps->dump, src);
		fprintf(ps->dump, "# %s:%u\n", src->name, src->line);
		cfg_dump_indent(ps->dump, src);
		fprintf(ps->dump, "<Location %s>\n", l->path);
	}
	return cfg_frame_push(ps, src, CFG_FR_LOCATION, "Location");
}

/* </Location> or </RequireAll> ...: the checks of a complete section. */
static int
cfg_section_close_loc(struct cfg_parse *ps, struct cfg_src *src, const struct cfg_frame *top)
{
	struct cfg_location *l = &ps->c->locations[src->loc_i];
	const char *why;

	if (top->kind == CFG_FR_AUTHZ) {
		if (pol_authz_close(l->authz, &why) != 0)
			return cfg_fail(ps, src, "</%s>: %s", top->name, why);
		return 0;
	}
	src->in_loc = 0;
	if (pol_authz_finish(l->authz, &why) != 0)
		return cfg_fail(ps, src, "</Location>: %s", why);
	return cfg_location_check(ps, src, l, top->line);
}

/* "<Proxy ...>" / "<ProxyMatch ...>"; line is the whole logical line from '<'. */
static int
cfg_section_open_acl(struct cfg_parse *ps, struct cfg_src *src, char *line)
{
	char name[64], where[512];
	size_t nlen, len = strlen(line);
	char *rest;
	const char *why, *canon, *pattern;
	enum pol_section_kind kind;
	int argc, tilde = 0;

	while (len > 0 && cfg_is_blank((unsigned char)line[len - 1]))
		len--;
	nlen = strcspn(line + 1, " \t\r\v\f>");
	snprintf(name, sizeof(name), "%.*s", (int)(nlen < 40 ? nlen : 40), line + 1);
	if (len < 2 || line[len - 1] != '>')
		return cfg_fail(ps, src, "<%s> directive missing closing '>'", name);
	line[len - 1] = '\0';
	if (strcasecmp(name, "Limit") == 0 || strcasecmp(name, "LimitExcept") == 0) {
		int except = strcasecmp(name, "LimitExcept") == 0;

		canon = except ? "LimitExcept" : "Limit";
		if (!src->sec)
			return cfg_fail(ps, src, "<%s> is only allowed inside <Proxy> or <ProxyMatch>",
			                canon);
		if (src->lim)
			return cfg_fail(ps, src, "<%s> not allowed in <%s>", canon, src->lim_name);
		if (src->nframes > 0 && src->frames[src->nframes - 1].kind == CFG_FR_AUTHZ)
			return cfg_fail(ps, src, "<%s> not allowed in <%s>", canon,
			                src->frames[src->nframes - 1].name);
		argc = cfg_tokenize(line + 1 + nlen, src->argv, CFG_MAX_ARGS, &why);
		if (argc < 0)
			return cfg_fail(ps, src, "<%s>: %s", canon, why);
		snprintf(where, sizeof(where), "<%s %s%s> at %s:%u", canon, argc > 0 ? src->argv[0] : "",
		         argc > 1 ? " ..." : "", src->name, src->line);
		src->lim = pol_acl_limit_add(src->sec, except, src->argv, (size_t)argc, where, &why);
		if (!src->lim)
			return cfg_fail(ps, src, "<%s>: %s", canon, why);
		src->lim_name = canon;
		src->lim_line = src->line;
		return 0;
	}
	if (strcasecmp(name, "Proxy") == 0) {
		canon = "Proxy";
		kind = POL_SEC_PREFIX;
	} else if (strcasecmp(name, "ProxyMatch") == 0) {
		canon = "ProxyMatch";
		kind = POL_SEC_REGEX;
	} else {
		const char *refused = cfg_refused_why(name);

		if (refused)
			return cfg_fail(ps, src, "unknown section \"<%s>\": %s", name, refused);
		return cfg_fail(ps, src, "unknown section \"<%s>\"", name);
	}
	if (src->sec)
		return cfg_fail(ps, src, "<%s> not allowed in <%s>", canon, src->sec_name);
	rest = line + 1 + nlen;
	argc = cfg_tokenize(rest, src->argv, CFG_MAX_ARGS, &why);
	if (argc < 0)
		return cfg_fail(ps, src, "<%s>: %s", canon, why);
	if (kind == POL_SEC_PREFIX && argc == 2 && strcmp(src->argv[0], "~") == 0) {
		/* Apache: <Proxy ~ REGEX> is <ProxyMatch REGEX>. */
		tilde = 1;
		kind = POL_SEC_REGEX;
	} else if (argc != 1) {
		return cfg_fail(ps, src, "<%s>: expected 1 argument, got %d", canon, argc);
	}
	pattern = src->argv[tilde];
	snprintf(where, sizeof(where), "<%s %s%.200s> at %s:%u", canon, tilde ? "~ " : "", pattern,
	         src->name, src->line);
	src->sec = pol_acl_section_add(ps->c->acl, kind, pattern, where, &why);
	if (!src->sec)
		return cfg_fail(ps, src, "<%s>: %s", canon, why);
	ps->c->nproxy_sections++;
	src->sec_name = canon;
	src->sec_line = src->line;
	return 0;
}

/* ---- sections: nesting, <IfModule>, <IfDefine> (issue 9, part 3) ---- */

static int
cfg_frame_push(struct cfg_parse *ps, struct cfg_src *src, enum cfg_frame_kind kind,
               const char *name)
{
	struct cfg_frame *f;

	if (src->nframes == CFG_MAX_NEST)
		return cfg_fail(ps, src, "sections nested more than %d deep", CFG_MAX_NEST);
	f = &src->frames[src->nframes++];
	f->kind = kind;
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->line = src->line;
	return 0;
}

/* <IfModule [!]module> or <IfDefine [!]NAME>: is it true? -1 after an error. */
static int
cfg_cond_eval(struct cfg_parse *ps, struct cfg_src *src, const char *canon, char *args)
{
	const char *why, *w;
	int argc = cfg_tokenize(args, src->argv, CFG_MAX_ARGS, &why), neg, v;

	if (argc < 0)
		return cfg_fail(ps, src, "<%s>: %s", canon, why);
	if (argc != 1)
		return cfg_fail(ps, src, "<%s>: expected 1 argument, got %d", canon, argc);
	w = src->argv[0];
	neg = w[0] == '!';
	w += neg;
	if (!*w)
		return cfg_fail(ps, src, "<%s>: expected a %s after '!'", canon,
		                canon[2] == 'M' ? "module" : "name");
	v = canon[2] == 'M' ? cfg_module_present(w) : cfg_defined(w);
	return neg ? !v : v;
}

/* Any "<...>" line: a conditional section, a section inside a skipped one, or the ACL
 * sections (cfg_section_open_acl), each recorded as a frame. */
static int
cfg_section_open(struct cfg_parse *ps, struct cfg_src *src, char *line)
{
	char name[48];
	size_t nlen = strcspn(line + 1, " \t\r\v\f>"), len = strlen(line);
	char *copy = NULL;
	int v, rc;

	snprintf(name, sizeof(name), "%.*s", (int)(nlen < 40 ? nlen : 40), line + 1);
	if (src->skipping) /* Apache reads nothing inside a false section but the nesting */
		return cfg_frame_push(ps, src, CFG_FR_SKIPPED, name);
	if (strcasecmp(name, "IfModule") == 0 || strcasecmp(name, "IfDefine") == 0) {
		const char *canon = strcasecmp(name, "IfModule") == 0 ? "IfModule" : "IfDefine";

		while (len > 0 && cfg_is_blank((unsigned char)line[len - 1]))
			len--;
		if (len < 2 || line[len - 1] != '>')
			return cfg_fail(ps, src, "<%s> directive missing closing '>'", canon);
		line[len - 1] = '\0';
		v = cfg_cond_eval(ps, src, canon, line + 1 + nlen);
		if (v < 0 || cfg_frame_push(ps, src, CFG_FR_COND, canon) != 0)
			return -1;
		if (!v)
			src->skipping = src->nframes;
		return 0;
	}
	if (strcasecmp(name, "Location") == 0 || strncasecmp(name, "Require", 7) == 0 ||
	    src->in_loc)
		return cfg_section_open_loc(ps, src, line, name);
	if (ps->dump && (copy = strdup(line)) == NULL)
		return cfg_nomem(ps, src);
	rc = cfg_section_open_acl(ps, src, line);
	if (rc == 0) {
		int lim = strncasecmp(name, "Limit", 5) == 0; /* Limit or LimitExcept */
		const char *canon = lim ? src->lim_name : src->sec_name;

		if (ps->dump) {
			size_t n = strlen(copy);

			while (n > 0 && cfg_is_blank((unsigned char)copy[n - 1]))
				copy[--n] = '\0';
			cfg_dump_indent(ps->dump, src);
			fprintf(ps->dump, "# %s:%u\n", src->name, src->line);
			cfg_dump_indent(ps->dump, src);
			fprintf(ps->dump, "%s\n", copy);
		}
		rc = cfg_frame_push(ps, src, lim ? CFG_FR_LIMIT : CFG_FR_PROXY, canon);
	}
	free(copy);
	return rc;
}

/* "</...>"; line is the whole logical line from '<'. It must close the innermost section. */
static int
cfg_section_close(struct cfg_parse *ps, struct cfg_src *src, char *line)
{
	char name[64];
	size_t nlen = strcspn(line + 2, " \t\r\v\f>");
	const char *p = line + 2 + nlen;
	struct cfg_frame *top;

	snprintf(name, sizeof(name), "%.*s", (int)(nlen < 40 ? nlen : 40), line + 2);
	while (cfg_is_blank((unsigned char)*p))
		p++;
	if (*p != '>' && !src->skipping)
		return cfg_fail(ps, src, "</%s> directive missing closing '>'", name);
	if (*p == '>') /* inside a false section the rest is not checked, as Apache */
		p++;
	while (cfg_is_blank((unsigned char)*p))
		p++;
	if (*p && !src->skipping)
		return cfg_fail(ps, src, "text after </%s>", name);
	if (src->nframes == 0)
		return cfg_fail(ps, src, "</%s> without matching <%s> section", name, name);
	top = &src->frames[src->nframes - 1];
	if (strcasecmp(name, top->name) != 0)
		return cfg_fail(ps, src, "expected </%s> but saw </%s>", top->name, name);
	if (top->kind == CFG_FR_AUTHZ && !src->in_loc) {
		const char *why;

		if (pol_acl_container_close(cfg_rules_sec(src), &why) != 0)
			return cfg_fail(ps, src, "</%s>: %s", top->name, why);
	} else if ((top->kind == CFG_FR_LOCATION || top->kind == CFG_FR_AUTHZ) &&
	           cfg_section_close_loc(ps, src, top) != 0) {
		return -1;
	}
	if (top->kind == CFG_FR_LIMIT) {
		src->lim = NULL;
		src->lim_name = NULL;
	} else if (top->kind == CFG_FR_PROXY) {
		if (src->auth && cfg_pauth_finish(ps, src) != 0)
			return -1;
		src->sec = NULL;
		src->sec_name = NULL;
	}
	if (ps->dump && (top->kind == CFG_FR_LIMIT || top->kind == CFG_FR_PROXY ||
	                 top->kind == CFG_FR_LOCATION || top->kind == CFG_FR_AUTHZ)) {
		src->nframes--;
		cfg_dump_indent(ps->dump, src);
		fprintf(ps->dump, "</%s>\n", top->name);
		src->nframes++;
	}
	if (src->skipping == src->nframes)
		src->skipping = 0;
	src->nframes--;
	return 0;
}

/* Handle one logical line (NUL-terminated in src->buf). */
static int
cfg_line(struct cfg_parse *ps, struct cfg_src *src)
{
	char *p = src->buf;
	const char *why;
	int argc;

	while (cfg_is_blank((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	if (p[0] == '<' && p[1] == '/')
		return cfg_section_close(ps, src, p);
	if (p[0] == '<')
		return cfg_section_open(ps, src, p);
	if (src->skipping)
		return 0;
	argc = cfg_tokenize(p, src->argv, CFG_MAX_ARGS, &why);
	if (argc < 0)
		return cfg_fail(ps, src, "%s", why);
	if (argc == 0)
		return 0;
	return cfg_directive(ps, src, src->argv, (size_t)argc);
}

/* Parse text[0..len) as the file src. */
static int
cfg_parse_text(struct cfg_parse *ps, struct cfg_src *src, const char *text, size_t len)
{
	size_t pos = 0;
	unsigned line = 1;

	/* A UTF-8 byte order mark is skipped, as Apache does. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		size_t n = 0;
		int too_long = 0;

		src->line = line;
		/* Gather one logical line: physical lines joined by a trailing backslash. Each turn
		 * consumes at least one byte of text, so the loop ends. */
		for (;;) {
			const char *nl = memchr(text + pos, '\n', len - pos);
			size_t eol = nl ? (size_t)(nl - text) : len, end = eol;
			int cont;

			if (end > pos && text[end - 1] == '\r')
				end--;
			cont = end > pos && text[end - 1] == '\\';
			if (cont)
				end--;
			if (!too_long && n + (end - pos) <= CFG_LINE_MAX) {
				memcpy(src->buf + n, text + pos, end - pos);
				n += end - pos;
			} else {
				too_long = 1;
			}
			pos = nl ? eol + 1 : len;
			if (!cont || pos >= len)
				break;
			line++;
		}
		src->buf[n] = '\0';
		if (too_long)
			return cfg_fail(ps, src, "line too long (more than %d bytes)",
			                CFG_LINE_MAX);
		if (cfg_line(ps, src) != 0)
			return -1;
		line++;
	}
	if (src->nframes > 0) {
		const struct cfg_frame *f = &src->frames[src->nframes - 1];

		src->line = f->line;
		return cfg_fail(ps, src, "<%s> section not closed", f->name);
	}
	return 0;
}

/* Read a regular file of at most CFG_FILE_MAX bytes. Returns 0, or -1 with *why. */
static int
cfg_read_file(const char *path, char **out, size_t *outlen, const char **why)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		*why = strerror(errno);
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		*why = "is a directory (use a wildcard such as dir/*.conf)";
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		goto fail;
	}
	if (st.st_size > CFG_FILE_MAX) {
		*why = "file too large";
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		*why = "out of memory";
		goto fail;
	}
	/* Read what fstat announced; a file growing meanwhile is cut there. */
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*why = strerror(errno);
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (memchr(buf, '\0', len)) {
		*why = "contains a NUL byte";
		goto fail;
	}
	buf[len] = '\0';
	close(fd);
	*out = buf;
	*outlen = len;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

static struct cfg_src *
cfg_src_new(const char *name, const char *path_for_dir, int depth)
{
	struct cfg_src *src = malloc(sizeof(*src));

	if (!src)
		return NULL;
	memset(src, 0, offsetof(struct cfg_src, buf));
	src->name = name;
	src->depth = depth;
	src->dir = cfg_dir_of(path_for_dir);
	if (!src->dir) {
		free(src);
		return NULL;
	}
	return src;
}

static void
cfg_src_free(struct cfg_src *src)
{
	if (!src)
		return;
	free(src->dir);
	free(src);
}

/* Parse the file at path; from is the including file (NULL for the top file), whose current
 * line takes errors about reading path. */
static int
cfg_parse_file(struct cfg_parse *ps, struct cfg_src *from, const char *path, int depth)
{
	struct cfg_src *src = NULL;
	char *text = NULL;
	size_t len = 0;
	const char *why;
	int rc = -1;

	if (++ps->nfiles > CFG_MAX_FILES)
		return cfg_fail(ps, from, "Include: more than %d files", CFG_MAX_FILES);
	if (cfg_read_file(path, &text, &len, &why) != 0) {
		if (from)
			return cfg_fail(ps, from, "Include: cannot read \"%.300s\": %s", path, why);
		snprintf(ps->err, ps->errlen, "%s: cannot read: %s", path, why);
		return -1;
	}
	if (cfg_record(&ps->c->files, &ps->c->nfiles, path) != 0) {
		cfg_nomem(ps, from);
		goto out;
	}
	src = cfg_src_new(path, path, depth);
	if (!src) {
		cfg_nomem(ps, from);
		goto out;
	}
	rc = cfg_parse_text(ps, src, text, len);
out:
	cfg_src_free(src);
	free(text);
	return rc;
}

/* ---- snapshots ---- */

static struct cfg *
cfg_new_defaults(const char *name)
{
	static char *const connect_ports[] = { "443", "563" };
	struct cfg *c = calloc(1, sizeof(*c));
	const char *why;

	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	c->proxy_requests = 1;
	c->via = CFG_VIA_OFF;
	c->proxy_timeout_ms = 60 * 1000;
	c->ftp_anon_password = strdup("gatehouse@");
	if (c->ftp_anon_password == NULL) {
		free(c);
		return NULL;
	}
	c->ftp_default_expire_s = 3600;
	c->ftp_listing_expire_s = 300;
	c->ftp_max_listing = 16u << 20;
	c->ftp_tls = CFG_FTPTLS_TRY;
	c->ssl_proxy_verify = 1;
	c->max_forwards = -1;
	c->bad_header = CFG_BADHDR_ISERROR;
	c->chain_auth = 0;
	res_conf_default(&c->dns);
	c->workers = 0;
	c->auth_fail_burst = AUTH_LIMIT_BURST;
	c->auth_fail_refill_s = AUTH_LIMIT_REFILL;
	c->access_log_format = CFG_LOG_SQUID;
	c->log_level = CFG_LL_WARN;
	c->timeout_ms = 60 * 1000;
	c->keepalive_timeout_ms = 5 * 1000;
	c->max_keepalive_requests = 100;
	c->limit_request_line = 8190;
	c->limit_request_field_size = 8190;
	c->limit_request_fields = 100;
	c->graceful_timeout_ms = 10 * 1000;
	c->upstream_idle_ms = 30 * 1000;
	c->max_connections = 0; /* main_size_connections: from the file limit */
	c->max_conns_per_client = 256;
	c->send_buffer_size = CFG_SNDBUF_NEAR;
	c->path = strdup(name);
	if (!c->path || pol_ports_new(&c->allow_connect, connect_ports, 2, &why) != 0 ||
	    pol_acl_new(&c->acl) != 0 || pol_new(&c->pol) != 0 ||
	    (c->cache = cachecfg_new()) == NULL) {
		cfg_unref(&c);
		return NULL;
	}
	return c;
}

/* After the last directive: defaults that depend on what was (not) given. */
static void
cfg_finish(struct cfg *c)
{
	if (c->nlisten == 0) {
		int rc = cfg_listen_parse("127.0.0.1:3128", &c->listen[0]);

		(void)rc;
		c->nlisten = 1;
	}
}

/* ---- command-line listeners (-l, -p): kept for every load of the process ---- */

static struct {
	struct cfg_listen listen[CFG_MAX_LISTEN];
	size_t n;
	unsigned port;
} cfg_ov;

/* Give l another port, its text included. */
static void
cfg_listen_set_port(struct cfg_listen *l, unsigned port)
{
	char a[INET6_ADDRSTRLEN];

	if (l->addr.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&l->addr;

		s6->sin6_port = htons((uint16_t)port);
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(l->text, sizeof(l->text), "[%s]:%u", a, port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&l->addr;

		s4->sin_port = htons((uint16_t)port);
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(l->text, sizeof(l->text), "%s:%u", a, port);
	}
}

int
cfg_listen_override(const char *const *addrs, size_t n, unsigned port, char *err,
                    size_t errlen)
{
	struct cfg_listen v[CFG_MAX_LISTEN];

	if (n > CFG_MAX_LISTEN) {
		snprintf(err, errlen, "-l: more than %d addresses", CFG_MAX_LISTEN);
		return -1;
	}
	if (port > 65535) {
		snprintf(err, errlen, "-p %u: expected a port from 1 to 65535", port);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = cfg_listen_parse(addrs[i], &v[i]);

		if (rc == -2) {
			snprintf(err, errlen, "-l %.200s: bad port", addrs[i]);
			return -1;
		}
		if (rc != 0) {
			snprintf(err, errlen, "-l %.200s: expected PORT, ADDR:PORT or [ADDR]:PORT with "
			         "a numeric address", addrs[i]);
			return -1;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(v[j].text, v[i].text) == 0) {
				snprintf(err, errlen, "-l %s given twice", v[i].text);
				return -1;
			}
			if (cfg_listen_overlaps(&v[j], &v[i])) {
				snprintf(err, errlen, "-l %s overlaps %s", v[i].text, v[j].text);
				return -1;
			}
		}
	}
	memcpy(cfg_ov.listen, v, n * sizeof(v[0]));
	cfg_ov.n = n;
	cfg_ov.port = port;
	return 0;
}

/* After the file: the command line's listeners replace the Listen lines (-l), or their port
 * (-p; addresses that become equal are kept once). -p is the proxy's port: beside plain
 * listeners the https ones keep theirs (moving both to one port would drop one of them, and
 * a PAC offers each on its own port); with https listeners only, -p moves them. */
static int
cfg_listen_apply(struct cfg *c, char *errbuf, size_t errlen)
{
	size_t k = 0;
	int plain = 0;

	if (cfg_ov.n == 0 && cfg_ov.port == 0)
		return 0;
	c->listen_from_cmdline = 1;
	if (cfg_ov.n > 0) {
		memcpy(c->listen, cfg_ov.listen, cfg_ov.n * sizeof(c->listen[0]));
		c->nlisten = cfg_ov.n;
	}
	if (cfg_ov.port == 0)
		return 0;
	for (size_t i = 0; i < c->nlisten; i++)
		plain |= !c->listen[i].https;
	for (size_t i = 0; i < c->nlisten; i++) {
		struct cfg_listen l = c->listen[i];
		int dup = 0;

		if (!(plain && l.https))
			cfg_listen_set_port(&l, cfg_ov.port);
		for (size_t j = 0; j < k && !dup; j++) {
			int same = strcmp(c->listen[j].text, l.text) == 0;

			dup = same && c->listen[j].https == l.https;
			if (!dup && (same || cfg_listen_overlaps(&c->listen[j], &l))) {
				int tls = l.https || c->listen[j].https;

				snprintf(errbuf, errlen, "%s: -p %u: %s%s overlaps %s%s%s", c->path,
				         cfg_ov.port, l.text, l.https ? " https" : "",
				         c->listen[j].text, c->listen[j].https ? " https" : "",
				         tls ? " (beside a plain listener an https one keeps its "
				               "port: choose another)" : "");
				return -1;
			}
		}
		if (!dup)
			c->listen[k++] = l;
	}
	c->nlisten = k;
	return 0;
}

/* ---- the built-in configuration, per user ---- */

/* dir (without trailing slashes) + suffix, double-quoted for the config syntax, into out.
 * Returns 0, or -1 when it does not fit or holds a line break. */
static int
cfg_quote_path(char *out, size_t len, const char *dir, const char *suffix)
{
	char raw[4096];
	size_t n = 0, dl = strlen(dir);

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	if (snprintf(raw, sizeof(raw), "%.*s%s", (int)dl, dir, suffix) >= (int)sizeof(raw))
		return -1;
	if (strpbrk(raw, "\r\n"))
		return -1;
	if (len < 3)
		return -1;
	out[n++] = '"';
	for (const char *p = raw; *p; p++) {
		if (n + 4 > len)
			return -1;
		if (*p == '"' || *p == '\\')
			out[n++] = '\\';
		out[n++] = *p;
	}
	out[n++] = '"';
	out[n] = '\0';
	return 0;
}

static char *
cfg_append(const char *a, const char *b)
{
	char *s = NULL;

	if (asprintf(&s, "%s%s", a, b) < 0)
		return NULL;
	return s;
}

char *
cfg_builtin_text(uid_t euid, const char *home, const char *xdg_cache, const char *xdg_state,
                 char *err, size_t errlen)
{
	char cache[4200], state[4200];
	char *text = NULL;
	int ok;

	if (euid == 0) {
		uid_t u;
		gid_t g;
		const char *why;

		/* The package's account, when it exists, owns the package's /var/cache/gatehouse
		 * and /var/log/gatehouse: the built-in configuration then runs as it too. */
		if (svc_user_lookup(CFG_PACKAGE_USER, &u, &g, &why) == 0)
			text = cfg_append(cfg_default_text, "\n# The package's account exists: run as "
			                  "it, in the directories it owns.\nUser " CFG_PACKAGE_USER "\n");
		else
			text = strdup(cfg_default_text);
		if (!text)
			snprintf(err, errlen, "%s: out of memory", CFG_BUILTIN_NAME);
		return text;
	}
	/* XDG base directories: only absolute values count. */
	if (xdg_cache && xdg_cache[0] == '/')
		ok = cfg_quote_path(cache, sizeof(cache), xdg_cache, "/gatehouse") == 0;
	else
		ok = home && home[0] == '/' &&
		     cfg_quote_path(cache, sizeof(cache), home, "/.cache/gatehouse") == 0;
	if (ok && xdg_state && xdg_state[0] == '/')
		ok = cfg_quote_path(state, sizeof(state), xdg_state, "/gatehouse/access.log") == 0;
	else if (ok)
		ok = home && home[0] == '/' &&
		     cfg_quote_path(state, sizeof(state), home,
		                    "/.local/state/gatehouse/access.log") == 0;
	if (!ok) {
		snprintf(err, errlen, "%s: no usable cache directory for uid %lu: set HOME (or "
		         "XDG_CACHE_HOME and XDG_STATE_HOME) to an absolute path, or give a "
		         "configuration file with -f", CFG_BUILTIN_NAME, (unsigned long)euid);
		return NULL;
	}
	if (asprintf(&text, "%s\n# Started by uid %lu, not root: the cache and the access log "
	             "go to this user's own\n# directories instead of the ones above.\n"
	             "CacheRoot %s\nAccessLog %s\n", cfg_default_text, (unsigned long)euid,
	             cache, state) < 0) {
		snprintf(err, errlen, "%s: out of memory", CFG_BUILTIN_NAME);
		return NULL;
	}
	return text;
}

/* The built-in text for the user running this process (HOME, else the password entry).
 * The user is the one of the process's first load: a root start has dropped to User by the
 * time a reload loads the text again, and must get root's text again, not User's. */
static char *
cfg_builtin_for_me(char *errbuf, size_t errlen)
{
	static int have_euid;
	static uid_t start_euid;
	const char *home = getenv("HOME");

	if (!have_euid) {
		start_euid = geteuid();
		have_euid = 1;
	}

	if (!home || home[0] != '/') {
		struct passwd *pw = getpwuid(start_euid);

		home = pw ? pw->pw_dir : NULL;
	}
	return cfg_builtin_text(start_euid, home, getenv("XDG_CACHE_HOME"),
	                        getenv("XDG_STATE_HOME"), errbuf, errlen);
}

/* ---- loops: a parent that is this proxy (issue 10) ---- */

/* Is a (port 0) one of this machine's addresses: loopback, or an interface's? */
static int
cfg_addr_is_local(const struct sockaddr_storage *a)
{
	struct ifaddrs *ifs = NULL;
	int local = 0;

	if (a->ss_family == AF_INET &&
	    (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127)
		return 1;
	if (a->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr))
		return 1;
	if (getifaddrs(&ifs) != 0)
		return 0;
	for (struct ifaddrs *i = ifs; i && !local; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != a->ss_family)
			continue;
		if (a->ss_family == AF_INET)
			local = ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr ==
			        ((const struct sockaddr_in *)a)->sin_addr.s_addr;
		else
			local = memcmp(&((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
			               &((const struct sockaddr_in6 *)a)->sin6_addr, 16) == 0;
	}
	freeifaddrs(ifs);
	return local;
}

/* Does listener l accept connections to address a (its family's literal) on port? A wildcard
 * listener takes every local address (an IPv6 one also IPv4's, unless the kernel's v6only is
 * set: the safe guess for a loop check is yes). */
static int
cfg_listen_takes(const struct cfg_listen *l, const struct sockaddr_storage *a, unsigned port)
{
	if (l->addr.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&l->addr;

		if (ntohs(s->sin_port) != port || a->ss_family != AF_INET)
			return 0;
		if (s->sin_addr.s_addr == htonl(INADDR_ANY))
			return cfg_addr_is_local(a);
		return s->sin_addr.s_addr == ((const struct sockaddr_in *)a)->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&l->addr;

	if (ntohs(s->sin6_port) != port)
		return 0;
	if (IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr))
		return cfg_addr_is_local(a);
	return a->ss_family == AF_INET6 &&
	       memcmp(&s->sin6_addr, &((const struct sockaddr_in6 *)a)->sin6_addr, 16) == 0;
}

int
cfg_listens_on(const struct cfg *c, const struct sockaddr_storage *a)
{
	unsigned port;
	struct sockaddr_storage v4;

	if (a->ss_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)a)->sin_port);
	else if (a->ss_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	else
		return 0;
	if (a->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)a)->sin6_addr)) {
		/* ::ffff:127.0.0.1 reaches an IPv4 listener */
		struct sockaddr_in *s4 = (struct sockaddr_in *)&v4;

		memset(&v4, 0, sizeof(v4));
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr + 12, 4);
		a = &v4;
	}
	for (size_t i = 0; i < c->nlisten; i++)
		if (cfg_listen_takes(&c->listen[i], a, port))
			return 1;
	return 0;
}

/* A ProxyRemote whose parent is one of our own listeners sends every request it takes back
 * to us: refuse it. Literals and "localhost" are judged here; a name that resolves to us is
 * caught at run time by the CDN-Loop field (proxy.c conn_hop_seen), answered 508. */
static int
cfg_parents_check(struct cfg *c, char *errbuf, size_t errlen)
{
	for (size_t i = 0; i < pol_parent_count(c->pol); i++) {
		const struct pol_parent *pp = pol_parent_get(c->pol, i);
		struct sockaddr_storage a[2];
		size_t na = 0;

		memset(a, 0, sizeof(a));
		if (strcasecmp(pp->host, "localhost") == 0 || strcasecmp(pp->host, "localhost.") == 0) {
			a[0].ss_family = AF_INET;
			((struct sockaddr_in *)&a[0])->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			a[1].ss_family = AF_INET6;
			((struct sockaddr_in6 *)&a[1])->sin6_addr = in6addr_loopback;
			na = 2;
		} else if (inet_pton(AF_INET, pp->host, &((struct sockaddr_in *)&a[0])->sin_addr) == 1) {
			a[0].ss_family = AF_INET;
			na = 1;
		} else if (inet_pton(AF_INET6, pp->host, &((struct sockaddr_in6 *)&a[0])->sin6_addr) ==
		           1) {
			a[0].ss_family = AF_INET6;
			na = 1;
		}
		for (size_t k = 0; k < na; k++) {
			for (size_t j = 0; j < c->nlisten; j++) {
				if (!cfg_listen_takes(&c->listen[j], &a[k], pp->port))
					continue;
				snprintf(errbuf, errlen, "%s: parent proxy %s is this proxy's own listener "
				         "%s: every request sent there would come back (a forwarding loop)",
				         pp->where ? pp->where : c->path, pp->key, c->listen[j].text);
				return -1;
			}
		}
	}
	return 0;
}

/* After the whole file: AuthExternalChildren and AuthNegotiateChildren count processes in
 * all, shared out among the workers (at least one each; Workers may come after the section). */
static void
cfg_pauth_workers(struct cfg *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nw = c->workers ? c->workers : ncpu > 0 ? (unsigned)ncpu : 1;

	for (size_t i = 0; i < c->nauths; i++) {
		struct pauth_cfg *pc = c->auths[i];

		pc->external.children = (pc->external_children + nw - 1) / nw;
		if (pc->external.children == 0)
			pc->external.children = 1;
		pc->negotiate_helper.children = (pc->negotiate_children + nw - 1) / nw;
		if (pc->negotiate_helper.children == 0)
			pc->negotiate_helper.children = 1;
		/* Waiting requests per pool: enough for a burst of browsers, bounded. */
		pc->external.queue_max = 64 * pc->external.children *
		                         (pc->external.concurrency ? pc->external.concurrency : 1);
		pc->negotiate_helper.queue_max = 64 * pc->negotiate_helper.children;
	}
}

static int
cfg_load_common(const char *name, const char *path, const char *text, struct cfg **out,
                char *errbuf, size_t errlen, FILE *dump)
{
	struct cfg_parse ps;
	struct cfg *c;
	int rc;

	*out = NULL;
	if (errlen > 0)
		errbuf[0] = '\0';
	c = cfg_new_defaults(name);
	if (!c) {
		snprintf(errbuf, errlen, "%s: out of memory", name);
		return -1;
	}
	memset(&ps, 0, sizeof(ps));
	ps.c = c;
	ps.err = errbuf;
	ps.errlen = errlen;
	ps.dump = dump;
	ps.given = calloc(sizeof(cfg_directives) / sizeof(cfg_directives[0]), 1);
	if (!ps.given) {
		snprintf(errbuf, errlen, "%s: out of memory", name);
		cfg_unref(&c);
		return -1;
	}
	if (path) {
		rc = cfg_parse_file(&ps, NULL, path, 0);
	} else {
		struct cfg_src *src = cfg_src_new(name, NULL, 0);

		if (!src) {
			snprintf(errbuf, errlen, "%s: out of memory", name);
			rc = -1;
		} else {
			rc = cfg_parse_text(&ps, src, text, strlen(text));
			cfg_src_free(src);
		}
	}
	if (rc == 0 && cfg_compat_finish(&ps) != 0) {
		snprintf(errbuf, errlen, "%s: out of memory", name);
		rc = -1;
	}
	/* The n-th key goes with the n-th certificate (Apache): one too many has no certificate. */
	if (rc == 0 && ps.ssl_nkey > ps.ssl_ncert) {
		const char *w = ps.ssl_nkey == 1 ? c->ssl_key_where
		                                 : c->ssl_more[ps.ssl_nkey - 2].key_where;
		snprintf(errbuf, errlen, "%s: SSLCertificateKeyFile: no SSLCertificateFile to go "
		         "with (the n-th key belongs to the n-th certificate)", w ? w : name);
		rc = -1;
	}
	/* A TLS listener presents a certificate: without one it could only fail every client. */
	if (rc == 0 && !c->ssl_cert_file) {
		for (size_t i = 0; i < c->nlisten; i++) {
			if (!c->listen[i].https)
				continue;
			snprintf(errbuf, errlen, "%s: Listen %s https: SSLCertificateFile is missing "
			         "(the certificate the listener presents, with SSLCertificateKeyFile)",
			         ps.https_where, c->listen[i].text);
			rc = -1;
			break;
		}
	}
	if (rc == 0)
		cfg_pauth_workers(c);
	/* Require valid-user/user/group where no authentication can be in force: the decision
	 * would answer "needs a user" with nobody to ask. Once every section is complete, since a
	 * later <Proxy *> may hold the Auth* lines for an earlier section. */
	if (rc == 0) {
		const struct pol_why *u = pol_acl_authn_missing(c->acl);

		if (u != NULL) {
			snprintf(errbuf, errlen, "%s: %s needs AuthType in this or an enclosing "
			         "<Proxy *> section", u->line ? u->line : name, u->text);
			rc = -1;
		}
	}
	if (rc == 0 && dump)
		cfg_dump_defaults(&ps, cfg_directives,
		                  sizeof(cfg_directives) / sizeof(cfg_directives[0]));
	free(ps.given);
	if (rc != 0) {
		cfg_unref(&c);
		return -1;
	}
	/* An empty or truncated file (an editor's save caught half-way by SIGHUP, a disk that
	 * filled) would parse as valid and drop every Listen, ACL and the cache: refuse a file
	 * that names neither a listener nor a <Proxy> section. The built-in text, strings (tests,
	 * fuzzing) and -l listeners on the command line are not files to check. */
	if (path && c->nlisten == 0 && c->nproxy_sections == 0 && cfg_ov.n == 0) {
		snprintf(errbuf, errlen, "%s: no Listen and no <Proxy> section: the file looks empty "
		         "or cut short; refusing it (a running daemon keeps its configuration)", name);
		cfg_unref(&c);
		return -1;
	}
	cfg_finish(c);
	if (cfg_logs_finish(c, errbuf, errlen) != 0) {
		cfg_unref(&c);
		return -1;
	}
	if (cfg_listen_apply(c, errbuf, errlen) != 0) {
		cfg_unref(&c);
		return -1;
	}
	if (dump && c->listen_from_cmdline) {
		/* -M: the command line's listeners, as directives that mean the same. */
		fputs("\n# The command line (-l, -p) replaces the listeners\nListenReset\n", dump);
		for (size_t i = 0; i < c->nlisten; i++)
			fprintf(dump, "Listen %s%s\n", c->listen[i].text,
			        c->listen[i].https ? " https" : "");
	}
	/* Compile the intranet policy; conflicts it sees are warnings for -t and the log. */
	{
		size_t wlen = 16384;
		char *warn = malloc(wlen);
		int nw = warn ? pol_compile(c->pol, warn, wlen) : -1;

		if (nw < 0) {
			free(warn);
			snprintf(errbuf, errlen, "%s: out of memory compiling the policy", name);
			cfg_unref(&c);
			return -1;
		}
		c->pol_nwarnings = nw;
		if (nw > 0)
			c->pol_warnings = warn;
		else
			free(warn);
	}
	if (cfg_parents_check(c, errbuf, errlen) != 0) {
		cfg_unref(&c);
		return -1;
	}
	*out = c;
	return 0;
}

int
cfg_load(const char *path, struct cfg **out, char *errbuf, size_t errlen)
{
	if (!path) {
		char *text = cfg_builtin_for_me(errbuf, errlen);
		int rc;

		*out = NULL;
		if (!text)
			return -1;
		rc = cfg_load_common(CFG_BUILTIN_NAME, NULL, text, out, errbuf, errlen, NULL);
		free(text);
		if (rc == 0)
			(*out)->builtin = 1;
		return rc;
	}
	return cfg_load_common(path, path, NULL, out, errbuf, errlen, NULL);
}

int
cfg_load_string(const char *name, const char *text, struct cfg **out, char *errbuf,
                size_t errlen)
{
	return cfg_load_common(name ? name : "(string)", NULL, text ? text : "", out, errbuf,
	                       errlen, NULL);
}

/* gatehouse -M (issue 9): the text is gathered in memory and written only when the load
 * succeeded, so that an error leaves nothing half printed. */
int
cfg_dump(const char *path, FILE *out, char *errbuf, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	struct cfg *c = NULL;
	int rc;

	if (!mem) {
		snprintf(errbuf, errlen, "%s: out of memory", path ? path : CFG_BUILTIN_NAME);
		return -1;
	}
	fprintf(mem, "# Gatehouse %s: effective configuration of %s (gatehouse -M)\n"
	        "# Includes expanded, IfModule and IfDefine sections resolved; each directive "
	        "under the place it comes from.\n", GH_VERSION, path ? path : CFG_BUILTIN_NAME);
	if (path) {
		rc = cfg_load_common(path, path, NULL, &c, errbuf, errlen, mem);
	} else {
		/* the built-in text for this user, as cfg_load() reads it */
		char *builtin = cfg_builtin_for_me(errbuf, errlen);

		rc = builtin ? cfg_load_common(CFG_BUILTIN_NAME, NULL, builtin, &c, errbuf, errlen,
		                               mem) : -1;
		free(builtin);
	}
	if (fclose(mem) != 0 && rc == 0) {
		snprintf(errbuf, errlen, "%s: out of memory", path ? path : CFG_BUILTIN_NAME);
		rc = -1;
	}
	if (rc == 0 && fwrite(text, 1, len, out) != len) {
		snprintf(errbuf, errlen, "writing the configuration: %s", strerror(errno));
		rc = -1;
	}
	free(text);
	cfg_unref(&c);
	return rc;
}

struct cfg *
cfg_ref(struct cfg *c)
{
	if (c)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void
cfg_unref(struct cfg **cp)
{
	struct cfg *c;

	if (!cp || !*cp)
		return;
	c = *cp;
	*cp = NULL;
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	pol_ports_free(&c->allow_connect);
	pol_acl_free(&c->acl);
	pol_free(&c->pol);
	free(c->pol_warnings);
	for (size_t i = 0; i < c->npac_proxies; i++)
		free(c->pac_proxies[i]);
	free(c->pac_proxies);
	free(c->pac_file);
	free(c->pac_text);
	free(c->access_log);
	free(c->ftp_anon_password);
	tls_set_release(c->tls);
	free(c->ssl_cert_file); free(c->ssl_cert_where);
	free(c->ssl_key_file); free(c->ssl_key_where);
	free(c->ssl_chain_file); free(c->ssl_chain_where);
	for (size_t i = 0; i < c->nssl_more; i++) {
		free(c->ssl_more[i].cert); free(c->ssl_more[i].cert_where);
		free(c->ssl_more[i].key); free(c->ssl_more[i].key_where);
	}
	free(c->ssl_protocol); free(c->ssl_protocol_where);
	free(c->ssl_ciphers); free(c->ssl_ciphers_where);
	free(c->ssl_ciphers13); free(c->ssl_ciphers13_where);
	free(c->ssl_proxy_ca_file); free(c->ssl_proxy_ca_where);
	free(c->ssl_proxy_ca_path);
	free(c->ssl_proxy_machine_cert); free(c->ssl_proxy_machine_where);
	free(c->ssl_proxy_protocol); free(c->ssl_proxy_protocol_where);
	free(c->ssl_proxy_ciphers); free(c->ssl_proxy_ciphers_where);
	free(c->ssl_proxy_ciphers13); free(c->ssl_proxy_ciphers13_where);
	free(c->error_log);
	free(c->user);
	free(c->group);
	free(c->pid_file);
	cachecfg_free(c->cache);
	for (size_t i = 0; i < c->nauths; i++) {
		pauth_cfg_free(c->auths[i]);
		free(c->auths[i]);
	}
	free(c->auths);
	free(c->server_name);
	free(c->server_host);
	free(c->notices);
	errdoc_free(&c->errdocs);
	cfg_logs_free(c);
	cfg_record_free(c->files, c->nfiles);
	cfg_record_free(c->dirs, c->ndirs);
	free(c->cache_root_where);
	free(c->allow_connect_where);
	cfg_locations_free(c);
	free(c->path);
	free(c);
}

const char *
cfg_log_level_name(enum cfg_log_level l)
{
	if ((unsigned)l <= CFG_LL_TRACE)
		return cfg_level_names[l];
	return "unknown";
}
