/*
 * logfmt.h - Apache mod_log_config format strings ("%h %l %u %t \"%r\" %>s %b") compiled once,
 * when the configuration is loaded, into a list of ops that logfmt_render() walks per request
 * without parsing anything.
 *
 * Supported: %% %a %{c}a %A %b %B %O %D %h %{c}h %H %k %l %L %m %p %{canonical|local|remote}p
 * %P %{pid|tid|hextid}P %q %r %s %<s %>s %t %{FORMAT}t (strftime, with begin:/end: and Apache's
 * sec, msec, usec, msec_frac, usec_frac) %T %{s|ms|us}T %u %U %v %V %X %{NAME}i %{NAME}o
 * %{NAME}C, each with Apache's optional status condition (%400,501{User-Agent}i,
 * %!200{Referer}i) and the < > modifiers (accepted: Gatehouse has no internal redirects, so
 * the original and the final request are the same). Values from the network are escaped as
 * Apache does (ap_escape_logitem: \" \\ \n \t and \xhh for other control and non-ASCII bytes);
 * an empty or absent value is "-" (except %q, which is empty without a query, as in Apache).
 *
 * What Gatehouse cannot honour is refused when compiling, naming the directive: %e %n %f %R
 * %I %S %^ti %^to %x and anything unknown.
 *
 * Pure functions over struct alog_entry (log.h): no I/O, no allocation after compile. A
 * compiled struct logfmt is immutable and may be rendered from several threads at once.
 */
#ifndef GH_LOGFMT_H
#define GH_LOGFMT_H

#include <stddef.h>

struct alog_entry;
struct logfmt;

/* What a format needs from the request, so that proxy.c keeps it only when some log uses it. */
#define LOGFMT_NEED_REQHEAD  0x1u /* %{NAME}i, %{NAME}C: the request head text */
#define LOGFMT_NEED_RESPHEAD 0x2u /* %{NAME}o: the response head text */
#define LOGFMT_NEED_LINE     0x4u /* %r: the request line */

/* Compile text. Returns 0 and *out, or -1 with a message naming the directive in err
 * ("%e (environment variables) is not supported", "unknown directive %Z"). */
int logfmt_compile(const char *text, struct logfmt **out, char *err, size_t errlen);
void logfmt_free(struct logfmt **fp);
unsigned logfmt_needs(const struct logfmt *f);

/* The text of a predefined nickname ("common", "combined", "referer", "agent"), or NULL.
 * "squid" is not among them: it is the built-in Squid native writer of log.c. */
const char *logfmt_nickname(const char *name);

/* Render one line for e into dst[0..room) without the newline. Returns the length written
 * (always < room; a line that does not fit is cut). */
size_t logfmt_render(const struct logfmt *f, const struct alog_entry *e, char *dst, size_t room);

#endif
