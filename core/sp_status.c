/* The status document (see sp_status.h): registry of writers, last events
 * per component, listeners, and the snapshot hand-off between the loop
 * thread (the only one that reads pipeline state) and whichever thread
 * serves the page.
 *
 * Bounds: SP_STATUS_MAX_ENTRIES writers, SP_STATUS_MAX_COMPONENTS event
 * slots (SP_STATUS_TEXT_MAX bytes of text each), SP_STATUS_MAX_LISTENERS
 * listeners; past those, registration is refused with a warning. One
 * snapshot (the last document) is kept while someone asks, freed once
 * nobody has asked for SP_STATUS_IDLE_MS. */
#include "sp_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sp_err.h"
#include "sp_log.h"

#define SP_STATUS_MAX_ENTRIES 128
#define SP_STATUS_MAX_COMPONENTS 64
#define SP_STATUS_MAX_LISTENERS 32
#define SP_STATUS_RATE_BUCKETS 12 /* deliveries per 5 s, the last minute */
#define SP_STATUS_RATE_BUCKET_MS 5000

struct sp_status_entry {
    char list[24];
    char id[96];
    sp_status_fn fn;
    void *ud;
};

struct sp_status_ev {
    uint64_t count;
    int64_t unix_ms;
    char text[SP_STATUS_TEXT_MAX];
};

struct sp_status_comp {
    char id[96];
    struct sp_status_ev ev[SP_STATUS_EVENT_COUNT];
    uint64_t rate_epoch[SP_STATUS_RATE_BUCKETS];
    uint32_t rate[SP_STATUS_RATE_BUCKETS];
};

struct sp_status_listen {
    char id[96];
    char what[32];
    char address[96];
};

/* The page's script and style are inline and it fetches only status.json:
 * nothing else may load, so an injected tag could not fetch or send
 * anything either. */
const char sp_status_page_csp[] =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

static const char *const sp_status_event_names[SP_STATUS_EVENT_COUNT] = {
    "bad_request", "delivered", "export_error"};

static struct sp_status_entry sp_st_entries[SP_STATUS_MAX_ENTRIES];
static size_t sp_st_entry_n;
static struct sp_status_comp sp_st_comps[SP_STATUS_MAX_COMPONENTS];
static size_t sp_st_comp_n;
static struct sp_status_listen sp_st_listeners[SP_STATUS_MAX_LISTENERS];
static size_t sp_st_listener_n;

/* The hand-off. Everything below under sp_st_mu except the handles, which
 * only the loop thread touches (uv_async_send excepted). */
static uv_mutex_t sp_st_mu;
static uv_cond_t sp_st_cond;
static uv_once_t sp_st_once = UV_ONCE_INIT;
static uv_loop_t *sp_st_loop;
static uv_thread_t sp_st_owner;
static uv_async_t sp_st_async;
static uv_timer_t sp_st_timer;
static bool sp_st_running, sp_st_timer_on;
static int sp_st_closing;
static char *sp_st_snap;
static size_t sp_st_snap_len;
static uint64_t sp_st_snap_gen, sp_st_snap_ms, sp_st_demand_ms;

static void sp_st_init_once(void)
{
    uv_mutex_init(&sp_st_mu);
    uv_cond_init(&sp_st_cond);
}

static int64_t sp_st_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t sp_st_mono_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void sp_st_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* ---- registry ---- */

void sp_status_add(const char *list, const char *id, sp_status_fn fn, void *ud)
{
    if (sp_st_entry_n == SP_STATUS_MAX_ENTRIES) {
        sp_log_warn(NULL, "status page: more than %d entries, '%s' left out",
                    SP_STATUS_MAX_ENTRIES, id);
        return;
    }
    struct sp_status_entry *e = &sp_st_entries[sp_st_entry_n++];
    sp_st_copy(e->list, sizeof(e->list), list);
    sp_st_copy(e->id, sizeof(e->id), id);
    e->fn = fn;
    e->ud = ud;
}

