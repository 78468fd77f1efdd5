/* The join's hold (see join_hold.h for the release rule and why).
 *
 * Layout: held profiles in a doubly linked list in arrival order (the
 * oldest is released first when a bound is reached); each keeps an array of
 * its open ids. Every id still waiting for a span is a node in the waiter
 * list of that span id (a hash map id -> first waiter), so a span arrival
 * finds the profiles it completes without scanning them all. Streams (one
 * per process, keyed by a hash of its runtime id) remember when their last
 * profile arrived and their period, for the "went quiet" rule. */
#include <stdlib.h>
#include <string.h>

#include "join_hold.h"
#include "sp_assert.h"
#include "sp_err.h"

#define HOLD_STREAMS 256
#define HOLD_LATE 16 /* lateness observations kept per stream */

const char *const join_release_names[JOIN_REL_COUNT] = {
    "resolved", "never_exported", "expired", "bound_reached", "shutdown",
};

enum hold_state {
    ID_CLOSED = 0,   /* resolved */
    ID_SPAN_UNKNOWN, /* waiting for the span itself */
    ID_ROOT_UNKNOWN, /* waiting for an ancestor (the trace is sampled) */
    ID_DEAD,         /* the chain cannot complete (cycle, too deep, no parent) */
};

struct held;

struct hold_id {
    uint64_t span, missing, samples;
    int64_t ended_ms; /* when a newer profile of the stream did not name it; 0: not seen ended */
    uint8_t state;
    struct held *owner;
    struct hold_id *wprev, *wnext; /* waiters of `missing` */
};

struct held {
    void *payload;
    size_t bytes;
    int64_t arrived_ms;
    uint64_t stream;
    struct hold_id *ids;
    size_t n_ids, n_open;
    bool dirty;
    struct held *prev, *next;
};

struct stream {
    uint64_t key;
    int64_t last_ms, period_ms;
    /* How late spans arrived after their ids stopped showing (a parent's
     * samples stop when its work moves to a child span; its span comes
     * when the request ends): the last HOLD_LATE observations. */
    int64_t late[HOLD_LATE], late_at[HOLD_LATE];
    size_t n_late;
};

struct join_hold {
    struct join_hold_conf conf;
    struct held *head, *tail;
    size_t n, bytes;
    bool any_dirty;
    /* Waiter map: missing id -> first waiting hold_id; open addressing,
     * backward-shift deletion, keys never 0. */
    uint64_t *wkeys;
    struct hold_id **wvals;
    size_t wcap, wn;
    struct stream streams[HOLD_STREAMS];
    size_t n_streams;
};

/* ---- waiter map ---- */

static size_t wslot(const struct join_hold *h, uint64_t id)
{
    uint64_t x = id * 0x9E3779B97F4A7C15ULL;
    return (size_t)(x >> 32) & (h->wcap - 1);
}

static size_t wfind(const struct join_hold *h, uint64_t id)
{
    if (!h->wcap)
        return SIZE_MAX;
    for (size_t i = wslot(h, id);; i = (i + 1) & (h->wcap - 1)) {
        if (!h->wkeys[i])
            return SIZE_MAX;
        if (h->wkeys[i] == id)
            return i;
    }
}

static void wdelete_at(struct join_hold *h, size_t p)
{
    size_t j = p;
    for (;;) {
        j = (j + 1) & (h->wcap - 1);
        if (!h->wkeys[j])
            break;
        size_t k = wslot(h, h->wkeys[j]);
        bool stays = p <= j ? (p < k && k <= j) : (p < k || k <= j);
        if (stays)
            continue;
        h->wkeys[p] = h->wkeys[j];
        h->wvals[p] = h->wvals[j];
        p = j;
    }
    h->wkeys[p] = 0;
    h->wvals[p] = NULL;
    h->wn--;
}

static int wgrow(struct join_hold *h)
{
    size_t nc = h->wcap ? h->wcap * 2 : 256;
    uint64_t *keys = calloc(nc, sizeof *keys);
    struct hold_id **vals = calloc(nc, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return SP_ENOMEM;
    }
    uint64_t *ok = h->wkeys;
    struct hold_id **ov = h->wvals;
    size_t oc = h->wcap;
    h->wkeys = keys;
    h->wvals = vals;
    h->wcap = nc;
    for (size_t i = 0; i < oc; i++) {
        if (!ok[i])
            continue;
        size_t j = wslot(h, ok[i]);
        while (h->wkeys[j])
            j = (j + 1) & (nc - 1);
        h->wkeys[j] = ok[i];
        h->wvals[j] = ov[i];
    }
    free(ok);
    free(ov);
    return 0;
}

