/*
 * tests/integration/appliance/test_slow.c: strongroomd against slow and
 * greedy clients. Each test starts its own daemon (fork + exec on a free
 * port, short deadlines: handshake and request 1 s, keep-alive idle 2 s)
 * and checks that
 *  - a slowloris dribbling a ClientHello, or request headers, one byte at
 *    a time loses its connection at the deadline however steadily it
 *    dribbles (408 for headers), while a normal client is served at once;
 *  - clients that pipeline requests and never read cannot make the daemon
 *    buffer answers (RSS bound), and go at the idle deadline;
 *  - 2000 idle keep-alive connections cost at most 64 KiB each, show in
 *    /metrics, and all go at the idle deadline;
 * and that the daemon then stops on SIGTERM with status 0 within 10 s.
 * The many connections are driven from this one thread with poll().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#define HANDSHAKE_S 1.0 /* the daemon's deadlines, as configured below */
#define HEADER_S 1.0
#define IDLE_S 2.0
#define PROMPT_S 1.0 /* a normal client is answered within this */
#define IDLE_CONNS 2000
#define CONN_BUDGET_KIB 64         /* per idle keep-alive connection */
#define RSS_GROWTH_KIB (64 * 1024) /* under never-reading clients */
#define RESP_CAP (512 * 1024)
#define NST MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
#define CONNS_OPEN "strongroom_connections_open"
#define METRICS_200 \
	"strongroom_http_requests_total{route=\"metrics\",code=\"200\"}"

static const char conf_text[] =
    "handshake_timeout_ms = 1000\nheader_timeout_ms = 1000\n"
    "idle_timeout_ms = 2000\nmax_conns = 4000\nmax_conns_per_addr = 4000\n"
    "rate_per_addr = 100000\nrate_per_addr_burst = 100000\n"
    "rate_global = 1000000\nrate_global_burst = 1000000\nloops = 2\n";

static char g_dir[PATH_MAX], g_bin[PATH_MAX];
static pid_t g_pid = -1;
static int g_port, g_out = -1, g_ca_loaded, g_have_sess;
static mbedtls_entropy_context g_entropy;
static mbedtls_ctr_drbg_context g_drbg;
static mbedtls_x509_crt g_ca;
static mbedtls_ssl_config g_conf;
static mbedtls_ssl_session g_sess; /* a ticket from the current daemon */
static char *g_resp;               /* RESP_CAP bytes: the last answer */

