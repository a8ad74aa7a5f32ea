/*
 * cache.h - Gatehouse's shared HTTP cache (RFC 9111) on LMDB: the caching rules as pure
 * functions, and the store.
 *
 * Part 1, the rules, works on plain header arrays ({name, value} slices), never on the
 * daemon's parser types, and never does I/O: storable? how fresh? how old? what to do with a
 * request given a stored entry, 304 merging, client conditionals, Vary secondary keys,
 * Range/If-Range, invalidation after unsafe methods, Cache-Status and Squid log codes.
 * Times are int64_t seconds since the epoch (wall clock, as HTTP dates are).
 *
 * Part 2, the store, keeps entries in one LMDB environment shared by every worker thread:
 *   meta  key hash (32 bytes, SHA-256 of the cache key) or hash || Vary hash (64 bytes)
 *         -> entry record (status, stored header block, times, validators, Vary spec, body
 *         id, size, chunk count, LRU sequence)
 *   body  body id (u64 BE) || chunk index (u32 BE) -> one chunk of at most CACHE_CHUNK_SIZE
 *         bytes (a flag byte, then raw or zlib data)
 *   lru   sequence (u64 BE) || meta key -> empty; the first record is the least recently used
 *   url   cache key text (long keys truncated and suffixed with their hash) -> key hash
 * Bodies get a fresh body id per fill, so a new version of a URL never mixes chunks with the
 * old one, and an in-progress fill is invisible (it has no meta record) until it commits.
 *
 * Threads: any function of part 1 from any thread. The store is shared; a struct
 * cache_reader and a struct cache_fill are each used by one thread at a time. Writes take
 * one mutex for the length of one short LMDB write transaction (one chunk, one commit, one
 * small eviction batch); none is held across a wait on the network. Reads never take it.
 */
#ifndef GH_CACHE_H
#define GH_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* ---- errors: 0 or a negative CACHE_E* ---- */

enum {
	CACHE_OK = 0,
	CACHE_ENOENT = -1,    /* no such entry or chunk (never stored, evicted, replaced, purged) */
	CACHE_ENOMEM = -2,
	CACHE_EIO = -3,       /* LMDB or file-system failure */
	CACHE_EFULL = -4,     /* the store could not make room (should not happen: it evicts) */
	CACHE_ETOOBIG = -5,   /* the object is larger than the store accepts */
	CACHE_ECORRUPT = -6,  /* a stored record failed to decode */
	CACHE_EINVAL = -7,    /* bad argument: size mismatch at commit, unusable key, ... */
	CACHE_EMISMATCH = -8, /* a 304's validators do not match the stored entry */
	CACHE_EBUSY = -9      /* the cache directory is in use by another store */
};

/* A short static text for a CACHE_E* code ("no such entry", ...). */
const char *cache_strerror(int err);

/* ---- plain inputs ---- */

struct cache_str {
	const char *p;
	size_t n;
};

/* One header field line; names compare case-insensitively; values without surrounding OWS. */
struct cache_hdr {
	struct cache_str name;
	struct cache_str value;
};

struct cache_hdrs {
	const struct cache_hdr *v;
	size_t n;
};

enum cache_method {
	CACHE_M_OTHER = 0, CACHE_M_GET, CACHE_M_HEAD, CACHE_M_POST, CACHE_M_PUT, CACHE_M_DELETE,
	CACHE_M_PATCH, CACHE_M_OPTIONS, CACHE_M_TRACE, CACHE_M_CONNECT
};

/* Method token (case-sensitive, as RFC 9110 says) to enum; unknown methods are CACHE_M_OTHER. */
enum cache_method cache_method_parse(const char *p, size_t n);

/* A client request as the rules see it. url is the cache key: an absolute URL normalised by
 * cache_key_normalise(). */
struct cache_request {
	enum cache_method method;
	struct cache_str url;
	struct cache_hdrs hdrs;
};

/* ---- configuration (Apache mod_cache directives) ---- */

struct cache_conf {
	double lm_factor;          /* CacheLastModifiedFactor, default 0.1 */
	int64_t max_expire;        /* CacheMaxExpire seconds, default 86400; caps every lifetime */
	int64_t default_expire;    /* CacheDefaultExpire seconds, default 3600 */
	int ignore_no_lastmod;     /* CacheIgnoreNoLastMod, default 0 */
	int ignore_query_string;   /* CacheIgnoreQueryString, default 0 */
	int store_nostore;         /* CacheStoreNoStore: store despite no-store, default 0 */
	int store_private;         /* CacheStorePrivate: store despite private, default 0 */
	int stale_on_error;        /* CacheStaleOnError, default 1 (as Apache) */
	int debian;                /* Debian archive awareness, default 1 */
	uint64_t max_file_size;    /* CacheMaxFileSize bytes, default 512 MiB */
	uint64_t min_file_size;    /* CacheMinFileSize bytes, default 0 */
	/* CacheIgnoreHeaders: fields never stored; default {"Set-Cookie"}; NULL/0 for none.
	 * The strings must outlive every call that uses the conf. */
	const char *const *ignore_headers;
	size_t nignore_headers;
};

/* Fill c with the defaults above. */
void cache_conf_default(struct cache_conf *c);

/* ---- header helpers ---- */

/* The first field named name (case-insensitive) in h, or NULL. */
const struct cache_hdr *cache_hdr_find(const struct cache_hdrs *h, const char *name);

/* Append "name: value\r\n" at *o and advance it; the caller has sized the room
 * (name.n + value.n + 4 bytes). */
void cache_put_line(char **o, struct cache_str name, struct cache_str value);