static void waiter_unlink(struct join_hold *h, struct hold_id *w)
{
    if (!w->missing)
        return;
    if (w->wprev) {
        w->wprev->wnext = w->wnext;
    } else {
        size_t p = wfind(h, w->missing);
        if (p != SIZE_MAX) {
            if (w->wnext)
                h->wvals[p] = w->wnext;
            else
                wdelete_at(h, p);
        }
    }
    if (w->wnext)
        w->wnext->wprev = w->wprev;
    w->wprev = w->wnext = NULL;
}

/* Links w under w->missing (not 0). SP_ENOMEM leaves w unlinked: it is then
 * only completed by its profile's deadline. */
static int waiter_link(struct join_hold *h, struct hold_id *w)
{
    size_t p = wfind(h, w->missing);
    if (p != SIZE_MAX) {
        w->wnext = h->wvals[p];
        w->wnext->wprev = w;
        w->wprev = NULL;
        h->wvals[p] = w;
        return 0;
    }
    if ((h->wn + 1) * 2 > h->wcap && wgrow(h) < 0)
        return SP_ENOMEM;
    size_t i = wslot(h, w->missing);
    while (h->wkeys[i])
        i = (i + 1) & (h->wcap - 1);
    h->wkeys[i] = w->missing;
    h->wvals[i] = w;
    h->wn++;
    w->wprev = w->wnext = NULL;
    return 0;
}

/* ---- streams ---- */

static struct stream *stream_find(const struct join_hold *h, uint64_t key)
{
    for (size_t i = 0; i < h->n_streams; i++)
        if (h->streams[i].key == key)
            return (struct stream *)&h->streams[i];
    return NULL;
}

static struct stream *stream_get(struct join_hold *h, uint64_t key)
{
    struct stream *s = stream_find(h, key);
    if (s)
        return s;
    if (h->n_streams < HOLD_STREAMS) {
        s = &h->streams[h->n_streams++];
    } else {
        /* Replace the stream heard from least recently: its held ids then
         * wait for their deadline. */
        s = &h->streams[0];
        for (size_t i = 1; i < HOLD_STREAMS; i++)
            if (h->streams[i].last_ms < s->last_ms)
                s = &h->streams[i];
    }
    memset(s, 0, sizeof *s);
    s->key = key;
    return s;
}

/* ---- the rule ---- */

static bool id_open(const struct hold_id *w)
{
    return w->state == ID_SPAN_UNKNOWN || w->state == ID_ROOT_UNKNOWN;
}

/* How long after an id stops showing its span may still come: hold_grace,
 * or twice the largest lateness the stream showed within the last
 * 2 x max_hold when that is more. */
static int64_t grace_ms(const struct join_hold *h, const struct stream *s, int64_t now)
{
    int64_t g = h->conf.grace_ms;
    size_t n = s ? (s->n_late < HOLD_LATE ? s->n_late : HOLD_LATE) : 0;
    for (size_t i = 0; i < n; i++)
        if (now - s->late_at[i] <= 2 * h->conf.max_hold_ms && 2 * s->late[i] > g)
            g = 2 * s->late[i];
    return g;
}

/* A held span-unknown id arrived: how late, after it stopped showing. */
static void note_arrival(struct join_hold *h, const struct held *p, const struct hold_id *w,
                         int64_t now)
{
    struct stream *s = stream_find(h, p->stream);
    if (!s || w->state != ID_SPAN_UNKNOWN || !w->ended_ms || now <= w->ended_ms)
        return;
    size_t i = s->n_late++ % HOLD_LATE;
    s->late[i] = now - w->ended_ms;
    s->late_at[i] = now;
}

/* What the give-up time of a profile's ids depends on besides the id: its
 * stream's state, looked up once per profile. */
struct give_up_ctx {
    int64_t quiet_ms; /* when the stream counts as gone quiet */
    int64_t grace_ms;
};

static struct give_up_ctx give_up_ctx_of(const struct join_hold *h, const struct held *p,
                                         int64_t now)
{
    const struct stream *s = stream_find(h, p->stream);
    /* Not seen ended: the stream's next profile tells. If it is overdue
     * (the process or its profiler stopped), nothing will tell. */
    int64_t last = s ? s->last_ms : p->arrived_ms;
    int64_t period = s ? s->period_ms : 0;
    return (struct give_up_ctx){last + period + h->conf.delay_ms, grace_ms(h, s, now)};
}

/* When an open id stops being worth waiting for (INT64_MAX: not before
 * max_hold). */
static int64_t give_up_ms(const struct give_up_ctx *g, const struct hold_id *w)
{
    if (w->state == ID_ROOT_UNKNOWN)
        return INT64_MAX;
    return (w->ended_ms ? w->ended_ms : g->quiet_ms) + g->grace_ms;
}

