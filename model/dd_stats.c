/* APM stats concentrator (see dd_stats.h for the rules and their sources). */
#include "dd_stats.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <msgpack.h>

#include "dd_peer_ip.h"
#include "ddsketch.h"
#include "sp_assert.h"
#include "sp_compress.h"

/* Peer tag keys (sorted; _dd.base_service first), aggregated when
 * peer_tags_aggregation is on (the Agent's default): datadog-agent
 * pkg/trace/config/peer_tags.go basePeerTags, the attribute keys of its 16
 * peer tag concepts in pkg/trace/semantics/mappings.json (read through the
 * hand-copied list of DataDog's serverless stats concentrator, which
 * follows it). Older agents used concentrator.go defaultPeerTags. */
static const char *const peer_keys[] = {
    "_dd.base_service", "active_record.db.vendor", "amqp.destination", "amqp.exchange",
    "amqp.queue", "aws.queue.name", "aws.s3.bucket", "bucketname", "cassandra.keyspace",
    "db.cassandra.contact.points", "db.couchbase.seed.nodes", "db.hostname", "db.instance",
    "db.name", "db.namespace", "db.system", "db.type", "dns.hostname", "grpc.host", "hostname",
    "http.host", "http.server_name", "messaging.destination", "messaging.destination.name",
    "messaging.kafka.bootstrap.servers", "messaging.rabbitmq.exchange", "messaging.system",
    "mongodb.db", "msmq.queue.path", "net.peer.name", "network.destination.ip",
    "network.destination.name", "out.host", "peer.hostname", "peer.service", "queuename",
    "rpc.service", "rpc.system", "sequel.db.vendor", "server.address", "streamname", "tablename",
    "topicname",
};
#define N_PEER_KEYS (sizeof(peer_keys) / sizeof(peer_keys[0]))

/* gRPC status keys, in the Agent's order (aggregation.go getGRPCStatusCode). */
static const char *const grpc_keys[] = {"rpc.grpc.status_code", "grpc.code",
                                        "rpc.grpc.status.code", "grpc.status.code"};
#define N_GRPC_KEYS 4

/* TraceRootFlag (stats.proto Trilean): NOT_SET 0, TRUE 1, FALSE 2. */
enum { ROOT_TRUE = 1, ROOT_FALSE = 2 };

/* ---- payload keys (interned, refcounted by their groups) ---- */

struct pkey {
    char *f[6];          /* env, hostname, version, container_id, git_commit_sha, image_tag */
    size_t refs;         /* groups that use it */
    bool used;
};

/* ---- aggregation groups ---- */

struct grp {
    uint64_t hash;
    uint32_t pk;
    uint32_t http_status;
    uint8_t is_root;
    bool synthetics;
    const char *service, *name, *resource, *type, *span_kind, *grpc;
    const char **peer;   /* n_peer "k:v", sorted */
    size_t n_peer;
    uint64_t peer_hash;
    uint64_t hits, errors, top_level, duration;
    struct sp_ddsketch ok, err;
    size_t block;        /* bytes of this allocation */
};

struct bucket {
    int64_t ts;
    struct grp **slots;  /* open addressing, cap a power of two, load <= 1/2 */
    size_t cap, n;
};

struct sp_dd_stats {
    struct sp_dd_stats_conf conf;
    char *agent_hostname, *agent_env, *agent_version;
    int64_t oldest_ts;
    struct bucket *buckets;
    size_t n_buckets, cap_buckets;
    struct pkey *pkeys;
    size_t n_pkeys;
    size_t last_pk;
    struct sp_dd_stats_counts counts;
};

static char *xstrdup(const char *s)
{
    return strdup(s ? s : "");
}

static int64_t align_ts(int64_t ts)
{
    /* concentrator.go alignTs: ts - ts % bsize (spans before 1970 are not
     * a concern: the mapping moves them to now) */
    return ts - ts % SP_DD_STATS_BUCKET_NS;
}

static void want_init(void);

struct sp_dd_stats *sp_dd_stats_create(const struct sp_dd_stats_conf *conf, int64_t now_ns)
{
    struct sp_dd_stats *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    want_init();
    c->conf = *conf;
    if (c->conf.flush_delay_ns <= 0)
        c->conf.flush_delay_ns = (SP_DD_STATS_BUFFER_LEN - 1) * SP_DD_STATS_BUCKET_NS;
    c->agent_hostname = xstrdup(conf->agent_hostname);
    c->agent_env = xstrdup(conf->agent_env && *conf->agent_env ? conf->agent_env : "none");
    c->agent_version = xstrdup(conf->agent_version);
    if (!c->agent_hostname || !c->agent_env || !c->agent_version) {
        sp_dd_stats_destroy(c);
        return NULL;
    }
    c->oldest_ts = align_ts(now_ns);
    return c;
}

