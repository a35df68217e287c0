/*
 * tests/unit/appliance/test_config.c: appliance/config.c: the defaults,
 * every key set and read back, bad values per key type with their exact
 * messages, the listen address forms, a configuration file with comments,
 * quotes and blank lines, the loader's "PATH:LINE: problem" errors, the
 * checks between keys, a file that is not there, and what
 * process_protect() asks of the kernel (in a child). File tests work in a
 * fresh mkdtemp folder each and must never touch anything outside it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "appliance/internal.h"

/* ---------------------------------------------------------------- */
/* Keys                                                               */
/* ---------------------------------------------------------------- */

static void
test_defaults(void **state)
{
	struct app_config c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	app_config_defaults(&c);
	assert_string_equal(c.listen, "127.0.0.1:8443");
	assert_string_equal(c.state_dir, "build/state");
	assert_string_equal(c.hsm_uri, "");
	assert_string_equal(c.cert_file, "");
	assert_string_equal(c.key_file, "");
	assert_int_equal(c.tls12, 0);
	assert_int_equal(c.loops, 0);
	assert_int_equal(c.loop_spin_us, 20);
	assert_int_equal(c.max_conns, 10000);
	assert_int_equal(c.max_conns_per_addr, 256);
	assert_int_equal(c.max_header_bytes, 16384);
	assert_int_equal(c.max_url_bytes, 8192);
	assert_int_equal(c.max_body_bytes, 1 << 20);
	assert_int_equal(c.max_headers, 100);
	assert_int_equal(c.handshake_timeout_ms, 10000);
	assert_int_equal(c.header_timeout_ms, 10000);
	assert_int_equal(c.body_timeout_ms, 30000);
	assert_int_equal(c.idle_timeout_ms, 60000);
	assert_true(c.rate_global == 1000);
	assert_true(c.rate_global_burst == 2000);
	assert_true(c.rate_per_addr == 100);
	assert_true(c.rate_per_addr_burst == 200);
	assert_int_equal(c.ticket_rotate_s, 86400);
	assert_int_equal(c.foreground, 0);
}

static void
set_ok(struct app_config *c, const char *key, const char *value)
{
	char err[256] = "";
	int rc = app_config_set(c, key, value, err);

	if (rc != 0)
		fail_msg("%s = %s: %s", key, value, err);
}

