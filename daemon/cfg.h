/*
 * cfg.h - the configuration: Apache directive syntax in, one immutable refcounted snapshot out.
 *
 * cfg_load() reads a file (or the embedded default when path is NULL), follows Include globs,
 * validates every directive and compiles the policy objects. Errors are "FILE:LINE: message".
 * A loaded snapshot is never modified; readers hold a reference (cfg_ref/cfg_unref, atomic) so
 * a reload can swap in a new snapshot while requests finish under the one they started with.
 */
#ifndef GH_CFG_H
#define GH_CFG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "policy/pol.h"
#include "resolver/res.h"

#define CFG_MAX_LISTEN 16

struct cachecfg;
struct errdoc;
struct pol_authz;
struct pauth_cfg;

/* <Location PATH> (issue 11): only "SetHandler gatehouse-status" is served there (the status
 * page), to requests addressed to the proxy itself. Access: the Require lines (policy/
 * authz.c; none: loopback only), Basic authentication with AuthUserFile. */
struct cfg_location {
	char *path;            /* "/gatehouse/": a prefix of the request path */
	char *where;           /* "FILE:LINE" of the <Location> line */
	int handler;           /* SetHandler gatehouse-status given */
	struct pol_authz *authz;
	int auth_basic;        /* AuthType Basic */
	char *auth_name;       /* AuthName (the realm); NULL: "Gatehouse" */
	char *auth_user_file;  /* AuthUserFile, absolute; NULL: none */
	char *auth_user_where; /* "FILE:LINE" of AuthUserFile */
	void *users;           /* the loaded htpasswd file (webui/auth.h), or NULL */
};

#define CFG_SSL_MORE_MAX 3 /* SSLCertificateFile lines after the first (key types) */

struct cfg_listen {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char text[64];        /* normalised, for logs: "127.0.0.1:3128", "[::1]:3128" */
	int https;            /* "Listen 3129 https": TLS with the SSLCertificate* files (issue 13) */
};

enum cfg_ftptls { CFG_FTPTLS_OFF = 0, CFG_FTPTLS_TRY = 1, CFG_FTPTLS_REQUIRE = 2 };
struct tls_set;
enum cfg_via { CFG_VIA_OFF = 0, CFG_VIA_ON, CFG_VIA_FULL, CFG_VIA_BLOCK };
enum cfg_bad_header { CFG_BADHDR_ISERROR = 0, CFG_BADHDR_IGNORE = 1, CFG_BADHDR_STARTBODY = 2 };
enum cfg_log_format { CFG_LOG_SQUID = 0, CFG_LOG_COMBINED };
/* Apache's levels; LOG_* values below are ours, ordered by severity. */
enum cfg_log_level {
	CFG_LL_EMERG = 0, CFG_LL_ALERT, CFG_LL_CRIT, CFG_LL_ERROR, CFG_LL_WARN, CFG_LL_NOTICE,
	CFG_LL_INFO, CFG_LL_DEBUG, CFG_LL_TRACE
};

#define CFG_SNDBUF_NEAR 0xffffffffu

struct cfg {
	_Atomic unsigned refs;         /* cfg_ref/cfg_unref only */
	char *path;                    /* file loaded, or "(built-in)" */

	struct cfg_listen listen[CFG_MAX_LISTEN];
	size_t nlisten;                /* Listen: "PORT", "ADDR:PORT", "[V6]:PORT"; default 127.0.0.1:3128 */

	int proxy_requests;            /* ProxyRequests On|Off; default On (we are a forward proxy) */
	enum cfg_via via;              /* ProxyVia; default Off (Apache) */
	struct pol_ports *allow_connect; /* AllowCONNECT; default 443 563 */
	char *allow_connect_where;     /* "FILE:LINE" of the AllowCONNECT in force, NULL: default */
	unsigned proxy_timeout_ms;     /* ProxyTimeout SECONDS; default 60 */
	int max_forwards;              /* ProxyMaxForwards N; -1 = unset (default) */
	enum cfg_bad_header bad_header;/* ProxyBadHeader; default IsError */
	int chain_auth;                /* ProxyChainAuth On|Off: forward Proxy-Authorization; default Off */