static void pkey_unref(struct sp_dd_stats *c, uint32_t i)
{
    struct pkey *p = &c->pkeys[i];
    if (--p->refs)
        return;
    for (int k = 0; k < 6; k++) {
        c->counts.bytes -= strlen(p->f[k]) + 1;
        free(p->f[k]);
        p->f[k] = NULL;
    }
    p->used = false;
}

static void grp_free(struct sp_dd_stats *c, struct grp *g)
{
    c->counts.bytes -= g->block + sp_dds_heap_bytes(&g->ok) + sp_dds_heap_bytes(&g->err);
    sp_dds_free(&g->ok);
    sp_dds_free(&g->err);
    pkey_unref(c, g->pk);
    c->counts.keys_live--;
    free(g);
}

static void bucket_free(struct sp_dd_stats *c, struct bucket *b)
{
    for (size_t i = 0; i < b->cap; i++)
        if (b->slots[i])
            grp_free(c, b->slots[i]);
    c->counts.bytes -= b->cap * sizeof(*b->slots);
    free(b->slots);
    b->slots = NULL;
    b->cap = b->n = 0;
}

void sp_dd_stats_destroy(struct sp_dd_stats *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_buckets; i++)
        bucket_free(c, &c->buckets[i]);
    free(c->buckets);
    for (size_t i = 0; i < c->n_pkeys; i++)
        for (int k = 0; k < 6; k++)
            free(c->pkeys[i].f[k]);
    free(c->pkeys);
    free(c->agent_hostname);
    free(c->agent_env);
    free(c->agent_version);
    free(c);
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* The interned payload key of pk (env and hostname default to the
 * agent's, as concentrator.go addNow). UINT32_MAX on ENOMEM. */
static uint32_t pkey_get(struct sp_dd_stats *c, const struct sp_dd_stats_pkey *pk)
{
    const char *v[6] = {
        pk && pk->env && *pk->env ? pk->env : c->agent_env,
        pk && pk->hostname && *pk->hostname ? pk->hostname : c->agent_hostname,
        pk ? nz(pk->version) : "",
        pk ? nz(pk->container_id) : "",
        pk ? nz(pk->git_commit_sha) : "",
        pk ? nz(pk->image_tag) : "",
    };
    size_t free_slot = SIZE_MAX;
    for (size_t n = 0; n < c->n_pkeys; n++) {
        size_t i = (c->last_pk + n) % c->n_pkeys;
        struct pkey *p = &c->pkeys[i];
        if (!p->used) {
            if (free_slot == SIZE_MAX)
                free_slot = i;
            continue;
        }
        int k = 0;
        while (k < 6 && strcmp(p->f[k], v[k]) == 0)
            k++;
        if (k == 6) {
            c->last_pk = i;
            return (uint32_t)i;
        }
    }
    if (free_slot == SIZE_MAX) {
        struct pkey *np = realloc(c->pkeys, (c->n_pkeys + 1) * sizeof(*np));
        if (!np)
            return UINT32_MAX;
        c->pkeys = np;
        memset(&np[c->n_pkeys], 0, sizeof(*np));
        free_slot = c->n_pkeys++;
    }
    struct pkey *p = &c->pkeys[free_slot];
    for (int k = 0; k < 6; k++) {
        p->f[k] = strdup(v[k]);
        if (!p->f[k]) {
            while (k-- > 0) {
                free(p->f[k]);
                p->f[k] = NULL;
            }
            return UINT32_MAX;
        }
        c->counts.bytes += strlen(v[k]) + 1;
    }
    p->used = true;
    p->refs = 0;
    c->last_pk = free_slot;
    return (uint32_t)free_slot;
}

/* ---- what the span says (one pass over meta, one over metrics) ---- */

struct span_view {
    const char *kind;          /* meta span.kind, "" if none */
    const char *base_service;  /* meta _dd.base_service */
    const char *status_meta;   /* meta http.status_code */
    const char *grpc_meta[N_GRPC_KEYS];
    const char *peer_val[N_PEER_KEYS];
    bool top_level, measured, partial, has_status_metric;
    double status_metric;
    bool has_grpc_metric[N_GRPC_KEYS];
    double grpc_metric[N_GRPC_KEYS];
};

/* The few meta and metrics keys stats read, found without comparing every
 * key of a span against each of them: a key is looked at only when a
 * wanted key has its first byte and length (a span carries ~30-40 meta
 * entries, resource attributes included, and almost none of them match). */
enum want_kind { W_KIND, W_STATUS, W_GRPC, W_PEER, W_TOP, W_MEASURED, W_PARTIAL };

struct want {
    const char *key;
    uint8_t len;
    uint8_t what;
    uint8_t idx;   /* grpc_keys / peer_keys index */
};

#define MAX_WANT (N_PEER_KEYS + 8)
struct want_set {
    struct want v[MAX_WANT];
    size_t n;
    uint64_t first_len[128]; /* bit len set when a key starts with that byte */
    uint64_t pair[128][2];   /* bit k[1] of row k[0] set when a key starts with those two */
    uint8_t by_first[128][MAX_WANT]; /* indexes of v by first byte */
    uint8_t n_first[128];
};

static struct want_set want_meta, want_metrics;

static void want_add(struct want_set *w, const char *key, uint8_t what, uint8_t idx)
{
    size_t len = strlen(key);
    unsigned char c = (unsigned char)key[0] & 127;
    SP_ASSERT(len >= 2 && len < 64 && w->n < MAX_WANT,
              "wanted key too short, too long or too many");
    w->by_first[c][w->n_first[c]++] = (uint8_t)w->n;
    w->v[w->n++] = (struct want){key, (uint8_t)len, what, idx};
    w->first_len[c] |= 1ull << len;
    unsigned char c1 = (unsigned char)key[1] & 127;
    w->pair[c][c1 >> 6] |= 1ull << (c1 & 63);
}

static void want_init(void)
{
    if (want_meta.n)
        return;
    want_add(&want_meta, "span.kind", W_KIND, 0);
    want_add(&want_meta, "http.status_code", W_STATUS, 0);
    want_add(&want_metrics, "http.status_code", W_STATUS, 0);
    for (uint8_t g = 0; g < N_GRPC_KEYS; g++) {
        want_add(&want_meta, grpc_keys[g], W_GRPC, g);
        want_add(&want_metrics, grpc_keys[g], W_GRPC, g);
    }
    for (uint8_t i = 0; i < N_PEER_KEYS; i++) {
        /* sorted: PeerTags go out in key order, as matchingPeerTags makes them */
        SP_ASSERT(i == 0 || strcmp(peer_keys[i - 1], peer_keys[i]) < 0, "peer_keys not sorted");
        want_add(&want_meta, peer_keys[i], W_PEER, i);
    }
    want_add(&want_metrics, "_top_level", W_TOP, 0);
    want_add(&want_metrics, "_dd.top_level", W_TOP, 0); /* the tracers' flag */
    want_add(&want_metrics, "_dd.measured", W_MEASURED, 0);
    want_add(&want_metrics, "_dd.partial_version", W_PARTIAL, 0);
}

/* The wanted entry for key k, or NULL. Most keys are turned away by their
 * first two bytes (no wanted key starts with them), without strlen. */
static inline const struct want *want_find(const struct want_set *w, const char *k)
{
    unsigned char c = (unsigned char)k[0];
    if (c >= 128 || !w->first_len[c])
        return NULL;
    unsigned char c1 = (unsigned char)k[1]; /* k[0] != 0 here: no wanted key is "" */
    if (c1 >= 128 || !(w->pair[c][c1 >> 6] >> (c1 & 63) & 1))
        return NULL;
    size_t len = strlen(k);
    if (len >= 64 || !(w->first_len[c] >> len & 1))
        return NULL;
    for (size_t j = 0; j < w->n_first[c]; j++) {
        const struct want *x = &w->v[w->by_first[c][j]];
        if (x->len == len && memcmp(x->key, k, len) == 0)
            return x;
    }
    return NULL;
}

static void span_view(const struct sp_dd_stats *c, const Datadog__Trace__Span *s,
                      struct span_view *v)
{
    memset(v, 0, sizeof(*v));
    v->kind = "";
    for (size_t i = 0; i < s->n_meta; i++) {
        const char *k = s->meta[i]->key, *val = s->meta[i]->value;
        const struct want *w = k && val ? want_find(&want_meta, k) : NULL;
        if (!w)
            continue;
        switch (w->what) {
        case W_KIND:
            v->kind = val;
            break;
        case W_STATUS:
            v->status_meta = val;
            break;
        case W_GRPC:
            v->grpc_meta[w->idx] = val;
            break;
        default: /* W_PEER */
            if (w->idx == 0)
                v->base_service = val; /* peer_keys[0] is _dd.base_service */
            if (c->conf.peer_tags && *val)
                v->peer_val[w->idx] = val;
            break;
        }
    }
    for (size_t i = 0; i < s->n_metrics; i++) {
        const char *k = s->metrics[i]->key;
        double x = s->metrics[i]->value;
        const struct want *w = k ? want_find(&want_metrics, k) : NULL;
        if (!w)
            continue;
        switch (w->what) {
        /* traceutil HasTopLevelMetrics (_top_level or _dd.top_level) and
         * IsMeasuredMetrics: == 1;
         * IsPartialSnapshotMetrics: present and >= 0 */
        case W_TOP:
            v->top_level |= x == 1;
            break;
        case W_MEASURED:
            v->measured = x == 1;
            break;
        case W_PARTIAL:
            v->partial = x >= 0;
            break;
        case W_STATUS:
            v->has_status_metric = true;
            v->status_metric = x;
            break;
        default: /* W_GRPC */
            v->has_grpc_metric[w->idx] = true;
            v->grpc_metric[w->idx] = x;
            break;
        }
    }
}

/* strcasecmp(kind, w) == 0, with no call when the first letters differ
 * (the usual case: a span has one kind and is asked about several). */
static bool kind_is(const char *kind, const char *w)
{
    return (kind[0] | 0x20) == w[0] && strcasecmp(kind, w) == 0;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* aggregation.go getStatusCode: the metric first, then meta; 0 if none. */
static uint32_t status_code(const struct span_view *v)
{
    if (v->has_status_metric)
        return v->status_metric > 0 && v->status_metric <= UINT32_MAX ? (uint32_t)v->status_metric
                                                                       : 0;
    uint32_t c = 0;
    return parse_u32(v->status_meta, &c) ? c : 0;
}

/* gRPC code names as tracers write them (upper case, Python's
 * "StatusCode." prefix dropped): the Agent's getGRPCStatusCode map. */
static const char *const grpc_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

static bool grpc_by_name(const char *s, uint32_t *out)
{
    char up[32];
    if (strncasecmp(s, "StatusCode.", 11) == 0)
        s += 11;
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(up))
        return false;
    for (size_t i = 0; i <= n; i++)
        up[i] = (char)toupper((unsigned char)s[i]);
    if (strcmp(up, "CANCELED") == 0) {
        *out = 1;
        return true;
    }
    for (uint32_t i = 0; i < sizeof(grpc_names) / sizeof(*grpc_names); i++)
        if (strcmp(up, grpc_names[i]) == 0) {
            *out = i;
            return true;
        }
    return false;
}

/* The gRPC status code as the stats key carries it: "" when the span has
 * none, else the decimal code. */
static void grpc_code(const struct span_view *v, char out[12])
{
    out[0] = '\0';
    uint32_t code = 0;
    bool found = false;
    for (int g = 0; g < N_GRPC_KEYS && !found; g++) {
        const char *m = v->grpc_meta[g];
        if (m && *m)
            found = parse_u32(m, &code) || grpc_by_name(m, &code);
    }
    for (int g = 0; g < N_GRPC_KEYS && !found; g++)
        if (v->has_grpc_metric[g] && v->grpc_metric[g] >= 0 && v->grpc_metric[g] <= UINT32_MAX) {
            code = (uint32_t)v->grpc_metric[g];
            found = true;
        }
    if (found)
        snprintf(out, 12, "%u", code);
}

/* span_concentrator.go peerTagKeysToAggregateForSpan + matchingPeerTags:
 * client/producer/consumer spans aggregate every peer key they have;
 * internal (or kindless) spans with a service override only
 * _dd.base_service; others none. */
static size_t peer_tags(const struct sp_dd_stats *c, const struct span_view *v,
                        const char *kv[N_PEER_KEYS][2], char *scratch, size_t cap)
{
    if (!c->conf.peer_tags)
        return 0;
    size_t n = 0;
    if ((!*v->kind || kind_is(v->kind, "internal")) && v->base_service && *v->base_service) {
        kv[0][0] = "_dd.base_service";
        kv[0][1] = v->base_service;
        return 1;
    }
    if (!kind_is(v->kind, "client") && !kind_is(v->kind, "producer") &&
        !kind_is(v->kind, "consumer"))
        return 0;
    size_t used = 0;
    for (size_t i = 0; i < N_PEER_KEYS; i++)
        if (v->peer_val[i]) {
            kv[n][0] = peer_keys[i];
            kv[n][1] = v->peer_val[i];
            /* IP addresses quantized (obfuscate.QuantizePeerIPAddresses) */
            size_t q = sp_dd_quantize_peer_ips(v->peer_val[i], scratch + used, cap - used);
            if (q) {
                kv[n][1] = scratch + used;
                used += q + 1;
            }
            n++;
        }
    return n;
}

/* ---- hashing ---- */

#define FNV_OFF 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv_str(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= FNV_PRIME;
    }
    h ^= 0xff; /* field separator: no byte of a UTF-8 string */
    return h * FNV_PRIME;
}