/* One client connection (TLS when live) and, in a herd, its dribble. */
struct conn {
	mbedtls_net_context net; /* net.fd */
	int live;
	mbedtls_ssl_context ssl;
	size_t pos;         /* next byte of the dribble */
	double first, next; /* first byte sent; next byte (or GET) due */
	double done;        /* when it got its 408 or its end; 0: not yet */
	int got408;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A connected, then non-blocking, socket to the daemon; -1 on failure. */
static int
tcp_open(int rcvbuf)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	a.sin_port = htons((uint16_t)g_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Wait until @p rc (WANT_READ, WANT_WRITE) can go on; -1 past @p end. */
static int
conn_wait(struct conn *c, int rc, double end)
{
	struct pollfd p = { c->net.fd, POLLIN, 0 };
	double left = end - now_s();

	if (rc == NST)
		return 0;
	if (rc == MBEDTLS_ERR_SSL_WANT_WRITE)
		p.events = POLLOUT;
	else if (rc != MBEDTLS_ERR_SSL_WANT_READ || left <= 0)
		return -1;
	return poll(&p, 1, (int)(left * 1000) + 1) > 0 ? 0 : -1;
}

static void
conn_free(struct conn *c)
{
	if (c->live)
		mbedtls_ssl_free(&c->ssl);
	if (c->net.fd >= 0)
		close(c->net.fd);
	c->live = 0;
	c->net.fd = -1;
}

/* Connect and complete a TLS handshake verified for "localhost"; with
 * @p resume from the daemon's ticket (cheaper: no certificate). */
static int
conn_open(struct conn *c, int rcvbuf, int resume)
{
	double end = now_s() + 10;
	int rc;

	c->live = 0;
	if ((c->net.fd = tcp_open(rcvbuf)) < 0)
		return -1;
	mbedtls_ssl_init(&c->ssl);
	c->live = 1;
	if (mbedtls_ssl_setup(&c->ssl, &g_conf) != 0 ||
	    mbedtls_ssl_set_hostname(&c->ssl, "localhost") != 0 ||
	    (resume && g_have_sess &&
	        mbedtls_ssl_set_session(&c->ssl, &g_sess) != 0))
		goto fail;
	mbedtls_ssl_set_bio(
	    &c->ssl, &c->net, mbedtls_net_send, mbedtls_net_recv, NULL);
	while ((rc = mbedtls_ssl_handshake(&c->ssl)) != 0)
		if (conn_wait(c, rc, end) != 0)
			goto fail;
	return 0;
fail:
	conn_free(c);
	return -1;
}

static int
conn_write(struct conn *c, const void *data, size_t len)
{
	double end = now_s() + 10;
	size_t off = 0;
	int rc;

	while (off < len) {
		rc = mbedtls_ssl_write(
		    &c->ssl, (const unsigned char *)data + off, len - off);
		if (rc > 0)
			off += (size_t)rc;
		else if (conn_wait(c, rc, end) != 0)
			return -1;
	}
	return 0;
}

/* GET @p path; the answer into g_resp. @return the status, or -1. */
static int
conn_get(struct conn *c, const char *path, int keep)
{
	char req[128], *out = g_resp, *eoh = NULL, *cl;
	size_t len = 0, want = SIZE_MAX;
	double end = now_s() + 10;
	int rc;

	snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", path,
	    keep ? "" : "Connection: close\r\n");
	if (conn_write(c, req, strlen(req)) != 0)
		return -1;
	while (len < want && len + 1 < RESP_CAP) {
		rc = mbedtls_ssl_read(
		    &c->ssl, (unsigned char *)out + len, RESP_CAP - 1 - len);
		if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == 0)
			return -1; /* answers carry a Content-Length */
		if (rc < 0 && conn_wait(c, rc, end) != 0)
			return -1;
		if (rc < 0)
			continue;
		len += (size_t)rc;
		out[len] = '\0';
		if (eoh == NULL && (eoh = strstr(out, "\r\n\r\n")) != NULL &&
		    (cl = strcasestr(out, "\r\ncontent-length:")) != NULL &&
		    cl < eoh)
			want = (size_t)(eoh + 4 - out) +
			    strtoul(cl + 17, NULL, 10);
	}
	return len == want && strncmp(out, "HTTP/1.1 ", 9) == 0 ? atoi(out + 9)
	                                                        : -1;
}

/* A normal client: a fresh connection, a full handshake, one GET with
 * Connection: close. @return the status; in *secs the time it took. */
static int
normal_get(const char *path, double *secs)
{
	struct conn c;
	double t0 = now_s();
	int status = -1;

	if (conn_open(&c, 0, 0) == 0)
		status = conn_get(&c, path, 0);
	/* The daemon's ticket came with the answer: keep it for herds. */
	if (status > 0 && !g_have_sess &&
	    mbedtls_ssl_get_session(&c.ssl, &g_sess) == 0)
		g_have_sess = 1;
	conn_free(&c);
	if (secs != NULL)
		*secs = now_s() - t0;
	return status;
}

/* The value of one sample of /metrics (0 when absent: a counter not yet
 * counted), or -1 when /metrics does not answer. The open connections
 * count the scrape's own. */
static long long
metric(const char *name)
{
	const char *p = g_resp;
	size_t n = strlen(name);

	if (normal_get("/metrics", NULL) != 200)
		return -1;
	while ((p = strstr(p, name)) != NULL) {
		if (p > g_resp && p[-1] == '\n' && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p += n;
	}
	return 0;
}

static long
rss_kib(void)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)g_pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

