/*
 * tests/unit/lib/test_log.c: the logging verbs of lib/log.c through a
 * capturing sink: verbosity, lazy argument evaluation, errno text, thread
 * tags, process name, truncation, errno preservation and fatal exits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/sr.h"

#define CAP_LINES 8
#define CAP_LEN 2048

struct capture {
	int n;
	int levels[CAP_LINES];
	char lines[CAP_LINES][CAP_LEN];
	void *arg_seen;
	int clobber_errno;
};

static struct capture cap;

static void
capture_sink(int level, const char *line, void *arg)
{
	cap.arg_seen = arg;
	if (cap.clobber_errno)
		errno = EXDEV;
	if (cap.n >= CAP_LINES) {
		cap.n++;
		return;
	}
	cap.levels[cap.n] = level;
	snprintf(cap.lines[cap.n], CAP_LEN, "%s", line);
	cap.n++;
}

static int
setup(void **state)
{
	(void)state;
	memset(&cap, 0, sizeof(cap));
	unsetenv("SR_LOG_PRIORITY_PREFIX");
	sr_log_init(SR_LOG_INFO, "tproc");
	sr_log_set_sink(capture_sink, &cap);
	sr_log_thread_tag("");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	sr_log_set_sink(NULL, NULL);
	sr_log_thread_tag("");
	sr_log_init(SR_LOG_INFO, "strongroom");
	return 0;
}

/* Does @p s end with @p suffix? */
static int
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void
test_sink_gets_line(void **state)
{
	(void)state;
	log_warnx("hello %d %s", 42, "world");
	assert_int_equal(cap.n, 1);
	assert_ptr_equal(cap.arg_seen, &cap);
	assert_int_equal(cap.levels[0], SR_LOG_WARN);
	assert_true(ends_with(cap.lines[0], "warning: hello 42 world"));
	assert_null(strchr(cap.lines[0], '\n'));
}

static void
test_verbosity_warn(void **state)
{
	(void)state;
	sr_log_init(SR_LOG_WARN, "tproc");
	log_warnx("w");
	log_info("i");
	log_debug("d");
	assert_int_equal(cap.n, 1);
	assert_int_equal(cap.levels[0], SR_LOG_WARN);
	assert_true(ends_with(cap.lines[0], "warning: w"));
}

static void
test_verbosity_info(void **state)
{
	(void)state;
	sr_log_init(SR_LOG_INFO, "tproc");
	log_warnx("w");
	log_info("i");
	log_debug("d");
	assert_int_equal(cap.n, 2);
	assert_int_equal(cap.levels[0], SR_LOG_WARN);
	assert_int_equal(cap.levels[1], SR_LOG_INFO);
	assert_true(ends_with(cap.lines[1], "info: i"));
}

static void
test_verbosity_debug(void **state)
{
	(void)state;
	sr_log_init(SR_LOG_DEBUG, "tproc");
	log_warnx("w");
	log_info("i");
	log_debug("d");
	assert_int_equal(cap.n, 3);
	assert_int_equal(cap.levels[0], SR_LOG_WARN);
	assert_int_equal(cap.levels[1], SR_LOG_INFO);
	assert_int_equal(cap.levels[2], SR_LOG_DEBUG);
	assert_true(ends_with(cap.lines[2], "debug: d"));
}

static void
test_level_checked_before_args(void **state)
{
	int counter = 0;

	(void)state;
	sr_log_init(SR_LOG_INFO, "tproc");
	log_debug("counter %d", counter++);
	assert_int_equal(counter, 0);
	assert_int_equal(cap.n, 0);

	sr_log_init(SR_LOG_WARN, "tproc");
	log_info("counter %d", counter++);
	assert_int_equal(counter, 0);
	assert_int_equal(cap.n, 0);

	/* When enabled the argument is evaluated exactly once. */
	sr_log_init(SR_LOG_DEBUG, "tproc");
	log_debug("counter %d", counter++);
	assert_int_equal(counter, 1);
	assert_int_equal(cap.n, 1);
	assert_true(ends_with(cap.lines[0], "debug: counter 0"));
}

