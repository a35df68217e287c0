/*
 * tests/integration/keystore/test_crash.c: nothing acknowledged is lost.
 *
 * A writer process creates keys from four threads and prints each id the
 * moment the keystore acknowledges it; it is killed with SIGKILL at a random
 * moment, again and again (50 rounds in `make test`, SR_CRASH_ROUNDS for
 * `make bench`). After every kill a checker process opens the keystore and
 * proves that every acknowledged key exists, decrypts and verifies, and that
 * the whole environment passes the consistency walk. Children are fresh
 * processes (fork + exec), so nothing is forked after C_Initialize or
 * mdb_env_open.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keystore/keystore.h"
#include "tests/integration/pkcs11/fixture.h"

static struct p11_fixture fx;
static char ksdir[600], ackfile[600];

/* ------------------------------------------------------------------ */
/* Child roles                                                          */
/* ------------------------------------------------------------------ */

static int
child_open(
    const char *uri, const char *dir, struct p11_ctx **hsm, struct ks **ks)
{
	struct ks_options o = { .path = dir };
	char err[256];

	if (p11_open(uri, NULL, hsm, err) != 0) {
		fprintf(stderr, "child: p11_open: %s\n", err);
		return 1;
	}
	if (ks_open(*hsm, &o, ks, err) != 0) {
		fprintf(stderr, "child: ks_open: %s\n", err);
		return 1;
	}
	return 0;
}

static struct ks *writer_ks;

static void *
writer_thread(void *arg)
{
	struct ks_request *q = malloc(sizeof(*q));
	struct ks_reply *r = malloc(sizeof(*r));
	char line[KS_ID_LEN + 3];
	unsigned i;

	(void)arg;
	if (q == NULL || r == NULL)
		_exit(3);
	for (i = 0;; i++) {
		ks_request_init(q, KS_OP_CREATE);
		q->u.create.kind = i % 4 == 0 ? KS_KIND_USER : KS_KIND_DATA;
		ks_reply_init(r);
		if (ks_call(writer_ks, q, r) != 0) {
			fprintf(stderr, "writer: %s\n", sr_strerror(r->status));
			_exit(4);
		}
		/* The acknowledgement: one write(2) per line, so a kill
		 * never leaves half an id behind. */
		snprintf(line, sizeof(line), "%s\n", r->meta.id);
		if (write(1, line, strlen(line)) != (ssize_t)strlen(line))
			_exit(5);
	}
	return NULL;
}

static int
run_writer(const char *uri, const char *dir)
{
	struct p11_ctx *hsm;
	pthread_t th[4];
	int i;

	if (child_open(uri, dir, &hsm, &writer_ks) != 0)
		return 1;
	if (write(1, "ready\n", 6) != 6)
		return 1;
	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, writer_thread, NULL);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	return 0;
}

/*
 * Verify the acknowledged ids from byte @p from of the ack file on (0: all
 * of them), then walk the whole environment.
 */
static int
run_checker(const char *uri, const char *dir, const char *acks, long from)
{
	struct ks_request *q = malloc(sizeof(*q));
	struct ks_reply *r = malloc(sizeof(*r));
	struct p11_ctx *hsm;
	struct ks *ks;
	char line[64];
	FILE *f;
	long n = 0, bad = 0;

	if (q == NULL || r == NULL || child_open(uri, dir, &hsm, &ks) != 0)
		return 1;
	f = fopen(acks, "r");
	if (f == NULL || fseek(f, from, SEEK_SET) != 0)
		return 1;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		ks_request_init(q, KS_OP_MATERIAL);
		snprintf(q->u.key.id, sizeof(q->u.key.id), "%s", line);
		ks_reply_init(r);
		if (ks_call(ks, q, r) != 0 || r->material_len != 32) {
			fprintf(stderr, "checker: acknowledged %s: %s\n", line,
			    sr_strerror(r->status));
			bad++;
		}
		ks_reply_wipe(r);
		n++;
	}
	fclose(f);
	ks_request_init(q, KS_OP_CHECK);
	ks_reply_init(r);
	if (ks_call(ks, q, r) != 0) {
		fprintf(stderr, "checker: consistency walk: %s\n",
		    sr_strerror(r->status));
		bad++;
	}
	printf("checked %ld acknowledged keys, %llu records\n", n,
	    (unsigned long long)r->stats.checked);
	ks_close(ks);
	p11_close(hsm);
	return bad == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* The parent                                                           */
/* ------------------------------------------------------------------ */

static char from_arg[32] = "0";

