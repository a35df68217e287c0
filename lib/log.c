/*
 * lib/log.c: OpenBSD-style logging (warn, warnx, info, debug, fatal) with a
 * process name and a per-thread tag on every line.
 *
 * Lines go to stderr for journald (with a "<N>" syslog priority prefix when
 * SR_LOG_PRIORITY_PREFIX is set) or to a sink a test installs. This file
 * must never be the audit trail and never formats a secret.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/sr.h"

volatile int sr_log_verbosity = SR_LOG_INFO;

static char sr_log_procname[16] = "strongroom";
static sr_log_sink_cb *sr_log_sink;
static void *sr_log_sink_arg;
static int sr_log_prio_prefix;
static _Thread_local char sr_log_tag[16];

void
sr_log_init(int verbosity, const char *procname)
{
	const char *p;

	sr_log_verbosity = verbosity;
	if (procname != NULL)
		snprintf(
		    sr_log_procname, sizeof(sr_log_procname), "%s", procname);
	p = getenv("SR_LOG_PRIORITY_PREFIX");
	sr_log_prio_prefix = p != NULL && *p != '\0' && *p != '0';
}

void
sr_log_set_sink(sr_log_sink_cb *sink, void *arg)
{
	sr_log_sink = sink;
	sr_log_sink_arg = arg;
}

void
sr_log_thread_tag(const char *tag)
{
	char name[16];

	snprintf(sr_log_tag, sizeof(sr_log_tag), "%s", tag ? tag : "");
	/* The main thread's name is the process's (pgrep, killall, ps):
	 * only other threads are renamed, for top -H, perf and gdb. */
	if (sr_log_tag[0] != '\0' && gettid() != getpid()) {
		snprintf(name, sizeof(name), "sr-%s", sr_log_tag);
		(void)pthread_setname_np(pthread_self(), name);
	}
}

int
sr_log__errno(void)
{
	return errno;
}

static const char *
sr_log_levelname(int level)
{
	switch (level) {
	case SR_LOG_WARN:
		return "warning";
	case SR_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void
sr_log__vemit(int level, int errnum, const char *fmt, va_list ap)
{
	/* Lines are formatted whole into one buffer so threads never mix. */
	char line[1024];
	int n, pos, saved = errno;
	struct timespec ts;
	struct tm tm;
	static const int prio[] = { 4, 6, 7 };

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	pos = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s%s%s %s: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000, sr_log_procname,
	    sr_log_tag[0] ? "/" : "", sr_log_tag, sr_log_levelname(level));
	n = vsnprintf(line + pos, sizeof(line) - (size_t)pos, fmt, ap);
	if (n > 0)
		pos += n;
	if (pos > (int)sizeof(line) - 1)
		pos = (int)sizeof(line) - 1;
	if (errnum != 0 && pos < (int)sizeof(line) - 1)
		snprintf(line + pos, sizeof(line) - (size_t)pos, ": %s",
		    strerror(errnum));
	if (sr_log_sink != NULL)
		sr_log_sink(level, line, sr_log_sink_arg);
	else if (sr_log_prio_prefix)
		fprintf(stderr, "<%d>%s\n", prio[level > 2 ? 2 : level], line);
	else
		fprintf(stderr, "%s\n", line);
	errno = saved;
}

void
sr_log__emit(int level, int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sr_log__vemit(level, errnum, fmt, ap);
	va_end(ap);
}

void
sr_log__fatal(int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sr_log__vemit(SR_LOG_WARN, errnum, fmt, ap);
	va_end(ap);
	fflush(stderr);
	exit(1);
}
