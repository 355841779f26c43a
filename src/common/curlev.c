/*
 * curlev.c - libcurl's multi interface on libevent; see curlev.h.
 */
#include "common/curlev.h"

#include <errno.h>
#include <stdlib.h>

struct curlev {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    curlev_done_fn done;
    void *arg;
};

/* Hand every finished transfer to the caller. */
static void check_done(struct curlev *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode result = msg->data.result;
        curl_multi_remove_handle(c->multi, e);
        c->done(c->arg, e, result);
    }
}

static void sock_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct curlev *c = arg;
    int running,
        action = (kind & EV_READ ? CURL_CSELECT_IN : 0) | (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(c->multi, fd, action, &running);
    check_done(c);
}

/* libcurl says which events it wants on a socket. */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct curlev *c = userp;
    struct event *ev = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (ev)
            event_free(ev);
        curl_multi_assign(c->multi, s, NULL);
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
                         (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (ev) {
        event_del(ev);
        event_assign(ev, c->base, s, kind, sock_event_cb, c);
    } else {
        ev = event_new(c->base, s, kind, sock_event_cb, c);
        if (ev == NULL)
            return -1;
        curl_multi_assign(c->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static void timeout_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct curlev *c = arg;
    int running;
    (void)fd;
    (void)kind;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

/* libcurl says when it wants to be called without socket activity. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct curlev *c = userp;
    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
    } else {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(c->timer, &tv);
    }
    return 0;
}

struct curlev *curlev_new(struct event_base *base, curlev_done_fn done, void *arg)
{
    struct curlev *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->base = base;
    c->done = done;
    c->arg = arg;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, timeout_cb, c);
    if (c->multi == NULL || c->timer == NULL) {
        curlev_free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

int curlev_add(struct curlev *c, CURL *easy)
{
    return curl_multi_add_handle(c->multi, easy) == CURLM_OK ? 0 : -ENOMEM;
}

void curlev_remove(struct curlev *c, CURL *easy)
{
    curl_multi_remove_handle(c->multi, easy);
}

void curlev_free(struct curlev *c)
{
    if (c == NULL)
        return;
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->timer)
        event_free(c->timer);
    free(c);
}
