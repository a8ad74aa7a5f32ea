/*
 * tmpdir.h - a scratch directory for unit tests that read files: tmpdir_make() in the group
 * setup, tmpdir_remove() in the teardown, write_file() for each file a test needs.
 * Header-only; each user includes it once (after cmocka.h).
 */
#ifndef GH_TESTS_TMPDIR_H
#define GH_TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[64];

/* tmpl is a mkdtemp template, "/tmp/gh-test-NAME-XXXXXX". */
static int
tmpdir_make(const char *tmpl)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
tmpdir_remove(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write text to a fresh file under tmpdir; returns its path (static buffer). */
static const char *
write_file(const char *name, const char *text)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

#endif