static void
test_warn_appends_errno(void **state)
{
	char want[256];

	(void)state;
	snprintf(
	    want, sizeof(want), "warning: open %s: %s", "/x", strerror(ENOENT));
	errno = ENOENT;
	log_warn("open %s", "/x");
	assert_int_equal(cap.n, 1);
	assert_true(ends_with(cap.lines[0], want));
}

static void
test_warnx_ignores_errno(void **state)
{
	(void)state;
	errno = ENOENT;
	log_warnx("plain");
	assert_int_equal(cap.n, 1);
	assert_true(ends_with(cap.lines[0], "warning: plain"));
	assert_null(strstr(cap.lines[0], strerror(ENOENT)));
}

static void
test_procname(void **state)
{
	(void)state;
	sr_log_init(SR_LOG_INFO, "vaultd");
	log_info("x");
	assert_int_equal(cap.n, 1);
	assert_non_null(strstr(cap.lines[0], " vaultd info: x"));
}

static void
test_procname_truncated(void **state)
{
	(void)state;
	/* 20 characters; only the first 15 are kept. */
	sr_log_init(SR_LOG_INFO, "abcdefghijklmnopqrst");
	log_info("x");
	assert_int_equal(cap.n, 1);
	assert_non_null(strstr(cap.lines[0], " abcdefghijklmno info: x"));
	assert_null(strstr(cap.lines[0], "abcdefghijklmnop"));
}

static void
test_thread_tag(void **state)
{
	(void)state;
	log_warnx("untagged");
	sr_log_thread_tag("loop3");
	log_warnx("tagged");
	sr_log_thread_tag(NULL);
	log_warnx("cleared");
	assert_int_equal(cap.n, 3);
	assert_non_null(strstr(cap.lines[0], " tproc warning: untagged"));
	assert_non_null(strstr(cap.lines[1], " tproc/loop3 warning: tagged"));
	assert_non_null(strstr(cap.lines[2], " tproc warning: cleared"));
}

static void
test_thread_tag_truncated(void **state)
{
	(void)state;
	sr_log_thread_tag("0123456789abcdefXYZ");
	log_warnx("t");
	assert_int_equal(cap.n, 1);
	assert_non_null(
	    strstr(cap.lines[0], " tproc/0123456789abcde warning: t"));
}

static void *
tag_thread(void *arg)
{
	char *name = arg;

	sr_log_thread_tag("hsm-worker");
	log_warnx("from worker");
	if (name != NULL)
		pthread_getname_np(pthread_self(), name, 16);
	return NULL;
}

static void *
long_tag_thread(void *arg)
{
	sr_log_thread_tag("audit-writer-long");
	pthread_getname_np(pthread_self(), arg, 16);
	return NULL;
}

/* Threads other than main take "sr-<tag>" as their system name (top -H);
 * the main thread keeps the program's name, which pgrep matches. */
