/*
 * gwa_waker.c - the send queue, the check list and the UDP socket of the
 * wake-ups; see gwa_waker.h.
 */
#include "gwa/gwa_waker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/wakeup.h"
#include "gwa/gwa_fault.h"

#define SLICE_US 5000 /* signing time per loop iteration before sockets are served again */

struct gwa_waker {
    struct event_base *base;
    struct gwa_orders *orders;
    struct gwa_waker_config cfg;
    char gwa_id[WAKEUP_GWA_ID_MAX + 1];
    int fd;
    struct event *pump;  /* works off the send queue */
    struct event *timer; /* the first check due */
    struct gwa_gw *q_head, *q_tail;
    struct gwa_gw *c_head, *c_tail;
    struct gwa_prng drop;
    int stopped;
    struct gwa_waker_counts counts;
};

static int64_t mono_ms(void)
{
    return time_mono_us() / 1000;
}

/* --- the check list ----------------------------------------------------------- */

static void check_unlink(struct gwa_waker *w, struct gwa_gw *g)
{
    if (!g->wake_checking)
        return;
    if (g->check_prev)
        g->check_prev->check_next = g->check_next;
    else
        w->c_head = g->check_next;
    if (g->check_next)
        g->check_next->check_prev = g->check_prev;
    else
        w->c_tail = g->check_prev;
    g->check_prev = g->check_next = NULL;
    g->wake_checking = 0;
}

static void arm_timer(struct gwa_waker *w)
{
    if (w->c_head == NULL || w->stopped) {
        evtimer_del(w->timer);
        return;
    }
    int64_t wait = w->c_head->check_mono_ms - mono_ms();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(w->timer, &tv);
}

/* Append: every wait is the same interval, so the list stays sorted. */
static void check_append(struct gwa_waker *w, struct gwa_gw *g, int64_t due)
{
    check_unlink(w, g);
    g->check_mono_ms = due;
    g->check_prev = w->c_tail;
    g->check_next = NULL;
    if (w->c_tail)
        w->c_tail->check_next = g;
    else
        w->c_head = g;
    w->c_tail = g;
    g->wake_checking = 1;
    if (w->c_head == g)
        arm_timer(w);
}

/* --- sending ---------------------------------------------------------------------- */

static void send_datagram(struct gwa_waker *w, const struct gwa_gw *g, int attempt)
{
    struct wakeup msg;
    uint8_t buf[WAKEUP_MAX_LEN];

    memset(&msg, 0, sizeof msg); /* an all-zero nonce: wakeup_encode() draws one */
    memcpy(msg.smgw_id, g->id, sizeof msg.smgw_id);
    memcpy(msg.gwa_id, w->gwa_id, sizeof msg.gwa_id);
    msg.ts_ms = time_now_ms();
    int n = wakeup_encode(&msg, w->cfg.key, buf, sizeof buf);
    if (n < 0) {
        w->counts.errors++;
        LOG(LOG_ERROR, "cannot sign a wake-up", LOG_S("smgw", g->id), LOG_S("error", strerror(-n)));
        return;
    }
    ssize_t rc = sendto(w->fd, buf, (size_t)n, MSG_DONTWAIT,
                        (const struct sockaddr *)&w->cfg.target, w->cfg.target_len);
    if (rc != n) {
        w->counts.errors++;
        LOG(LOG_WARN, "cannot send a wake-up", LOG_S("smgw", g->id), LOG_I("attempt", attempt),
            LOG_S("error", rc < 0 ? strerror(errno) : "short write"));
        return;
    }
    w->counts.sent++;
    LOG(LOG_DEBUG, "wake-up sent", LOG_S("smgw", g->id), LOG_I("attempt", attempt),
        LOG_I("bytes", n));
}

/* One wake-up for all open orders of 'g'. The orders count it as an
 * attempt whether or not fault injection drops it: the GWA cannot know. */