/* Iterate the "Name: value\r\n" lines of a stored header block: start with *pos = 0; returns
 * 1 and fills *out (value without OWS), or 0 at the end. Malformed lines are skipped. */
int cache_block_next(struct cache_str block, size_t *pos, struct cache_hdr *out);

/* Parse an HTTP-date (IMF-fixdate, RFC 850 or asctime form). Returns seconds since the epoch,
 * or -1 when the text is not a valid date. */
int64_t cache_http_date_parse(const char *p, size_t n);

/* Format t as IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes) into out[30], NUL
 * terminated. Returns 29. */
size_t cache_http_date_format(int64_t t, char out[30]);

/* ---- Cache-Control ---- */

#define CACHE_CC_NO_STORE         0x0001u
#define CACHE_CC_NO_CACHE         0x0002u /* qualified or not: both mean revalidate */
#define CACHE_CC_PRIVATE          0x0004u /* qualified or not: both mean "not in a shared cache" */
#define CACHE_CC_PUBLIC           0x0008u
#define CACHE_CC_MUST_REVALIDATE  0x0010u
#define CACHE_CC_PROXY_REVALIDATE 0x0020u
#define CACHE_CC_NO_TRANSFORM     0x0040u
#define CACHE_CC_ONLY_IF_CACHED   0x0080u
#define CACHE_CC_MAX_STALE_ANY    0x0100u /* max-stale without a value */
#define CACHE_CC_IMMUTABLE        0x0200u
#define CACHE_CC_MUST_UNDERSTAND  0x0400u
#define CACHE_CC_PRAGMA_NO_CACHE  0x0800u /* request: Pragma: no-cache without Cache-Control */

/* Seconds are -1 when absent. Values are clamped at 2^31 (RFC 9111 1.2.2). For max-age and
 * s-maxage, an invalid value or two different values count as 0 (stale, RFC 9111 4.2.1). */
struct cache_cc {
	uint32_t flags;
	int64_t max_age, s_maxage;  /* both */
	int64_t max_stale, min_fresh; /* request */
	int64_t swr, sie;            /* stale-while-revalidate, stale-if-error (RFC 5861) */
};

/* Parse every Cache-Control line of h. Unknown directives are ignored, garbage is skipped up
 * to the next comma; quoted values are accepted. */
void cache_cc_parse(const struct cache_hdrs *h, struct cache_cc *cc);

/* Same for a request, plus Pragma: no-cache (which counts as no-cache, and sets
 * CACHE_CC_PRAGMA_NO_CACHE) when the request has no Cache-Control field. */
void cache_cc_parse_request(const struct cache_hdrs *h, struct cache_cc *cc);

/* ---- stored entries ---- */

#define CACHE_KEY_MAX 64            /* meta key: 32-byte hash, or hash || 32-byte Vary hash */
#define CACHE_CHUNK_SIZE 262112u    /* 256 KiB less 32 bytes: a chunk record fills 64 pages */
#define CACHE_INLINE_MAX 32768u     /* bodies up to this size come with cache_lookup() */
#define CACHE_VARY_MAX 1024u        /* longest normalised Vary spec that is stored */

#define CACHE_MF_VARY_STUB    0x01u /* the primary record of a URL whose responses Vary */
#define CACHE_MF_COMPRESSIBLE 0x02u /* a text type without Content-Encoding: may be deflated */
#define CACHE_MF_COMPLETE     0x04u /* set on every committed entry */

/* Everything the rules need about a stored response. The slices point into the struct
 * cache_entry that holds the meta. */
struct cache_meta {
	int status;
	uint32_t flags;            /* CACHE_MF_* */
	struct cache_cc cc;        /* the response's Cache-Control */
	int64_t request_time;      /* when the request that got this response was sent */
	int64_t response_time;     /* when the response was received */
	int64_t date;              /* Date field, -1 when absent or invalid */
	int64_t age_value;         /* Age field, 0 when absent */
	int64_t expires;           /* Expires field, -1 absent, 0 when invalid (already expired) */
	int64_t last_modified;     /* Last-Modified field, -1 absent */
	uint64_t body_id;          /* set by the store */
	uint64_t body_size;        /* set by the store at commit */
	uint32_t nchunks;          /* set by the store: ceil(body_size / CACHE_CHUNK_SIZE) */
	uint64_t body_acct;        /* set by the store: accounted bytes of the chunks */
	uint64_t seq;              /* set by the store: LRU sequence */
	uint64_t hits;             /* set by the store: lookups that hit it (approximate, see
	                            * cache_store_maintain) */
	int64_t last_access;       /* set by the store: when the last of those hits was applied
	                            * (wall clock seconds), -1 never */
	struct cache_str url;      /* the cache key */
	struct cache_str headers;  /* stored fields, "Name: value\r\n" lines */
	struct cache_str etag;     /* ETag value as sent (W/"x" or "x"), empty when absent */
	struct cache_str vary;     /* normalised Vary spec ("accept-encoding,user-agent"), or "" */
};

/* An owned entry: meta plus the memory its slices point into. From cache_entry_build(),
 * cache_entry_merge_304() or cache_lookup(); freed with cache_entry_free(). */
struct cache_entry {
	uint32_t magic;
	struct cache_meta meta;
	unsigned char key[CACHE_KEY_MAX]; /* meta key, set by cache_lookup() */
	size_t keylen;                    /* 0 for entries that were not looked up */
	const unsigned char *body;        /* lookups: the whole body when it is at most
	                                   * CACHE_INLINE_MAX bytes, else NULL */
	size_t body_len;
	struct cache_store *pin;          /* lookups of chunked bodies: the body is pinned
	                                   * (its chunks stay readable until the entry is freed,
	                                   * even if the entry is replaced, purged or evicted) */
	void (*unpin)(struct cache_store *s, uint64_t body_id);
};

