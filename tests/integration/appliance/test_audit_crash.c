/*
 * tests/integration/appliance/test_audit_crash.c: nothing acknowledged is
 * lost. A child process appends from 8 threads and reports each
 * acknowledged event (seq and who) through a pipe; the parent kill -9s it
 * at a random moment, reopens the log (the resume), and checks that every
 * acknowledged event is in the log at its seq, and that the log verifies.
 * Rounds: SR_AUDIT_CRASH_ROUNDS (default 6). Works in its own scratch
 * folder; the child is always killed and reaped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "tests/unit/appliance/audittest.h"

#define CHILD_THREADS 8

struct ack {
	uint32_t thread, i;
	uint64_t seq;
};

static int ack_fd;
static struct audit *child_log;

static void *
child_thread(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	struct audit_event ev;
	char actor[64];
	struct ack a;
	uint32_t i;

	for (i = 0;; i++) {
		snprintf(actor, sizeof(actor), "crash:%u:%u", t, i);
		ev = at_event(actor, "key.create", "k");
		memset(&a, 0, sizeof(a));
		a.thread = t;
		a.i = i;
		if (audit_append(child_log, &ev, &a.seq) != 0)
			_exit(3);
		if (write(ack_fd, &a, sizeof(a)) != sizeof(a))
			_exit(4);
	}
	return NULL;
}

static void
child_main(const char *dir)
{
	struct audit_options o;
	pthread_t th;
	unsigned t;

	at_options(&o, dir, &at_program_signer, 0);
	o.checkpoint_events = 500;
	if (audit_open(&o, &child_log, NULL) != 0)
		_exit(2);
	for (t = 0; t < CHILD_THREADS; t++)
		pthread_create(&th, NULL, child_thread, (void *)(uintptr_t)t);
	for (;;)
		pause();
}

/* seq -> actor of every line in the log (index by seq). */
static char **
load_actors(const char *dir, uint64_t *max)
{
	char **by_seq = NULL, **v, **nv;
	int64_t *days = NULL;
	size_t nd = 0, n, i, d;
	char name[AUDIT__NAME_LEN + 1];
	uint64_t seq, cap = 0;
	yyjson_doc *doc;
	const char *actor;

	*max = 0;
	assert_int_equal(audit__list_days(dir, &days, &nd), 0);
	for (d = 0; d < nd; d++) {
		audit__file_name(days[d], name);
		n = at_lines(dir, name, &v);
		for (i = 0; i < n; i++) {
			seq = at_u64(v[i], "seq");
			if (seq >= cap) {
				nv = realloc(
				    by_seq, (seq * 2 + 1) * sizeof(*nv));
				assert_non_null(nv);
				memset(nv + cap, 0,
				    (seq * 2 + 1 - cap) * sizeof(*nv));
				by_seq = nv;
				cap = seq * 2 + 1;
			}
			doc = yyjson_read(v[i], strlen(v[i]), 0);
			actor = yyjson_get_str(
			    yyjson_obj_get(yyjson_doc_get_root(doc), "actor"));
			by_seq[seq] = strdup(actor != NULL ? actor : "");
			yyjson_doc_free(doc);
			if (seq > *max)
				*max = seq;
		}
		free(v);
	}
	free(days);
	return by_seq;
}

static void
test_kill9(void **state)
{
	const char *env = getenv("SR_AUDIT_CRASH_ROUNDS");
	unsigned rounds = env != NULL ? (unsigned)atoi(env) : 6, r;
	struct audit_verify_result res;
	struct audit_options o;
	uint64_t acked_total = 0, max, k, got;
	struct ack *acks = NULL;
	size_t nacks, cap = 0;
	char dir[512], want[64], **by_seq;
	struct audit *a;
	uint8_t rnd;
	ssize_t n;
	int fds[2], st;
	pid_t pid;

	(void)state;
	at_mkdtemp("audit-crash", dir);
	for (r = 0; r < rounds; r++) {
		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			ack_fd = fds[1];
			child_main(dir);
		}
		close(fds[1]);
		sr_os_random(&rnd, 1);
		usleep(100 * 1000 + rnd * 1000);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st)); /* not an early exit */
		nacks = 0;
		for (;;) {
			if (nacks == cap) {
				cap = cap ? cap * 2 : 65536;
				acks = realloc(acks, cap * sizeof(*acks));
				assert_non_null(acks);
			}
			n = read(fds[0], &acks[nacks], sizeof(*acks));
			if (n <= 0)
				break;
			assert_int_equal(n, sizeof(*acks));
			nacks++;
		}
		close(fds[0]);
		assert_true(nacks > 0);
		/* The resume (and its own checks), then the whole log. */
		at_options(&o, dir, &at_program_signer, 0);
		a = at_open(&o);
		audit_close(a);
		at_verify(dir, NULL, 0, NULL, 0, &res);
		by_seq = load_actors(dir, &max);
		for (k = 0, got = 0; k < nacks; k++) {
			snprintf(want, sizeof(want), "crash:%u:%u",
			    acks[k].thread, acks[k].i);
			if (acks[k].seq > max || by_seq[acks[k].seq] == NULL ||
			    strcmp(by_seq[acks[k].seq], want) != 0)
				fail_msg("round %u: acknowledged %s (seq %llu) "
				         "is not in the log",
				    r, want, (unsigned long long)acks[k].seq);
			got++;
		}
		for (k = 0; k <= max; k++)
			free(by_seq[k]);
		free(by_seq);
		acked_total += got;
		printf("# round %u: %zu acknowledged events all found; log "
		       "verifies (%llu lines)\n",
		    r, nacks, (unsigned long long)res.lines);
	}
	printf("# %u rounds, %llu acknowledged events checked\n", rounds,
	    (unsigned long long)acked_total);
	free(acks);
	at_rmrf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9),
	};

	return cmocka_run_group_tests(tests, at_group_setup, at_group_teardown);
}