	/* The FTP gateway (daemon/ftp.c, issue 12) */
	char *ftp_anon_password;       /* FTPAnonymousPassword WORD; default "gatehouse@" */
	int ftp_active_fallback;       /* FTPActiveFallback On|Off: EPRT/PORT after EPSV and PASV
	                                * fail; default Off */
	unsigned ftp_default_expire_s; /* FTPDefaultExpire SECONDS: a file without MDTM; 3600 */
	unsigned ftp_listing_expire_s; /* FTPListingExpire SECONDS: a directory listing; 300 */
	uint64_t ftp_max_listing;      /* FTPMaxListingSize BYTES: a larger listing is cut off
	                                * with a 502; default 16 MiB */
	/* TLS (daemon/tls.h, issue 13), Apache's names. "where" fields are "FILE:LINE" of the
	 * directive, for errors that tls_set_build finds (unreadable file, key mismatch). */
	char *ssl_cert_file, *ssl_cert_where;   /* SSLCertificateFile PATH (for https listeners) */
	char *ssl_key_file, *ssl_key_where;     /* SSLCertificateKeyFile PATH; NULL: the key is in
	                                         * the certificate file */
	/* More SSLCertificateFile lines (Apache 2.4): another pair each, for another key type (an
	 * RSA and an ECDSA certificate; OpenSSL presents the one the client's signature
	 * algorithms take). The n-th SSLCertificateKeyFile goes with the n-th certificate; the
	 * first pair is ssl_cert_file/ssl_key_file. */
	struct cfg_ssl_pair {
		char *cert, *cert_where, *key, *key_where; /* key NULL: in the certificate file */
	} ssl_more[CFG_SSL_MORE_MAX];
	size_t nssl_more;
	char *ssl_chain_file, *ssl_chain_where; /* SSLCertificateChainFile PATH (for the first
	                                         * certificate) */
	char *ssl_protocol, *ssl_protocol_where;/* SSLProtocol as written ("-all +TLSv1.3"); NULL:
	                                         * TLSv1.2 and TLSv1.3 */
	char *ssl_ciphers, *ssl_ciphers_where;  /* SSLCipherSuite [SSL] LIST: TLS 1.2 and below
	                                         * (the list alone); NULL: Mozilla intermediate */
	char *ssl_ciphers13, *ssl_ciphers13_where; /* SSLCipherSuite TLSv1.3 LIST; NULL: OpenSSL's
	                                         * (every TLS 1.3 suite). One list per protocol,
	                                         * as Apache: a later line replaces its own */
	char *ssl_proxy_ca_file, *ssl_proxy_ca_where; /* SSLProxyCACertificateFile; NULL: system */
	char *ssl_proxy_ca_path;                /* SSLProxyCACertificatePath; NULL: /etc/ssl/certs */
	int ssl_proxy_verify;                   /* SSLProxyVerify require (1, default) | none (0) */
	char *ssl_proxy_machine_cert, *ssl_proxy_machine_where; /* SSLProxyMachineCertificateFile:
	                                         * PEM with the client certificate and its key */
	char *ssl_proxy_protocol, *ssl_proxy_protocol_where; /* SSLProxyProtocol; NULL: 1.2 + 1.3 */
	char *ssl_proxy_ciphers, *ssl_proxy_ciphers_where;   /* SSLProxyCipherSuite [SSL] */
	char *ssl_proxy_ciphers13, *ssl_proxy_ciphers13_where; /* SSLProxyCipherSuite TLSv1.3 */
	int ftp_tls;                            /* FTPTLS Off|Try|Require: CFG_FTPTLS_*; Try */
	struct tls_set *tls;                    /* built by main.c (tls_set_build) after parsing;
	                                         * released by cfg_free; NULL until built */
	struct res_conf dns;           /* DNSServer ADDR[:PORT] ...; DNSTimeout MS, DNSCacheTTL MIN MAX,
	                                * DNSNegativeTTL S */
	unsigned workers;              /* Workers N; 0 = one per CPU (default) */

	char *access_log;              /* AccessLog FILE [squid|combined]; NULL = none; "-" = stderr */
	enum cfg_log_format access_log_format;
	char *error_log;               /* ErrorLog FILE; NULL = stderr */
	enum cfg_log_level log_level;  /* LogLevel; default warn (Apache) */

	/* Connection limits, Apache names: Timeout (client I/O, default 60 s),
	 * KeepAliveTimeout (idle client, default 5 s), MaxKeepAliveRequests (default 100, 0 =
	 * unlimited), LimitRequestLine (8190), LimitRequestFieldSize (8190), LimitRequestFields
	 * (100), GracefulShutdownTimeout (default 10 s), UpstreamIdleTimeout (pooled upstream
	 * connections, default 30 s), MaxConnections (per process; 0 until main sizes it from
	 * the file limit, when the config does not set it), MaxConnectionsPerClient (per IPv4
	 * address or IPv6 /64, default 256, 0 = no limit). */
	unsigned timeout_ms;
	unsigned keepalive_timeout_ms;
	unsigned max_keepalive_requests;
	unsigned limit_request_line;
	unsigned limit_request_field_size;
	unsigned limit_request_fields;
	unsigned graceful_timeout_ms;
	unsigned upstream_idle_ms;
	unsigned max_connections;
	unsigned max_conns_per_client;
	unsigned send_buffer_size;     /* SendBufferSize: CFG_SNDBUF_NEAR (not given: a fixed
	                                * 64 KiB for near clients, worker.c), 0 (the kernel's
	                                * autotuning for all) or bytes for every client */