static uint64_t fnv_u64(uint64_t h, uint64_t x)
{
    for (int i = 0; i < 8; i++) {
        h ^= (x >> (8 * i)) & 0xff;
        h *= FNV_PRIME;
    }
    return h;
}

/* aggregation.go peerTagsHash: FNV-64a of the sorted "k:v" joined by NUL.
 * Our keys are sorted and distinct, so "k:v" sort the same way. */
static uint64_t peer_hash(const char *kv[][2], size_t n)
{
    if (n == 0)
        return 0;
    uint64_t h = FNV_OFF;
    for (size_t i = 0; i < n; i++) {
        if (i) {
            h ^= 0;
            h *= FNV_PRIME;
        }
        for (const char *p = kv[i][0]; *p; p++) {
            h ^= (unsigned char)*p;
            h *= FNV_PRIME;
        }
        h ^= ':';
        h *= FNV_PRIME;
        for (const char *p = kv[i][1]; *p; p++) {
            h ^= (unsigned char)*p;
            h *= FNV_PRIME;
        }
    }
    return h;
}

struct key {
    uint32_t pk, http_status;
    uint8_t is_root;
    bool synthetics;
    const char *service, *name, *resource, *type, *span_kind, *grpc;
    uint64_t peer_hash;
};

static uint64_t key_hash(const struct key *k)
{
    uint64_t h = FNV_OFF;
    h = fnv_str(h, k->service);
    h = fnv_str(h, k->name);
    h = fnv_str(h, k->resource);
    h = fnv_str(h, k->type);
    h = fnv_str(h, k->span_kind);
    h = fnv_str(h, k->grpc);
    h = fnv_u64(h, ((uint64_t)k->pk << 32) | k->http_status);
    h = fnv_u64(h, ((uint64_t)k->is_root << 8) | k->synthetics);
    return fnv_u64(h, k->peer_hash);
}