static pid_t
spawn(const char *role, int *out_fd)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/proc/self/exe", "test_crash", role, fx.uri, ksdir,
		    ackfile, from_arg, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	*out_fd = fds[0];
	return pid;
}

/* Read lines until "ready", or until EOF; append ids to the ack file. */
static long
drain(int fd, FILE *acks, int until_ready)
{
	static char buf[1 << 16];
	static size_t have;
	long ids = 0;
	ssize_t n;
	char *nl;

	for (;;) {
		while ((nl = memchr(buf, '\n', have)) != NULL) {
			*nl = '\0';
			if (strcmp(buf, "ready") == 0) {
				memmove(
				    buf, nl + 1, have - (size_t)(nl + 1 - buf));
				have -= (size_t)(nl + 1 - buf);
				if (until_ready)
					return 0;
				continue;
			}
			if (strlen(buf) == KS_ID_LEN) {
				fprintf(acks, "%s\n", buf);
				ids++;
			}
			memmove(buf, nl + 1, have - (size_t)(nl + 1 - buf));
			have -= (size_t)(nl + 1 - buf);
		}
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n <= 0) {
			have = 0;
			return until_ready ? -1 : ids;
		}
		have += (size_t)n;
	}
}

static int
wait_exit(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void
test_kill_nine_loses_nothing(void **state)
{
	const char *env = getenv("SR_CRASH_ROUNDS");
	int rounds = env != NULL ? atoi(env) : 50, round, fd, rc;
	long acked = 0, got;
	FILE *acks;
	pid_t pid;
	char line[256];
	FILE *out;

	(void)state;
	srand((unsigned)time(NULL));
	for (round = 0; round < rounds; round++) {
		acks = fopen(ackfile, "a");
		assert_non_null(acks);
		/* Every acknowledged key is checked after every kill, as long
		 * as that stays linear enough: past 50 rounds (the long run
		 * of `make bench`) each round checks its own acknowledgements
		 * and the full walk, and every 50th round and the last
		 * re-check them all. */
		fseek(acks, 0, SEEK_END);
		snprintf(from_arg, sizeof(from_arg), "%ld",
		    rounds <= 50 || round % 50 == 49 || round + 1 == rounds
		        ? 0L
		        : ftell(acks));
		pid = spawn("--writer", &fd);
		assert_true(pid > 0);
		assert_int_equal(drain(fd, acks, 1), 0);
		/* Let it write for 5..150 ms (2..30 ms in the long run, so the
		 * keystore stays small enough to walk 1000 times), then pull
		 * the plug. */
		usleep((useconds_t)(rounds <= 50 ? 5000 + rand() % 145000
		                                 : 2000 + rand() % 28000));
		kill(pid, SIGKILL);
		got = drain(fd, acks, 0);
		close(fd);
		assert_int_equal(wait_exit(pid), 128 + SIGKILL);
		fclose(acks);
		acked += got;

		pid = spawn("--check", &fd);
		out = fdopen(fd, "r");
		assert_non_null(out);
		while (fgets(line, sizeof(line), out) != NULL)
			if (round + 1 == rounds)
				fprintf(stderr, "# %s", line);
		fclose(out);
		rc = wait_exit(pid);
		if (rc != 0)
			fprintf(stderr, "round %d: checker failed\n", round);
		assert_int_equal(rc, 0);
	}
	fprintf(stderr, "# %d kills, %ld acknowledged keys, all present\n",
	    rounds, acked);
	assert_true(acked > 0);
}

static int
setup(void **state)
{
	int fd, rc;
	pid_t pid;

	(void)state;
	p11_fixture_setup(&fx, "crash");
	snprintf(ksdir, sizeof(ksdir), "%s/keystore", fx.dir);
	snprintf(ackfile, sizeof(ackfile), "%s/acks", fx.dir);
	fd = open(ackfile, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0)
		return -1;
	close(fd);
	/* First start (roots, DEK) in a clean run of the checker. */
	pid = spawn("--check", &fd);
	while (read(fd, (char[64]){ 0 }, 64) > 0)
		;
	close(fd);
	rc = wait_exit(pid);
	return rc == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	p11_fixture_teardown(&fx);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_nine_loses_nothing),
	};

	/* Children inherit SOFTHSM2_CONF from the fixture's set-up. */
	if (argc == 6 && strcmp(argv[1], "--writer") == 0)
		return run_writer(argv[2], argv[3]);
	if (argc == 6 && strcmp(argv[1], "--check") == 0)
		return run_checker(argv[2], argv[3], argv[4], atol(argv[5]));
	return cmocka_run_group_tests_name(
	    "keystore/crash", tests, setup, teardown);
}