void sp_status_remove(void *ud)
{
    size_t k = 0;
    for (size_t i = 0; i < sp_st_entry_n; i++)
        if (sp_st_entries[i].ud != ud)
            sp_st_entries[k++] = sp_st_entries[i];
    sp_st_entry_n = k;
}

static struct sp_status_comp *sp_st_comp(const char *id, bool create)
{
    for (size_t i = 0; i < sp_st_comp_n; i++)
        if (strcmp(sp_st_comps[i].id, id) == 0)
            return &sp_st_comps[i];
    if (!create || sp_st_comp_n == SP_STATUS_MAX_COMPONENTS)
        return NULL;
    struct sp_status_comp *c = &sp_st_comps[sp_st_comp_n++];
    memset(c, 0, sizeof(*c));
    sp_st_copy(c->id, sizeof(c->id), id);
    return c;
}

void sp_status_note(const char *component_id, enum sp_status_event ev, const char *fmt, ...)
{
    if ((unsigned)ev >= SP_STATUS_EVENT_COUNT || !component_id)
        return;
    struct sp_status_comp *c = sp_st_comp(component_id, true);
    if (!c)
        return;
    struct sp_status_ev *e = &c->ev[ev];
    e->count++;
    e->unix_ms = sp_st_unix_ms();
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
    sp_log_redact_secrets(e->text);
    if (ev == SP_STATUS_DELIVERED) {
        uint64_t slot = sp_st_mono_ms() / SP_STATUS_RATE_BUCKET_MS;
        size_t i = slot % SP_STATUS_RATE_BUCKETS;
        if (c->rate_epoch[i] != slot) {
            c->rate_epoch[i] = slot;
            c->rate[i] = 0;
        }
        c->rate[i]++;
    }
}

void sp_status_write_events(struct sp_jw *w, const char *component_id)
{
    struct sp_status_comp *c = sp_st_comp(component_id, false);
    sp_jw_obj(w, "events");
    for (int k = 0; c && k < SP_STATUS_EVENT_COUNT; k++) {
        const struct sp_status_ev *e = &c->ev[k];
        if (!e->count)
            continue;
        sp_jw_obj(w, sp_status_event_names[k]);
        sp_jw_u64(w, "count", e->count);
        sp_jw_i64(w, "unix_ms", e->unix_ms);
        sp_jw_str(w, "text", e->text);
        sp_jw_end(w, '}');
    }
    sp_jw_end(w, '}');
    /* Deliveries over the last full minute of buckets (the current one
     * partly filled is left out). */
    uint64_t now = sp_st_mono_ms() / SP_STATUS_RATE_BUCKET_MS, n = 0;
    uint64_t first = now >= SP_STATUS_RATE_BUCKETS - 1 ? now - (SP_STATUS_RATE_BUCKETS - 1) : 0;
    for (uint64_t s = first; c && s < now; s++) {
        size_t i = s % SP_STATUS_RATE_BUCKETS;
        if (c->rate_epoch[i] == s)
            n += c->rate[i];
    }
    sp_jw_num(w, "deliveries_per_s",
              (double)n / ((SP_STATUS_RATE_BUCKETS - 1) * SP_STATUS_RATE_BUCKET_MS / 1000.0));
}

void sp_status_listener(const char *component_id, const char *what, const char *address)
{
    uv_once(&sp_st_once, sp_st_init_once);
    uv_mutex_lock(&sp_st_mu);
    if (sp_st_listener_n < SP_STATUS_MAX_LISTENERS) {
        struct sp_status_listen *l = &sp_st_listeners[sp_st_listener_n++];
        sp_st_copy(l->id, sizeof(l->id), component_id);
        sp_st_copy(l->what, sizeof(l->what), what);
        sp_st_copy(l->address, sizeof(l->address), address);
    }
    uv_mutex_unlock(&sp_st_mu);
}