/* ------------------------------------------------------------------ */
/* A herd of clients, driven by poll()                                  */
/* ------------------------------------------------------------------ */

struct herd {
	struct conn *c;
	struct pollfd *pfd;
	size_t n;            /* opened so far */
	const uint8_t *drip; /* the bytes dribbled, one each @p every s */
	size_t len;
	double every;
	int tls;
};

static struct herd g_herd; /* freed by the test teardown */

static struct herd *
herd_new(size_t cap, const void *drip, size_t len, double every, int tls)
{
	struct herd *h = &g_herd;

	*h = (struct herd){ calloc(cap, sizeof(*h->c)),
		calloc(cap, sizeof(*h->pfd)), 0, drip, len, every, tls };
	assert_true(h->c != NULL && h->pfd != NULL);
	return h;
}

static void
herd_free(struct herd *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		conn_free(&h->c[i]);
	free(h->c);
	free(h->pfd);
	memset(h, 0, sizeof(*h));
}

/* Read what the daemon sent: a 408, an alert, or the end. */
static void
herd_read(struct herd *h, struct conn *c, double now)
{
	unsigned char buf[4096];
	ssize_t r;

	for (;;) {
		r = h->tls ? mbedtls_ssl_read(&c->ssl, buf, sizeof(buf))
		           : recv(c->net.fd, buf, sizeof(buf), 0);
		if (r == NST)
			continue;
		if ((h->tls && r == MBEDTLS_ERR_SSL_WANT_READ) ||
		    (!h->tls && r < 0 && errno == EAGAIN))
			return;
		/* The answer is one record: its start comes whole. */
		if (r >= 12 && c->done == 0 &&
		    memcmp(buf, "HTTP/1.1 408", 12) == 0)
			c->got408 = 1;
		if (c->done == 0 && (r <= 0 || c->got408))
			c->done = now;
		if (r <= 0)
			return;
	}
}

/* One more byte on every connection whose next byte is due. */
static void
herd_send(struct herd *h, struct conn *c, double now)
{
	int r;

	if (c->done == 0 && c->pos < h->len && c->next <= now) {
		do
			r = h->tls
			    ? mbedtls_ssl_write(&c->ssl, h->drip + c->pos, 1)
			    : (int)send(
			          c->net.fd, h->drip + c->pos, 1, MSG_NOSIGNAL);
		while (r == NST);
		if (r == 1) {
			c->pos++;
			c->next += h->every;
		} else if (h->tls ? r != MBEDTLS_ERR_SSL_WANT_WRITE
		                  : errno != EAGAIN) {
			c->done = now; /* the daemon closed it */
		}
	}
}

/* Dribble and read until @p until, or until every connection is done. */
static void
herd_run(struct herd *h, double until)
{
	double now, wake;
	size_t i, k;

	do {
		now = now_s();
		for (i = k = 0, wake = until; i < h->n; i++) {
			herd_send(h, &h->c[i], now);
			if (h->c[i].done != 0)
				continue;
			if (h->c[i].pos < h->len && h->c[i].next < wake)
				wake = h->c[i].next;
			h->pfd[k++] =
			    (struct pollfd){ h->c[i].net.fd, POLLIN, 0 };
		}
		if (k == 0)
			return;
		wake = wake > now ? wake - now : 0;
		if (poll(h->pfd, k, (int)(wake * 1000)) <= 0)
			continue;
		now = now_s();
		for (i = k = 0; i < h->n; i++)
			if (h->c[i].done == 0 && h->pfd[k++].revents != 0)
				herd_read(h, &h->c[i], now);
	} while (now_s() < until);
}

/* At least 95 % of the herd ended (closed, or answered 408) at most 2 s
 * past the @p deadline after their first byte. */