static int64_t release_at(const struct join_hold *h, const struct held *p, int64_t now)
{
    int64_t expire = p->arrived_ms + h->conf.max_hold_ms;
    if (!p->n_open)
        return p->arrived_ms;
    struct give_up_ctx gc = give_up_ctx_of(h, p, now);
    int64_t latest = 0;
    for (size_t i = 0; i < p->n_ids && latest < expire; i++)
        if (id_open(&p->ids[i])) {
            int64_t g = give_up_ms(&gc, &p->ids[i]);
            if (g > latest)
                latest = g;
        }
    return latest < expire ? latest : expire;
}

static void close_id(struct join_hold *h, struct held *p, struct hold_id *w, enum hold_state st)
{
    waiter_unlink(h, w);
    if (id_open(w)) {
        SP_ASSERT(p->n_open > 0, "join hold: closing an id of a profile with none open");
        p->n_open--;
    }
    w->state = (uint8_t)st;
}

static void set_open(struct join_hold *h, struct held *p, struct hold_id *w,
                     enum join_resolve status, uint64_t missing)
{
    if (!missing) {
        close_id(h, p, w, ID_DEAD);
        return;
    }
    enum hold_state st = status == JOIN_SPAN_UNKNOWN ? ID_SPAN_UNKNOWN : ID_ROOT_UNKNOWN;
    if (w->missing != missing || !id_open(w)) {
        waiter_unlink(h, w);
        w->missing = missing;
        waiter_link(h, w);
    }
    if (!id_open(w))
        p->n_open++;
    w->state = (uint8_t)st;
}

static void reresolve(struct join_hold *h, struct held *p, const struct join_index *ix,
                      unsigned max_depth, int64_t now)
{
    p->dirty = false;
    for (size_t i = 0; i < p->n_ids; i++) {
        struct hold_id *w = &p->ids[i];
        if (!id_open(w))
            continue;
        uint64_t root = 0, rec;
        enum join_resolve r = join_index_resolve(ix, w->span, max_depth, &root, &rec);
        if (r != JOIN_SPAN_UNKNOWN)
            note_arrival(h, p, w, now);
        if (r == JOIN_RESOLVED)
            close_id(h, p, w, ID_CLOSED);
        else
            set_open(h, p, w, r, root);
    }
}

/* ---- list ---- */

static void unlink_held(struct join_hold *h, struct held *p)
{
    SP_ASSERT(h->n > 0 && h->bytes >= p->bytes, "join hold: releasing more than is held");
    if (p->prev)
        p->prev->next = p->next;
    else
        h->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        h->tail = p->prev;
    h->n--;
    h->bytes -= p->bytes;
}

/* Unlinks p and fills out; frees p's bookkeeping (not the payload). */
static void release(struct join_hold *h, struct held *p, enum join_release_reason reason,
                    int64_t now, struct join_released *out)
{
    memset(out, 0, sizeof *out);
    out->payload = p->payload;
    out->reason = reason;
    out->held_ms = now - p->arrived_ms;
    struct give_up_ctx gc = give_up_ctx_of(h, p, now);
    for (size_t i = 0; i < p->n_ids; i++) {
        struct hold_id *w = &p->ids[i];
        if (w->state == ID_CLOSED)
            continue;
        bool given_up = w->state == ID_DEAD ||
                        (w->state == ID_SPAN_UNKNOWN && give_up_ms(&gc, w) <= now);
        out->unresolved[given_up ? JOIN_REL_NEVER_EXPORTED : reason] += w->samples;
        waiter_unlink(h, w);
    }
    SP_ASSERT(reason != JOIN_REL_RESOLVED || p->n_open == 0,
              "join hold: a profile released as resolved still waits for ids");
    unlink_held(h, p);
    free(p->ids);
    free(p);
}

/* ---- API ---- */

struct join_hold *join_hold_create(const struct join_hold_conf *conf)
{
    struct join_hold *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->conf = *conf;
    return h;
}