/* Free an entry (NULL is fine); a pinned body is unpinned. */
void cache_entry_free(struct cache_entry *e);

/* The first stored field named name, or an empty slice (p == NULL). */
struct cache_str cache_entry_header(const struct cache_entry *e, const char *name);

/* Is a response to req storable by a shared cache? Returns 1, or 0 with a static *reason:
 * "method" (only GET responses are stored), "request no-store", "no-store", "private",
 * "authorization" (request had Authorization, response lacks public/s-maxage/
 * must-revalidate), "partial content", "status", "vary *", "vary too long",
 * "no validator or expiry" (nothing to compute freshness from, CacheIgnoreNoLastMod off),
 * "query without expiry" (a query string without explicit freshness, as Apache),
 * "too large", "too small" (CacheMax/MinFileSize against Content-Length when known; when it
 * is not known the daemon aborts the fill once the body passes max_file_size).
 * Debian pool/ and by-hash/ files (conf->debian) need no validator. */
int cache_storable(const struct cache_conf *conf, const struct cache_request *req, int status,
                   const struct cache_hdrs *resp, const char **reason);

/* Build the entry to store for a response (or for a synthesized object, e.g. FTP: any status
 * and fields). Stored fields are resp minus hop-by-hop fields (Connection and those it
 * lists, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade, Trailer,
 * Proxy-Authenticate, Proxy-Authorization), Content-Length and Age (the daemon sends its
 * own), and conf->ignore_headers. Date, Expires, Last-Modified, ETag, Cache-Control and Vary
 * are parsed into meta. Does not decide storability: call cache_storable() first.
 * Returns CACHE_OK and *out, or CACHE_ENOMEM / CACHE_EINVAL (more than 1000 fields). */
int cache_entry_build(const struct cache_conf *conf, const struct cache_request *req, int status,
                      const struct cache_hdrs *resp, int64_t request_time, int64_t response_time,
                      struct cache_entry **out);

/* RFC 9111 4.3.4: freshen a stored entry with the 304 answering our revalidation. If the 304
 * carries an ETag or Last-Modified that differs from the stored one, returns CACHE_EMISMATCH
 * (fetch unconditionally instead). Otherwise *out is a new entry (key, body and LRU fields of
 * old kept; the daemon passes it to cache_store_update()): every field of the 304 replaces the
 * stored fields of that name, except hop-by-hop fields, Content-Length, Content-Encoding (it
 * describes the stored bytes), Age, and conf->ignore_headers; times become the 304's. */
int cache_entry_merge_304(const struct cache_conf *conf, const struct cache_entry *old,
                          const struct cache_hdrs *resp304, int64_t request_time,
                          int64_t response_time, struct cache_entry **out);

/* ---- freshness and age ---- */

/* Debian archive classes of a URL (path only, query ignored). */
enum cache_debian {
	CACHE_DEB_NONE = 0,
	CACHE_DEB_IMMUTABLE, /* .../pool/... ending .deb .udeb .dsc .tar.* .diff.gz;
	                      * .../by-hash/... */
	CACHE_DEB_INDEX      /* Release, InRelease, Packages*, Sources* (follow their headers) */
};
enum cache_debian cache_debian_class(struct cache_str url);

/* Freshness lifetime in seconds (RFC 9111 4.2.1 for a shared cache): s-maxage, else
 * max-age, else Expires - Date, else a heuristic when the status is heuristically cacheable
 * or the response is public: (Date - Last-Modified) * lm_factor, or default_expire with
 * ignore_no_lastmod, else 0. Always capped by max_expire (as Apache). Debian immutable files
 * (conf->debian) get max_expire whatever their fields say. */
int64_t cache_freshness_lifetime(const struct cache_conf *conf, const struct cache_meta *m);

/* current_age per RFC 9111 4.2.3: corrected_initial_age + (now - response_time), where
 * corrected_initial_age = max(apparent_age, age_value + response_delay). Date missing counts
 * as response_time; negative intervals count as 0. */
int64_t cache_current_age(const struct cache_meta *m, int64_t now);

/* ---- using a stored entry ---- */

enum cache_action {
	CACHE_ACT_FRESH = 0,        /* serve the stored response (maybe stale under max-stale) */
	CACHE_ACT_REVALIDATE,       /* send a conditional GET with cache_validators(); a 304 ->
	                             * cache_entry_merge_304() and serve, a 200 replaces */
	CACHE_ACT_STALE_REVALIDATE, /* serve the stale response now and revalidate in the
	                             * background (stale-while-revalidate) */
	CACHE_ACT_FETCH,            /* cannot use or validate the entry (or no entry): fetch */
	CACHE_ACT_ONLY_IF_CACHED_MISS /* only-if-cached and nothing usable: answer 504 */
};

struct cache_decision {
	enum cache_action action;
	int64_t age;          /* current age: the Age field to send */
	int64_t lifetime;     /* freshness lifetime */
	int64_t ttl;          /* lifetime - age; negative when stale (Cache-Status ttl) */
	int stale;            /* the entry is stale (or the request treats it as stale) */
	int client_refresh;   /* the request forced validation (no-cache, Pragma, max-age,
	                       * min-fresh) */
	int stale_if_error;   /* if the refresh fails (5xx, refused, timeout), the stale entry may
	                       * be served instead (stale-if-error, CacheStaleOnError) */
	int not_modified;     /* FRESH and STALE_REVALIDATE: the client's own conditional matches:
	                       * answer 304 (cache_cond_check) */
	const char *reason;   /* static: why, for logs and Cache-Status detail */
};