static bool key_eq(const struct grp *g, const struct key *k)
{
    return g->pk == k->pk && g->http_status == k->http_status && g->is_root == k->is_root &&
           g->synthetics == k->synthetics && g->peer_hash == k->peer_hash &&
           strcmp(g->service, k->service) == 0 && strcmp(g->name, k->name) == 0 &&
           strcmp(g->resource, k->resource) == 0 && strcmp(g->type, k->type) == 0 &&
           strcmp(g->span_kind, k->span_kind) == 0 && strcmp(g->grpc, k->grpc) == 0;
}

/* ---- buckets ---- */

static struct bucket *bucket_get(struct sp_dd_stats *c, int64_t ts)
{
    for (size_t i = 0; i < c->n_buckets; i++)
        if (c->buckets[i].ts == ts)
            return &c->buckets[i];
    if (c->n_buckets == c->cap_buckets) {
        size_t nc = c->cap_buckets ? c->cap_buckets * 2 : 4;
        struct bucket *nb = realloc(c->buckets, nc * sizeof(*nb));
        if (!nb)
            return NULL;
        c->buckets = nb;
        c->cap_buckets = nc;
    }
    struct bucket *b = &c->buckets[c->n_buckets++];
    memset(b, 0, sizeof(*b));
    b->ts = ts;
    return b;
}

