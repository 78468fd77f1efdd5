/* join_label_bench: the join processor's span index and sample labelling,
 * through its own functions (processors/join/join_index.h, join_label.h).
 *
 *   join_label_bench [--fixtures DIR] [--seconds S]
 *
 *   index   insert, lookup and local-root resolution rates, and bytes per
 *           indexed span, for 100k and 1M spans (traces of 5 spans: one
 *           local root, four children pointing at it)
 *   label   samples labelled per second on the real Go CPU profile
 *           (fixtures/go-cpu-spanid.pprof), its spans indexed from
 *           fixtures/go-truth.json as the join indexes them (roots carry
 *           their endpoint, children their parent)
 *   1mib    a generated 1 MiB CPU profile whose span_id labels name spans of
 *           a 100k-span index: time to decode it (what the join holds for
 *           join_delay, and the bytes it holds), label it, and re-encode it
 *           with gzip 1
 * Prints RESULT lines (CPU time of this thread). The bench/join_bench.c the
 * join's author may add measures the same index from their side; this one
 * exists so `make bench` has join figures either way. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "bench_util.h"
#include "join_index.h"
#include "join_label.h"
#include "join_status.h"
#include "pprof_codec.h"
#include "pprof_gen.h"
#include "sp_buf.h"

static double opt_seconds = 1.0;

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int read_file(const char *path, struct sp_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        if (sp_buf_append(out, tmp, n)) {
            fclose(f);
            return -1;
        }
    fclose(f);
    return 0;
}

/* An index of n spans in traces of 5; ids[] gets every id (roots at i%5==0).
 * Returns the CPU ns spent inserting. */
static int64_t fill_index(struct join_index *ix, struct join_names *names, uint64_t *ids, size_t n,
                          uint64_t seed)
{
    uint64_t s = seed;
    uint32_t svc = join_names_service(names, "bench-api");
    uint32_t pairs[3] = {join_names_pair(names, svc, "GET /api/users/{id}"),
                         join_names_pair(names, svc, "GET /api/orders"),
                         join_names_pair(names, svc, "GET /api/cart/{id}/items")};
    for (size_t i = 0; i < n; i++)
        ids[i] = rnd(&s) | 1; /* never 0 */
    int64_t t0 = bench_cpu_ns();
    for (size_t i = 0; i < n; i++) {
        if (i % 5 == 0)
            join_index_put(ix, ids[i], true, join_root_record((uint32_t)(i / 5), pairs[i % 3], 0),
                           1000);
        else
            join_index_put(ix, ids[i], false, ids[i - i % 5], 1000);
    }
    return bench_cpu_ns() - t0;
}

static void bench_index(size_t n)
{
    struct join_index *ix = join_index_create(n, 3600 * 1000, 0);
    struct join_names *names = join_names_create(1000, 100);
    uint64_t *ids = malloc(n * sizeof(*ids));
    if (!ix || !names || !ids) {
        printf("RESULT join_index spans=%zu error=out_of_memory\n", n);
        return;
    }
    int64_t ins = fill_index(ix, names, ids, n, 42);
    struct join_index_stats st;
    join_index_stats(ix, &st);

    uint64_t s = 7;
    size_t lookups = n;
    uint64_t found = 0;
    int64_t t0 = bench_cpu_ns();
    for (size_t i = 0; i < lookups; i++) {
        bool is_root;
        uint64_t link;
        found += join_index_get(ix, ids[rnd(&s) % n], &is_root, &link);
    }
    int64_t get = bench_cpu_ns() - t0;
    uint64_t resolved = 0;
    t0 = bench_cpu_ns();
    for (size_t i = 0; i < lookups; i++) {
        uint64_t root, rec;
        resolved += join_index_resolve(ix, ids[rnd(&s) % n], 16, &root, &rec) == JOIN_RESOLVED;
    }
    int64_t res = bench_cpu_ns() - t0;
    printf("RESULT join_index spans=%zu insert_ns=%.1f inserts_per_s=%.0f lookup_ns=%.1f "
           "resolve_ns=%.1f bytes=%zu bytes_per_span=%.1f found=%" PRIu64 " resolved=%" PRIu64
           " of=%zu\n",
           n, (double)ins / (double)n, (double)n / ((double)ins / 1e9),
           (double)get / (double)lookups, (double)res / (double)lookups, st.bytes,
           (double)st.bytes / (double)st.count, found, resolved, lookups);
    fflush(stdout);
    free(ids);
    join_names_destroy(names);
    join_index_destroy(ix);
}

