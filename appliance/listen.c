/*
 * appliance/listen.c: each loop's listening socket: the listen address
 * parsed, the port checked free, one SO_REUSEPORT socket per loop opened
 * and listened on, and accepting paused when the process is out of file
 * descriptors.
 *
 * Why the pause: accept() failing with EMFILE or ENFILE leaves the
 * connection queued and the socket readable, and libuv 1.44 retries at
 * once, inside the same callback; its spare-descriptor fallback is shared
 * by every loop of the process and does not survive several loops, so one
 * loop spun at 100 % and served none of its connections. Closing the
 * listener ends libuv's retry; it is opened again 500 ms later (nginx
 * waits the same), on the same port, while the other loops' sockets keep
 * the port. It must never reopen a listener once a drain has begun; past
 * start-up it runs on the loop's own thread only. The address is parsed
 * once, at start (listen_prepare), for every loop and every reopening.
 *
 * And why the descriptor limit is raised at start (listen_fit_nofile):
 * systemd and login shells give processes a soft limit of 1024 while
 * max_conns defaults to 10000, so without it the pause above would be the
 * daemon's normal state past about a thousand clients.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <uv.h>

#include "appliance/conn.h"
#include "appliance/internal.h"

#define LISTEN_PAUSE_MS 500
/* Descriptors beyond the connections: state and keystore files, the
 * HSM library's, the audit day file and journal, each loop's epoll,
 * eventfd, timers and listener, and headroom for a reload's files. */
#define NOFILE_MARGIN 256

static int
parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(text, ':');
	size_t hl;
	int port;

	if (colon == NULL)
		return -EINVAL;
	port = atoi(colon + 1);
	hl = (size_t)(colon - text);
	if (hl >= sizeof(host) || port < 0 || port > 65535)
		return -EINVAL;
	memcpy(host, text, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		memmove(host, host + 1, hl - 1);
	}
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '\0' || strchr(host, ':') != NULL) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (host[0] != '\0' &&
		    uv_inet_pton(AF_INET6, host, &a->sin6_addr) != 0)
			return -EINVAL;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (uv_inet_pton(AF_INET, host, &a->sin_addr) != 0)
			return -EINVAL;
		*len = sizeof(*a);
	}
	return 0;
}

/* SO_REUSEPORT would let a second daemon (same user) share the port and
 * take half its connections without either noticing. A plain bind first
 * fails with EADDRINUSE while anyone listens there. */
static int
port_free(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;
	int one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	rc = bind(fd, (const struct sockaddr *)ss, len) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

int
listen_prepare(struct app *app, char err[256])
{
	struct sockaddr_storage *ss = &app->listen_addr;
	int rc;

	if (parse(app->cfg.listen, ss, &app->listen_len) != 0) {
		snprintf(
		    err, 256, "listen '%s': not HOST:PORT", app->cfg.listen);
		return -EINVAL;
	}
	if (((struct sockaddr_in *)ss)->sin_port != 0 &&
	    (rc = port_free(ss, app->listen_len)) != 0) {
		snprintf(err, 256, "listen %s: %s%s", app->cfg.listen,
		    strerror(-rc),
		    rc == -EADDRINUSE ? " (another server, or another "
		                        "strongroomd, is listening there)"
		                      : "");
		return rc;
	}
	return 0;
}

int
listen_open(struct app *app, struct app_loop *l, char err[256])
{
	struct sockaddr_storage ss = app->listen_addr;
	socklen_t len = app->listen_len;
	int one = 1, fd, rc;

	if (app->port > 0) /* later loops join the port the first bound */
		((struct sockaddr_in *)&ss)->sin_port =
		    htons((uint16_t)app->port);
	fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) != 0) {
		rc = -errno;
		snprintf(err, 256, "listen %s: %s", app->cfg.listen,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (app->port == 0) {
		len = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &len);
		app->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	l->fd = fd;
	uv_tcp_init(&l->loop, &l->listener);
	l->listener.data = l;
	rc = uv_tcp_open(&l->listener, fd);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->listener, 1024, l->on_conn);
	if (rc != 0) {
		snprintf(err, 256, "listen %s: %s", app->cfg.listen,
		    uv_strerror(rc));
		/* The handle owns the descriptor now: closing it closes both.
		 */
		uv_close((uv_handle_t *)&l->listener, NULL);
	}
	return rc;
}

static void
on_relisten(uv_timer_t *t)
{
	struct app_loop *l = t->data;
	char err[256];

	if (!l->paused || atomic_load(&l->app->draining) != 0)
		return;
	if (listen_open(l->app, l, err) != 0) {
		/* Still out of descriptors (or the port was taken): the
		 * handle is closing; try again after the next pause. */
		log_debug("loop%u: %s; trying again in %d ms", l->id, err,
		    LISTEN_PAUSE_MS);
		uv_timer_start(&l->relisten, on_relisten, LISTEN_PAUSE_MS, 0);
		return;
	}
	l->paused = 0;
	log_info("loop%u: accepting connections again", l->id);
}

void
listen_pause(struct app_loop *l, int status)
{
	if (uv_is_closing((uv_handle_t *)&l->listener) ||
	    atomic_load(&l->app->draining) != 0)
		return;
	log_warnx("loop%u: accept: %s: not accepting for %d ms", l->id,
	    uv_strerror(status), LISTEN_PAUSE_MS);
	l->paused = 1;
	uv_close((uv_handle_t *)&l->listener, NULL);
	uv_timer_start(&l->relisten, on_relisten, LISTEN_PAUSE_MS, 0);
}

void
listen_stop(struct app_loop *l)
{
	if (!uv_is_closing((uv_handle_t *)&l->listener))
		uv_close((uv_handle_t *)&l->listener, NULL);
	if (!uv_is_closing((uv_handle_t *)&l->relisten))
		uv_close((uv_handle_t *)&l->relisten, NULL);
}

unsigned long
listen_fit_nofile(unsigned max_conns)
{
	rlim_t need = (rlim_t)max_conns + NOFILE_MARGIN;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || need < rl.rlim_max
		    ? need
		    : rl.rlim_max;
		if (rl.rlim_cur > was && setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_info("descriptors: soft limit raised from %llu to "
			         "%llu for max_conns %u",
			    (unsigned long long)was,
			    (unsigned long long)rl.rlim_cur, max_conns);
		else
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		log_warnx("descriptors: the limit is %llu but max_conns %u "
		          "needs %llu; past about %llu connections accepting "
		          "pauses: raise LimitNOFILE (docs/operations.md)",
		    (unsigned long long)rl.rlim_cur, max_conns,
		    (unsigned long long)need,
		    (unsigned long long)(rl.rlim_cur > NOFILE_MARGIN
		            ? rl.rlim_cur - NOFILE_MARGIN
		            : 0));
	return rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1
	                                    : (unsigned long)rl.rlim_cur;
}