static bool bucket_grow(struct sp_dd_stats *c, struct bucket *b)
{
    size_t nc = b->cap ? b->cap * 2 : 16;
    struct grp **ns = calloc(nc, sizeof(*ns));
    if (!ns)
        return false;
    for (size_t i = 0; i < b->cap; i++) {
        struct grp *g = b->slots[i];
        if (!g)
            continue;
        size_t j = g->hash & (nc - 1);
        while (ns[j])
            j = (j + 1) & (nc - 1);
        ns[j] = g;
    }
    c->counts.bytes += (nc - b->cap) * sizeof(*ns);
    free(b->slots);
    b->slots = ns;
    b->cap = nc;
    return true;
}

/* A new group holding copies of the key's strings and peer tags. */
static struct grp *grp_new(const struct key *k, uint64_t hash, const char *kv[][2], size_t n_kv)
{
    const char *s[6] = {k->service, k->name, k->resource, k->type, k->span_kind, k->grpc};
    size_t len = sizeof(struct grp) + n_kv * sizeof(char *);
    for (int i = 0; i < 6; i++)
        len += strlen(s[i]) + 1;
    for (size_t i = 0; i < n_kv; i++)
        len += strlen(kv[i][0]) + 1 + strlen(kv[i][1]) + 1;
    struct grp *g = calloc(1, len);
    if (!g)
        return NULL;
    g->peer = (const char **)(g + 1);
    char *p = (char *)(g->peer + n_kv);
    const char **dst[6] = {&g->service, &g->name, &g->resource, &g->type, &g->span_kind, &g->grpc};
    for (int i = 0; i < 6; i++) {
        size_t l = strlen(s[i]) + 1;
        memcpy(p, s[i], l);
        *dst[i] = p;
        p += l;
    }
    for (size_t i = 0; i < n_kv; i++) {
        g->peer[i] = p;
        size_t a = strlen(kv[i][0]), b = strlen(kv[i][1]);
        memcpy(p, kv[i][0], a);
        p[a] = ':';
        memcpy(p + a + 1, kv[i][1], b + 1);
        p += a + b + 2;
    }
    g->n_peer = n_kv;
    g->hash = hash;
    g->pk = k->pk;
    g->http_status = k->http_status;
    g->is_root = k->is_root;
    g->synthetics = k->synthetics;
    g->peer_hash = k->peer_hash;
    g->block = len;
    sp_dds_init(&g->ok);
    sp_dds_init(&g->err);
    return g;
}

/* statsraw.go nsTimestampToFloat: keep the sign, the exponent and the 9
 * highest mantissa bits (the latency resolution the Agent stores). */
static double trunc_duration(int64_t ns)
{
    double d = (double)ns;
    uint64_t b;
    memcpy(&b, &d, 8);
    b &= 0xfffff80000000000ull;
    memcpy(&d, &b, 8);
    return d;
}

