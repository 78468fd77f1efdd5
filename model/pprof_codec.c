/* pprof codec: bounded decode with full reference validation, encode, and
 * the string-table helpers the join uses to add labels.
 *
 * Every receiver path (Datadog upload, plain push, Pyroscope, scrape) ends
 * here, so this is the one place where hostile bytes become a Profile tree.
 * The body is inflated under a cap (sp_decompress enforces it while
 * inflating), unpacked by protobuf-c into the batch arena through an
 * allocator that remembers whether it ran out (so a memory bound reads as
 * SP_ETOOBIG, not as "invalid protobuf"), and then every index the rest of
 * the pipeline will follow is checked once, so later stages can index
 * without checking. */
#include "pprof_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_compress.h"

/* --- decode --------------------------------------------------------------- */

struct pprof_pb_alloc {
    struct sp_arena *arena;
    int failed;
};

static void *pprof_pb_alloc_fn(void *data, size_t size)
{
    struct pprof_pb_alloc *a = data;
    void *p = sp_arena_alloc(a->arena, size);
    if (!p)
        a->failed = 1;
    return p;
}

static void pprof_pb_free_fn(void *data, void *p)
{
    (void)data;
    (void)p; /* the arena frees everything at once */
}

int sp_pprof_decode(const uint8_t *body, size_t len, size_t max_inflated, struct sp_arena *arena,
                    sp_pprof **out, enum sp_compression *compression_out, struct sp_err *err)
{
    *out = NULL;
    enum sp_compression c = sp_compression_sniff(body, len);
    if (compression_out)
        *compression_out = c;
    if (len == 0)
        return sp_err_set(err, SP_EDECODE, "empty pprof body");
    const uint8_t *raw = body;
    size_t raw_len = len;
    if (c != SP_COMPRESSION_NONE) {
        int rc = sp_decompress(c, body, len, max_inflated, arena, &raw, &raw_len, err);
        if (rc < 0)
            return rc;
    } else if (max_inflated && len > max_inflated) {
        return sp_err_set(err, SP_ETOOBIG, "pprof body of %zu bytes is over the limit of %zu bytes",
                          len, max_inflated);
    }
    if (raw_len == 0)
        return sp_err_set(err, SP_EDECODE, "empty pprof message after %s decompression",
                          sp_compression_name(c));
    struct pprof_pb_alloc pa = {arena, 0};
    ProtobufCAllocator alloc = {pprof_pb_alloc_fn, pprof_pb_free_fn, &pa};
    sp_pprof *p = perftools__profiles__profile__unpack(&alloc, raw_len, raw);
    if (!p) {
        if (pa.failed)
            return sp_err_set(err, SP_ETOOBIG,
                              "decoded pprof of %zu bytes does not fit the memory limit", raw_len);
        return sp_err_set(err, SP_EDECODE, "not a valid pprof protobuf message (%zu bytes%s%s)",
                          raw_len, c != SP_COMPRESSION_NONE ? " after " : "",
                          c != SP_COMPRESSION_NONE ? sp_compression_name(c) : "");
    }
    int rc = sp_pprof_validate(p, err);
    if (rc < 0)
        return rc;
    *out = p;
    return 0;
}

/* --- validation ------------------------------------------------------------ */

/* Ids are not indexes, but producers almost always number them 1..n in
 * order; then lookup is arithmetic. Otherwise a sorted copy is searched. */
struct pprof_idset {
    const char *what;
    size_t n;
    bool dense;        /* ids[i] == i + 1 for all i */
    uint64_t *sorted;  /* when not dense (malloc) */
};

