/*
 * appliance/conn.h: what server.c (the loops and their connections),
 * listen.c (their listening sockets), pending.c (requests answered
 * after work off the loop) and loop_spin.c (polling on after a read)
 * share inside the appliance module. Nothing outside those files
 * includes it.
 *
 * A connection belongs to its loop's thread: only that thread reads or
 * changes it, and a deferred request comes back to that thread to answer.
 */
#ifndef SR_APPLIANCE_CONN_H
#define SR_APPLIANCE_CONN_H

#include <pthread.h>

#include <uv.h>

#include "appliance/internal.h"

#define SRV_READ_CHUNK 16384
#define SRV_WRITE_HIGH (1u << 20) /* stop reading above this backlog */

enum conn_state { C_HANDSHAKE, C_OPEN, C_CLOSING };
/* What the connection's timer is armed for (see conn_arm). */
enum conn_wait {
	W_NONE,
	W_HANDSHAKE,
	W_REQUEST,
	W_BODY,
	W_PENDING,
	W_WRITE,
	W_IDLE
};

/* loop_spin.c: the polling window after a read; see there for why. */
struct loop_spin {
	uv_idle_t idle; /* started while spinning: libuv polls, never sleeps */
	uv_check_t check; /* after each poll: was anything read? */
	unsigned long reads, reads_seen; /* counted by on_read; seen by check */
	uint64_t busy_ns; /* uv_hrtime() at the last poll that read */
	int spinning, open;
};

struct app_loop {
	uv_loop_t loop;
	uv_tcp_t listener;
	uv_timer_t relisten; /* listen.c: reopens a paused listener */
	uv_timer_t wipe;     /* wipes the loop's stack once answers are out */
	uv_connection_cb on_conn; /* the listener's accept callback */
	int paused;               /* out of descriptors: not accepting */
	uv_async_t wake;          /* drain requests from the control thread */
	pthread_mutex_t wake_mu;  /* guards wake_closed against sends */
	int wake_closed;
	uv_thread_t thread;
	struct app *app;
	unsigned id;
	int fd;
	int started;        /* its thread runs */
	struct conn *conns; /* doubly linked, for draining */
	uv_async_t posted;  /* app_pending_post() from other threads */
	pthread_mutex_t posted_mu;
	struct app_pending *posted_head, *posted_tail;
	unsigned npending;  /* requests pending on this loop's connections */
	struct rl_local rl; /* rate-limit tokens this loop took ahead */
	struct loop_spin spin;
};

struct conn {
	uv_tcp_t tcp; /* first: handle->data points back too */
	uv_timer_t timer;
	uv_write_t wreq;
	struct app_loop *l;
	struct app_gen *gen; /* the configuration it was accepted under */
	struct conn *prev, *next;
	struct tls_conn *tls;
	struct http_parser *http;
	struct buf in;   /* plaintext read but not yet parsed */
	struct buf out;  /* a response being built */
	struct buf wbuf; /* ciphertext handed to uv_write */
	enum conn_state state;
	enum conn_wait wait;
	struct app_pending *pending; /* a request answered later, or NULL */
	int writing, close_after, notified, handles;
	int streaming;   /* the pending request sends its answer in parts */
	int read_paused; /* backpressure: not reading the socket */
	int counted;     /* holds a place in the per-address cap */
	int lingering;   /* 1: refused a body (413) mid-upload; 2: reading
	                  * and dropping the rest before the close */
	size_t lingered; /* bytes dropped so */
	uint8_t addr[16];
};

/** Answer what the connection holds and read on (after a deferred
 * request's answer was written into c->out). Loop thread. */
void conn_resume(struct conn *c);
/** Count a finished request for the metrics and the keep-alive decision.
 * Loop thread. */
void conn_answered(struct conn *c, enum metric_route route, int status,
    uint64_t t0_ns, int keep_alive);
/** Drop one of the connection's holds (a handle or a pending request);
 * the last frees it. */
void conn_release(struct conn *c);

/** Arm the connection's timer anew (its pending deadline changed). */
void conn_rearm(struct conn *c);

/** The connection of @p p closed while it was pending: run its on_close
 * callback (once). Loop thread. */
void pending_conn_closed(struct app_pending *p);
/** The pending request's deadline in ms (0: none). */
unsigned pending_deadline(const struct app_pending *p);

/** Draining: end the loop once no connection and no pending request is
 * left. Loop thread. */
void loop_finish(struct app_loop *l);

/** Set up / tear down a loop's queue of posted completions. */
int pending_loop_init(struct app_loop *l);
void pending_loop_close(struct app_loop *l);

/* loop_spin.c, on the loop's thread (init before its uv_run, also from
 * the thread that binds it): with loop_spin_us > 0, after a read the loop
 * polls on for that long before it sleeps. loop_spin_close() closes its
 * handles (drain); both do nothing when spinning is off. */
void loop_spin_init(struct app_loop *l);
void loop_spin_close(struct app_loop *l);

#endif /* SR_APPLIANCE_CONN_H */