static void
assert_ended(struct herd *h, const char *what, double deadline)
{
	size_t i, n = 0, got408 = 0;
	double t, last = 0;

	for (i = 0; i < h->n; i++) {
		t = h->c[i].done - h->c[i].first;
		if (h->c[i].done == 0 || t > deadline + 2.0)
			continue;
		n++;
		got408 += (size_t)h->c[i].got408;
		last = t > last ? t : last;
	}
	print_message("# %zu/%zu %s ended (%zu with a 408), the last after "
	              "%.2f s (deadline %.1f s)\n",
	    n, h->n, what, got408, last, deadline);
	if (n * 100 < h->n * 95)
		fail_msg("only %zu of %zu %s ended within %.1f s", n, h->n,
		    what, deadline + 2.0);
}

/* ------------------------------------------------------------------ */
/* The daemon                                                           */
/* ------------------------------------------------------------------ */

/* SIGTERM: the daemon must drain and exit 0 within 10 s. */
static int
daemon_stop(void **state)
{
	char cmd[PATH_MAX + 32];
	double end = now_s() + 10;
	int status = 0, ok = 0;
	pid_t r = 0;

	(void)state;
	herd_free(&g_herd);
	if (g_pid <= 0)
		return 0;
	kill(g_pid, SIGTERM);
	while ((r = waitpid(g_pid, &status, WNOHANG)) == 0 && now_s() < end)
		usleep(10 * 1000);
	ok = r == g_pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (r == 0) {
		fprintf(stderr, "strongroomd still runs 10 s after SIGTERM\n");
		kill(g_pid, SIGKILL);
		waitpid(g_pid, &status, 0);
	} else if (!ok) {
		fprintf(stderr, "strongroomd exited with status 0x%x\n",
		    (unsigned)status);
	}
	snprintf(cmd, sizeof(cmd), "tail -n 20 '%s/err' >&2", g_dir);
	if (!ok && system(cmd) != 0)
		fprintf(stderr, "(no daemon log)\n");
	close(g_out);
	g_out = -1;
	g_pid = -1;
	return ok ? 0 : -1;
}

/* fork + exec; the port from the banner on its stdout; a first request
 * (a full handshake) for the ticket that the herds resume from. */