	struct pol_acl *acl;           /* <Proxy>/<ProxyMatch> sections */
	/* Proxy authentication (daemon/pauth.h, issue 14): the Auth* settings of the sections
	 * that have some (pol_acl_set_authn points at them), owned here, freed by cfg_free. */
	struct pauth_cfg **auths;
	size_t nauths;
	unsigned auth_fail_burst;      /* AuthFailureLimit BURST SECONDS: failed logins per client */
	unsigned auth_fail_refill_s;   /* address before it must wait; default 10, one back per 6 s */

	/* Intranet policy (issue 3): ProxyBlock, NoProxy, ProxyRemote, ProxyRemoteMatch,
	 * ProxyDomain, ProxyRemoteFallback, compiled when loading ends. */
	struct pol *pol;
	char *pol_warnings;            /* "FILE:LINE: message\n" lines from pol_compile, or NULL */
	int pol_nwarnings;
	/* PAC/WPAD: PacProxy host:port ... (NULL: the address the client reached us at),
	 * PacFallback direct|none, PacFile PATH (its contents, read at load time). */
	char **pac_proxies;
	size_t npac_proxies;
	int pac_fallback_direct;
	char *pac_file;
	char *pac_text;
	size_t pac_len;

	/* Service lifecycle (main.c, svc.c). User NAME|#UID and Group NAME|#GID: who the daemon
	 * becomes after binding its listeners when started as root; resolved at load time. user
	 * NULL = not given, and a root start then refuses to run. gid is Group's, or the user's
	 * primary group when Group is not given. PidFile FILE: NULL = none. All three take effect
	 * at start-up only; a reload that changes them logs a warning. */
	char *user;
	uid_t uid;
	char *group;                   /* Group as written; NULL = the user's primary group */
	gid_t gid;
	char *pid_file;

	/* The cache (issue 4): every Cache* directive, see cachecfg.h. Never NULL. */
	struct cachecfg *cache;

	/* Apache compatibility (issue 9, part 3). ServerName [scheme://]host[:port]: server_name
	 * is host[:port] as given (the scheme dropped), or this machine's host name when not
	 * given; it names the proxy in Via and on its pages. server_host is its host part
	 * (without brackets for IPv6), by which requests addressed to the proxy are recognised.
	 * notices: "FILE:LINE: message\n" lines for Apache directives accepted without their
	 * Apache effect (CacheEnable disk, CacheDirLevels, LoadModule ...), or NULL. */
	char *server_name;
	char *server_host;
	char *notices;
	int nnotices;

	/* Error pages (issue 9, part 4): ErrorDocument lines, see errdoc.h; NULL = none. */
	struct errdoc *errdocs;

	/* Out of the box (issue 9, part 2). builtin: loaded from the built-in text (start-up
	 * then also creates its access log's directory). files: every file this load read (the
	 * config, its Includes, PacFile, ErrorDocument files), dirs: every directory an Include
	 * wildcard listed; the user the daemon runs as must be able to read them again on reload
	 * (preflight.c).
	 * cache_root_where: "FILE:LINE" of the CacheRoot line, NULL when none.
	 * listen_from_cmdline: -l or -p replaced the Listen lines (cfg_listen_override). */
	int builtin;
	char **files;
	size_t nfiles;
	char **dirs;
	size_t ndirs;
	char *cache_root_where;
	int listen_from_cmdline;
	unsigned nproxy_sections;     /* <Proxy>/<ProxyMatch> sections read (issue 10: a file with
	                               * none and no Listen is refused as empty or truncated) */
	/* Logs in Apache's format language (issue 9, daemon/logfmt.h): LogFormat FORMAT
	 * [NICKNAME], CustomLog FILE|"|program" FORMAT|NICKNAME, TransferLog FILE|"|program".
	 * Nicknames are resolved when loading ends (a CustomLog may come before its LogFormat,
	 * as in Apache). Like AccessLog and ErrorLog, they take effect at the next start. */
	struct cfg_logformat *log_formats;  /* nicknames defined by LogFormat; the last wins */
	size_t nlog_formats;
	char *log_default_format;           /* LogFormat without a nickname (TransferLog's);
	                                     * NULL = Common Log Format */
	struct cfg_customlog *custom_logs;  /* CustomLog and TransferLog, in order */
	size_t ncustom_logs;
	/* The status page (issue 11): <Location> sections, in config order. */
	struct cfg_location *locations;
	size_t nlocations;
};

