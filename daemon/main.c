/*
 * main.c - the gatehouse command: options, configuration, listeners, worker threads, signals.
 *
 * The main thread does no request work: it loads the config, binds every listener (one
 * SO_REUSEPORT socket per worker and Listen address, so bind errors surface before anything
 * starts), starts the workers and then waits for signals with sigwait():
 *   SIGTERM, SIGINT  graceful stop: listeners close, in-flight requests finish within
 *                    GracefulShutdownTimeout, then exit 0;
 *   SIGHUP           reload: a new snapshot is built and handed to the workers; a bad file is
 *                    logged as FILE:LINE: message and the running config stays;
 *   SIGUSR1          reopen the error and access logs (logrotate).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/cfg.h"
#include "daemon/log.h"
#include "daemon/worker.h"

static void
main_usage(FILE *f)
{
	fprintf(f,
	        "usage: gatehouse [-f FILE] [-t] [-V] [-h]\n"
	        "  -f FILE  configuration file (default: the built-in configuration)\n"
	        "  -t       check the configuration and exit: \"Syntax OK\" or FILE:LINE: message\n"
	        "  -V       print the version and exit\n"
	        "  -h       this help\n");
}

static unsigned
main_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	int test_only = 0;
	int opt;
	while ((opt = getopt(argc, argv, "f:tVh")) != -1) {
		switch (opt) {
		case 'f': path = optarg; break;
		case 't': test_only = 1; break;
		case 'V': printf("gatehouse %s\n", GH_VERSION); return 0;
		case 'h': main_usage(stdout); return 0;
		default: main_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "gatehouse: unexpected argument \"%s\"\n", argv[optind]);
		main_usage(stderr);
		return 2;
	}

	char err[1024];
	struct cfg *cfg = NULL;
	if (cfg_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (test_only) {
		fprintf(stderr, "Syntax OK\n");
		cfg_unref(&cfg);
		return 0;
	}

	if (log_open(cfg->error_log, cfg->log_level) < 0) {
		fprintf(stderr, "gatehouse: cannot open ErrorLog %s: %s\n", cfg->error_log, strerror(errno));
		return 1;
	}
	if (gethostname(gh.hostname, sizeof(gh.hostname) - 1) < 0 || gh.hostname[0] == '\0')
		snprintf(gh.hostname, sizeof(gh.hostname), "gatehouse");
	if (cfg->access_log && alog_open(&gh.alog, cfg->access_log, cfg->access_log_format) < 0) {
		log_error("cannot open AccessLog %s: %s", cfg->access_log, strerror(errno));
		return 1;
	}

	/* Signals are taken by sigwait() in this thread only; workers block everything. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	unsigned nw = cfg->workers ? cfg->workers : main_ncpu();
	gh.nworkers = nw;
	struct worker *workers = calloc(nw, sizeof(*workers));
	int *fds = calloc((size_t)nw * cfg->nlisten + 1, sizeof(int));
	if (workers == NULL || fds == NULL) {
		log_error("out of memory");
		return 1;
	}
	for (unsigned i = 0; i < nw; i++) {
		for (size_t j = 0; j < cfg->nlisten; j++) {
			const char *lerr = NULL;
			int fd = worker_listen_open(&cfg->listen[j], &lerr);
			if (fd < 0) {
				log_error("cannot listen on %s: %s", cfg->listen[j].text, lerr);
				fprintf(stderr, "gatehouse: cannot listen on %s: %s\n", cfg->listen[j].text, lerr);
				return 1;
			}
			fds[i * cfg->nlisten + j] = fd;
		}
	}
	for (unsigned i = 0; i < nw; i++) {
		if (worker_start(&workers[i], i, cfg, &fds[i * cfg->nlisten], cfg->nlisten) < 0) {
			fprintf(stderr, "gatehouse: cannot start worker %u\n", i);
			return 1;
		}
	}
	for (size_t j = 0; j < cfg->nlisten; j++)
		log_notice("gatehouse %s listening on %s (%u workers, config %s)", GH_VERSION,
		           cfg->listen[j].text, nw, cfg->path);
	/* A line on stderr even at the default level: the admin started it in the foreground. */
	if (!log_on(CFG_LL_NOTICE))
		fprintf(stderr, "gatehouse %s: listening on %s%s (%u workers)\n", GH_VERSION,
		        cfg->listen[0].text, cfg->nlisten > 1 ? " and more" : "", nw);

	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT) {
			log_notice("caught %s, shutting down gracefully", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		if (sig == SIGHUP) {
			struct cfg *n = NULL;
			if (cfg_load(path, &n, err, sizeof(err)) < 0) {
				log_error("reload failed, keeping the running configuration: %s", err);
				continue;
			}
			for (unsigned i = 0; i < nw; i++)
				worker_set_cfg(&workers[i], n);
			log_set_level(n->log_level);
			cfg_unref(&cfg);
			cfg = n;
			log_notice("configuration reloaded from %s", cfg->path);
		} else if (sig == SIGUSR1) {
			if (log_reopen() < 0 || alog_reopen(gh.alog) < 0)
				log_error("reopening logs: %s", strerror(errno));
			else
				log_notice("logs reopened");
		}
	}
	for (unsigned i = 0; i < nw; i++)
		worker_stop(&workers[i]);
	for (unsigned i = 0; i < nw; i++)
		worker_join(&workers[i]);
	alog_close(&gh.alog);
	cfg_unref(&cfg);
	free(workers);
	free(fds);
	log_notice("stopped");
	return 0;
}
