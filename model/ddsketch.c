/* DDSketch (see ddsketch.h for why and what follows upstream). */
#include "ddsketch.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sp_err.h"

#define DDS_GROW 64u /* bins are allocated in steps of this many */

/* ---- mapping (sketches-go mapping/logarithmic_mapping.go) ---- */

static double dds_gamma_v, dds_mult, dds_min_idx, dds_max_idx;

static void dds_consts(void)
{
    if (dds_mult != 0)
        return;
    double g = (1 + SP_DDS_REL_ACC) / (1 - SP_DDS_REL_ACC);
    double m = 1 / log(g);
    /* NewLogarithmicMappingWithGamma: the smallest value whose index stays
     * >= INT32_MIN and whose bound stays a normal double; the largest whose
     * index stays <= INT32_MAX and whose exp() does not overflow. */
    double lo = fmax(exp((double)INT32_MIN / m + 1), DBL_MIN * g);
    double hi = fmin(exp((double)INT32_MAX / m - 1), exp(7.094361393031e+02) / (2 * g) * (g + 1));
    dds_gamma_v = g;
    dds_min_idx = lo;
    dds_max_idx = hi;
    dds_mult = m;
}

double sp_dds_gamma(void)
{
    dds_consts();
    return dds_gamma_v;
}

int32_t sp_dds_index(double v)
{
    dds_consts();
    return (int32_t)floor(log(v) * dds_mult);
}

double sp_dds_value(int32_t index)
{
    dds_consts();
    return exp((double)index / dds_mult) * (1 + SP_DDS_REL_ACC);
}

/* ---- collapsing lowest dense store ---- */

static bool st_empty(const struct sp_dds_store *st)
{
    return st->count == 0;
}

/* Re-lays the bins so that [lo, hi] fits (hi - lo < SP_DDS_MAX_BINS), with
 * slack on both sides when the cap allows. Counts below lo fold into lo. */
static bool st_relayout(struct sp_dds_store *st, int32_t lo, int32_t hi)
{
    uint64_t need = (uint64_t)((int64_t)hi - lo) + 1;
    uint64_t cap = (need + DDS_GROW - 1) / DDS_GROW * DDS_GROW + DDS_GROW;
    if (cap > SP_DDS_MAX_BINS)
        cap = SP_DDS_MAX_BINS;
    int64_t off = (int64_t)lo - (int64_t)(cap - need) / 2;
    if (off + (int64_t)cap - 1 > INT32_MAX)
        off = (int64_t)INT32_MAX - (int64_t)cap + 1;
    if (off < INT32_MIN)
        off = INT32_MIN;
    uint32_t *nb = calloc(cap, sizeof(*nb));
    if (!nb)
        return false;
    if (!st_empty(st)) {
        for (int64_t i = st->min; i <= st->max; i++) {
            uint32_t c = st->bins[i - st->offset];
            if (!c)
                continue;
            int64_t j = i < lo ? lo : i;
            uint32_t *d = &nb[j - off];
            *d = UINT32_MAX - *d < c ? UINT32_MAX : *d + c;
        }
    }
    free(st->bins);
    st->bins = nb;
    st->cap = (uint32_t)cap;
    st->offset = (int32_t)off;
    return true;
}

static bool st_add(struct sp_dds_store *st, int32_t index, uint32_t count)
{
    if (count == 0)
        return true;
    int32_t lo = index, hi = index;
    if (!st_empty(st)) {
        if (index < st->min && st->collapsed)
            index = lo = st->min;
        if (st->min < lo)
            lo = st->min;
        if (st->max > hi)
            hi = st->max;
    }
    if ((int64_t)hi - lo + 1 > SP_DDS_MAX_BINS) {
        /* collapse: keep the SP_DDS_MAX_BINS highest indexes */
        lo = (int32_t)((int64_t)hi - SP_DDS_MAX_BINS + 1);
        st->collapsed = true;
        if (index < lo)
            index = lo;
    }
    if (!st->bins || lo < st->offset || (int64_t)hi >= (int64_t)st->offset + st->cap ||
        (!st_empty(st) && lo > st->min)) {
        if (!st_relayout(st, lo, hi)) {
            if (!st->bins)
                return false;
            /* no memory to grow: fold into the nearest existing bin */
            int64_t last = (int64_t)st->offset + st->cap - 1;
            index = index < st->offset ? st->offset : index > last ? (int32_t)last : index;
            lo = index < st->min || st_empty(st) ? index : st->min;
            hi = index > st->max || st_empty(st) ? index : st->max;
            uint32_t *d = &st->bins[index - st->offset];
            *d = UINT32_MAX - *d < count ? UINT32_MAX : *d + count;
            st->min = lo;
            st->max = hi;
            st->count += count;
            return false;
        }
    }
    uint32_t *d = &st->bins[index - st->offset];
    *d = UINT32_MAX - *d < count ? UINT32_MAX : *d + count;
    st->min = lo;
    st->max = hi;
    st->count += count;
    return true;
}

/* The index holding the element of rank `rank` (0-based, fractional ranks
 * round up as sketches-go's DenseStore.KeyAtRank: first cumulative > rank). */
static int32_t st_key_at_rank(const struct sp_dds_store *st, double rank)
{
    if (rank < 0)
        rank = 0;
    uint64_t n = 0;
    for (int64_t i = st->min; i <= st->max; i++) {
        n += st->bins[i - st->offset];
        if ((double)n > rank)
            return (int32_t)i;
    }
    return st->max;
}