/* Decide what to do with req given the stored entry m (NULL: nothing stored) at time now.
 * Only GET and HEAD use stored entries; If-Match / If-Unmodified-Since requests are
 * forwarded (CACHE_ACT_FETCH) since they are preconditions for the origin. Stale entries
 * with must-revalidate, proxy-revalidate or s-maxage are never served stale.
 * Debian immutable files ignore the response's no-cache. */
void cache_decide(const struct cache_conf *conf, const struct cache_meta *m,
                  const struct cache_request *req, int64_t now, struct cache_decision *d);

/* The client's conditional against a usable stored entry (RFC 9110 13.2.2): If-None-Match
 * (weak comparison, lists, "*") takes precedence over If-Modified-Since (compared with the
 * stored Last-Modified, else Date, else response time). Returns 1 when the answer is 304,
 * 0 when the full response is due. Only for GET and HEAD. */
int cache_cond_check(const struct cache_meta *m, const struct cache_request *req);

/* Write the validator fields for revalidating m into out ("If-None-Match: <etag>\r\n",
 * "If-Modified-Since: <stored Last-Modified>\r\n"). Returns the length written (0 when the
 * entry has no validator), or the length needed when it is >= cap (out then untouched).
 * The daemon drops the client's own If-* and Range fields from the revalidation request. */
size_t cache_validators(const struct cache_entry *e, char *out, size_t cap);

/* Entity-tag comparison (RFC 9110 8.8.3.2): weak (W/ ignored) or strong (both strong, equal).
 * Returns 1 on match. */
int cache_etag_match(struct cache_str a, struct cache_str b, int strong);

/* ---- Vary ---- */

/* Normalise the Vary fields of a response: lower-case names, no duplicates, sorted,
 * comma-separated, into out[cap]. Returns the length (0: no Vary), -1 for "Vary: *",
 * -2 when it does not fit or is longer than CACHE_VARY_MAX. */
int cache_vary_spec(const struct cache_hdrs *resp, char *out, size_t cap);

/* The normalised value of request field name for Vary matching: all lines of that name
 * joined with ",", whitespace around commas dropped, runs of whitespace inside collapsed to
 * one space. Returns the length (>= cap: truncated, out NUL-terminated when cap > 0), or
 * -1 when the field is absent (absent differs from empty). */
long cache_vary_value(const struct cache_hdrs *req, const char *name, size_t name_len,
                      char *out, size_t cap);

/* Secondary key: SHA-256 over the spec and the normalised values of the nominated fields.
 * Requests with equal normalised values get equal keys. Returns CACHE_OK or CACHE_ENOMEM. */
int cache_vary_hash(struct cache_str spec, const struct cache_hdrs *req, unsigned char out[32]);

/* ---- cache keys ---- */

/* Normalise an absolute URL into a cache key: the form of url_normalize() (daemon/url.h:
 * scheme and host lower-cased, host escapes decoded and its trailing dot dropped, default
 * ports (http 80, https 443, ftp 21) dropped, empty path -> "/", unreserved escapes decoded
 * and others upper-cased, slashes merged and dot segments resolved, fragment dropped), and
 * the query dropped when ignore_query. Writes out (NUL-terminated; cap >= n + URL_NORM_SLACK)
 * and *outlen. Returns CACHE_OK, or CACHE_EINVAL for a URL that is not absolute, has spaces
 * or control characters, cannot be normalized or does not fit. */
int cache_key_normalise(const char *url, size_t n, int ignore_query, char *out, size_t cap,
                        size_t *outlen);

/* The same for a URL that is already url_normalize()'s output (the daemon normalizes every
 * request target once, when it parses it): only the query is dropped when ignore_query, so a
 * hit does not normalize twice. Giving it anything else makes a key that never matches, not
 * an error. Returns CACHE_OK, or CACHE_EINVAL when it does not fit cap (with its NUL). */
int cache_key_from_normalised(const char *url, size_t n, int ignore_query, char *out,
                              size_t cap, size_t *outlen);

/* ---- Range (RFC 9110 14) ---- */

#define CACHE_MAX_RANGES 16

struct cache_range {
	uint64_t first, last;  /* inclusive byte positions within the representation */
};

enum cache_range_result {
	CACHE_RANGE_FULL = 200,        /* no (usable) Range, or If-Range failed: send 200 */
	CACHE_RANGE_PARTIAL = 206,     /* *n ranges: 1 -> single part, more ->
	                                * multipart/byteranges */
	CACHE_RANGE_UNSATISFIABLE = 416 /* send 416 with Content-Range: bytes * / size */
};

/* Parse a Range value against a representation of size bytes: "bytes=" then a list of
 * a-b, a- and -n. Returns -1 when the value is invalid or the unit is not bytes (ignore the
 * Range), else the number of satisfiable ranges stored in r (0: unsatisfiable). Overlapping
 * or adjacent ranges are coalesced (then sorted); otherwise the order of the request is kept.
 * More than max satisfiable ranges: -1 (the Range is ignored, the whole body is sent). */
int cache_range_parse(struct cache_str value, uint64_t size, struct cache_range *r, size_t max);

/* The Range and If-Range of a GET against a complete stored 200 entry of size body_size.
 * If-Range must match: a strong ETag (strong comparison), or an HTTP-date equal to the
 * stored Last-Modified when that is strong (at least 1 s older than Date). */
enum cache_range_result cache_range_decide(const struct cache_meta *m,
                                           const struct cache_request *req,
                                           struct cache_range *r, size_t max, size_t *n);

#define CACHE_BOUNDARY_LEN 24

/* A multipart boundary of CACHE_BOUNDARY_LEN hex digits from seed, NUL-terminated. */
void cache_multipart_boundary(uint64_t seed, char out[CACHE_BOUNDARY_LEN + 1]);