static void
test_set_every_key(void **state)
{
	struct app_config c;

	(void)state;
	app_config_defaults(&c);
	set_ok(&c, "listen", "[::]:9443");
	set_ok(&c, "state_dir", "/var/lib/strongroom");
	set_ok(&c, "hsm_uri", "pkcs11:token=prod;slot-id=1");
	set_ok(&c, "cert_file", "/etc/strongroom/cert.pem");
	set_ok(&c, "key_file", "relative/key.pem");
	set_ok(&c, "tls12", "yes");
	set_ok(&c, "loops", "256");
	set_ok(&c, "max_conns", "1000000");
	set_ok(&c, "max_conns_per_addr", "7");
	set_ok(&c, "max_header_bytes", "1048576");
	set_ok(&c, "max_url_bytes", "256");
	set_ok(&c, "max_body_bytes", "1073741824");
	set_ok(&c, "max_headers", "8");
	set_ok(&c, "handshake_timeout_ms", "100");
	set_ok(&c, "header_timeout_ms", "3600000");
	set_ok(&c, "body_timeout_ms", "1234");
	set_ok(&c, "idle_timeout_ms", "5000");
	set_ok(&c, "rate_global", "10000000");
	set_ok(&c, "rate_global_burst", "1");
	set_ok(&c, "rate_per_addr", "0.5");
	set_ok(&c, "rate_per_addr_burst", "2.25");
	set_ok(&c, "ticket_rotate_s", "604800");
	set_ok(&c, "foreground", "on");
	set_ok(&c, "core_dumps", "yes");

	assert_string_equal(c.listen, "[::]:9443");
	assert_string_equal(c.state_dir, "/var/lib/strongroom");
	assert_string_equal(c.hsm_uri, "pkcs11:token=prod;slot-id=1");
	assert_string_equal(c.cert_file, "/etc/strongroom/cert.pem");
	assert_string_equal(c.key_file, "relative/key.pem");
	assert_int_equal(c.tls12, 1);
	assert_int_equal(c.loops, 256);
	assert_int_equal(c.max_conns, 1000000);
	assert_int_equal(c.max_conns_per_addr, 7);
	assert_int_equal(c.max_header_bytes, 1048576);
	assert_int_equal(c.max_url_bytes, 256);
	assert_int_equal(c.max_body_bytes, 1073741824);
	assert_int_equal(c.max_headers, 8);
	assert_int_equal(c.handshake_timeout_ms, 100);
	assert_int_equal(c.header_timeout_ms, 3600000);
	assert_int_equal(c.body_timeout_ms, 1234);
	assert_int_equal(c.idle_timeout_ms, 5000);
	assert_true(c.rate_global == 1e7);
	assert_true(c.rate_global_burst == 1);
	assert_true(c.rate_per_addr == 0.5);
	assert_true(c.rate_per_addr_burst == 2.25);
	assert_int_equal(c.ticket_rotate_s, 604800);
	assert_int_equal(c.foreground, 1);
	assert_int_equal(c.core_dumps, 1);

	/* Booleans both ways, any case; empty strings where they mean the
	 * default. */
	set_ok(&c, "tls12", "false");
	assert_int_equal(c.tls12, 0);
	set_ok(&c, "foreground", "TRUE");
	assert_int_equal(c.foreground, 1);
	set_ok(&c, "foreground", "0");
	assert_int_equal(c.foreground, 0);
	set_ok(&c, "foreground", "1");
	assert_int_equal(c.foreground, 1);
	set_ok(&c, "tls12", "off");
	assert_int_equal(c.tls12, 0);
	set_ok(&c, "tls12", "no");
	assert_int_equal(c.tls12, 0);
	set_ok(&c, "hsm_uri", "");
	assert_string_equal(c.hsm_uri, "");
	set_ok(&c, "cert_file", "");
	assert_string_equal(c.cert_file, "");
	set_ok(&c, "loops", "0");
	assert_int_equal(c.loops, 0);
	set_ok(&c, "loop_spin_us", "0"); /* off */
	assert_int_equal(c.loop_spin_us, 0);
	set_ok(&c, "loop_spin_us", "1000");
	assert_int_equal(c.loop_spin_us, 1000);
	set_ok(&c, "max_body_bytes", "0");
	assert_int_equal(c.max_body_bytes, 0);
	set_ok(&c, "max_conns", "007");
	assert_int_equal(c.max_conns, 7);
}

struct bad {
	const char *key, *value, *err; /* err NULL: any message will do */
};

