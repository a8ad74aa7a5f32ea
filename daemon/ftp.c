/*
 * ftp.c - the FTP gateway (issue 12); see ftp.h. Being written: until then the gateway
 * refuses to take a connection over.
 */
#include "daemon/ftp.h"

int
ftp_attach(struct up *u)
{
	(void)u;
	return -1;
}