int sp_dd_stats_add(struct sp_dd_stats *c, const struct sp_dd_stats_pkey *pk, const char *origin,
                    const Datadog__Trace__Span *s)
{
    c->counts.spans_seen++;
    struct span_view v;
    span_view(c, s, &v);
    bool eligible_kind =
        c->conf.by_span_kind && (kind_is(v.kind, "server") || kind_is(v.kind, "consumer") ||
                                 kind_is(v.kind, "client") || kind_is(v.kind, "producer"));
    if (!(v.top_level || v.measured || eligible_kind) || v.partial)
        return 0;

    int64_t end = s->start + s->duration;
    int64_t bt = align_ts(end);
    if (bt < c->oldest_ts)
        bt = c->oldest_ts;

    uint32_t pki = pkey_get(c, pk);
    if (pki == UINT32_MAX)
        return SP_ENOMEM;
    const char *kv[N_PEER_KEYS][2];
    char scratch[2048];
    size_t n_kv = peer_tags(c, &v, kv, scratch, sizeof(scratch));
    char grpc[12];
    grpc_code(&v, grpc);
    struct key k = {
        .pk = pki,
        .http_status = status_code(&v),
        .is_root = s->parentid == 0 ? ROOT_TRUE : ROOT_FALSE,
        .synthetics = origin && strncmp(origin, "synthetics", 10) == 0,
        .service = nz(s->service),
        .name = nz(s->name),
        .resource = nz(s->resource),
        .type = nz(s->type),
        .span_kind = v.kind,
        .grpc = grpc,
        .peer_hash = peer_hash(kv, n_kv),
    };
    uint64_t h = key_hash(&k);

    struct bucket *b = bucket_get(c, bt);
    if (!b)
        return SP_ENOMEM;
    struct grp *g = NULL;
    size_t j = 0;
    if (b->cap) {
        j = h & (b->cap - 1);
        while (b->slots[j] && !(b->slots[j]->hash == h && key_eq(b->slots[j], &k)))
            j = (j + 1) & (b->cap - 1);
        g = b->slots[j];
    }
    if (!g) {
        if (c->counts.keys_live >= c->conf.max_keys) {
            c->counts.spans_overflow++;
            if (b->n == 0 && b == &c->buckets[c->n_buckets - 1] && !b->slots)
                c->n_buckets--; /* do not keep an empty bucket */
            return SP_EFULL;
        }
        if ((b->n + 1) * 2 > b->cap) {
            if (!bucket_grow(c, b))
                return SP_ENOMEM;
            j = h & (b->cap - 1);
            while (b->slots[j])
                j = (j + 1) & (b->cap - 1);
        }
        g = grp_new(&k, h, kv, n_kv);
        if (!g)
            return SP_ENOMEM;
        b->slots[j] = g;
        b->n++;
        c->pkeys[pki].refs++;
        c->counts.keys_live++;
        c->counts.bytes += g->block;
    }

    /* statsraw.go RawBucket.add, weight 1 */
    g->hits++;
    if (v.top_level)
        g->top_level++;
    if (s->error)
        g->errors++;
    g->duration += s->duration > 0 ? (uint64_t)s->duration : 0;
    struct sp_ddsketch *sk = s->error ? &g->err : &g->ok;
    size_t before = sp_dds_heap_bytes(sk);
    sp_dds_add(sk, trunc_duration(s->duration));
    c->counts.bytes += sp_dds_heap_bytes(sk) - before;
    c->counts.spans_counted++;
    return 1;
}

/* ---- encoding (msgpack as the Agent's msgp code: pkg/proto/pbgo/trace/stats_gen.go) ---- */

struct entry {
    uint32_t pk;
    int64_t ts;
    const struct grp *g;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->pk != y->pk)
        return x->pk < y->pk ? -1 : 1;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static int mp_write(void *data, const char *buf, size_t len)
{
    return sp_buf_append((struct sp_buf *)data, buf, len) ? -1 : 0;
}

static int mp_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n))
        return -1;
    return msgpack_pack_str_body(pk, s, n);
}

static int mp_kstr(msgpack_packer *pk, const char *k, const char *v)
{
    return mp_str(pk, k) || mp_str(pk, v) ? -1 : 0;
}

static int mp_ku64(msgpack_packer *pk, const char *k, uint64_t v)
{
    return mp_str(pk, k) || msgpack_pack_uint64(pk, v) ? -1 : 0;
}

static int mp_sketch(msgpack_packer *pk, const char *k, const struct sp_ddsketch *s,
                     struct sp_buf *tmp)
{
    tmp->len = 0;
    if (sp_dds_encode(s, tmp))
        return -1;
    return mp_str(pk, k) || msgpack_pack_bin(pk, tmp->len) ||
                   msgpack_pack_bin_body(pk, tmp->data, tmp->len)
               ? -1
               : 0;
}