static int
daemon_start(void **state)
{
	char state_dir[PATH_MAX + 8], conf[PATH_MAX + 8], text[4096] = "", *p;
	struct pollfd pf = { -1, POLLIN, 0 };
	int pipefd[2], efd;
	size_t len = 0;
	ssize_t r;

	snprintf(state_dir, sizeof(state_dir), "%s/state", g_dir);
	snprintf(conf, sizeof(conf), "%s/err", g_dir);
	efd = open(conf, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	snprintf(conf, sizeof(conf), "%s/conf", g_dir);
	if (efd < 0 || pipe2(pipefd, O_CLOEXEC) != 0)
		return -1;
	if ((g_pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* should this test die */
		dup2(pipefd[1], 1);
		dup2(efd, 2);
		execl(g_bin, g_bin, "--state-dir", state_dir, "--listen",
		    "127.0.0.1:0", "--config", conf, (char *)NULL);
		dprintf(2, "exec %s: %s\n", g_bin, strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	close(efd);
	pf.fd = g_out = pipefd[0];
	/* The banner comes in one flush; "try:" is its last line. */
	while (g_pid > 0 && strstr(text, "strongroomd: try:") == NULL &&
	    len + 1 < sizeof(text) && poll(&pf, 1, 30000) > 0 &&
	    (r = read(g_out, text + len, sizeof(text) - 1 - len)) > 0)
		text[len += (size_t)r] = '\0';
	p = strstr(text, "strongroomd: serving https://localhost:");
	g_port = p != NULL ? atoi(p + 39) : 0;
	snprintf(conf, sizeof(conf), "%s/tls/cert.pem", state_dir);
	if (g_port > 0 && !g_ca_loaded &&
	    mbedtls_x509_crt_parse_file(&g_ca, conf) == 0) {
		mbedtls_ssl_conf_ca_chain(&g_conf, &g_ca, NULL);
		g_ca_loaded = 1;
	}
	mbedtls_ssl_session_free(&g_sess);
	mbedtls_ssl_session_init(&g_sess);
	g_have_sess = 0;
	if (g_port > 0 && normal_get("/health", NULL) == 200 && g_have_sess)
		return 0;
	fprintf(stderr, "strongroomd did not start and answer GET /health\n");
	daemon_stop(state);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void
assert_prompt(const char *what)
{
	double secs;
	int status = normal_get("/health", &secs);

	print_message(
	    "# %s: a normal GET /health took %.1f ms\n", what, secs * 1000);
	assert_int_equal(status, 200);
	if (secs >= PROMPT_S)
		fail_msg("%s: a normal client waited %.2f s (at most %.1f s)",
		    what, secs, PROMPT_S);
}

/* 1. 300 connections dribble a ClientHello a byte every 500 ms. */
static void
test_slow_handshake(void **state)
{
	/* A handshake record of 512 bytes: a ClientHello of 508. */
	static const uint8_t hello[10] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
		0x00, 0x01, 0xfc, 0x03 };
	static uint8_t rest[502];
	struct herd *h = herd_new(300, rest, sizeof(rest), 0.5, 0);
	double last = 0;
	size_t i, n = 300;

	(void)state;
	memset(rest, 0x5a, sizeof(rest));
	for (i = 0; i < n; i++) {
		struct conn *c = &h->c[i];

		assert_true((c->net.fd = tcp_open(0)) >= 0);
		h->n++;
		assert_int_equal(
		    send(c->net.fd, hello, sizeof(hello), MSG_NOSIGNAL),
		    sizeof(hello));
		last = c->first = now_s();
		c->next = c->first + h->every;
	}
	herd_run(h, h->c[0].first + 0.2);
	assert_prompt("300 slow handshakes");
	herd_run(h, last + HANDSHAKE_S + 2.0);
	assert_ended(h, "slow handshakes", HANDSHAKE_S);
}

/* 2. 200 TLS connections dribble request headers a byte every 300 ms. */
static void
test_slow_headers(void **state)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n";
	struct herd *h = herd_new(200, req, sizeof(req) - 1, 0.3, 1);
	double last = 0;
	size_t i, n = 200;

	(void)state;
	for (i = 0; i < n; i++) {
		struct conn *c = &h->c[i];

		assert_int_equal(conn_open(c, 0, 1), 0);
		h->n++;
		last = c->first = c->next = now_s();
		herd_run(h, 0); /* its first byte; the others dribble on */
		assert_int_equal(c->pos, 1);
	}
	herd_run(h, now_s() + 0.2);
	assert_prompt("200 slow request headers");
	herd_run(h, last + HEADER_S + 2.0);
	assert_ended(h, "slow requests", HEADER_S);
}

/* 3. 50 TLS connections pipeline GET /metrics, 200 in each write, and
 * never read. 5 writes: some 8 MB of answers each, more than loopback's
 * socket buffers take, so the daemon's writes do stall. */
static void
test_never_reading(void **state)
{
	static const char one[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t i, n = 50, k = 200, writes = 5, len = (sizeof(one) - 1) * k;
	struct herd *h = herd_new(n, NULL, 0, 0, 1);
	char *pipeline = malloc(len);
	long rss0, rss, peak = 0;
	long long open0, open, done0, done;
	double sent;

	(void)state;
	assert_non_null(pipeline);
	for (i = 0; i < k; i++)
		memcpy(pipeline + i * (sizeof(one) - 1), one, sizeof(one) - 1);
	assert_prompt("before");
	done0 = metric(METRICS_200);
	open0 = metric(CONNS_OPEN);
	rss0 = rss_kib();
	assert_true(open0 >= 1 && done0 >= 0 && rss0 > 0);
	for (i = 0; i < n * writes; i++) {
		if (i % writes == 0) {
			/* A small receive window: writes stall sooner. */
			assert_int_equal(
			    conn_open(&h->c[i / writes], 4096, 1), 0);
			h->n++;
		}
		assert_int_equal(
		    conn_write(&h->c[i / writes], pipeline, len), 0);
	}
	free(pipeline);
	sent = now_s();
	assert_prompt("50 clients that never read");
	do { /* until they are gone: the RSS at its peak */
		rss = rss_kib();
		peak = rss > peak ? rss : peak;
		open = metric(CONNS_OPEN);
		usleep(100 * 1000);
	} while (open > open0 && now_s() < sent + IDLE_S + 2.0);
	done = metric(METRICS_200) - done0 - 1;
	print_message("# %zu never-reading clients, %zu pipelined GET /metrics "
	              "each: %lld answered; daemon RSS %ld -> %ld KiB at peak "
	              "(+%ld KiB, bound +%d KiB); all gone after %.2f s\n",
	    n, k * writes, done, rss0, peak, peak - rss0, RSS_GROWTH_KIB,
	    now_s() - sent);
	if (peak - rss0 >= RSS_GROWTH_KIB)
		fail_msg("the daemon's RSS grew by %ld KiB under clients that "
		         "never read (bound %d KiB)",
		    peak - rss0, RSS_GROWTH_KIB);
	if (open > open0)
		fail_msg("%lld never-reading connections still open %.1f s "
		         "after they stopped (idle timeout %.1f s)",
		    open - open0, IDLE_S + 2.0, IDLE_S);
}

/* 4. 2000 idle keep-alive connections: memory, /metrics, idle timeout. */
static void
test_idle_keepalive(void **state)
{
	size_t i, j, n = IDLE_CONNS, eof = 0, gets = 0;
	struct herd *h = herd_new(n, NULL, 0, 0, 1);
	long rss0, rss1;
	long long open;
	double t0, opened, per, now;
	char buf[4096];
	ssize_t r;

	(void)state;
	assert_prompt("before");
	rss0 = rss_kib();
	assert_true(rss0 > 0);
	for (i = 0, t0 = now_s(); i < n; i++) {
		assert_int_equal(conn_open(&h->c[i], 0, 1), 0);
		h->n++;
		assert_int_equal(conn_get(&h->c[i], "/health", 1), 200);
		h->c[i].next = now = now_s();
		/* Opening them all takes longer than the idle deadline: one
		 * more GET on those that have waited half of it. */
		for (j = 0; j < i; j++) {
			if (now - h->c[j].next < IDLE_S / 2)
				continue;
			assert_int_equal(conn_get(&h->c[j], "/health", 1), 200);
			h->c[j].next = now_s();
			gets++;
		}
	}
	opened = now_s();
	rss1 = rss_kib();
	per = (double)(rss1 - rss0) / (double)n;
	print_message("# %zu idle keep-alive connections: %.1f KiB per "
	              "connection (budget %d KiB; RSS %ld -> %ld KiB; opened "
	              "in %.2f s, with %zu more GETs against the deadline)\n",
	    n, per, CONN_BUDGET_KIB, rss0, rss1, opened - t0, gets);
	if (per > CONN_BUDGET_KIB)
		fail_msg("an idle keep-alive connection costs %.1f KiB "
		         "(budget %d KiB)",
		    per, CONN_BUDGET_KIB);
	open = metric(CONNS_OPEN);
	print_message("# /metrics: " CONNS_OPEN " %lld\n", open);
	assert_true(open >= (long long)n);

	while (
	    (open = metric(CONNS_OPEN)) > 1 && now_s() < opened + IDLE_S + 3.0)
		usleep(50 * 1000);
	print_message("# " CONNS_OPEN " back to %lld %.2f s after the last "
	              "request\n",
	    open, now_s() - opened);
	if (open > 1)
		fail_msg("%lld connections still open %.1f s after the last "
		         "request (idle timeout %.1f s)",
		    open - 1, IDLE_S + 3.0, IDLE_S);
	for (i = 0; i < n; i++) { /* each client sees its end */
		while ((r = recv(h->c[i].net.fd, buf, sizeof(buf), 0)) > 0)
			;
		eof += r == 0 || errno == ECONNRESET;
	}
	assert_int_equal(eof, n);
}

static int
group_setup(void **state)
{
	static const uint16_t p256[] = { MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
		MBEDTLS_SSL_IANA_TLS_GROUP_NONE };
	const char *base = getenv("SR_TEST_TMP"), *build = getenv("BUILD");
	struct rlimit rl;
	char conf[PATH_MAX + 8];
	FILE *f;

	(void)state;
	/* 2000 connections here and 2000 in the daemon (which inherits). */
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	rl.rlim_max = rl.rlim_max > 8192 ? rl.rlim_max : 8192;
	rl.rlim_cur = rl.rlim_cur > 8192 ? rl.rlim_cur : 8192;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		perror("RLIMIT_NOFILE 8192");
		return -1;
	}
	snprintf(g_bin, sizeof(g_bin), "%s/bin/strongroomd",
	    build != NULL && *build != '\0' ? build : "build");
	snprintf(g_dir, sizeof(g_dir), "%s/slow-XXXXXX",
	    base != NULL && *base != '\0' ? base : "/tmp");
	if (access(g_bin, X_OK) != 0 || mkdtemp(g_dir) == NULL) {
		fprintf(
		    stderr, "%s or %s: %s\n", g_bin, g_dir, strerror(errno));
		return -1;
	}
	snprintf(conf, sizeof(conf), "%s/conf", g_dir);
	if ((f = fopen(conf, "w")) == NULL || fputs(conf_text, f) < 0 ||
	    fclose(f) != 0 || psa_crypto_init() != PSA_SUCCESS ||
	    (g_resp = malloc(RESP_CAP)) == NULL)
		return -1;
	mbedtls_entropy_init(&g_entropy);
	mbedtls_ctr_drbg_init(&g_drbg);
	mbedtls_x509_crt_init(&g_ca);
	mbedtls_ssl_config_init(&g_conf);
	mbedtls_ssl_session_init(&g_sess);
	if (mbedtls_ctr_drbg_seed(&g_drbg, mbedtls_entropy_func, &g_entropy,
	        (const unsigned char *)"slow", 4) != 0 ||
	    mbedtls_ssl_config_defaults(&g_conf, MBEDTLS_SSL_IS_CLIENT,
	        MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT) != 0)
		return -1;
	mbedtls_ssl_conf_authmode(&g_conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_rng(&g_conf, mbedtls_ctr_drbg_random, &g_drbg);
	/* P-256 is mbedTLS's fastest key exchange; and take the daemon's
	 * tickets (mbedTLS 3.6 drops them otherwise). */
	mbedtls_ssl_conf_groups(&g_conf, p256);
	mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
	    &g_conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	mbedtls_ssl_session_free(&g_sess);
	mbedtls_ssl_config_free(&g_conf);
	mbedtls_x509_crt_free(&g_ca);
	mbedtls_ctr_drbg_free(&g_drbg);
	mbedtls_entropy_free(&g_entropy);
	mbedtls_psa_crypto_free();
	free(g_resp);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (g_dir[0] != '\0' && getenv("SR_TEST_KEEP") == NULL)
		return system(cmd) == 0 ? 0 : -1;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_slow_handshake, daemon_start, daemon_stop),
		cmocka_unit_test_setup_teardown(
		    test_slow_headers, daemon_start, daemon_stop),
		cmocka_unit_test_setup_teardown(
		    test_never_reading, daemon_start, daemon_stop),
		cmocka_unit_test_setup_teardown(
		    test_idle_keepalive, daemon_start, daemon_stop),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
