/* Delta profiles from cumulative snapshots.
 *
 * Go's heap (alloc_*), mutex and block profiles count from process start. A
 * scraper that sent them as they are would make every upload hold the whole
 * history, so like dd-trace-go's delta profiles and godeltaprof we send the
 * difference between consecutive snapshots for the cumulative sample types
 * only (inuse_* are point-in-time and stay as they are).
 *
 * Location ids are renumbered in every snapshot, so samples are matched by a
 * 128-bit hash of what they mean: each frame's address, function names,
 * file names and lines, and the label set (order-insensitive). The baseline
 * keeps only those hashes and the cumulative values (malloc, not the batch
 * arena: it outlives the batch). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pprof_int.h"
#include "sp_hash.h"
#include "sp_hindex.h"

struct pd_hash {
    uint64_t a, b;
};

/* The baseline: one entry per distinct sample, found through ix. */
struct pprof_delta_state {
    bool has;
    uint64_t signature; /* hash of sample types: a change resets the baseline */
    int64_t time_nanos;
    size_t ncols;
    size_t n;              /* entries */
    struct pd_hash *keys;  /* per entry */
    int64_t *vals;         /* ncols per entry */
    uint8_t *used;         /* per entry: subtracted already in this round */
    struct sp_hindex ix;   /* key hash -> entry */
};

bool pprof_delta_is_cumulative_type(const char *type)
{
    static const char *const cumulative[] = {"alloc_objects", "alloc_space", "contentions",
                                             "delay"};
    if (!type)
        return false;
    for (size_t i = 0; i < sizeof(cumulative) / sizeof(cumulative[0]); i++)
        if (strcmp(type, cumulative[i]) == 0)
            return true;
    return false;
}

struct pprof_delta_state *pprof_delta_new(void)
{
    return calloc(1, sizeof(struct pprof_delta_state));
}

static void pprof_delta_clear(struct pprof_delta_state *s)
{
    free(s->keys);
    free(s->vals);
    free(s->used);
    sp_hindex_free(&s->ix);
    s->keys = NULL;
    s->vals = NULL;
    s->used = NULL;
    s->n = 0;
    s->has = false;
}

void pprof_delta_free(struct pprof_delta_state *s)
{
    if (!s)
        return;
    pprof_delta_clear(s);
    free(s);
}

/* --- hashing --------------------------------------------------------------- */

static void pd_add(struct pd_hash *h, uint64_t v)
{
    h->a = sp_hash_u64(h->a ^ v);
    h->b = sp_hash_u64(h->b ^ (v * 0xff51afd7ed558ccdull + 0x632be59bd9b4e019ull));
}

static void pd_add_str(struct pd_hash *h, const char *s)
{
    h->a = sp_hash_u64(h->a ^ sp_hash_str(s, 1));
    h->b = sp_hash_u64(h->b ^ sp_hash_str(s, 0x51ed270b27b6f1a5ull));
}

/* Per-profile lookup of locations by id (validated profiles only). */
struct pd_index {
    const sp_pprof *p;
    struct pd_hash *loc_hash; /* by location index */
    uint64_t *sorted_ids;     /* NULL when ids are 1..n */
    size_t *sorted_pos;
};

static const Perftools__Profiles__Function *pd_function(const sp_pprof *p, uint64_t id)
{
    if (id >= 1 && id <= p->n_function && p->function[id - 1]->id == id)
        return p->function[id - 1];
    for (size_t i = 0; i < p->n_function; i++)
        if (p->function[i]->id == id)
            return p->function[i];
    return NULL;
}

static int pd_cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static void pd_index_free(struct pd_index *ix)
{
    free(ix->loc_hash);
    free(ix->sorted_ids);
    free(ix->sorted_pos);
}

static int pd_index_build(struct pd_index *ix, const sp_pprof *p)
{
    memset(ix, 0, sizeof(*ix));
    ix->p = p;
    size_t n = p->n_location;
    ix->loc_hash = calloc(n ? n : 1, sizeof(*ix->loc_hash));
    if (!ix->loc_hash)
        return SP_ENOMEM;
    /* Function lookup: dense ids are the common case; otherwise a scan per
     * line is bounded by the (validated) profile size. */
    bool dense = true;
    for (size_t i = 0; i < n; i++) {
        const Perftools__Profiles__Location *l = p->location[i];
        struct pd_hash h = {0x1234, 0x5678};
        pd_add(&h, l->address);
        for (size_t j = 0; j < l->n_line; j++) {
            const Perftools__Profiles__Function *f = pd_function(p, l->line[j]->function_id);
            pd_add_str(&h, f ? sp_pprof_str(p, f->name) : "");
            pd_add_str(&h, f ? sp_pprof_str(p, f->system_name) : "");
            pd_add_str(&h, f ? sp_pprof_str(p, f->filename) : "");
            pd_add(&h, (uint64_t)l->line[j]->line);
        }
        ix->loc_hash[i] = h;
        if (l->id != i + 1)
            dense = false;
    }
    if (dense)
        return 0;
    /* sorted (id, position) pairs packed as id array + position array */
    ix->sorted_ids = malloc((n ? n : 1) * sizeof(uint64_t));
    ix->sorted_pos = malloc((n ? n : 1) * sizeof(size_t));
    uint64_t *pairs = malloc((n ? n : 1) * 2 * sizeof(uint64_t));
    if (!ix->sorted_ids || !ix->sorted_pos || !pairs) {
        free(pairs);
        return SP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        pairs[2 * i] = p->location[i]->id;
        pairs[2 * i + 1] = i;
    }
    qsort(pairs, n, 2 * sizeof(uint64_t), pd_cmp_u64);
    for (size_t i = 0; i < n; i++) {
        ix->sorted_ids[i] = pairs[2 * i];
        ix->sorted_pos[i] = (size_t)pairs[2 * i + 1];
    }
    free(pairs);
    return 0;
}