/* One part's head: "\r\n--B\r\nContent-Type: T\r\nContent-Range: bytes a-b/size\r\n\r\n"
 * (no Content-Type line when ctype is empty). Returns the length; written only when < cap. */
size_t cache_multipart_head(const char *boundary, struct cache_str ctype,
                            const struct cache_range *r, uint64_t size, char *out, size_t cap);

/* The closing "\r\n--B--\r\n". Returns the length; written only when < cap. */
size_t cache_multipart_tail(const char *boundary, char *out, size_t cap);

/* Content-Length of the whole multipart/byteranges body for these ranges. */
uint64_t cache_multipart_length(const char *boundary, struct cache_str ctype,
                                const struct cache_range *r, size_t n, uint64_t size);

/* ---- invalidation (RFC 9111 4.4) ---- */

struct cache_uri_list {
	char *uri[3];  /* normalised absolute URLs, malloc'd */
	size_t n;
};

/* After a non-error (2xx, 3xx) response to an unsafe method (anything but GET, HEAD,
 * OPTIONS, TRACE), the URIs whose stored responses are to be invalidated: the request URL,
 * and Location and Content-Location (resolved against it) when they are on the same origin
 * (scheme, host, port). out->n is 0 otherwise. The daemon turns each into its cache key
 * (query dropped with CacheIgnoreQueryString) and calls cache_purge(). Returns CACHE_OK or
 * CACHE_ENOMEM; free with cache_uri_list_free(). */
int cache_invalidations(const struct cache_request *req, int status, const struct cache_hdrs *resp,
                        struct cache_uri_list *out);
void cache_uri_list_free(struct cache_uri_list *l);

/* ---- outcomes: Cache-Status (RFC 9211) and Squid log codes ---- */

enum cache_outcome {
	CACHE_OUT_BYPASS = 0,      /* not consulted: disabled for the URL, not GET/HEAD, CONNECT */
	CACHE_OUT_MISS,            /* nothing stored */
	CACHE_OUT_VARY_MISS,       /* stored, but not for this request's Vary values */
	CACHE_OUT_CLIENT_REFRESH,  /* the client forced a fetch/validation (no-cache, max-age) */
	CACHE_OUT_HIT,             /* served from cache, fresh */
	CACHE_OUT_HIT_STALE,       /* served stale: max-stale, stale-while-revalidate */
	CACHE_OUT_HIT_INM,         /* 304 from cache for If-None-Match */
	CACHE_OUT_HIT_IMS,         /* 304 from cache for If-Modified-Since */
	CACHE_OUT_REFRESH_UNMODIFIED, /* revalidated, origin said 304, stored body served */
	CACHE_OUT_REFRESH_MODIFIED,   /* revalidated, origin sent a new response */
	CACHE_OUT_REFRESH_FAIL_OLD,   /* revalidation failed, stale served (stale-if-error) */
	CACHE_OUT_REFRESH_FAIL_ERR,   /* revalidation failed, the error was passed on */
	CACHE_OUT_ONLY_IF_CACHED,     /* only-if-cached and nothing usable: 504 */
	CACHE_OUT_DENIED,             /* refused by policy before the cache */
	CACHE_OUT__COUNT
};

/* Squid's code for an outcome: "TCP_MISS", "TCP_HIT", "TCP_INM_HIT", "TCP_IMS_HIT",
 * "TCP_CLIENT_REFRESH_MISS", "TCP_REFRESH_UNMODIFIED", "TCP_REFRESH_MODIFIED",
 * "TCP_REFRESH_FAIL_OLD", "TCP_REFRESH_FAIL_ERR", "TCP_DENIED", ... (static). */
const char *cache_outcome_squid(enum cache_outcome o);

enum cache_fwd {
	CACHE_FWD_NONE = 0, CACHE_FWD_BYPASS, CACHE_FWD_METHOD, CACHE_FWD_URI_MISS,
	CACHE_FWD_VARY_MISS, CACHE_FWD_MISS, CACHE_FWD_REQUEST, CACHE_FWD_STALE, CACHE_FWD_PARTIAL
};

/* The parameters of one Cache-Status member. hit and fwd are exclusive (hit wins). */
struct cache_status {
	int hit;
	enum cache_fwd fwd;
	int fwd_status;      /* 0: absent */
	int has_ttl;
	int64_t ttl;
	int stored;
	int collapsed;
	const char *detail;  /* a token, NULL: absent */
};

/* The default parameters for an outcome (hit/fwd/detail); the daemon adds fwd_status, ttl,
 * stored and collapsed. */
void cache_outcome_status(enum cache_outcome o, struct cache_status *st);

/* Format "NAME; hit; ttl=12" / "NAME; fwd=uri-miss; fwd-status=200; stored" into out.
 * Returns the length; written (NUL-terminated) only when < cap. */
size_t cache_status_format(const char *name, const struct cache_status *st, char *out, size_t cap);

/* ==== the store ==== */

struct cache_store;
struct cache_reader;
struct cache_fill;

enum cache_sync {
	CACHE_SYNC_DATA = 0, /* fdatasync data pages each commit, not the meta page
	                      * (MDB_NOMETASYNC): a power cut may lose the last commit, never
	                      * consistency */
	CACHE_SYNC_FULL,     /* LMDB's default full sync */
	CACHE_SYNC_NONE      /* no sync (MDB_NOSYNC): kill -9 safe, a power cut is not;
	                      * cache_store_maintain() syncs every few seconds */
};