/* ClientGroupedStats (groupedStats.export) */
static int mp_group(msgpack_packer *pk, const struct grp *g, struct sp_buf *tmp)
{
    if (msgpack_pack_map(pk, 17) || mp_kstr(pk, "Service", g->service) ||
        mp_kstr(pk, "Name", g->name) || mp_kstr(pk, "Resource", g->resource) ||
        mp_str(pk, "HTTPStatusCode") || msgpack_pack_uint32(pk, g->http_status) ||
        mp_kstr(pk, "Type", g->type) || mp_kstr(pk, "DBType", "") ||
        mp_ku64(pk, "Hits", g->hits) || mp_ku64(pk, "Errors", g->errors) ||
        mp_ku64(pk, "Duration", g->duration) || mp_sketch(pk, "OkSummary", &g->ok, tmp) ||
        mp_sketch(pk, "ErrorSummary", &g->err, tmp) || mp_str(pk, "Synthetics") ||
        (g->synthetics ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) ||
        mp_ku64(pk, "TopLevelHits", g->top_level) || mp_kstr(pk, "SpanKind", g->span_kind) ||
        mp_str(pk, "PeerTags") || msgpack_pack_array(pk, g->n_peer))
        return -1;
    for (size_t i = 0; i < g->n_peer; i++)
        if (mp_str(pk, g->peer[i]))
            return -1;
    return mp_str(pk, "IsTraceRoot") || msgpack_pack_int32(pk, g->is_root) ||
                   mp_kstr(pk, "GRPCStatusCode", g->grpc)
               ? -1
               : 0;
}

/* One StatsPayload of e[0..n) (sorted by payload key, then bucket). */
static int mp_payload(const struct sp_dd_stats *c, const struct entry *e, size_t n, bool split,
                      struct sp_buf *out, struct sp_buf *tmp)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mp_write);
    size_t n_cps = 0;
    for (size_t i = 0; i < n; i++)
        n_cps += i == 0 || e[i].pk != e[i - 1].pk;
    if (msgpack_pack_map(&pk, 6) || mp_kstr(&pk, "AgentHostname", c->agent_hostname) ||
        mp_kstr(&pk, "AgentEnv", c->agent_env) || mp_str(&pk, "Stats") ||
        msgpack_pack_array(&pk, n_cps))
        return -1;
    size_t i = 0;
    while (i < n) {
        size_t end = i, n_b = 0;
        while (end < n && e[end].pk == e[i].pk) {
            n_b += end == i || e[end].ts != e[end - 1].ts;
            end++;
        }
        const struct pkey *p = &c->pkeys[e[i].pk];
        /* ClientStatsPayload (concentrator.go flushNow) */
        if (msgpack_pack_map(&pk, 14) || mp_kstr(&pk, "Hostname", p->f[1]) ||
            mp_kstr(&pk, "Env", p->f[0]) || mp_kstr(&pk, "Version", p->f[2]) ||
            mp_str(&pk, "Stats") || msgpack_pack_array(&pk, n_b))
            return -1;
        size_t j = i;
        while (j < end) {
            size_t bend = j;
            while (bend < end && e[bend].ts == e[j].ts)
                bend++;
            /* ClientStatsBucket (RawBucket.Export) */
            if (msgpack_pack_map(&pk, 4) || mp_ku64(&pk, "Start", (uint64_t)e[j].ts) ||
                mp_ku64(&pk, "Duration", SP_DD_STATS_BUCKET_NS) || mp_str(&pk, "Stats") ||
                msgpack_pack_array(&pk, bend - j))
                return -1;
            for (size_t k = j; k < bend; k++)
                if (mp_group(&pk, e[k].g, tmp))
                    return -1;
            if (mp_str(&pk, "AgentTimeShift") || msgpack_pack_int64(&pk, 0))
                return -1;
            j = bend;
        }
        if (mp_kstr(&pk, "Lang", "") || mp_kstr(&pk, "TracerVersion", "") ||
            mp_kstr(&pk, "RuntimeID", "") || mp_ku64(&pk, "Sequence", 0) ||
            mp_kstr(&pk, "AgentAggregation", "") || mp_kstr(&pk, "Service", "") ||
            mp_kstr(&pk, "ContainerID", p->f[3]) || mp_str(&pk, "Tags") ||
            msgpack_pack_array(&pk, 0) || mp_kstr(&pk, "GitCommitSha", p->f[4]) ||
            mp_kstr(&pk, "ImageTag", p->f[5]))
            return -1;
        i = end;
    }
    return mp_kstr(&pk, "AgentVersion", c->agent_version) || mp_str(&pk, "ClientComputed") ||
                   msgpack_pack_false(&pk) || mp_str(&pk, "SplitPayload") ||
                   (split ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk))
               ? -1
               : 0;
}

void sp_dd_stats_payloads_free(struct sp_dd_stats_payload *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sp_buf_free(&p[i].body);
    free(p);
}