static int parse_hex(const char *s, uint64_t *out)
{
    return join_parse_hex_id(s, out);
}

/* Indexes the fixture's spans as the join would: local roots with their
 * endpoint, the others with their parent. */
static int index_truth(const char *path, struct join_index *ix, struct join_names *names)
{
    json_object *root = json_object_from_file(path);
    json_object *spans = NULL;
    if (!root || !json_object_object_get_ex(root, "spans", &spans))
        return -1;
    uint32_t svc = join_names_service(names, "goapp-fixture");
    int n = 0;
    json_object_object_foreach(spans, key, val)
    {
        uint64_t id = 0, parent = 0;
        json_object *lr = NULL, *ep = NULL, *par = NULL;
        if (parse_hex(key, &id) != 0)
            continue;
        json_object_object_get_ex(val, "local_root", &lr);
        json_object_object_get_ex(val, "endpoint", &ep);
        json_object_object_get_ex(val, "parent_span_id", &par);
        if (lr && strcmp(json_object_get_string(lr), key) == 0) {
            uint32_t pair = join_names_pair(names, svc, ep ? json_object_get_string(ep) : "");
            join_index_put(ix, id, true, join_root_record(0, pair, 0), 1000);
        } else if (par && parse_hex(json_object_get_string(par), &parent) == 0) {
            join_index_put(ix, id, false, parent, 1000);
        }
        n++;
    }
    json_object_put(root);
    return n;
}

static void bench_label_fixture(const char *fixtures)
{
    char path[4096];
    struct sp_buf body = {0};
    snprintf(path, sizeof(path), "%s/go-cpu-spanid.pprof", fixtures);
    if (read_file(path, &body)) {
        printf("skipped: join label_go_fixture: cannot read '%s'\n", path);
        return;
    }
    struct join_index *ix = join_index_create(100000, 3600 * 1000, 0);
    struct join_names *names = join_names_create(1000, 100);
    snprintf(path, sizeof(path), "%s/go-truth.json", fixtures);
    int n_spans = ix && names ? index_truth(path, ix, names) : -1;
    if (n_spans <= 0) {
        printf("skipped: join label_go_fixture: cannot index '%s'\n", path);
        return;
    }
    struct join_label_ctx lc = {.ix = ix, .names = names, .max_depth = 16};
    struct join_label_stats st = {0};
    struct join_status *js = join_status_new(300000);
    int64_t label_ns = 0, decode_ns = 0, status_ns = 0;
    size_t samples = 0;
    long iters = 0;
    int64_t budget = (int64_t)(opt_seconds * 1e9);
    while (label_ns + decode_ns < budget || iters < 3) {
        struct sp_arena *a = sp_arena_create(0);
        sp_pprof *p = NULL;
        struct sp_err err;
        int64_t t0 = bench_cpu_ns();
        if (sp_pprof_decode(body.data, body.len, 64u << 20, a, &p, NULL, &err) != 0) {
            printf("RESULT join_label_go_fixture error=decode\n");
            return;
        }
        int64_t t1 = bench_cpu_ns();
        bool modified = false;
        join_label_pprof(&lc, p, a, &st, &modified);
        int64_t t2 = bench_cpu_ns();
        /* What the join then does for the status page (join_status.h). */
        struct sp_attachment att = {.name = "cpu.pprof", .pprof = p, .labelled_type = true};
        struct sp_profile prof = {.service = "go-fixture", .attachments = &att,
                                  .attachment_count = 1};
        join_status_note(js, &prof, &st, (uint64_t)(t2 / 1000000));
        int64_t t3 = bench_cpu_ns();
        decode_ns += t1 - t0;
        label_ns += t2 - t1;
        status_ns += t3 - t2;
        samples += p->n_sample;
        iters++;
        sp_arena_destroy(a);
    }
    printf("RESULT join_label_go_fixture samples_per_s=%.0f ns_per_sample=%.1f samples=%zu "
           "matched=%" PRIu64 " span_unknown=%" PRIu64 " no_span_label=%" PRIu64
           " labels_added=%" PRIu64 " indexed_spans=%d decode_ms=%.3f label_ms=%.3f"
           " status_ns_per_sample=%.1f\n",
           (double)samples / ((double)label_ns / 1e9), (double)label_ns / (double)samples,
           samples / (size_t)iters, st.samples[JOIN_OUT_MATCHED] / (uint64_t)iters,
           st.samples[JOIN_OUT_SPAN_UNKNOWN] / (uint64_t)iters,
           st.samples[JOIN_OUT_NO_SPAN_LABEL] / (uint64_t)iters, st.labels_added / (uint64_t)iters,
           n_spans, (double)decode_ns / (double)iters / 1e6, (double)label_ns / (double)iters / 1e6,
           (double)status_ns / (double)samples);
    fflush(stdout);
    join_status_free(js);
    join_names_destroy(names);
    join_index_destroy(ix);
    sp_buf_free(&body);
}

