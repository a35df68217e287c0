/*
 * tests/unit/appliance/nolibcrypto.h: run a test program again as a child
 * whose libcrypto can do nothing, to prove that what the daemon hands to
 * libcrypto is still done (by mbedTLS) when libcrypto cannot: OPENSSL_CONF
 * names a configuration that loads only OpenSSL's null provider, read when
 * the new image first calls libcrypto. Header-only, after cmocka.h.
 *
 * The program's main() must start with
 *     if (nolibcrypto_child()) return its_child_main();
 * and that child main returns 0 when everything held, 3 when libcrypto
 * could still work (the fault was not injected), or another code naming
 * the step that failed.
 *
 * It must never leave its configuration file behind.
 */
#ifndef SR_TEST_NOLIBCRYPTO_H
#define SR_TEST_NOLIBCRYPTO_H

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOLIBCRYPTO_ENV "SR_TEST_NO_LIBCRYPTO"

/* 1 in the child that nolibcrypto_run() started. */
static int
nolibcrypto_child(void)
{
	return getenv(NOLIBCRYPTO_ENV) != NULL;
}

/* Start this program again without a working libcrypto and assert that
 * its child main exited 0. */
static void
nolibcrypto_run(void)
{
	static const char conf[] = "openssl_conf = init\n"
	                           "[init]\nproviders = prov\n"
	                           "[prov]\nnull = null_sect\n"
	                           "[null_sect]\nactivate = 1\n";
	char path[] = "/tmp/sr-nolibcrypto-XXXXXX";
	int fd, status;
	pid_t pid;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, conf, sizeof(conf) - 1), sizeof(conf) - 1);
	close(fd);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A new image: this one's libcrypto may be set up already. */
		setenv("OPENSSL_CONF", path, 1);
		setenv(NOLIBCRYPTO_ENV, "1", 1);
		execl("/proc/self/exe", "nolibcrypto-child", (char *)NULL);
		_exit(2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(path);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

#endif /* SR_TEST_NOLIBCRYPTO_H */
