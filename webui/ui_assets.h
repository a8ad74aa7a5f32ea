/*
 * ui_assets.h - the files under static/ (webui/assets/), compiled in at build time: SCons
 * (webui/SConscript) turns each into a C array in the generated ui_assets.c.
 */
#ifndef GH_WEBUI_UI_ASSETS_H
#define GH_WEBUI_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
	const char *name;            /* "ui.css" */
	const char *ctype;           /* "text/css; charset=utf-8" */
	const unsigned char *data;
	size_t len;
};

/* The asset called name, or NULL. */
const struct ui_asset *ui_asset_find(const char *name);

#endif