static void
test_thread_tag_names_thread(void **state)
{
	char before[16] = "", after[16] = "", worker[16] = "", cut[16] = "";
	pthread_t th;

	(void)state;
	assert_int_equal(pthread_getname_np(pthread_self(), before, 16), 0);
	sr_log_thread_tag("main");
	assert_int_equal(pthread_getname_np(pthread_self(), after, 16), 0);
	assert_string_equal(after, before);
	assert_int_equal(pthread_create(&th, NULL, tag_thread, worker), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_string_equal(worker, "sr-hsm-worker");
	assert_int_equal(pthread_create(&th, NULL, long_tag_thread, cut), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_string_equal(cut, "sr-audit-writer");
}

static void
test_thread_tag_is_per_thread(void **state)
{
	pthread_t th;

	(void)state;
	sr_log_thread_tag("main");
	assert_int_equal(pthread_create(&th, NULL, tag_thread, NULL), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	log_warnx("from main");
	assert_int_equal(cap.n, 2);
	assert_non_null(
	    strstr(cap.lines[0], " tproc/hsm-worker warning: from worker"));
	assert_non_null(strstr(cap.lines[1], " tproc/main warning: from main"));
	assert_null(strstr(cap.lines[1], "hsm-worker"));
}

static void
test_long_message_truncated(void **state)
{
	char *big;
	size_t len;

	(void)state;
	big = malloc(4001);
	assert_non_null(big);
	memset(big, 'A', 4000);
	big[4000] = '\0';

	log_warnx("%s", big);
	assert_int_equal(cap.n, 1);
	len = strlen(cap.lines[0]);
	assert_true(len < 1024);
	assert_true(len > 512);
	assert_true(ends_with(cap.lines[0], "AAAAAAAA"));
	assert_non_null(strstr(cap.lines[0], " tproc warning: AAAA"));

	/* With errno text to append and no room left for it. */
	errno = ENOENT;
	log_warn("%s", big);
	assert_int_equal(cap.n, 2);
	assert_true(strlen(cap.lines[1]) < 1024);
	assert_true(ends_with(cap.lines[1], "AAAAAAAA"));
	free(big);
}

static void
test_errno_preserved(void **state)
{
	(void)state;
	errno = EACCES;
	log_warnx("a");
	assert_int_equal(errno, EACCES);

	errno = ENOENT;
	log_warn("b");
	assert_int_equal(errno, ENOENT);

	/* Even when the sink itself changes errno. */
	cap.clobber_errno = 1;
	errno = EPERM;
	log_info("c");
	assert_int_equal(errno, EPERM);
	assert_int_equal(cap.n, 3);
}

/* In a forked child: send each captured line down a pipe. */
static int child_fd = -1;

static void
pipe_sink(int level, const char *line, void *arg)
{
	ssize_t n;

	(void)level;
	(void)arg;
	n = write(child_fd, line, strlen(line));
	(void)n;
}

/* Read everything from @p fd into @p buf (NUL terminated). */
static void
read_all(int fd, char *buf, size_t cap_len)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap_len - 1) {
		n = read(fd, buf + got, cap_len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
}

static void
test_fatalx_exits_1(void **state)
{
	char buf[2048];
	int fds[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child_fd = fds[1];
		sr_log_set_sink(pipe_sink, NULL);
		errno = ENOENT;
		fatalx("cannot go on: %d", 7);
	}
	close(fds[1]);
	read_all(fds[0], buf, sizeof(buf));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_true(ends_with(buf, "warning: cannot go on: 7"));
}

static void
test_fatal_exits_1_with_errno(void **state)
{
	char buf[2048], want[256];
	int fds[2], status;
	pid_t pid;

	(void)state;
	snprintf(want, sizeof(want), "warning: no file: %s", strerror(ENOENT));
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child_fd = fds[1];
		sr_log_set_sink(pipe_sink, NULL);
		errno = ENOENT;
		fatal("no file");
	}
	close(fds[1]);
	read_all(fds[0], buf, sizeof(buf));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_true(ends_with(buf, want));
}

static void
test_stderr_priority_prefix(void **state)
{
	char buf[2048];
	int fds[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		if (dup2(fds[1], STDERR_FILENO) < 0)
			_exit(2);
		close(fds[1]);
		sr_log_set_sink(NULL, NULL);
		setenv("SR_LOG_PRIORITY_PREFIX", "1", 1);
		sr_log_init(SR_LOG_DEBUG, "tproc");
		log_warnx("w");
		log_info("i");
		log_debug("d");
		fflush(stderr);
		_exit(0);
	}
	close(fds[1]);
	read_all(fds[0], buf, sizeof(buf));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(strncmp(buf, "<4>", 3) == 0);
	assert_non_null(strstr(buf, " tproc warning: w\n<6>"));
	assert_non_null(strstr(buf, " tproc info: i\n<7>"));
	assert_true(ends_with(buf, " tproc debug: d\n"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_sink_gets_line),
		T(test_verbosity_warn),
		T(test_verbosity_info),
		T(test_verbosity_debug),
		T(test_level_checked_before_args),
		T(test_warn_appends_errno),
		T(test_warnx_ignores_errno),
		T(test_procname),
		T(test_procname_truncated),
		T(test_thread_tag),
		T(test_thread_tag_truncated),
		T(test_thread_tag_names_thread),
		T(test_thread_tag_is_per_thread),
		T(test_long_message_truncated),
		T(test_errno_preserved),
		T(test_fatalx_exits_1),
		T(test_fatal_exits_1_with_errno),
		T(test_stderr_priority_prefix),
#undef T
	};

	return cmocka_run_group_tests_name("lib/log", tests, NULL, NULL);
}