static int encode(const struct sp_dd_stats *c, struct entry *e, size_t n,
                  struct sp_dd_stats_payload **out, size_t *n_out, struct sp_err *err)
{
    qsort(e, n, sizeof(*e), cmp_entry);
    size_t parts = (n + SP_DD_STATS_MAX_ENTRIES - 1) / SP_DD_STATS_MAX_ENTRIES;
    struct sp_dd_stats_payload *np = realloc(*out, (*n_out + parts) * sizeof(*np));
    if (!np)
        return sp_err_set(err, SP_ENOMEM, "out of memory (stats payloads)");
    *out = np;
    struct sp_buf raw = {0}, tmp = {0};
    size_t done = 0;
    int rc = 0;
    for (size_t p = 0; p < parts && rc == 0; p++) {
        size_t from = p * SP_DD_STATS_MAX_ENTRIES;
        size_t cnt = n - from < SP_DD_STATS_MAX_ENTRIES ? n - from : SP_DD_STATS_MAX_ENTRIES;
        raw.len = 0;
        if (mp_payload(c, e + from, cnt, parts > 1, &raw, &tmp)) {
            rc = sp_err_set(err, SP_ENOMEM, "out of memory (stats payload)");
            break;
        }
        struct sp_dd_stats_payload *o = &np[*n_out + done];
        memset(o, 0, sizeof(*o));
        /* writer/stats.go encodePayload: gzip at BestSpeed */
        rc = sp_compress(SP_COMPRESSION_GZIP, 1, raw.data, raw.len, &o->body, err);
        if (rc) {
            sp_buf_free(&o->body);
            break;
        }
        o->entries = cnt;
        o->raw_len = raw.len;
        done++;
    }
    sp_buf_free(&raw);
    sp_buf_free(&tmp);
    if (rc) {
        for (size_t i = 0; i < done; i++)
            sp_buf_free(&np[*n_out + i].body);
        return rc;
    }
    *n_out += done;
    return 0;
}

int sp_dd_stats_flush(struct sp_dd_stats *c, int64_t now_ns, bool force,
                      struct sp_dd_stats_payload **out, size_t *n, struct sp_err *err)
{
    /* concentrator.go flushNow: a bucket goes once it is bufferLen buckets
     * old (ts <= now - bufferLen * bsize), all of them when forced; here
     * once its end is flush_delay old (the same with the default delay). */
    int64_t limit = now_ns - SP_DD_STATS_BUCKET_NS - c->conf.flush_delay_ns;
    size_t n_e = 0, max_flushed = 0;
    int64_t newest_flushed = INT64_MIN;
    for (size_t i = 0; i < c->n_buckets; i++)
        if (force || c->buckets[i].ts <= limit)
            n_e += c->buckets[i].n;
    struct entry *e = n_e ? malloc(n_e * sizeof(*e)) : NULL;
    int rc = 0;
    if (n_e && !e)
        rc = sp_err_set(err, SP_ENOMEM, "out of memory (stats flush)");
    size_t k = 0;
    for (size_t i = 0; i < c->n_buckets; i++) {
        struct bucket *b = &c->buckets[i];
        if (!(force || b->ts <= limit))
            continue;
        if (b->ts > newest_flushed)
            newest_flushed = b->ts;
        if (b->n > max_flushed)
            max_flushed = b->n;
        for (size_t j = 0; e && j < b->cap; j++)
            if (b->slots[j])
                e[k++] = (struct entry){b->slots[j]->pk, b->ts, b->slots[j]};
    }
    if (rc == 0 && k)
        rc = encode(c, e, k, out, n, err);
    free(e);
    /* forget what was flushed (also on error: a bucket is sent once at most) */
    size_t w = 0;
    for (size_t i = 0; i < c->n_buckets; i++) {
        struct bucket *b = &c->buckets[i];
        if (force || b->ts <= limit)
            bucket_free(c, b);
        else
            c->buckets[w++] = *b;
    }
    c->n_buckets = w;
    if (newest_flushed != INT64_MIN)
        c->counts.last_bucket_keys = max_flushed;
    /* Later spans go to buckets that were not flushed yet: the Agent's
     * oldestTs update, and never at or below a bucket already sent. */
    int64_t oldest = align_ts(now_ns - c->conf.flush_delay_ns);
    if (newest_flushed != INT64_MIN && newest_flushed + SP_DD_STATS_BUCKET_NS > oldest)
        oldest = newest_flushed + SP_DD_STATS_BUCKET_NS;
    if (oldest > c->oldest_ts)
        c->oldest_ts = oldest;
    /* payload keys no group uses any more */
    for (size_t i = 0; i < c->n_pkeys; i++)
        if (c->pkeys[i].used && c->pkeys[i].refs == 0) {
            c->pkeys[i].refs = 1;
            pkey_unref(c, (uint32_t)i);
        }
    return rc;
}

void sp_dd_stats_get_counts(const struct sp_dd_stats *c, struct sp_dd_stats_counts *out)
{
    *out = c->counts;
    out->buckets_live = c->n_buckets;
}