static int pprof_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* get(i) reads the id of element i. Rejects id 0 and duplicates. */
static int pprof_idset_build(struct pprof_idset *s, const char *what, size_t n,
                             uint64_t (*get)(const sp_pprof *, size_t), const sp_pprof *p,
                             struct sp_err *err)
{
    s->what = what;
    s->n = n;
    s->dense = true;
    s->sorted = NULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = get(p, i);
        if (id == 0)
            return sp_err_set(err, SP_EDECODE, "%s[%zu].id: id 0 is reserved", what, i);
        if (id != i + 1)
            s->dense = false;
    }
    if (s->dense)
        return 0;
    s->sorted = malloc(n * sizeof(uint64_t));
    if (!s->sorted)
        return sp_err_set(err, SP_ENOMEM, "out of memory validating %s ids", what);
    for (size_t i = 0; i < n; i++)
        s->sorted[i] = get(p, i);
    qsort(s->sorted, n, sizeof(uint64_t), pprof_u64_cmp);
    for (size_t i = 1; i < n; i++)
        if (s->sorted[i] == s->sorted[i - 1])
            return sp_err_set(err, SP_EDECODE, "%s: duplicate id %llu", what,
                              (unsigned long long)s->sorted[i]);
    return 0;
}

static bool pprof_idset_has(const struct pprof_idset *s, uint64_t id)
{
    if (s->dense)
        return id >= 1 && id <= s->n;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->sorted[mid] == id)
            return true;
        if (s->sorted[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static uint64_t pprof_mapping_id(const sp_pprof *p, size_t i)
{
    return p->mapping[i]->id;
}

static uint64_t pprof_location_id(const sp_pprof *p, size_t i)
{
    return p->location[i]->id;
}

static uint64_t pprof_function_id(const sp_pprof *p, size_t i)
{
    return p->function[i]->id;
}

#define PPROF_CHECK_STR(p, idx, err, ...)                                                          \
    do {                                                                                           \
        int64_t idx_ = (idx);                                                                      \
        if (idx_ < 0 || (uint64_t)idx_ >= (p)->n_string_table) {                                   \
            char where_[160];                                                                      \
            snprintf(where_, sizeof(where_), __VA_ARGS__);                                         \
            return sp_err_set((err), SP_EDECODE,                                                   \
                              "%s: string index %lld out of range (table has %zu strings)",        \
                              where_, (long long)idx_, (p)->n_string_table);                       \
        }                                                                                          \
    } while (0)

static int pprof_validate_tables(const sp_pprof *p, struct sp_err *err)
{
    if (p->n_string_table == 0)
        return sp_err_set(err, SP_EDECODE, "string_table is empty (string_table[0] must be \"\")");
    if (!p->string_table[0] || p->string_table[0][0] != '\0')
        return sp_err_set(err, SP_EDECODE, "string_table[0] must be \"\"");
    for (size_t i = 0; i < p->n_string_table; i++)
        if (!p->string_table[i])
            return sp_err_set(err, SP_EDECODE, "string_table[%zu]: missing string", i);
    for (size_t i = 0; i < p->n_sample_type; i++) {
        PPROF_CHECK_STR(p, p->sample_type[i]->type, err, "sample_type[%zu].type", i);
        PPROF_CHECK_STR(p, p->sample_type[i]->unit, err, "sample_type[%zu].unit", i);
    }
    if (p->period_type) {
        PPROF_CHECK_STR(p, p->period_type->type, err, "period_type.type");
        PPROF_CHECK_STR(p, p->period_type->unit, err, "period_type.unit");
    }
    PPROF_CHECK_STR(p, p->drop_frames, err, "drop_frames");
    PPROF_CHECK_STR(p, p->keep_frames, err, "keep_frames");
    PPROF_CHECK_STR(p, p->default_sample_type, err, "default_sample_type");
    PPROF_CHECK_STR(p, p->doc_url, err, "doc_url");
    for (size_t i = 0; i < p->n_comment; i++)
        PPROF_CHECK_STR(p, p->comment[i], err, "comment[%zu]", i);
    for (size_t i = 0; i < p->n_mapping; i++) {
        const Perftools__Profiles__Mapping *m = p->mapping[i];
        PPROF_CHECK_STR(p, m->filename, err, "mapping[%zu].filename", i);
        PPROF_CHECK_STR(p, m->build_id, err, "mapping[%zu].build_id", i);
    }
    for (size_t i = 0; i < p->n_function; i++) {
        const Perftools__Profiles__Function *f = p->function[i];
        PPROF_CHECK_STR(p, f->name, err, "function[%zu].name", i);
        PPROF_CHECK_STR(p, f->system_name, err, "function[%zu].system_name", i);
        PPROF_CHECK_STR(p, f->filename, err, "function[%zu].filename", i);
    }
    return 0;
}

static int pprof_validate_refs(const sp_pprof *p, const struct pprof_idset *maps,
                               const struct pprof_idset *locs, const struct pprof_idset *funcs,
                               struct sp_err *err)
{
    for (size_t i = 0; i < p->n_location; i++) {
        const Perftools__Profiles__Location *l = p->location[i];
        if (l->mapping_id && !pprof_idset_has(maps, l->mapping_id))
            return sp_err_set(err, SP_EDECODE, "location[%zu].mapping_id: no mapping with id %llu",
                              i, (unsigned long long)l->mapping_id);
        for (size_t j = 0; j < l->n_line; j++) {
            uint64_t fid = l->line[j]->function_id;
            /* 0 means "unknown function" for some producers; anything else must resolve. */
            if (fid && !pprof_idset_has(funcs, fid))
                return sp_err_set(err, SP_EDECODE,
                                  "location[%zu].line[%zu].function_id: no function with id %llu",
                                  i, j, (unsigned long long)fid);
        }
    }
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        if (s->n_value != p->n_sample_type)
            return sp_err_set(err, SP_EDECODE,
                              "sample[%zu]: %zu values for %zu sample types", i, s->n_value,
                              p->n_sample_type);
        for (size_t j = 0; j < s->n_location_id; j++)
            if (!pprof_idset_has(locs, s->location_id[j]))
                return sp_err_set(err, SP_EDECODE,
                                  "sample[%zu].location_id[%zu]: no location with id %llu", i, j,
                                  (unsigned long long)s->location_id[j]);
        for (size_t j = 0; j < s->n_label; j++) {
            const Perftools__Profiles__Label *lb = s->label[j];
            PPROF_CHECK_STR(p, lb->key, err, "sample[%zu].label[%zu].key", i, j);
            PPROF_CHECK_STR(p, lb->str, err, "sample[%zu].label[%zu].str", i, j);
            PPROF_CHECK_STR(p, lb->num_unit, err, "sample[%zu].label[%zu].num_unit", i, j);
        }
    }
    return 0;
}

int sp_pprof_validate(const sp_pprof *p, struct sp_err *err)
{
    int rc = pprof_validate_tables(p, err);
    if (rc < 0)
        return rc;
    struct pprof_idset maps = {0}, locs = {0}, funcs = {0};
    rc = pprof_idset_build(&maps, "mapping", p->n_mapping, pprof_mapping_id, p, err);
    if (rc == 0)
        rc = pprof_idset_build(&locs, "location", p->n_location, pprof_location_id, p, err);
    if (rc == 0)
        rc = pprof_idset_build(&funcs, "function", p->n_function, pprof_function_id, p, err);
    if (rc == 0)
        rc = pprof_validate_refs(p, &maps, &locs, &funcs, err);
    free(maps.sorted);
    free(locs.sorted);
    free(funcs.sorted);
    return rc;
}

/* --- encode ---------------------------------------------------------------- */

int sp_pprof_encode(const sp_pprof *p, enum sp_compression c, struct sp_buf *out,
                    struct sp_err *err)
{
    size_t len = perftools__profiles__profile__get_packed_size(p);
    if (c == SP_COMPRESSION_NONE) {
        if (sp_buf_reserve(out, len))
            return sp_err_set(err, SP_ENOMEM, "out of memory encoding a pprof of %zu bytes", len);
        perftools__profiles__profile__pack(p, out->data + out->len);
        out->len += len;
        out->data[out->len] = 0;
        return 0;
    }
    uint8_t *tmp = malloc(len ? len : 1);
    if (!tmp)
        return sp_err_set(err, SP_ENOMEM, "out of memory encoding a pprof of %zu bytes", len);
    perftools__profiles__profile__pack(p, tmp);
    int rc = sp_compress(c, 1, tmp, len, out, err);
    free(tmp);
    return rc;
}

/* --- strings --------------------------------------------------------------- */

const char *sp_pprof_str(const sp_pprof *p, int64_t idx)
{
    if (!p || idx < 0 || (uint64_t)idx >= p->n_string_table)
        return NULL;
    return p->string_table[idx];
}

/* Appending to string_table must not copy the whole table on every call (a
 * join adds a few dozen strings to tables of thousands). protobuf-c sizes
 * the unpacked array exactly, and the array itself cannot say how big it
 * is, so the capacity of the arrays this file grew is remembered here, keyed
 * by profile, and forgotten when the profile's arena is destroyed. A table
 * not found here is treated as full. Loop thread only, like everything. */
struct pprof_strtab_cap {
    const sp_pprof *profile;
    char **table;
    size_t cap;
    struct pprof_strtab_cap *next;
};

#define PPROF_CAP_BUCKETS 256
static struct pprof_strtab_cap *pprof_caps[PPROF_CAP_BUCKETS];

static size_t pprof_cap_bucket(const sp_pprof *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 56) % PPROF_CAP_BUCKETS;
}

