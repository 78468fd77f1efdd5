/* The telemetry thread (see sp_telemetry.h for why it exists).
 *
 * One libuv loop on one thread. Servers are added before the thread starts,
 * so no handle is ever initialized on a running loop from outside it.
 * Afterwards the only way in is `wake` (a uv_async_t, the one thread-safe
 * libuv call): it carries stop requests and the final quit. A stop's
 * completion goes back to the caller's loop through a uv_async_t the caller
 * initialized on that loop. */
#include "sp_telemetry.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "sp_log.h"

#define SP_TEL_MAX_SERVERS 8

struct sp_tel_stop {
    struct sp_tel_stop *next;
    struct sp_httpd *h;
    uv_async_t done_async; /* on the caller's loop; only when done is set */
    void (*done)(void *ud);
    void *ud;
};

static struct {
    bool inited;
    bool running;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    uv_mutex_t lock;
    struct sp_tel_stop *pending; /* under lock */
    bool quit;                   /* under lock */
    struct sp_httpd *servers[SP_TEL_MAX_SERVERS]; /* telemetry thread once running */
    size_t nservers;
} sp_tel;

static void sp_tel_forget(struct sp_httpd *h)
{
    for (size_t i = 0; i < sp_tel.nservers; i++) {
        if (sp_tel.servers[i] == h) {
            sp_tel.servers[i] = sp_tel.servers[--sp_tel.nservers];
            return;
        }
    }
}

/* Caller's loop: the server is closed. */
static void sp_tel_on_done_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sp_tel_on_done(uv_async_t *a)
{
    struct sp_tel_stop *st = a->data;
    st->done(st->ud);
    uv_close((uv_handle_t *)&st->done_async, sp_tel_on_done_closed);
}

/* Telemetry thread: sp_httpd_stop finished. */
static void sp_tel_on_stopped(void *ud)
{
    struct sp_tel_stop *st = ud;
    if (st->done)
        uv_async_send(&st->done_async);
    else
        free(st);
}

static void sp_tel_on_wake(uv_async_t *a)
{
    (void)a;
    uv_mutex_lock(&sp_tel.lock);
    struct sp_tel_stop *list = sp_tel.pending;
    sp_tel.pending = NULL;
    bool quit = sp_tel.quit;
    uv_mutex_unlock(&sp_tel.lock);
    while (list) {
        struct sp_tel_stop *st = list;
        list = st->next;
        sp_tel_forget(st->h);
        sp_httpd_stop(st->h, sp_tel_on_stopped, st);
    }
    if (quit) {
        while (sp_tel.nservers)
            sp_httpd_stop(sp_tel.servers[--sp_tel.nservers], NULL, NULL);
        uv_close((uv_handle_t *)&sp_tel.wake, NULL);
    }
}

int sp_telemetry_init(struct sp_err *err)
{
    if (sp_tel.inited)
        return 0;
    if (uv_loop_init(&sp_tel.loop) != 0 || uv_mutex_init(&sp_tel.lock) != 0)
        return sp_err_set(err, SP_ENOMEM, "cannot create the telemetry loop");
    uv_async_init(&sp_tel.loop, &sp_tel.wake, sp_tel_on_wake);
    sp_tel.inited = true;
    return 0;
}

int sp_telemetry_httpd_start(const struct sp_httpd_opts *opts, sp_httpd_handler handler, void *ud,
                             struct sp_httpd **out, struct sp_err *err)
{
    if (!sp_tel.inited || sp_tel.running || sp_tel.nservers == SP_TEL_MAX_SERVERS) {
        fprintf(stderr, "spanprof: sp_telemetry_httpd_start: not initialized, already running "
                        "or too many servers\n");
        abort();
    }
    int rc = sp_httpd_start(&sp_tel.loop, opts, handler, ud, out, err);
    if (rc == 0)
        sp_tel.servers[sp_tel.nservers++] = *out;
    return rc;
}

static void sp_tel_main(void *arg)
{
    (void)arg;
    uv_run(&sp_tel.loop, UV_RUN_DEFAULT);
}

int sp_telemetry_run(struct sp_err *err)
{
    if (!sp_tel.inited || sp_tel.running)
        return 0;
    if (uv_thread_create(&sp_tel.thread, sp_tel_main, NULL) != 0)
        return sp_err_set(err, SP_EIO, "cannot start the telemetry thread");
    sp_tel.running = true;
    return 0;
}

void sp_telemetry_httpd_stop(struct sp_httpd *h, uv_loop_t *loop, void (*done)(void *ud),
                             void *ud)
{
    if (!h || !sp_tel.running) {
        /* The loop does not run: stop here; its closes finish in
         * sp_telemetry_stop(). */
        if (h) {
            sp_tel_forget(h);
            sp_httpd_stop(h, NULL, NULL);
        }
        if (done)
            done(ud);
        return;
    }
    struct sp_tel_stop *st = calloc(1, sizeof(*st));
    if (!st) {
        sp_log_error(NULL, "out of memory stopping a telemetry server: left to the exit");
        if (done)
            done(ud);
        return;
    }
    st->h = h;
    st->done = done;
    st->ud = ud;
    if (done) {
        uv_async_init(loop, &st->done_async, sp_tel_on_done);
        st->done_async.data = st;
    }
    uv_mutex_lock(&sp_tel.lock);
    st->next = sp_tel.pending;
    sp_tel.pending = st;
    uv_mutex_unlock(&sp_tel.lock);
    uv_async_send(&sp_tel.wake);
}

void sp_telemetry_stop(void)
{
    if (!sp_tel.inited)
        return;
    if (sp_tel.running) {
        uv_mutex_lock(&sp_tel.lock);
        sp_tel.quit = true;
        uv_mutex_unlock(&sp_tel.lock);
        uv_async_send(&sp_tel.wake);
        uv_thread_join(&sp_tel.thread);
        sp_tel.running = false;
    } else {
        while (sp_tel.nservers)
            sp_httpd_stop(sp_tel.servers[--sp_tel.nservers], NULL, NULL);
        uv_close((uv_handle_t *)&sp_tel.wake, NULL);
        uv_run(&sp_tel.loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&sp_tel.loop);
    uv_mutex_destroy(&sp_tel.lock);
    sp_tel.inited = false;
    sp_tel.quit = false;
    sp_tel.pending = NULL;
}