void join_hold_destroy(struct join_hold *h, void (*free_payload)(void *))
{
    if (!h)
        return;
    for (struct held *p = h->head, *n; p; p = n) {
        n = p->next;
        if (free_payload)
            free_payload(p->payload);
        free(p->ids);
        free(p);
    }
    free(h->wkeys);
    free(h->wvals);
    free(h);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void join_hold_observe(struct join_hold *h, uint64_t stream, const struct join_open_id *ids,
                       size_t n, int64_t window_ms, int64_t now)
{
    struct stream *s = stream_get(h, stream);
    s->period_ms = s->last_ms && now > s->last_ms ? now - s->last_ms
                                                  : (window_ms > 0 ? window_ms : s->period_ms);
    s->last_ms = now;
    if (!h->n)
        return;
    uint64_t *seen = n ? malloc(n * sizeof *seen) : NULL;
    if (n && !seen)
        return; /* ids then look ended: they are given up a little early */
    for (size_t i = 0; i < n; i++)
        seen[i] = ids[i].span;
    if (n) /* qsort's base must not be NULL, even for zero elements */
        qsort(seen, n, sizeof *seen, cmp_u64);
    for (struct held *p = h->head; p; p = p->next) {
        if (p->stream != stream)
            continue;
        for (size_t i = 0; i < p->n_ids; i++) {
            struct hold_id *w = &p->ids[i];
            if (w->state != ID_SPAN_UNKNOWN)
                continue;
            if (n && bsearch(&w->span, seen, n, sizeof *seen, cmp_u64))
                w->ended_ms = 0; /* still running */
            else if (!w->ended_ms)
                w->ended_ms = now;
        }
    }
    free(seen);
}

bool join_hold_worth(const struct join_open_id *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i].missing)
            return true;
    return false;
}

size_t join_hold_cost(size_t bytes, size_t n_ids)
{
    return bytes + sizeof(struct held) + n_ids * sizeof(struct hold_id);
}

bool join_hold_pop_for_room(struct join_hold *h, size_t bytes, int64_t now,
                            struct join_released *out)
{
    if (!h->head)
        return false;
    if (h->n < h->conf.max_profiles && h->bytes + bytes <= h->conf.max_bytes)
        return false;
    release(h, h->head, JOIN_REL_BOUND, now, out);
    return true;
}

int join_hold_add(struct join_hold *h, void *payload, size_t bytes, uint64_t stream,
                  const struct join_open_id *ids, size_t n, int64_t now)
{
    struct held *p = calloc(1, sizeof *p);
    struct hold_id *w = calloc(n ? n : 1, sizeof *w);
    if (!p || !w) {
        free(p);
        free(w);
        return SP_ENOMEM;
    }
    p->payload = payload;
    p->arrived_ms = now;
    p->stream = stream;
    p->ids = w;
    p->n_ids = n;
    p->bytes = join_hold_cost(bytes, n);
    for (size_t i = 0; i < n; i++) {
        w[i].span = ids[i].span;
        w[i].samples = ids[i].samples;
        w[i].owner = p;
        w[i].state = ID_CLOSED;
        set_open(h, p, &w[i], ids[i].status, ids[i].missing);
    }
    p->prev = h->tail;
    if (h->tail)
        h->tail->next = p;
    else
        h->head = p;
    h->tail = p;
    h->n++;
    h->bytes += p->bytes;
    return 0;
}

void join_hold_span_arrived(struct join_hold *h, uint64_t id)
{
    size_t p = wfind(h, id);
    if (p == SIZE_MAX)
        return;
    for (struct hold_id *w = h->wvals[p]; w; w = w->wnext)
        w->owner->dirty = true;
    h->any_dirty = true;
}

bool join_hold_waiting(const struct join_hold *h)
{
    return h->wn > 0;
}

bool join_hold_dirty(const struct join_hold *h)
{
    return h->any_dirty;
}

bool join_hold_next_release(struct join_hold *h, const struct join_index *ix, unsigned max_depth,
                            int64_t now, struct join_released *out)
{
    if (h->any_dirty) {
        h->any_dirty = false;
        for (struct held *p = h->head; p; p = p->next)
            if (p->dirty)
                reresolve(h, p, ix, max_depth, now);
    }
    for (struct held *p = h->head; p; p = p->next) {
        if (!p->n_open) {
            release(h, p, JOIN_REL_RESOLVED, now, out);
            return true;
        }
        int64_t at = release_at(h, p, now);
        if (at <= now) {
            bool expired = now >= p->arrived_ms + h->conf.max_hold_ms &&
                           at == p->arrived_ms + h->conf.max_hold_ms;
            release(h, p, expired ? JOIN_REL_EXPIRED : JOIN_REL_NEVER_EXPORTED, now, out);
            return true;
        }
    }
    return false;
}

bool join_hold_pop_any(struct join_hold *h, int64_t now, struct join_released *out)
{
    if (!h->head)
        return false;
    release(h, h->head, JOIN_REL_SHUTDOWN, now, out);
    return true;
}

int64_t join_hold_next_due(const struct join_hold *h, int64_t now)
{
    if (!h->head)
        return -1;
    if (h->any_dirty)
        return 0;
    int64_t best = INT64_MAX;
    for (const struct held *p = h->head; p; p = p->next) {
        int64_t at = release_at(h, p, now);
        if (at < best)
            best = at;
    }
    return best <= now ? 0 : best - now;
}

size_t join_hold_count(const struct join_hold *h)
{
    return h->n;
}

size_t join_hold_bytes(const struct join_hold *h)
{
    return h->bytes;
}