static void wake(struct gwa_waker *w, struct gwa_gw *g)
{
    int64_t now = time_now_ms();
    int attempt = 0;

    for (struct gwa_order *o = g->open_head; o; o = o->gw_next) {
        if (o->attempts < UINT8_MAX)
            o->attempts++;
        if (o->attempts > attempt)
            attempt = o->attempts;
        if (o->state == ORDER_PENDING)
            gwa_orders_set_state(w->orders, o, ORDER_WOKEN, NULL, now);
    }
    if (attempt > 1)
        w->counts.retried++;
    if (gwa_prng_share(&w->drop, w->cfg.drop_pct)) {
        w->counts.dropped++;
        LOG(LOG_DEBUG, "wake-up dropped", LOG_S("smgw", g->id), LOG_I("attempt", attempt),
            LOG_S("reason", "fault injection"));
    } else {
        send_datagram(w, g, attempt);
    }
    check_append(w, g, mono_ms() + w->cfg.interval_ms);
}

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gwa_waker *w = arg;
    (void)fd;
    (void)what;
    int64_t end = time_mono_us() + SLICE_US;
    while (w->q_head && !w->stopped && time_mono_us() < end) {
        struct gwa_gw *g = w->q_head;
        w->q_head = g->wake_next;
        if (w->q_head == NULL)
            w->q_tail = NULL;
        g->wake_next = NULL;
        g->wake_queued = 0;
        if (g->nopen > 0) /* fetched meanwhile: nothing to do */
            wake(w, g);
    }
    /* The next slice after the loop has polled sockets again (a timer, not
     * event_active(), which would run before any I/O), so that a burst of
     * wake-ups does not hold up HTTP answers. */
    if (w->q_head && !w->stopped) {
        struct timeval now = {0, 0};
        evtimer_add(w->pump, &now);
    }
}

/* The first gateways on the check list are due: fail what has had its
 * attempts, wake the rest again. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gwa_waker *w = arg;
    int64_t now = mono_ms(), wall = time_now_ms();
    (void)fd;
    (void)what;
    while (w->c_head && w->c_head->check_mono_ms <= now) {
        struct gwa_gw *g = w->c_head;
        check_unlink(w, g);
        for (struct gwa_order *o = g->open_head, *next; o; o = next) {
            next = o->gw_next;
            if (o->attempts >= w->cfg.retries)
                gwa_orders_set_state(w->orders, o, ORDER_FAILED, GWA_WAKER_FAILED_REASON, wall);
        }
        if (g->nopen > 0)
            gwa_waker_need(w, g);
    }
    arm_timer(w);
}

/* --- public ------------------------------------------------------------------------- */

struct gwa_waker *gwa_waker_new(struct event_base *base, struct gwa_orders *orders,
                                const struct gwa_waker_config *cfg, char *err, size_t errlen)
{
    struct gwa_waker *w = calloc(1, sizeof *w);
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->base = base;
    w->orders = orders;
    w->cfg = *cfg;
    w->fd = -1;
    if (str_copy(w->gwa_id, sizeof w->gwa_id, cfg->gwa_id) != 0 || cfg->retries < 1 ||
        cfg->retries > 255 || cfg->interval_ms < 1) {
        snprintf(err, errlen, "bad wake-up settings");
        goto fail;
    }
    gwa_prng_seed(&w->drop, cfg->seed, 1);
    w->fd = socket(cfg->target.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (w->fd < 0) {
        snprintf(err, errlen, "cannot open the wake-up socket: %s", strerror(errno));
        goto fail;
    }
    w->pump = event_new(base, -1, 0, pump_cb, w);
    w->timer = evtimer_new(base, timer_cb, w);
    if (w->pump == NULL || w->timer == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return w;
fail:
    gwa_waker_free(w);
    return NULL;
}

void gwa_waker_free(struct gwa_waker *w)
{
    if (w == NULL)
        return;
    if (w->pump)
        event_free(w->pump);
    if (w->timer)
        event_free(w->timer);
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}

void gwa_waker_need(struct gwa_waker *w, struct gwa_gw *g)
{
    if (g->wake_queued)
        return;
    g->wake_queued = 1;
    g->wake_next = NULL;
    if (w->q_tail)
        w->q_tail->wake_next = g;
    else
        w->q_head = g;
    w->q_tail = g;
    if (!w->stopped && !event_pending(w->pump, EV_TIMEOUT, NULL))
        event_active(w->pump, EV_TIMEOUT, 0);
}

void gwa_waker_forget(struct gwa_waker *w, struct gwa_gw *g)
{
    /* A queued gateway is skipped when its turn comes (the queue is singly
     * linked); the check list gives it up now. */
    check_unlink(w, g);
    arm_timer(w);
}

void gwa_waker_stop(struct gwa_waker *w)
{
    w->stopped = 1;
    evtimer_del(w->timer);
    event_del(w->pump);
}

void gwa_waker_counts(const struct gwa_waker *w, struct gwa_waker_counts *out)
{
    *out = w->counts;
}