static const struct bad bad_values[] = {
	{ "max_conns", "0",
	    "bad value for 'max_conns': out of range (1..1000000)" },
	{ "max_conns", "1000001",
	    "bad value for 'max_conns': out of range (1..1000000)" },
	{ "max_conns", "-1",
	    "bad value for 'max_conns': not a decimal number" },
	{ "max_conns", "+5", NULL },
	{ "max_conns", "abc", NULL },
	{ "max_conns", "12abc", NULL },
	{ "max_conns", "12 ", NULL },
	{ "max_conns", " 12", NULL },
	{ "max_conns", "0x10", NULL },
	{ "max_conns", "1e3", NULL },
	{ "max_conns", "", "bad value for 'max_conns': empty value" },
	{ "max_conns", "99999999999999999999999999", NULL },
	{ "loops", "257", "bad value for 'loops': out of range (0..256)" },
	{ "loop_spin_us", "1001",
	    "bad value for 'loop_spin_us': out of range (0..1000)" },
	{ "max_conns_per_addr", "0", NULL },
	{ "max_header_bytes", "1023",
	    "bad value for 'max_header_bytes': out of range (1024..1048576)" },
	{ "max_header_bytes", "1048577", NULL },
	{ "max_url_bytes", "255", NULL },
	{ "max_body_bytes", "1073741825", NULL },
	{ "max_headers", "7", NULL },
	{ "max_headers", "1001", NULL },
	{ "handshake_timeout_ms", "99",
	    "bad value for 'handshake_timeout_ms': out of range "
	    "(100..3600000)" },
	{ "header_timeout_ms", "3600001", NULL },
	{ "body_timeout_ms", "", NULL },
	{ "idle_timeout_ms", "1.5", NULL },
	{ "ticket_rotate_s", "59", NULL },
	{ "ticket_rotate_s", "604801", NULL },
	{ "tls12", "maybe",
	    "bad value for 'tls12': not a boolean "
	    "(true/false/yes/no/on/off/1/0)" },
	{ "tls12", "", NULL },
	{ "foreground", "2", NULL },
	{ "rate_global", "0",
	    "bad value for 'rate_global': out of range (> 0 and <= "
	    "10000000)" },
	{ "rate_global", "10000000.5", NULL },
	{ "rate_per_addr", "-1", NULL },
	{ "rate_per_addr", "1e3", NULL },
	{ "rate_per_addr", "nan", NULL },
	{ "rate_per_addr", "inf", NULL },
	{ "rate_per_addr", "1.", NULL },
	{ "rate_per_addr", ".5", NULL },
	{ "rate_per_addr", "10/s", NULL },
	{ "rate_per_addr", "", NULL },
	{ "rate_global_burst", "0.5",
	    "bad value for 'rate_global_burst': out of range "
	    "(1..1000000000)" },
	{ "rate_per_addr_burst", "0", NULL },
	{ "state_dir", "", "bad value for 'state_dir': empty value" },
	{ "state_dir", "a\tb",
	    "bad value for 'state_dir': control character in value" },
	{ "hsm_uri", "http://hsm",
	    "bad value for 'hsm_uri': not a pkcs11: URI" },
	{ "listen", "", NULL },
	{ "serve_backend", "gpu",
	    "bad value for 'serve_backend': not auto, "
	    "cpu or cuda" },
	{ "serve_backend", "", NULL },
};

static void
test_bad_values(void **state)
{
	struct app_config c, before;
	char err[256];
	size_t i;

	(void)state;
	app_config_defaults(&c);
	before = c;
	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		const struct bad *b = &bad_values[i];
		char prefix[64];

		err[0] = '\0';
		if (app_config_set(&c, b->key, b->value, err) != -EINVAL)
			fail_msg("%s = '%s' was accepted", b->key, b->value);
		snprintf(
		    prefix, sizeof(prefix), "bad value for '%s': ", b->key);
		if (strncmp(err, prefix, strlen(prefix)) != 0)
			fail_msg("%s = '%s': %s", b->key, b->value, err);
		if (b->err != NULL)
			assert_string_equal(err, b->err);
		/* A refused value leaves the configuration as it was. */
		assert_memory_equal(&c, &before, sizeof(c));
	}
}

static void
test_bad_strings(void **state)
{
	struct app_config c;
	char err[256], *big;

	(void)state;
	app_config_defaults(&c);
	assert_int_equal(app_config_set(&c, "nope", "1", err), -EINVAL);
	assert_string_equal(err, "unknown key 'nope'");
	assert_int_equal(app_config_set(&c, "", "1", err), -EINVAL);
	assert_string_equal(err, "unknown key ''");

	/* Bounded by the field: PATH_MAX - 1 bytes fit, PATH_MAX do not. */
	big = malloc(8192);
	assert_non_null(big);
	memset(big, 'd', PATH_MAX - 1);
	big[PATH_MAX - 1] = '\0';
	set_ok(&c, "state_dir", big);
	assert_int_equal(strlen(c.state_dir), PATH_MAX - 1);
	memset(big, 'd', PATH_MAX);
	big[PATH_MAX] = '\0';
	assert_int_equal(app_config_set(&c, "key_file", big, err), -EINVAL);
	assert_string_equal(err, "bad value for 'key_file': too long");
	memset(big, 'p', 4096);
	memcpy(big, "pkcs11:", 7);
	big[4096] = '\0';
	assert_int_equal(app_config_set(&c, "hsm_uri", big, err), -EINVAL);
	big[4095] = '\0';
	set_ok(&c, "hsm_uri", big);
	free(big);
}