static const struct pd_hash *pd_location(const struct pd_index *ix, uint64_t id)
{
    if (!ix->sorted_ids)
        return id >= 1 && id <= ix->p->n_location ? &ix->loc_hash[id - 1] : NULL;
    size_t lo = 0, hi = ix->p->n_location;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->sorted_ids[mid] == id)
            return &ix->loc_hash[ix->sorted_pos[mid]];
        if (ix->sorted_ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static struct pd_hash pd_sample(const struct pd_index *ix, const Perftools__Profiles__Sample *s)
{
    const sp_pprof *p = ix->p;
    struct pd_hash h = {0xabcdef, 0xfedcba};
    for (size_t i = 0; i < s->n_location_id; i++) {
        const struct pd_hash *lh = pd_location(ix, s->location_id[i]);
        pd_add(&h, lh ? lh->a : 0);
        pd_add(&h, lh ? lh->b : 0);
    }
    /* labels: order-insensitive sum of per-label hashes */
    uint64_t la = 0, lb = 0;
    for (size_t i = 0; i < s->n_label; i++) {
        const Perftools__Profiles__Label *l = s->label[i];
        struct pd_hash x = {7, 11};
        pd_add_str(&x, sp_pprof_str(p, l->key));
        pd_add_str(&x, sp_pprof_str(p, l->str));
        pd_add(&x, (uint64_t)l->num);
        pd_add_str(&x, sp_pprof_str(p, l->num_unit));
        la += x.a;
        lb += x.b;
    }
    pd_add(&h, la);
    pd_add(&h, lb);
    return h;
}

static uint64_t pd_signature(const sp_pprof *p)
{
    struct pd_hash h = {3, 5};
    for (size_t i = 0; i < p->n_sample_type; i++) {
        pd_add_str(&h, sp_pprof_str(p, p->sample_type[i]->type));
        pd_add_str(&h, sp_pprof_str(p, p->sample_type[i]->unit));
    }
    return h.a;
}

/* --- table ------------------------------------------------------------------ */

static int pd_table_init(struct pprof_delta_state *t, size_t samples, size_t ncols)
{
    size_t n = samples ? samples : 1;
    t->keys = malloc(n * sizeof(*t->keys));
    t->vals = calloc(n * (ncols ? ncols : 1), sizeof(int64_t));
    t->used = calloc(n, 1);
    if (!t->keys || !t->vals || !t->used || sp_hindex_reserve(&t->ix, n, 0, NULL, NULL))
        return SP_ENOMEM;
    t->ncols = ncols;
    t->n = 0;
    return 0;
}

static bool pd_eq(const void *ctx, size_t pos, const void *key)
{
    const struct pd_hash *have = &((const struct pprof_delta_state *)ctx)->keys[pos];
    const struct pd_hash *k = key;
    return have->a == k->a && have->b == k->b;
}

/* The entry of key, or SIZE_MAX; with add, a new zeroed one when absent
 * (t is sized for every sample, so there is room). */
static size_t pd_entry(struct pprof_delta_state *t, struct pd_hash k, bool add)
{
    size_t s = sp_hindex_find(&t->ix, k.a, pd_eq, t, &k);
    if (t->ix.slots[s])
        return sp_hindex_pos(&t->ix, s);
    if (!add)
        return SIZE_MAX;
    t->keys[t->n] = k;
    sp_hindex_put(&t->ix, s, t->n);
    return t->n++;
}

/* Adds the cumulative columns of every sample of p into t (summing
 * samples that hash alike). t is sized for p. */
static void pd_table_fill(struct pprof_delta_state *t, const sp_pprof *p,
                          const struct pd_hash *keys, const bool *cum)
{
    for (size_t i = 0; i < p->n_sample; i++) {
        size_t e = pd_entry(t, keys[i], true);
        size_t c = 0;
        for (size_t j = 0; j < p->n_sample_type; j++)
            if (cum[j])
                t->vals[e * t->ncols + c++] += p->sample[i]->value[j];
    }
}

/* cur -= t for the cumulative columns; a value that would go negative
 * means the counters restarted (a new process on the same address): the
 * snapshot value is then the delta. Drops all-zero samples. */
static void pd_subtract(struct pprof_delta_state *t, sp_pprof *cur, const struct pd_hash *keys,
                        const bool *cum)
{
    memset(t->used, 0, t->n);
    size_t kept = 0;
    for (size_t i = 0; i < cur->n_sample; i++) {
        Perftools__Profiles__Sample *s = cur->sample[i];
        size_t e = pd_entry(t, keys[i], false);
        if (e != SIZE_MAX && !t->used[e]) {
            t->used[e] = 1;
            size_t c = 0;
            for (size_t j = 0; j < cur->n_sample_type; j++) {
                if (!cum[j])
                    continue;
                int64_t prev = t->vals[e * t->ncols + c++];
                if (s->value[j] >= prev)
                    s->value[j] -= prev;
            }
        }
        bool zero = true;
        for (size_t j = 0; j < s->n_value; j++)
            if (s->value[j] != 0)
                zero = false;
        if (!zero)
            cur->sample[kept++] = s;
    }
    cur->n_sample = kept;
}

static int pd_columns(const sp_pprof *p, const bool *cumulative, bool *cum, size_t *ncols)
{
    *ncols = 0;
    for (size_t j = 0; j < p->n_sample_type; j++) {
        cum[j] = cumulative ? cumulative[j]
                            : pprof_delta_is_cumulative_type(
                                  sp_pprof_str(p, p->sample_type[j]->type));
        *ncols += cum[j];
    }
    return 0;
}

static struct pd_hash *pd_keys(const sp_pprof *p)
{
    struct pd_index ix;
    struct pd_hash *keys = malloc((p->n_sample ? p->n_sample : 1) * sizeof(*keys));
    if (!keys)
        return NULL;
    if (pd_index_build(&ix, p) != 0) {
        pd_index_free(&ix);
        free(keys);
        return NULL;
    }
    for (size_t i = 0; i < p->n_sample; i++)
        keys[i] = pd_sample(&ix, p->sample[i]);
    pd_index_free(&ix);
    return keys;
}

int pprof_delta_apply(struct pprof_delta_state *s, sp_pprof *cur, const bool *cumulative,
                      bool *had_baseline)
{
    *had_baseline = false;
    bool *cum = calloc(cur->n_sample_type ? cur->n_sample_type : 1, sizeof(bool));
    struct pd_hash *keys = cum ? pd_keys(cur) : NULL;
    struct pprof_delta_state next = {0};
    size_t ncols = 0;
    if (!keys)
        goto nomem;
    pd_columns(cur, cumulative, cum, &ncols);
    if (pd_table_init(&next, cur->n_sample, ncols) != 0)
        goto nomem;
    pd_table_fill(&next, cur, keys, cum);
    next.signature = pd_signature(cur);
    next.time_nanos = cur->time_nanos;
    next.has = true;
    if (s->has && s->signature == next.signature && s->ncols == ncols) {
        *had_baseline = true;
        pd_subtract(s, cur, keys, cum);
        if (s->time_nanos > 0 && cur->time_nanos > s->time_nanos) {
            cur->duration_nanos = cur->time_nanos - s->time_nanos;
            cur->time_nanos = s->time_nanos;
        }
    }
    pprof_delta_clear(s);
    *s = next;
    free(keys);
    free(cum);
    return 0;
nomem:
    pprof_delta_clear(&next);
    free(keys);
    free(cum);
    pprof_delta_clear(s);
    return SP_ENOMEM;
}

int pprof_delta_subtract(sp_pprof *cur, const sp_pprof *prev, const bool *cumulative)
{
    int rc = SP_ENOMEM;
    bool *cum = calloc(cur->n_sample_type ? cur->n_sample_type : 1, sizeof(bool));
    struct pd_hash *ck = cum ? pd_keys(cur) : NULL;
    struct pd_hash *pk = ck ? pd_keys(prev) : NULL;
    struct pprof_delta_state t = {0};
    size_t ncols;
    if (!pk)
        goto out;
    /* prev must have the same columns to be subtracted column by column */
    if (pd_signature(prev) != pd_signature(cur)) {
        rc = SP_EINVAL;
        goto out;
    }
    pd_columns(cur, cumulative, cum, &ncols);
    if (pd_table_init(&t, prev->n_sample, ncols) != 0)
        goto out;
    pd_table_fill(&t, prev, pk, cum);
    pd_subtract(&t, cur, ck, cum);
    rc = 0;
out:
    pprof_delta_clear(&t);
    free(ck);
    free(pk);
    free(cum);
    return rc;
}
