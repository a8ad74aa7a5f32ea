/*
 * ui_series.h - the status page's history: chart series, top lists and recent requests
 * (issue 11). The daemon fills the table (daemon/history.c, history_ui_ops()); the pages of
 * webui/p_history.c read it through struct ui_ops's series field. Every op copies what it
 * returns into the caller's memory, so nothing here points into the daemon's data.
 *
 * Charts: requests, hits, bytes to clients, bytes from upstreams and upstream errors (502
 * and 504 answers) per period, summed over the workers: the last hour at 10 s and the last
 * 24 h at 5 min. Top lists: the last hour, from per-worker heavy-hitters sketches merged on
 * read (estimates with an error bound); users (issue 14) are the names proxy authentication
 * verified, never a name a client merely sent. Recent requests: the last UI_RECENT_MAX
 * access-log lines of all workers, newest first.
 */
#ifndef GH_WEBUI_UI_SERIES_H
#define GH_WEBUI_UI_SERIES_H

#include <stddef.h>
#include <stdint.h>

enum ui_series_metric {
	UI_SERIES_REQUESTS = 0,
	UI_SERIES_HITS,
	UI_SERIES_BYTES_CLIENT,
	UI_SERIES_BYTES_UPSTREAM,
	UI_SERIES_UP_ERRORS,
	UI_SERIES_NMETRIC
};

enum ui_series_span { UI_SPAN_HOUR = 0, UI_SPAN_DAY = 1 };

#define UI_SERIES_MAX 360u

struct ui_series {
	unsigned res;             /* seconds per point: 10 or 300 */
	unsigned n;               /* points: 360 or 288 */
	int64_t start;            /* wall time (s) at which point 0's period begins */
	uint64_t v[UI_SERIES_MAX][UI_SERIES_NMETRIC];  /* oldest first; the last is current */
};

enum ui_top_kind {
	UI_TOP_HOSTS_REQ = 0,
	UI_TOP_HOSTS_BYTES,
	UI_TOP_CLIENTS_REQ,
	UI_TOP_CLIENTS_BYTES,
	UI_TOP_USERS_REQ,         /* authenticated users (issue 14) */
	UI_TOP_USERS_BYTES,
	UI_TOP_BLOCKED,           /* note: the rule that blocked the host, FILE:LINE included */
	UI_TOP_NKIND
};

#define UI_TOP_MAX 50u

struct ui_top_item {
	char key[128];            /* host name, client address or user name */
	char note[160];
	uint64_t count;           /* requests or bytes, estimated */
	uint64_t err;             /* the true value is within count +- err */
};

struct ui_top {
	uint64_t total;           /* all requests or bytes of the window (for shares) */
	size_t n;
	struct ui_top_item item[UI_TOP_MAX];
};

#define UI_RECENT_MAX 200u

struct ui_recent {
	int64_t t_ms;             /* wall clock at the end of the request, milliseconds */
	uint64_t dur_ms;
	uint64_t bytes;           /* to the client, head included */
	int status;
	char client[48];
	char user[64];            /* the authenticated user, cut to fit; "" none */
	char method[24];
	char action[32];
	char host[128];           /* "" unknown */
	char url[512];            /* cut to fit (the access log has it whole) */
};

struct ui_series_ops {
	/* Fill out with span's series as of now (wall seconds). Returns 0 or -1. */
	int (*series)(void *wctx, enum ui_series_span span, int64_t now, struct ui_series *out);
	/* Fill out with the largest of kind over the last hour as of now. Returns 0 or -1 (no
	 * memory). */
	int (*top)(void *wctx, enum ui_top_kind kind, int64_t now, struct ui_top *out);
	/* Copy up to cap of the most recent requests, newest first; returns how many. */
	size_t (*recent)(void *wctx, struct ui_recent *out, size_t cap);
};

#endif
