/* The join's figures for the status page (see join_status.h). */
#include "join_status.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum js_row { JS_ENDPOINT = 0, JS_NO_SPAN, JS_NO_ENDPOINT, JS_OTHER };

struct js_key {
    uint16_t service; /* index into services */
    uint8_t row;      /* enum js_row */
    bool used;
    char name[JOIN_STATUS_NAME_MAX];
    uint64_t samples[JOIN_STATUS_COLS];
    int64_t value[JOIN_STATUS_COLS];
};

struct js_service {
    char name[JOIN_STATUS_NAME_MAX];
    uint16_t aux[3]; /* keys of JS_NO_SPAN, JS_NO_ENDPOINT, JS_OTHER */
};

struct join_status {
    uint64_t col_ms;
    uint64_t col_slot[JOIN_STATUS_COLS]; /* which time slot each column holds */
    struct js_key keys[JOIN_STATUS_MAX_KEYS];
    size_t n_keys;
    struct js_service services[JOIN_STATUS_MAX_SERVICES];
    size_t n_services;
    uint64_t services_over_cap;
    uint64_t hit_slot[JOIN_STATUS_HIT_COLS];
    uint64_t hit[JOIN_STATUS_HIT_COLS][JOIN_OUT_COUNT];
};

struct join_status *join_status_new(int64_t window_ms)
{
    struct join_status *js = calloc(1, sizeof(*js));
    if (!js)
        return NULL;
    js->col_ms = window_ms >= JOIN_STATUS_COLS ? (uint64_t)window_ms / JOIN_STATUS_COLS : 1;
    for (size_t i = 0; i < JOIN_STATUS_COLS; i++)
        js->col_slot[i] = UINT64_MAX;
    for (size_t i = 0; i < JOIN_STATUS_HIT_COLS; i++)
        js->hit_slot[i] = UINT64_MAX;
    return js;
}

void join_status_free(struct join_status *js)
{
    free(js);
}

size_t join_status_size(void)
{
    return sizeof(struct join_status);
}

static void js_copy(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n >= JOIN_STATUS_NAME_MAX)
        n = JOIN_STATUS_NAME_MAX - 1; /* may cut a UTF-8 sequence: JSON-escaped as U+FFFD */
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* The column for now, cleared when it last held an older slot. */
static size_t js_col(struct join_status *js, uint64_t now_ms)
{
    uint64_t slot = now_ms / js->col_ms;
    size_t c = slot % JOIN_STATUS_COLS;
    if (js->col_slot[c] != slot) {
        js->col_slot[c] = slot;
        for (size_t k = 0; k < js->n_keys; k++) {
            js->keys[k].samples[c] = 0;
            js->keys[k].value[c] = 0;
        }
    }
    return c;
}

static bool js_col_live(const struct join_status *js, size_t c, uint64_t now_ms)
{
    uint64_t slot = now_ms / js->col_ms;
    return js->col_slot[c] != UINT64_MAX && js->col_slot[c] + JOIN_STATUS_COLS > slot &&
           js->col_slot[c] <= slot;
}

static uint64_t js_key_live_samples(const struct join_status *js, const struct js_key *k,
                                    uint64_t now_ms)
{
    uint64_t n = 0;
    for (size_t c = 0; c < JOIN_STATUS_COLS; c++)
        if (js_col_live(js, c, now_ms))
            n += k->samples[c];
    return n;
}

/* A free row: unused, or an endpoint row with nothing in the window. */
static int js_key_alloc(struct join_status *js, uint64_t now_ms)
{
    if (js->n_keys < JOIN_STATUS_MAX_KEYS)
        return (int)js->n_keys++;
    for (size_t k = 0; k < js->n_keys; k++)
        if (js->keys[k].row == JS_ENDPOINT && js_key_live_samples(js, &js->keys[k], now_ms) == 0)
            return (int)k;
    return -1;
}