static void
test_listen_forms(void **state)
{
	static const char *const good[] = { "[::1]:8443", "[::]:8443", ":8443",
		"0.0.0.0:8443", "127.0.0.1:1", "10.1.2.3:65535", "127.0.0.1:0",
		"[fe80::1:2]:443", "[::ffff:127.0.0.1]:80" };
	static const char *const bad[] = { "host", "[::1", "[::1]", "[::1]8443",
		"[::1]:", "::1:8443", "1.2.3.4:65536",
		"1.2.3.4:", "1.2.3.4:+80", "1.2.3.4:80x", "localhost:8443",
		"256.1.1.1:80", "[zz]:80", "[]:80", ":", "1.2.3.4:-1",
		"1.2.3.4:99999999999999999999" };
	struct app_config c;
	char err[256];
	size_t i;

	(void)state;
	app_config_defaults(&c);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		set_ok(&c, "listen", good[i]);
		assert_string_equal(c.listen, good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (app_config_set(&c, "listen", bad[i], err) != -EINVAL)
			fail_msg("listen '%s' was accepted", bad[i]);
	assert_string_equal(c.listen, good[sizeof(good) / sizeof(good[0]) - 1]);

	assert_int_equal(
	    app_config_set(&c, "listen", "127.0.0.1:65536", err), -EINVAL);
	assert_string_equal(
	    err, "bad value for 'listen': port must be 0..65535");
	assert_int_equal(app_config_set(&c, "listen", "host", err), -EINVAL);
	assert_string_equal(err, "bad value for 'listen': expected HOST:PORT");
	assert_int_equal(app_config_set(&c, "listen", "[::1", err), -EINVAL);
	assert_string_equal(
	    err, "bad value for 'listen': missing ']' after the IPv6 address");
	assert_int_equal(
	    app_config_set(&c, "listen", "::1:8443", err), -EINVAL);
	assert_string_equal(err,
	    "bad value for 'listen': an IPv6 address needs brackets: "
	    "[ADDR]:PORT");
}

/* ---------------------------------------------------------------- */
/* Files                                                              */
/* ---------------------------------------------------------------- */

struct dir {
	char path[64];
	char file[96];
};

static int
dir_setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/sr-config-XXXXXX");
	if (mkdtemp(d->path) == NULL) {
		free(d);
		return -1;
	}
	snprintf(d->file, sizeof(d->file), "%s/strongroomd.conf", d->path);
	*state = d;
	return 0;
}