struct cache_store_conf {
	const char *root;      /* CacheRoot: directory, created (one level) when missing */
	uint64_t size;         /* CacheSize: the LMDB map, and so the file, never exceeds it */
	unsigned budget_pct;   /* accounted bytes are kept under size * budget_pct / 100,
	                        * default 75 (room for B-tree pages and free pages) */
	unsigned evict_start_pct;  /* evict when the accounting passes this % of the budget (90) */
	unsigned evict_target_pct; /* ... down to this % (80) */
	enum cache_sync sync;
	int compress;          /* deflate compressible bodies, default 1 */
	int compress_level;    /* zlib level, default 1 */
	unsigned max_readers;  /* LMDB reader slots, default 256 (one per cache_reader, plus one
	                        * per listing/maintenance call in progress) */
};

/* Defaults: size 1 GiB, budget 75 %, evict from 90 % down to 80 % of the budget,
 * CACHE_SYNC_DATA, compression on at level 1, 256 reader slots; root unset. */
void cache_store_conf_default(struct cache_store_conf *c);

/* Open (creating when needed) the store in conf->root. Takes an exclusive lock on
 * ROOT/gatehouse.lock (a second open of the same directory fails with CACHE_EBUSY), runs
 * mdb_reader_check, then sweeps: body chunks that no entry references (a fill in progress
 * when the process died) are deleted, LRU and URL records without their entry are deleted,
 * entries without an LRU record get one, and the accounting is rebuilt; then evicts when over
 * budget. On failure returns a CACHE_E* code and a message in err ("ROOT: ...: reason"). */
int cache_store_open(const struct cache_store_conf *conf, struct cache_store **out, char *err,
                     size_t errlen);

/* Close: every reader must have been freed and every fill committed or aborted. */
void cache_store_close(struct cache_store *s);

struct cache_stats {
	uint64_t entries;        /* stored responses (variants count, Vary stubs do not) */
	uint64_t bytes_used;     /* our accounting of every record */
	uint64_t bytes_budget;   /* eviction keeps bytes_used under this */
	uint64_t map_size;       /* = CacheSize */
	uint64_t file_bytes;     /* pages LMDB has used (last page number x page size) */
	uint64_t body_bytes_written; /* body bytes appended by committed and aborted fills */
	uint64_t fills_committed, fills_aborted;
	uint64_t evicted_entries, evicted_bytes;
	uint64_t purged_entries;
	uint64_t compress_in;    /* raw bytes of the chunks that were stored deflated */
	uint64_t compress_out;   /* ... and their stored size: the saving is in - out */
	uint64_t map_full;       /* writes that met MDB_MAP_FULL or ENOSPC (each is handled by
	                          * evicting a quarter and trying again, eviction's own
	                          * transactions excepted) */
	uint64_t disk_full;      /* ... of them ENOSPC: the file system, not CacheSize, is full */
	uint64_t full_failed;    /* writes given up for want of room even after evicting
	                          * (CACHE_EFULL: that chunk, entry or update is not stored) */
	uint64_t touches_applied, touches_dropped;
	uint64_t swept_chunks;   /* orphan chunks deleted when opening */
	uint64_t gc_bodies;      /* bodies whose chunks await deletion (replaced, purged,
	                          * evicted, aborted) */
	uint64_t gc_bytes;       /* ... their accounted bytes (an estimate; part of bytes_used) */
	uint64_t pinned_bodies;  /* bodies being read by at least one client */
	uint64_t gc_pinned;      /* bodies awaiting deletion that a reader still holds */
};

/* The three counters of a full store above (map_full, disk_full, full_failed), without a
 * lock (relaxed loads): cheap enough to poll every second. Any thread. */
void cache_store_full_counts(struct cache_store *s, uint64_t *map_full, uint64_t *disk_full,
                             uint64_t *full_failed);

/* A snapshot of the counters (takes the write mutex briefly). */
void cache_store_stats(struct cache_store *s, struct cache_stats *st);

/* Housekeeping: apply queued LRU touches, finish deferred chunk deletion, evict when over
 * the start mark, sync when CACHE_SYNC_NONE. Call it every second or so (a timer of one
 * worker). Uses trylock: returns at once (1) when a writer is busy; else 0 or CACHE_E*.
 * It may block for a few commits (a few ms each; up to 17 while deleting large bodies).
 *
 * LRU approximation: a hit queues (key, seq) in a 2048-slot queue (one short mutex; when
 * full the touch is dropped without locking). The next write transaction moves the touched
 * entries to the young end, except entries already among the youngest sixteenth (and
 * entries replaced meanwhile). So an entry hit at least once per queue drain survives
 * eviction; under a flood of hits with no writes, some touches are lost. */
int cache_store_maintain(struct cache_store *s);

/* ---- reading ---- */

/* A reader holds one LMDB read transaction, reset between calls and renewed for each
 * (MDB_NOTLS: not tied to a thread, so one reader per worker thread is the intended use; a
 * reader is used by one thread at a time). No snapshot is held between calls, so a slow
 * client never pins old pages. Returns NULL on failure (no memory, no reader slot). */
struct cache_reader *cache_reader_new(struct cache_store *s);
void cache_reader_free(struct cache_reader *r);

enum { CACHE_MISS = 0, CACHE_HIT = 1, CACHE_VARY_MISS = 2 };
#define CACHE_LOOKUP_NO_BODY 0x1u  /* HEAD: do not copy a small body into the entry */