static int js_service(struct join_status *js, const char *name, uint64_t now_ms)
{
    for (size_t i = 0; i < js->n_services; i++)
        if (strcmp(js->services[i].name, name) == 0)
            return (int)i;
    if (js->n_services == JOIN_STATUS_MAX_SERVICES)
        return -1;
    struct js_service *s = &js->services[js->n_services];
    js_copy(s->name, name);
    for (int r = 0; r < 3; r++) {
        int k = js_key_alloc(js, now_ms);
        if (k < 0) {
            /* Give back the rows taken: unused endpoint rows are free. */
            for (int q = 0; q < r; q++)
                memset(&js->keys[s->aux[q]], 0, sizeof(js->keys[0]));
            return -1;
        }
        memset(&js->keys[k], 0, sizeof(js->keys[k]));
        js->keys[k].used = true;
        js->keys[k].service = (uint16_t)js->n_services;
        js->keys[k].row = (uint8_t)(JS_NO_SPAN + r);
        s->aux[r] = (uint16_t)k;
    }
    return (int)js->n_services++;
}

static int js_endpoint(struct join_status *js, int svc, const char *ep, uint64_t now_ms)
{
    for (size_t k = 0; k < js->n_keys; k++) {
        const struct js_key *key = &js->keys[k];
        if (key->used && key->row == JS_ENDPOINT && key->service == svc &&
            strncmp(key->name, ep, JOIN_STATUS_NAME_MAX - 1) == 0)
            return (int)k;
    }
    int k = js_key_alloc(js, now_ms);
    if (k < 0)
        return js->services[svc].aux[JS_OTHER - 1];
    memset(&js->keys[k], 0, sizeof(js->keys[k]));
    js->keys[k].used = true;
    js->keys[k].service = (uint16_t)svc;
    js->keys[k].row = JS_ENDPOINT;
    js_copy(js->keys[k].name, ep);
    return k;
}

static int64_t js_find_type(const sp_pprof *pp, const char *const *names, size_t n)
{
    for (size_t i = 0; i < pp->n_sample_type; i++) {
        int64_t t = pp->sample_type[i]->type;
        if (t <= 0 || (uint64_t)t >= pp->n_string_table || !pp->string_table[t])
            continue;
        for (size_t j = 0; j < n; j++)
            if (strcmp(pp->string_table[t], names[j]) == 0)
                return (int64_t)i;
    }
    return -1;
}

static const char *js_str(const sp_pprof *pp, int64_t i)
{
    return i > 0 && (uint64_t)i < pp->n_string_table ? pp->string_table[i] : NULL;
}

/* The CPU samples of one labelled attachment into column c of svc. A
 * profile's endpoints are few: the last string index -> row is cached. */
static void js_note_pprof(struct join_status *js, int svc, const sp_pprof *pp, size_t c,
                          uint64_t now_ms)
{
    static const char *const cpu[] = {"cpu", "cpu-time"};
    static const char *const count[] = {"samples"};
    int64_t vi = js_find_type(pp, cpu, 2);
    if (vi < 0)
        return; /* not a CPU profile: the bars are CPU */
    int64_t ci = js_find_type(pp, count, 1);
    struct { int64_t str; int key; } cache[8];
    size_t cache_n = 0, cache_next = 0;
    for (size_t si = 0; si < pp->n_sample; si++) {
        const Perftools__Profiles__Sample *s = pp->sample[si];
        if ((size_t)vi >= s->n_value)
            continue;
        int64_t ep = 0;
        bool span = false;
        for (size_t li = 0; li < s->n_label; li++) {
            const char *k = js_str(pp, s->label[li]->key);
            if (!k)
                continue;
            if (strcmp(k, "trace endpoint") == 0)
                ep = s->label[li]->str;
            else if (strcmp(k, "span id") == 0 || strcmp(k, "span_id") == 0)
                span = true;
        }
        int key;
        const char *eps = js_str(pp, ep);
        if (eps && *eps) {
            key = -1;
            for (size_t i = 0; i < cache_n; i++)
                if (cache[i].str == ep)
                    key = cache[i].key;
            if (key < 0) {
                key = js_endpoint(js, svc, eps, now_ms);
                cache[cache_next].str = ep;
                cache[cache_next].key = key;
                cache_next = (cache_next + 1) % 8;
                if (cache_n < 8)
                    cache_n++;
            }
        } else {
            key = js->services[svc].aux[(span ? JS_NO_ENDPOINT : JS_NO_SPAN) - 1];
        }
        struct js_key *k = &js->keys[key];
        k->value[c] += s->value[vi];
        k->samples[c] += ci >= 0 && (size_t)ci < s->n_value ? (uint64_t)s->value[ci] : 1;
    }
}