static void bench_1mib(void)
{
    size_t n = 100000;
    struct join_index *ix = join_index_create(n, 3600 * 1000, 0);
    struct join_names *names = join_names_create(1000, 100);
    uint64_t *ids = malloc(n * sizeof(*ids));
    if (!ix || !names || !ids)
        return;
    fill_index(ix, names, ids, n, 99);
    /* Label values: 20k of the indexed spans, children and roots. */
    struct sp_arena *ga = sp_arena_create(0);
    sp_pprof *gen = bench_pprof_build(ga, 1u << 20, 5, ids, 20000);
    struct sp_buf raw = {0}, upload = {0}, out = {0};
    struct sp_err err;
    if (!gen || sp_pprof_encode(gen, SP_COMPRESSION_NONE, &raw, &err) ||
        sp_pprof_encode(gen, SP_COMPRESSION_GZIP, &upload, &err)) {
        printf("RESULT join_1mib_profile error=generate\n");
        return;
    }
    struct join_label_ctx lc = {.ix = ix, .names = names, .max_depth = 16};
    int64_t dec = 0, lab = 0, enc = 0;
    size_t held = 0, samples = 0;
    struct join_label_stats st = {0};
    long iters = 0;
    int64_t budget = (int64_t)(opt_seconds * 1e9);
    while (dec + lab + enc < budget || iters < 3) {
        struct sp_arena *a = sp_arena_create(0);
        sp_pprof *p = NULL;
        int64_t t0 = bench_cpu_ns();
        if (sp_pprof_decode(upload.data, upload.len, 256u << 20, a, &p, NULL, &err) != 0) {
            printf("RESULT join_1mib_profile error=decode\n");
            return;
        }
        int64_t t1 = bench_cpu_ns();
        bool modified = false;
        join_label_pprof(&lc, p, a, &st, &modified);
        int64_t t2 = bench_cpu_ns();
        out.len = 0;
        sp_pprof_encode(p, SP_COMPRESSION_GZIP, &out, &err);
        int64_t t3 = bench_cpu_ns();
        dec += t1 - t0;
        lab += t2 - t1;
        enc += t3 - t2;
        held = sp_arena_bytes(a);
        samples = p->n_sample;
        iters++;
        sp_arena_destroy(a);
    }
    double k = 1e6 * (double)iters;
    printf("RESULT join_1mib_profile raw_bytes=%zu upload_gzip_bytes=%zu samples=%zu "
           "decode_ms=%.2f label_ms=%.2f encode_gzip_ms=%.2f total_ms=%.2f held_bytes=%zu "
           "out_gzip_bytes=%zu matched=%" PRIu64 "\n",
           raw.len, upload.len, samples, (double)dec / k, (double)lab / k, (double)enc / k,
           (double)(dec + lab + enc) / k, held, out.len,
           st.samples[JOIN_OUT_MATCHED] / (uint64_t)iters);
    fflush(stdout);
    sp_buf_free(&raw);
    sp_buf_free(&upload);
    sp_buf_free(&out);
    sp_arena_destroy(ga);
    free(ids);
    join_names_destroy(names);
    join_index_destroy(ix);
}

int main(int argc, char **argv)
{
    const char *fixtures = "tests/data/fixtures";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fixtures") == 0 && i + 1 < argc)
            fixtures = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            opt_seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: join_label_bench [--fixtures DIR] [--seconds S]\n");
            return 2;
        }
    }
    bench_index(100000);
    bench_index(1000000);
    bench_label_fixture(fixtures);
    bench_1mib();
    return 0;
}