static void pprof_cap_forget(void *data)
{
    struct pprof_strtab_cap *e = data;
    struct pprof_strtab_cap **pp = &pprof_caps[pprof_cap_bucket(e->profile)];
    while (*pp) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
        pp = &(*pp)->next;
    }
}

static struct pprof_strtab_cap *pprof_cap_find(const sp_pprof *p)
{
    for (struct pprof_strtab_cap *e = pprof_caps[pprof_cap_bucket(p)]; e; e = e->next)
        if (e->profile == p)
            return e;
    return NULL;
}

int64_t sp_pprof_intern(sp_pprof *p, struct sp_arena *arena, const char *s)
{
    /* Recent additions are the likeliest hits (the join's own keys). */
    for (size_t i = p->n_string_table; i-- > 0;)
        if (p->string_table[i] && strcmp(p->string_table[i], s) == 0)
            return (int64_t)i;
    char *copy = sp_arena_strdup(arena, s);
    if (!copy)
        return -1;
    struct pprof_strtab_cap *e = pprof_cap_find(p);
    if (!e || e->table != p->string_table || e->cap <= p->n_string_table) {
        size_t cap = p->n_string_table < 8 ? 16 : p->n_string_table * 2;
        char **nt = sp_arena_alloc(arena, cap * sizeof(char *));
        if (!nt)
            return -1;
        if (p->n_string_table)
            memcpy(nt, p->string_table, p->n_string_table * sizeof(char *));
        if (!e) {
            e = sp_arena_calloc(arena, 1, sizeof(*e));
            if (!e || sp_arena_on_destroy(arena, pprof_cap_forget, e) < 0)
                return -1;
            e->profile = p;
            size_t b = pprof_cap_bucket(p);
            e->next = pprof_caps[b];
            pprof_caps[b] = e;
        }
        e->table = nt;
        e->cap = cap;
        p->string_table = nt;
    }
    p->string_table[p->n_string_table] = copy;
    return (int64_t)p->n_string_table++;
}

/* --- sample types ---------------------------------------------------------- */

bool sp_pprof_is_labelled_type(const sp_pprof *p)
{
    /* Go writes goroutine labels into CPU and goroutine profiles only;
     * Datadog's Node/libdatadog profilers label wall and cpu-time samples.
     * Heap, alloc, mutex and block samples never carry span labels. */
    static const char *const labelled[] = {
        "cpu", "wall", "goroutine", "goroutines", "cpu-time", "wall-time", "cpu-samples",
    };
    if (!p)
        return false;
    for (size_t i = 0; i < p->n_sample_type; i++) {
        const char *t = sp_pprof_str(p, p->sample_type[i]->type);
        if (!t)
            continue;
        for (size_t j = 0; j < sizeof(labelled) / sizeof(labelled[0]); j++)
            if (strcmp(t, labelled[j]) == 0)
                return true;
    }
    /* A profile of only "samples/count" is a CPU profile when its period is CPU time. */
    if (p->period_type) {
        const char *pt = sp_pprof_str(p, p->period_type->type);
        if (pt && (strcmp(pt, "cpu") == 0 || strcmp(pt, "wall") == 0))
            return true;
    }
    return false;
}