/* Look up key (the cache key text; hashed with SHA-256).
 * A hit whose body is not copied along (more than CACHE_INLINE_MAX bytes, not
 * CACHE_LOOKUP_NO_BODY) pins the body: until cache_entry_free(*out), its chunks stay readable
 * with cache_read_chunk() even when the entry is replaced, purged or evicted meanwhile (their
 * deletion waits for the last reader; the bytes stay accounted, and eviction makes room for
 * them). cache_clear() does not wait. For a URL whose responses Vary, the
 * variant is chosen with req_hdrs (may be NULL: no fields). Returns CACHE_HIT with *out (a
 * private copy: no transaction is held; free with cache_entry_free), CACHE_MISS,
 * CACHE_VARY_MISS (stored, not for these Vary values), or a CACHE_E* error. A hit queues an
 * LRU touch, applied by the next write (see cache_store_maintain). */
int cache_lookup(struct cache_reader *r, const char *key, size_t keylen,
                 const struct cache_hdrs *req_hdrs, unsigned flags, struct cache_entry **out);

/* Called with the (decompressed) bytes of one chunk. data is valid only during the call:
 * it points into the map (or into the reader's scratch buffer for deflated chunks), and the
 * read transaction ends when the callback returns; write what the socket takes and copy the
 * rest. The return value is passed back by cache_read_chunk(). */
typedef int cache_chunk_f(void *arg, const unsigned char *data, size_t len);

/* Read chunk idx (bytes idx * CACHE_CHUNK_SIZE ...) of body body_id in one short read
 * transaction. Returns cb's value, or CACHE_ENOENT (the body is gone: an unpinned body whose
 * entry was replaced, evicted or purged, a fill aborted, cache_clear(); end the client's
 * response, it cannot be completed),
 * CACHE_ECORRUPT, CACHE_EIO. Also reads committed chunks of a fill in progress (see
 * cache_fill_chunks()). */
int cache_read_chunk(struct cache_reader *r, uint64_t body_id, uint32_t idx, cache_chunk_f *cb,
                     void *arg);

/* The same, copying into buf (cap >= the chunk, CACHE_CHUNK_SIZE always suffices);
 * *len is set. */
int cache_read_chunk_copy(struct cache_reader *r, uint64_t body_id, uint32_t idx, void *buf,
                          size_t cap, size_t *len);

/* ---- writing ---- */

/* Start storing a response under key. meta is copied (usually from cache_entry_build());
 * when meta->vary is not empty the variant key is computed from req_hdrs (the request that
 * got this response). size_hint is the Content-Length or -1 (for the buffer only).
 * Nothing is visible to lookups until cache_fill_commit(). Returns CACHE_OK and *out,
 * CACHE_ETOOBIG when size_hint is over the store's object limit (half the budget),
 * CACHE_EINVAL (Vary spec "*", a stub meta), CACHE_ENOMEM. */
int cache_fill_begin(struct cache_store *s, const char *key, size_t keylen,
                     const struct cache_meta *meta, const struct cache_hdrs *req_hdrs,
                     int64_t size_hint, struct cache_fill **out);

/* Append body bytes: buffered, and written (maybe deflated) one whole chunk per write
 * transaction. On an error (CACHE_ETOOBIG past the object limit, CACHE_EFULL, CACHE_EIO,
 * CACHE_ENOENT after cache_clear) the fill is dead: call cache_fill_abort(). */
int cache_fill_append(struct cache_fill *f, const void *data, size_t len);

/* Commit: the last partial chunk, the meta, LRU and URL records in one transaction. An entry
 * under the same key is replaced (its chunks deleted), and for a Vary'd URL the primary
 * record is updated. expected_size >= 0 is checked against the bytes appended (mismatch:
 * CACHE_EINVAL, nothing stored). Frees f whatever the result. */
int cache_fill_commit(struct cache_fill *f, int64_t expected_size);

/* Drop a fill: its chunks are deleted (now or by later writes; after a crash by the sweep at
 * open). Frees f. */
void cache_fill_abort(struct cache_fill *f);

/* The fill's body id, and how many of its chunks are committed and readable with
 * cache_read_chunk() (any thread; an atomic load): collapsed forwarding can stream a fill
 * in progress from the store. */
uint64_t cache_fill_body_id(const struct cache_fill *f);
uint32_t cache_fill_chunks(const struct cache_fill *f);

/* Pin / unpin body id explicitly (collapsed forwarding of a fill in progress; lookups pin on
 * their own): while pinned, deleting the body's entry leaves its chunks in place; the last
 * unpin lets the next write transaction (cache_store_maintain() at the latest) delete them.
 * A pin taken after the entry is gone protects nothing: pin first, then check the entry or
 * fill still exists. Any thread; a short mutex. Returns CACHE_OK or CACHE_ENOMEM. */
int cache_body_pin(struct cache_store *s, uint64_t body_id);
void cache_body_unpin(struct cache_store *s, uint64_t body_id);

/* Replace the meta of a stored entry after cache_entry_merge_304() (e must come from it, with
 * the key of the lookup). Returns CACHE_OK, or CACHE_ENOENT when the entry was replaced,
 * evicted or purged meanwhile (nothing written). */
int cache_store_update(struct cache_store *s, const struct cache_entry *e);

/* ---- listing and purging ---- */

struct cache_item {
	struct cache_str url;
	int status;
	int vary;              /* the URL has variants (body_size etc. are 0) */
	uint64_t body_size;
	uint64_t bytes;        /* accounted bytes of the entry */
	int64_t response_time;
	uint64_t hits;         /* see cache_meta.hits */
	int64_t last_access;   /* -1: never hit */
	int variant;           /* cache_entry_records: 1 for a Vary variant's own record */
	const unsigned char *mkey; /* the meta key (32 bytes, or 64 for a variant) */
	size_t mkeylen;
	const struct cache_meta *meta; /* the whole decoded record (slices into the map) */
};

/* Return nonzero to stop. Runs inside a read transaction: be quick, call no store function. */
typedef int cache_list_f(void *arg, const struct cache_item *it);