void sp_status_listener_port(const char *component_id, const char *what, const char *endpoint,
                             int port)
{
    char addr[96];
    const char *colon = endpoint ? strrchr(endpoint, ':') : NULL;
    int host_len = colon ? (int)(colon - endpoint) : endpoint ? (int)strlen(endpoint) : 0;
    snprintf(addr, sizeof(addr), "%.*s:%d", host_len, endpoint ? endpoint : "", port);
    sp_status_listener(component_id, what, addr);
}

/* ---- the document ---- */

static int sp_st_build(struct sp_buf *out)
{
    struct sp_jw w;
    sp_jw_init(&w, out);
    sp_jw_obj(&w, NULL);
    sp_jw_u64(&w, "version", 1);
    sp_jw_i64(&w, "generated_unix_ms", sp_st_unix_ms());
    /* Lists in the order their first entry was registered. */
    for (size_t i = 0; i < sp_st_entry_n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(sp_st_entries[j].list, sp_st_entries[i].list) == 0;
        if (seen)
            continue;
        sp_jw_arr(&w, sp_st_entries[i].list);
        for (size_t j = i; j < sp_st_entry_n; j++) {
            const struct sp_status_entry *e = &sp_st_entries[j];
            if (strcmp(e->list, sp_st_entries[i].list) != 0)
                continue;
            sp_jw_obj(&w, NULL);
            sp_jw_str(&w, "id", e->id);
            e->fn(e->ud, &w);
            sp_jw_end(&w, '}');
        }
        sp_jw_end(&w, ']');
    }
    sp_jw_arr(&w, "listeners");
    uv_mutex_lock(&sp_st_mu);
    for (size_t i = 0; i < sp_st_listener_n; i++) {
        sp_jw_obj(&w, NULL);
        sp_jw_str(&w, "component", sp_st_listeners[i].id);
        sp_jw_str(&w, "serves", sp_st_listeners[i].what);
        sp_jw_str(&w, "address", sp_st_listeners[i].address);
        sp_jw_end(&w, '}');
    }
    uv_mutex_unlock(&sp_st_mu);
    sp_jw_end(&w, ']');
    sp_jw_end(&w, '}');
    return sp_jw_error(&w) ? SP_ENOMEM : 0;
}

/* Loop thread: a new snapshot for the other threads. */
static void sp_st_refresh(void)
{
    struct sp_buf b = {0};
    if (sp_st_build(&b)) {
        sp_buf_free(&b);
        return;
    }
    size_t len;
    char *data = (char *)sp_buf_steal(&b, &len);
    uv_mutex_lock(&sp_st_mu);
    free(sp_st_snap);
    sp_st_snap = data;
    sp_st_snap_len = len;
    sp_st_snap_gen++;
    sp_st_snap_ms = sp_st_mono_ms();
    uv_cond_broadcast(&sp_st_cond);
    uv_mutex_unlock(&sp_st_mu);
}

static void sp_st_on_timer(uv_timer_t *t)
{
    (void)t;
    uv_mutex_lock(&sp_st_mu);
    bool idle = sp_st_mono_ms() - sp_st_demand_ms > SP_STATUS_IDLE_MS;
    if (idle) {
        free(sp_st_snap);
        sp_st_snap = NULL;
        sp_st_snap_len = 0;
    }
    uv_mutex_unlock(&sp_st_mu);
    if (idle) {
        uv_timer_stop(&sp_st_timer);
        sp_st_timer_on = false;
        return;
    }
    sp_st_refresh();
}

static void sp_st_on_async(uv_async_t *a)
{
    (void)a;
    sp_st_refresh();
    if (!sp_st_timer_on) {
        sp_st_timer_on = true;
        uv_timer_start(&sp_st_timer, sp_st_on_timer, SP_STATUS_REFRESH_MS, SP_STATUS_REFRESH_MS);
    }
}

