/*
 * csrf_tmp.c - TEMPORARY stand-in for the ui_csrf_* functions of webui/auth.c (h2), so the
 * skeleton links; deleted when auth.c is merged. It refuses every POST (no token is valid),
 * which is the safe side.
 */
#include "webui/ui_priv.h"

#include <stdio.h>

void
ui_csrf_field(struct ui_call *call)
{
	ui_out_puts(&call->resp.body, "<input type=\"hidden\" name=\"csrf\" value=\"\">");
}

int
ui_csrf_token(struct ui_call *call, char *out, size_t cap)
{
	(void)call;
	if (cap == 0)
		return -1;
	out[0] = '\0';
	return 0;
}

int
ui_csrf_ok(const struct ui_call *call)
{
	(void)call;
	return 0;
}
