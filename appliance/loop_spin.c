/*
 * appliance/loop_spin.c: a loop that has just read from a connection keeps
 * polling (epoll_wait with no timeout) for loop_spin_us microseconds
 * before it lets itself sleep, so that the next request of a busy client
 * finds it awake.
 *
 * Why: a loop that sleeps in epoll_wait is woken by the kernel when a
 * request arrives, and the waking is paid by whoever made the data
 * arrive: on a busy appliance, by the interrupt path of the NIC, and on
 * loopback by the client's own write(). Measured on 2 vCPUs with h2load
 * beside the daemon (docs/benchmarks.md, "2026-11-24 (late night)"), the
 * loops finish their work faster than nginx's workers and so sleep three
 * times as often; each sleep costs a wake-up, and that cost was the whole
 * gap in keep-alive requests per second (0.93-0.98x nginx). Polling on
 * for 20 us after the last read removes most of those sleeps (0.99-1.03x
 * on 1 and 2 loops). The Go
 * runtime spins before parking a thread for the same reason, and with the
 * same bound on how many spin at once.
 *
 * What it must never do: spin on an idle loop (the window starts only at a
 * read and ends loop_spin_us after the last one, so an idle appliance
 * sleeps within that time of its last request), or let more than half of
 * the loops spin at the same moment (at least one may): a spinning loop
 * holds a core, and the other loops, the audit writer, the HSM workers and
 * the inference scheduler need theirs. It touches its loop's handles on
 * that loop's thread only; the spinner count is the one shared thing.
 */
#include <stdint.h>

#include <uv.h>

#include "appliance/conn.h"

/* Nothing to do: an active idle handle only makes libuv poll with a zero
 * timeout instead of sleeping. */
static void
on_spin_idle(uv_idle_t *h)
{
	(void)h;
}

static void
spin_stop(struct app_loop *l)
{
	if (!l->spin.spinning)
		return;
	uv_idle_stop(&l->spin.idle);
	l->spin.spinning = 0;
	atomic_fetch_sub(&l->app->loop_spinners, 1);
}

/* After every poll: was anything read since the last one? */
static void
on_spin_check(uv_check_t *h)
{
	struct app_loop *l = h->data;
	struct app *app = l->app;
	uint64_t now = uv_hrtime();

	if (l->spin.reads != l->spin.reads_seen) {
		l->spin.reads_seen = l->spin.reads;
		l->spin.busy_ns = now;
		if (l->spin.spinning)
			return;
		if (atomic_fetch_add(&app->loop_spinners, 1) >= app->spin_max) {
			atomic_fetch_sub(&app->loop_spinners, 1);
			return; /* enough loops spin already: this one sleeps */
		}
		uv_idle_start(&l->spin.idle, on_spin_idle);
		l->spin.spinning = 1;
	} else if (l->spin.spinning && now - l->spin.busy_ns > app->spin_ns) {
		spin_stop(l);
	}
}

void
loop_spin_init(struct app_loop *l)
{
	struct app *app = l->app;

	if (app->cfg.loop_spin_us == 0)
		return;
	app->spin_ns = (uint64_t)app->cfg.loop_spin_us * 1000;
	app->spin_max = (int)(app->nloops + 1) / 2;
	uv_idle_init(&l->loop, &l->spin.idle);
	uv_check_init(&l->loop, &l->spin.check);
	l->spin.check.data = l;
	uv_check_start(&l->spin.check, on_spin_check);
	/* Neither keeps the loop alive: a drained loop ends with them. */
	uv_unref((uv_handle_t *)&l->spin.idle);
	uv_unref((uv_handle_t *)&l->spin.check);
	l->spin.open = 1;
}

void
loop_spin_close(struct app_loop *l)
{
	if (!l->spin.open)
		return;
	spin_stop(l);
	uv_close((uv_handle_t *)&l->spin.idle, NULL);
	uv_close((uv_handle_t *)&l->spin.check, NULL);
	l->spin.open = 0;
}