int sp_status_start(uv_loop_t *loop)
{
    uv_once(&sp_st_once, sp_st_init_once);
    int rc = uv_async_init(loop, &sp_st_async, sp_st_on_async);
    if (rc)
        return SP_EIO;
    uv_timer_init(loop, &sp_st_timer);
    /* Neither keeps the loop alive. */
    uv_unref((uv_handle_t *)&sp_st_async);
    uv_unref((uv_handle_t *)&sp_st_timer);
    uv_mutex_lock(&sp_st_mu);
    sp_st_loop = loop;
    sp_st_owner = uv_thread_self();
    sp_st_running = true;
    uv_mutex_unlock(&sp_st_mu);
    return 0;
}

static void sp_st_on_closed(uv_handle_t *h)
{
    (void)h;
    sp_st_closing--;
}

void sp_status_stop(void)
{
    uv_mutex_lock(&sp_st_mu);
    bool was = sp_st_running;
    sp_st_running = false;
    free(sp_st_snap);
    sp_st_snap = NULL;
    sp_st_snap_len = 0;
    uv_cond_broadcast(&sp_st_cond);
    uv_mutex_unlock(&sp_st_mu);
    if (!was)
        return;
    sp_st_timer_on = false;
    sp_st_closing = 2;
    uv_close((uv_handle_t *)&sp_st_async, sp_st_on_closed);
    uv_close((uv_handle_t *)&sp_st_timer, sp_st_on_closed);
}

int sp_status_json(struct sp_buf *out)
{
    uv_once(&sp_st_once, sp_st_init_once);
    uv_thread_t self = uv_thread_self();
    uv_mutex_lock(&sp_st_mu);
    /* Never started (tests, tools): the caller's thread is the only one. */
    if (!sp_st_loop) {
        uv_mutex_unlock(&sp_st_mu);
        return sp_st_build(out);
    }
    uint64_t now = sp_st_mono_ms();
    sp_st_demand_ms = now;
    if (sp_st_running && uv_thread_equal(&self, &sp_st_owner)) {
        /* On the loop: build when the snapshot is older than a refresh, so
         * any number of clients costs at most one build per interval. */
        bool fresh = sp_st_snap && now - sp_st_snap_ms < SP_STATUS_REFRESH_MS;
        uv_mutex_unlock(&sp_st_mu);
        if (!fresh)
            sp_st_refresh();
        if (!sp_st_timer_on) { /* frees the snapshot once nobody asks */
            sp_st_timer_on = true;
            uv_timer_start(&sp_st_timer, sp_st_on_timer, SP_STATUS_REFRESH_MS,
                           SP_STATUS_REFRESH_MS);
        }
        uv_mutex_lock(&sp_st_mu);
        int rc = sp_st_snap ? sp_buf_append(out, sp_st_snap, sp_st_snap_len) : SP_ENOMEM;
        uv_mutex_unlock(&sp_st_mu);
        return rc;
    }

    if (sp_st_running && (!sp_st_snap || now - sp_st_snap_ms > 2 * SP_STATUS_REFRESH_MS)) {
        uint64_t gen = sp_st_snap_gen;
        uv_async_send(&sp_st_async);
        uint64_t deadline = uv_hrtime() + (uint64_t)SP_STATUS_WAIT_MS * 1000000u;
        while (sp_st_running && sp_st_snap_gen == gen) {
            uint64_t t = uv_hrtime();
            if (t >= deadline || uv_cond_timedwait(&sp_st_cond, &sp_st_mu, deadline - t))
                break;
        }
    }
    int rc = sp_st_snap ? sp_buf_append(out, sp_st_snap, sp_st_snap_len) : SP_ERETRY;
    uv_mutex_unlock(&sp_st_mu);
    return rc;
}

void sp_status_reset(void)
{
    uv_once(&sp_st_once, sp_st_init_once);
    sp_st_entry_n = 0;
    sp_st_comp_n = 0;
    uv_mutex_lock(&sp_st_mu);
    sp_st_listener_n = 0;
    sp_st_loop = NULL;
    sp_st_running = false;
    free(sp_st_snap);
    sp_st_snap = NULL;
    sp_st_snap_len = 0;
    uv_mutex_unlock(&sp_st_mu);
}