static int
dir_teardown(void **state)
{
	struct dir *d = *state;

	unlink(d->file);
	rmdir(d->path);
	free(d);
	return 0;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static void
test_load_good(void **state)
{
	struct dir *d = *state;
	struct app_config c;
	char err[256] = "";

	write_file(d->file,
	    "# strongroomd configuration\n"
	    "\n"
	    "   # an indented comment\n"
	    "listen = [::1]:9443   # trailing comment\n"
	    "state_dir=\"/srv/state dir # not a comment\"\n"
	    "\thsm_uri\t=\t\"pkcs11:token=a\\\"b\\\\c\"\t# quoted escapes\n"
	    "cert_file = /etc/sr/cert#1.pem\n"
	    "key_file =\n"
	    "tls12 = on\r\n"
	    "max_conns = 500\n"
	    "max_conns_per_addr = 50\n"
	    "max_header_bytes = 2048\n"
	    "max_url_bytes = 1024\n"
	    "rate_per_addr = 2.5\n"
	    "rate_per_addr_burst = \"10\"\n"
	    "foreground = yes"); /* no newline at the end */
	app_config_defaults(&c);
	assert_int_equal(app_config_load(&c, d->file, err), 0);
	assert_string_equal(err, "");
	assert_string_equal(c.listen, "[::1]:9443");
	assert_string_equal(c.state_dir, "/srv/state dir # not a comment");
	assert_string_equal(c.hsm_uri, "pkcs11:token=a\"b\\c");
	assert_string_equal(c.cert_file, "/etc/sr/cert#1.pem");
	assert_string_equal(c.key_file, "");
	assert_int_equal(c.tls12, 1);
	assert_int_equal(c.max_conns, 500);
	assert_int_equal(c.max_conns_per_addr, 50);
	assert_int_equal(c.max_header_bytes, 2048);
	assert_int_equal(c.max_url_bytes, 1024);
	assert_true(c.rate_per_addr == 2.5);
	assert_true(c.rate_per_addr_burst == 10);
	assert_int_equal(c.foreground, 1);
	/* Untouched keys keep their values. */
	assert_int_equal(c.max_headers, 100);

	/* An empty file changes nothing. */
	write_file(d->file, "");
	assert_int_equal(app_config_load(&c, d->file, err), 0);
	assert_int_equal(c.max_conns, 500);
}

struct bad_file {
	const char *text, *err; /* err after "PATH:" */
};

static const struct bad_file bad_files[] = {
	{ "# x\nbogus = 1\n", "2: unknown key 'bogus'" },
	{ "loops = 1\n\nloops = 2\n",
	    "3: duplicate key 'loops' (first on line 1)" },
	{ "tls12 = yes\nlisten 127.0.0.1:80\n", "2: missing '='" },
	{ "listen\n", "1: missing '='" },
	{ "= 5\n", "1: missing key before '='" },
	{ "\n\nmax_conns = lots\n",
	    "3: bad value for 'max_conns': not a decimal number" },
	{ "max_headers = 5 # too few\n",
	    "1: bad value for 'max_headers': out of range (8..1000)" },
	{ "state_dir = \"/srv/x\n", "1: unterminated quote" },
	{ "state_dir = \"/srv\\x\"\n",
	    "1: bad escape in quoted value (only \\\" and \\\\)" },
	{ "state_dir = \"/srv\" junk\n", "1: junk after the closing quote" },
	{ "max_header_bytes = 2048\nmax_url_bytes = 4096\n",
	    "2: max_url_bytes (4096) exceeds max_header_bytes (2048)" },
	{ "max_header_bytes = 4096\n",
	    "1: max_url_bytes (8192) exceeds "
	    "max_header_bytes (4096)" },
	{ "max_conns_per_addr = 20\nloops = 1\nmax_conns = 10\n",
	    "3: max_conns_per_addr (20) exceeds max_conns (10)" },
};

static void
test_load_errors(void **state)
{
	struct dir *d = *state;
	struct app_config c, before;
	char err[256], want[512];
	size_t i;

	(void)state;
	app_config_defaults(&c);
	before = c;
	for (i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		write_file(d->file, bad_files[i].text);
		err[0] = '\0';
		assert_int_equal(app_config_load(&c, d->file, err), -EINVAL);
		snprintf(
		    want, sizeof(want), "%s:%s", d->file, bad_files[i].err);
		assert_string_equal(err, want);
		/* All or nothing: a bad file changes nothing. */
		assert_memory_equal(&c, &before, sizeof(c));
	}
}

/* What start-up and SIGHUP build: defaults, the file, then the flags; and
 * which changes only a restart applies. */
static void
test_compose(void **state)
{
	struct dir *d = *state;
	struct app_config c, o;
	struct app_flags f = { "127.0.0.1:9443", NULL, NULL };
	char err[256];

	write_file(d->file, "listen = 0.0.0.0:1\nmax_url_bytes = 1024\n");
	assert_int_equal(app_config_compose(&c, d->file, &f, err), 0);
	assert_string_equal(c.listen, "127.0.0.1:9443");
	assert_int_equal(c.max_url_bytes, 1024);
	assert_int_equal(c.drain_timeout_ms, 30000);
	assert_int_equal(app_config_compose(&o, NULL, NULL, err), 0);
	assert_string_equal(o.listen, "127.0.0.1:8443");
	assert_null(app_config_restart_key(&o, &o));
	o.max_url_bytes = 1; /* live settings are not restart keys */
	o.tls12 = 1;
	assert_string_equal(app_config_restart_key(&o, &c), "listen");
	c = o;
	c.loops = 7;
	assert_string_equal(app_config_restart_key(&o, &c), "loops");
	c = o;
	c.loop_spin_us = 0;
	assert_string_equal(app_config_restart_key(&o, &c), "loop_spin_us");
	c = o;
	snprintf(c.state_dir, sizeof(c.state_dir), "/elsewhere");
	assert_string_equal(app_config_restart_key(&o, &c), "state_dir");
	assert_int_equal(o.core_dumps, 0); /* no core files by default */
	c = o;
	c.core_dumps = 1;
	assert_string_equal(app_config_restart_key(&o, &c), "core_dumps");
	f = (struct app_flags){ "nonsense", NULL, NULL };
	assert_int_equal(app_config_compose(&c, NULL, &f, err), -EINVAL);
	assert_non_null(strstr(err, "listen"));
	write_file(d->file, "bogus = 1\n");
	assert_int_equal(app_config_compose(&c, d->file, NULL, err), -EINVAL);
}

static void
test_load_long_line(void **state)
{
	struct dir *d = *state;
	struct app_config c;
	char err[256], want[512], *text;

	text = malloc(20000);
	assert_non_null(text);
	/* Exactly 8192 bytes is fine. */
	memcpy(text, "loops = 3 #", 11);
	memset(text + 11, 's', 8192 - 11);
	memcpy(text + 8192, "\r\n", 3);
	write_file(d->file, text);
	app_config_defaults(&c);
	assert_int_equal(app_config_load(&c, d->file, err), 0);
	assert_int_equal(c.loops, 3);

	memcpy(text, "loops = 1\nstate_dir = ", 22);
	memset(text + 22, 's', 9000);
	memcpy(text + 22 + 9000, "\nloops = 2\n", 12);
	write_file(d->file, text);
	assert_int_equal(app_config_load(&c, d->file, err), -EINVAL);
	snprintf(
	    want, sizeof(want), "%s:2: line longer than 8192 bytes", d->file);
	assert_string_equal(err, want);
	free(text);
}

static void
test_load_missing(void **state)
{
	struct dir *d = *state;
	struct app_config c;
	char err[256] = "", path[128];

	app_config_defaults(&c);
	snprintf(path, sizeof(path), "%s/absent.conf", d->path);
	assert_int_equal(app_config_load(&c, path, err), -ENOENT);
	assert_non_null(strstr(err, "absent.conf"));
	/* A folder is not a configuration file. */
	assert_true(app_config_load(&c, d->path, err) < 0);
}

/* ---------------------------------------------------------------- */
/* process_protect (process.c)                                        */
/* ---------------------------------------------------------------- */

/* In a child, so this test process keeps its own settings: what
 * process_protect(@p core_dumps) leaves. Exit 0 when it is as expected. */
static int
protect_in_child(int core_dumps)
{
	struct rlimit before, after;
	char err[256] = "";
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		if (getrlimit(RLIMIT_CORE, &before) != 0 ||
		    prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1)
			_exit(10); /* a child starts dumpable */
		if (process_protect(core_dumps, err) != 0 || err[0] != '\0')
			_exit(11);
		if (getrlimit(RLIMIT_CORE, &after) != 0)
			_exit(12);
		if (!core_dumps)
			_exit(after.rlim_cur == 0 && after.rlim_max == 0 &&
			            prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
			        ? 0
			        : 13);
		_exit(after.rlim_cur == before.rlim_cur &&
		            after.rlim_max == before.rlim_max &&
		            prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1
		        ? 0
		        : 14);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void
test_process_protect(void **state)
{
	(void)state;
	/* The default: no core file, not dumpable. */
	assert_int_equal(protect_in_child(0), 0);
	/* core_dumps = yes: the limits and the flag as they were. */
	assert_int_equal(protect_in_child(1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_set_every_key),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_bad_strings),
		cmocka_unit_test(test_listen_forms),
		cmocka_unit_test_setup_teardown(
		    test_load_good, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(
		    test_load_errors, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(
		    test_load_long_line, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(
		    test_load_missing, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(
		    test_compose, dir_setup, dir_teardown),
		cmocka_unit_test(test_process_protect),
	};

	return cmocka_run_group_tests_name(
	    "appliance/config", tests, NULL, NULL);
}