void join_status_note(struct join_status *js, const struct sp_profile *p,
                      const struct join_label_stats *st, uint64_t now_ms)
{
    if (!js)
        return;
    uint64_t hs = now_ms / JOIN_STATUS_HIT_COL_MS;
    size_t h = hs % JOIN_STATUS_HIT_COLS;
    if (js->hit_slot[h] != hs) {
        js->hit_slot[h] = hs;
        memset(js->hit[h], 0, sizeof(js->hit[h]));
    }
    for (int i = 0; i < JOIN_OUT_COUNT; i++)
        js->hit[h][i] += st->samples[i];

    size_t c = js_col(js, now_ms);
    int svc = -2;
    for (size_t i = 0; i < p->attachment_count; i++) {
        const struct sp_attachment *a = &p->attachments[i];
        if (!a->pprof || !a->labelled_type)
            continue;
        if (svc == -2)
            svc = js_service(js, p->service && *p->service ? p->service : "(unnamed)", now_ms);
        if (svc < 0) {
            js->services_over_cap++;
            return;
        }
        js_note_pprof(js, svc, a->pprof, c, now_ms);
    }
}

/* ---- output ---- */

struct js_sum {
    uint64_t samples;
    int64_t value;
};

static struct js_sum js_key_sum(const struct join_status *js, const struct js_key *k,
                                uint64_t now_ms)
{
    struct js_sum s = {0};
    for (size_t c = 0; c < JOIN_STATUS_COLS; c++) {
        if (!js_col_live(js, c, now_ms))
            continue;
        s.samples += k->samples[c];
        s.value += k->value[c];
    }
    return s;
}

static void js_write_row(struct sp_jw *w, const char *key, const char *endpoint, struct js_sum s,
                         int64_t of)
{
    sp_jw_obj(w, key);
    if (endpoint)
        sp_jw_str(w, "endpoint", endpoint);
    sp_jw_u64(w, "samples", s.samples);
    sp_jw_i64(w, "value", s.value);
    sp_jw_num(w, "share", of > 0 ? (double)s.value / (double)of : 0.0);
    sp_jw_end(w, '}');
}

static int js_cmp_sum(const void *a, const void *b)
{
    const struct js_sum *x = a, *y = b;
    return x->value < y->value ? 1 : x->value > y->value ? -1 : 0;
}