/* One LogFormat nickname. */
struct cfg_logformat {
	char *name;
	char *text;
};

/* One CustomLog/TransferLog. */
struct cfg_customlog {
	char *target;      /* absolute path, "-" (stderr) or "|command" */
	char *format;      /* format text once resolved; NULL for squid */
	int squid;         /* the nickname squid: Squid native format, log.c's own writer */
	char *nick;        /* nickname to resolve when loading ends, or NULL */
	int transfer;      /* TransferLog: the default format */
	char *where;       /* "FILE:LINE" of the directive, for messages */
};

/* Load path (NULL: the embedded default). On success returns 0 and *out holds one reference.
 * On failure returns -1 and errbuf holds "FILE:LINE: message" (no trailing newline), or
 * "FILE: message" when the top file itself cannot be read. */
int cfg_load(const char *path, struct cfg **out, char *errbuf, size_t errlen);

/* Parse a config held in memory, named name in messages (tests and the built-in default). */
int cfg_load_string(const char *name, const char *text, struct cfg **out, char *errbuf, size_t errlen);

/* Is a (address and port) one of c's listeners: the address of a listener on that port, or
 * any of this machine's addresses for a wildcard listener? For loops and the status page:
 * a request naming the proxy itself is answered by it, never forwarded back to it. */
int cfg_listens_on(const struct cfg *c, const struct sockaddr_storage *a);

/* The embedded default configuration text. */
extern const char cfg_default_text[];

/* Apache compatibility (issue 9, part 3). */

/* -D NAME: define NAME for <IfDefine NAME> in every later load (start-up and reload alike).
 * Returns 0, or -1 when the name is empty, holds a blank or '>' or starts with '!', or more
 * than CFG_MAX_DEFINES are given. */
#define CFG_MAX_DEFINES 64
int cfg_define(const char *name);
/* Forget every -D name (tests). */
void cfg_defines_clear(void);
/* Is module (an Apache spelling: "mod_proxy.c", "proxy_module", "mod_proxy") one that
 * Gatehouse stands in for, so that <IfModule> is true for it? */
int cfg_module_present(const char *module);

/* gatehouse -M: load path (NULL: the built-in configuration) as cfg_load() does and write the
 * effective configuration to out: every directive as given, in order, Includes expanded and
 * <IfModule>/<IfDefine> resolved, each under a "# FILE:LINE" comment; then every directive
 * of the table that was not given, with its default. The text is accepted by cfg_load()
 * again. Nothing is written when loading fails: returns -1 with errbuf as cfg_load(). */
int cfg_dump(const char *path, FILE *out, char *errbuf, size_t errlen);

/* The built-in configuration for the user euid: cfg_default_text as it is for root (the
 * cache in /var/cache/gatehouse, the access log in /var/log/gatehouse; "User _gatehouse" is
 * appended when the package's account exists, as it owns those directories then; else the
 * text's "User nobody" applies); for anyone else the
 * same text followed by CacheRoot and AccessLog lines for that user's own directories:
 * $XDG_CACHE_HOME/gatehouse (xdg_cache; default home/.cache/gatehouse) and
 * $XDG_STATE_HOME/gatehouse/access.log (xdg_state; default home/.local/state/...). Relative
 * or empty XDG values are ignored, as the XDG base directory specification says. Returns
 * malloc'd text, or NULL with a message in err (no home directory, out of memory). */
char *cfg_builtin_text(uid_t euid, const char *home, const char *xdg_cache,
                       const char *xdg_state, char *err, size_t errlen);

/* Command-line listeners, for every later load in this process (start-up, -t, reloads):
 * addrs (-l ADDR:PORT, as Listen takes them) replace the Listen lines when n > 0; port
 * (-p PORT) then replaces the port of every listener, keeping its address (the built-in
 * 127.0.0.1:3128 becomes 127.0.0.1:PORT). n 0 and port 0 clear the override. Returns 0, or
 * -1 with a message in err ("-l 1.2.3: expected ..."). Main thread, before loading. */
int cfg_listen_override(const char *const *addrs, size_t n, unsigned port, char *err,
                        size_t errlen);

struct cfg *cfg_ref(struct cfg *c);
void cfg_unref(struct cfg **cp);

const char *cfg_log_level_name(enum cfg_log_level l);

#endif