/* Entries whose cache key starts with prefix, in key order, starting after `after` (NULL or
 * empty: from the start), at most max. Returns the number listed or a CACHE_E* error. */
long cache_list(struct cache_store *s, const char *prefix, size_t plen, const char *after,
                size_t alen, size_t max, cache_list_f *cb, void *arg);

/* A page of a search: keys starting with prefix and (when slen > 0) containing substr
 * (ASCII case-insensitive), in key order after `after`. It stops after max matches or after
 * examining scan_max URL records, whichever comes first, so a page costs at most scan_max
 * records whatever the store holds: a rare substring gives short (even empty) pages, each
 * with a cursor to go on. next (next_cap bytes; CACHE_FIND_NEXT_CAP always suffices for keys
 * the daemon makes) receives the cursor for the next page, the last key examined, to pass
 * as `after`; next_len is 0 when the range is exhausted. */
#define CACHE_FIND_NEXT_CAP 8200
struct cache_find {
	const char *prefix;
	size_t plen;
	const char *substr;
	size_t slen;
	const char *after;
	size_t alen;
	size_t max;
	size_t scan_max;
	char *next;            /* out: NUL-terminated */
	size_t next_cap;
	size_t next_len;       /* out */
	size_t scanned;        /* out: URL records examined */
};

/* Returns the number of matches passed to cb, or a CACHE_E* error. One read transaction. */
long cache_find(struct cache_store *s, struct cache_find *q, cache_list_f *cb, void *arg);

/* Every record of key: the primary record first (a stub when the URL has variants), then each
 * variant (variant = 1, mkey = hash || Vary hash). Returns the number of records (0: not
 * stored) or a CACHE_E* error. */
long cache_entry_records(struct cache_store *s, const char *key, size_t keylen, cache_list_f *cb,
                         void *arg);

/* What cache_purge_prefix(prefix) would remove now, as it counts (records: a URL with
 * variants counts its stub and each variant), examining at most limit URLs: *more is set to 1
 * when URLs were left uncounted (the count is then a lower bound). */
long cache_count_prefix(struct cache_store *s, const char *prefix, size_t plen, size_t limit,
                        int *more);

/* Purge key with all its variants. Returns the number of records removed (0: none). */
long cache_purge(struct cache_store *s, const char *key, size_t keylen);

/* Purge every key starting with prefix, in small committed batches, all in this call (use
 * cache_purge_prefix_step to spread a large purge over an event loop). Returns the count. */
long cache_purge_prefix(struct cache_store *s, const char *prefix, size_t plen);

/* Where a batched purge by prefix stands. Zero it to start; pass it back unchanged to each
 * cache_purge_prefix_step of the same prefix. URL keys are walked in key order: each step
 * resumes strictly after the last key it handled, so a step never looks at a key twice and
 * the walk ends even while other threads keep filling under the prefix. A key filled under
 * the prefix during the walk is purged when it sorts after the cursor, kept when it sorts
 * before (it was stored after the purge passed there: a fresh copy). */
struct cache_purge_cursor {
	unsigned char key[512];  /* the last url key handled (store.c asserts it is room enough) */
	size_t keylen;
	int started;
	int done;                /* out: nothing is left under the prefix after key */
	uint64_t urls;           /* out: URL keys examined so far (purged or skipped) */
	uint64_t pending;        /* a durable purge's id (cache_purge_pending_add), 0: none */
};

/* One batch of a purge by prefix: one write transaction that examines at most max_urls URL
 * keys after cur (max_urls 0: 256) and removes those under the prefix with all their
 * variants. Returns the records removed in this batch (cur->done set when the walk is over),
 * or a CACHE_E* error (cur unchanged: the batch can be retried). */
long cache_purge_prefix_step(struct cache_store *s, const char *prefix, size_t plen,
                             struct cache_purge_cursor *cur, size_t max_urls);

/* Durable purges by prefix. A purge recorded with cache_purge_pending_add() (it gets *id:
 * put it in its cursor's pending) survives a stop or a crash: each cache_purge_prefix_step
 * of that cursor saves the cursor and the count in the store in the batch's own transaction,
 * and the last one deletes the record. At start, cache_purge_pending_list() gives the purges
 * to resume, each with its cursor ready for cache_purge_prefix_step (in start order; the
 * callback runs under the store's write lock: call no store function from it; nonzero stops).
 * The prefix is at most 2048 bytes. */
struct cache_purge_pending {
	uint64_t id;
	const char *prefix;      /* valid during the callback */
	size_t plen;
	int64_t started;         /* as given to cache_purge_pending_add */
	long estimate;
	uint64_t removed;        /* records removed before the stop */
	struct cache_purge_cursor cur;
};
typedef int cache_pending_f(void *arg, const struct cache_purge_pending *p);

int cache_purge_pending_add(struct cache_store *s, const char *prefix, size_t plen,
                            int64_t started, long estimate, uint64_t *id);
long cache_purge_pending_list(struct cache_store *s, cache_pending_f *cb, void *arg);

/* Remove everything. Fills in progress fail at their next append or commit. */
int cache_clear(struct cache_store *s);

/* A consistency check (tests, admin): counts problems without repairing them. */
struct cache_check {
	uint64_t entries, stubs, chunks;
	uint64_t orphan_chunks;   /* chunks of body ids no entry references */
	uint64_t missing_chunks;  /* entries whose chunks are not all there */
	uint64_t orphan_lru, orphan_url, missing_lru;
	uint64_t bytes;           /* accounting recomputed from the records */
};
int cache_store_check(struct cache_store *s, struct cache_check *c);

#endif