static void js_write_service(const struct join_status *js, struct sp_jw *w, size_t svc,
                             uint64_t now_ms)
{
    /* Rows of this service with their sums; sorted by CPU, largest first.
     * (samples holds the key index while sorting by value.) */
    struct { struct js_sum sum; size_t key; } rows[JOIN_STATUS_MAX_KEYS];
    size_t n = 0;
    int64_t attributed = 0, total = 0;
    uint64_t total_samples = 0;
    for (size_t k = 0; k < js->n_keys; k++) {
        const struct js_key *key = &js->keys[k];
        if (!key->used || key->service != svc)
            continue;
        struct js_sum s = js_key_sum(js, key, now_ms);
        total += s.value;
        total_samples += s.samples;
        if (key->row == JS_ENDPOINT || key->row == JS_OTHER)
            attributed += s.value;
        if (key->row == JS_ENDPOINT && s.samples) {
            rows[n].sum = s;
            rows[n].key = k;
            n++;
        }
    }
    qsort(rows, n, sizeof(rows[0]), js_cmp_sum);
    const struct js_service *sv = &js->services[svc];
    sp_jw_obj(w, NULL);
    sp_jw_str(w, "service", sv->name);
    sp_jw_u64(w, "samples", total_samples);
    sp_jw_i64(w, "value", total);
    sp_jw_arr(w, "endpoints");
    for (size_t i = 0; i < n; i++)
        js_write_row(w, NULL, js->keys[rows[i].key].name, rows[i].sum, attributed);
    sp_jw_end(w, ']');
    js_write_row(w, "other_endpoints", NULL, js_key_sum(js, &js->keys[sv->aux[JS_OTHER - 1]], now_ms),
                 attributed);
    js_write_row(w, "no_span_id", NULL, js_key_sum(js, &js->keys[sv->aux[JS_NO_SPAN - 1]], now_ms),
                 total);
    js_write_row(w, "no_endpoint", NULL,
                 js_key_sum(js, &js->keys[sv->aux[JS_NO_ENDPOINT - 1]], now_ms), total);
    sp_jw_end(w, '}');
}

/* matched, span_labelled and their ratio (null without samples). */
static void js_write_ratio(struct sp_jw *w, uint64_t matched, uint64_t labelled)
{
    sp_jw_u64(w, "matched", matched);
    sp_jw_u64(w, "span_labelled", labelled);
    if (labelled)
        sp_jw_num(w, "ratio", (double)matched / (double)labelled);
    else
        sp_jw_null(w, "ratio");
}

void join_status_write(const struct join_status *js, struct sp_jw *w, uint64_t now_ms)
{
    sp_jw_num(w, "window_s", (double)(js->col_ms * JOIN_STATUS_COLS) / 1000.0);
    sp_jw_str(w, "value_type", "cpu");
    sp_jw_arr(w, "services");
    for (size_t s = 0; s < js->n_services; s++)
        js_write_service(js, w, s, now_ms);
    sp_jw_end(w, ']');
    sp_jw_u64(w, "services_over_cap", js->services_over_cap);

    /* Oldest minute first; the last one is the current, partial minute. */
    uint64_t now_slot = now_ms / JOIN_STATUS_HIT_COL_MS, m_all = 0, l_all = 0;
    uint64_t miss[JOIN_OUT_COUNT] = {0};
    sp_jw_obj(w, "hit_ratio");
    sp_jw_num(w, "bucket_s", JOIN_STATUS_HIT_COL_MS / 1000.0);
    sp_jw_arr(w, "points");
    for (uint64_t i = JOIN_STATUS_HIT_COLS; i-- > 0;) {
        uint64_t slot = now_slot - i;
        size_t h = slot % JOIN_STATUS_HIT_COLS;
        uint64_t matched = 0, labelled = 0;
        if (js->hit_slot[h] == slot) {
            for (int o = 0; o < JOIN_OUT_COUNT; o++)
                miss[o] += js->hit[h][o];
            /* The same ratio as spanprof_join_hit_ratio. */
            labelled = join_out_span_labelled(js->hit[h]);
            matched = js->hit[h][JOIN_OUT_MATCHED];
        }
        m_all += matched;
        l_all += labelled;
        sp_jw_obj(w, NULL);
        js_write_ratio(w, matched, labelled);
        sp_jw_end(w, '}');
    }
    sp_jw_end(w, ']');
    js_write_ratio(w, m_all, l_all);
    sp_jw_end(w, '}');
    /* Samples by outcome over the same minutes (misses by reason; an
     * already-labelled sample is no miss). */
    sp_jw_obj(w, "misses");
    for (int o = 0; o < JOIN_OUT_COUNT; o++)
        if (o != JOIN_OUT_MATCHED && o != JOIN_OUT_ALREADY_LABELLED)
            sp_jw_u64(w, join_outcome_names[o], miss[o]);
    sp_jw_end(w, '}');
}