static void st_free(struct sp_dds_store *st)
{
    free(st->bins);
    memset(st, 0, sizeof(*st));
    st->min = INT32_MAX;
    st->max = INT32_MIN;
}

/* ---- sketch ---- */

void sp_dds_init(struct sp_ddsketch *s)
{
    memset(s, 0, sizeof(*s));
    st_free(&s->pos);
    st_free(&s->neg);
}

void sp_dds_free(struct sp_ddsketch *s)
{
    st_free(&s->pos);
    st_free(&s->neg);
    s->zero = 0;
}

bool sp_dds_add(struct sp_ddsketch *s, double v)
{
    dds_consts();
    if (isnan(v))
        return false;
    if (v > dds_min_idx) {
        if (v > dds_max_idx)
            return false;
        return st_add(&s->pos, sp_dds_index(v), 1);
    }
    if (v < -dds_min_idx) {
        if (v < -dds_max_idx)
            return false;
        return st_add(&s->neg, sp_dds_index(-v), 1);
    }
    s->zero++;
    return true;
}

static bool st_merge(struct sp_dds_store *dst, const struct sp_dds_store *src)
{
    bool ok = true;
    if (st_empty(src))
        return true;
    /* highest first, so a collapse keeps the same bins as adding the union */
    for (int64_t i = src->max; i >= src->min; i--) {
        uint32_t c = src->bins[i - src->offset];
        if (c && !st_add(dst, (int32_t)i, c))
            ok = false;
    }
    return ok;
}

bool sp_dds_merge(struct sp_ddsketch *dst, const struct sp_ddsketch *src)
{
    bool ok = st_merge(&dst->pos, &src->pos);
    ok = st_merge(&dst->neg, &src->neg) && ok;
    dst->zero += src->zero;
    return ok;
}

uint64_t sp_dds_count(const struct sp_ddsketch *s)
{
    return s->pos.count + s->neg.count + s->zero;
}

double sp_dds_quantile(const struct sp_ddsketch *s, double q)
{
    uint64_t n = sp_dds_count(s);
    if (n == 0 || !(q >= 0 && q <= 1))
        return NAN;
    double rank = q * (double)(n - 1);
    double nneg = (double)s->neg.count;
    if (rank < nneg)
        return -sp_dds_value(st_key_at_rank(&s->neg, nneg - 1 - rank));
    if (rank < nneg + (double)s->zero)
        return 0;
    return sp_dds_value(st_key_at_rank(&s->pos, rank - nneg - (double)s->zero));
}

size_t sp_dds_heap_bytes(const struct sp_ddsketch *s)
{
    return ((size_t)s->pos.cap + s->neg.cap) * sizeof(uint32_t);
}

/* ---- protobuf (field numbers: proto/ddsketch.proto) ---- */

static size_t pb_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t pb_double(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
    return 8;
}

static size_t st_body_len(const struct sp_dds_store *st, size_t *packed)
{
    if (st_empty(st)) {
        *packed = 0;
        return 0;
    }
    uint8_t tmp[10];
    *packed = ((size_t)((int64_t)st->max - st->min) + 1) * 8;
    size_t n = 1 + pb_varint(tmp, *packed) + *packed;
    if (st->min != 0)
        n += 1 + pb_varint(tmp, ((uint32_t)st->min << 1) ^ (uint32_t)(st->min >> 31));
    return n;
}

static size_t st_write(uint8_t *p, uint8_t tag, const struct sp_dds_store *st)
{
    size_t packed, body = st_body_len(st, &packed), o = 0;
    p[o++] = tag;
    o += pb_varint(p + o, body);
    if (body == 0)
        return o;
    p[o++] = 0x12; /* contiguousBinCounts = 2, packed */
    o += pb_varint(p + o, packed);
    for (int64_t i = st->min; i <= st->max; i++)
        o += pb_double(p + o, (double)st->bins[i - st->offset]);
    if (st->min != 0) {
        p[o++] = 0x18; /* contiguousBinIndexOffset = 3, sint32 (zigzag) */
        o += pb_varint(p + o, ((uint32_t)st->min << 1) ^ (uint32_t)(st->min >> 31));
    }
    return o;
}

int sp_dds_encode(const struct sp_ddsketch *s, struct sp_buf *out)
{
    size_t pk;
    /* mapping 11 bytes, two store headers <= 2*(1+5), zeroCount 9 */
    size_t max = 11 + 12 + st_body_len(&s->pos, &pk) + st_body_len(&s->neg, &pk) + 9;
    if (sp_buf_reserve(out, max))
        return SP_ENOMEM;
    uint8_t *p = out->data + out->len;
    size_t o = 0;
    /* mapping = 1 {gamma = 1 (double)}; indexOffset 0 and NONE are defaults */
    p[o++] = 0x0a;
    p[o++] = 9;
    p[o++] = 0x09;
    o += pb_double(p + o, sp_dds_gamma());
    o += st_write(p + o, 0x12, &s->pos); /* positiveValues = 2 */
    o += st_write(p + o, 0x1a, &s->neg); /* negativeValues = 3 */
    if (s->zero) {
        p[o++] = 0x21; /* zeroCount = 4 (double) */
        o += pb_double(p + o, (double)s->zero);
    }
    out->len += o;
    return 0;
}
