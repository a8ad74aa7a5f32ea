/*
 * history.h - the status page's history (issue 11): per-worker chart rings, top-list sketches
 * and the recent-requests ring, written from the access-log hook of proxy.c and read by
 * webui/ through history_ui_ops() (webui/ui_series.h).
 */
#ifndef GH_HISTORY_H
#define GH_HISTORY_H

#include <stdint.h>

struct alog_entry;
struct ui_series_ops;

/* Note one finished request of worker id (on that worker's thread only): e is its log
 * entry, host the request's host ("" or NULL unknown), up_bytes the body bytes it received
 * from an upstream, rule the policy rule that decided it (kept for blocked requests). */
void history_note(unsigned id, const struct alog_entry *e, const char *host, uint64_t up_bytes,
                  const char *rule);

const struct ui_series_ops *history_ui_ops(void);

#endif
