/* Unit tests of model/pprof_codec.c: decode real profiles and compare what
 * was decoded with what Go's own pprof tool reports for the same file
 * (`go tool pprof -raw`), round-trip encode, string interning, and the
 * validation of every reference on hand-made bad profiles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pprof_codec.h"
#include "test_pprof_raw.h"
#include "sp_compress.h"
#include "sp_test.h"

static char fixture_path[4096];

static const char *fixture(const char *name)
{
    return sp_test_fixture(fixture_path, sizeof(fixture_path), name);
}

/* Compares the Samples/Locations/Mappings sections printed by
 * `go tool pprof -raw` for path with our rendering of the decoded profile. */
static void check_against_go(const char *path, size_t min_samples)
{
    size_t len;
    unsigned char *body = sp_test_read_file(path, &len);
    ASSERT(body != NULL);
    struct sp_arena *a = sp_arena_create(0);
    sp_pprof *p = NULL;
    enum sp_compression c = SP_COMPRESSION_NONE;
    struct sp_err err = {0};
    int rc = sp_pprof_decode(body, len, 32u << 20, a, &p, &c, &err);
    free(body);
    if (rc != 0)
        fprintf(stderr, "  decode: %s\n", err.msg);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(c, SP_COMPRESSION_GZIP);
    ASSERT(p->n_sample >= min_samples);

    struct sp_buf ours = {0};
    ASSERT_EQ_INT(pprof_raw_render(p, &ours), 0);
    struct sp_buf theirs = {0};
    int grc = pprof_raw_go(path, &theirs);
    if (grc != 0)
        fprintf(stderr, "  `go tool pprof -raw` failed (is golang-go installed?)\n");
    ASSERT_EQ_INT(grc, 0);
    char *co = pprof_raw_canon((char *)ours.data), *ct = pprof_raw_canon((char *)theirs.data);
    int same = strcmp(co, ct) == 0;
    if (!same)
        pprof_raw_diff(co, ct);
    /* The canonical form must keep the substance: every sample, every
     * frame. Go leaves zero-valued samples out (a delta profile of an idle
     * heap can have none left), so count only the samples it shows; a
     * sample is one line of the canonical form. */
    size_t shown = 0;
    for (size_t i = 0; i < p->n_sample; i++) {
        size_t nz = 0;
        for (size_t v = 0; v < p->sample[i]->n_value; v++)
            nz += p->sample[i]->value[v] != 0;
        shown += nz > 0;
    }
    size_t ct_lines = 0;
    for (const char *ch = ct; *ch; ch++)
        ct_lines += *ch == '\n';
    ASSERT(ct_lines >= (shown < min_samples ? shown : min_samples));
    free(co);
    free(ct);
    if (!same)
        SP_TEST_FAIL("decoded profile differs from `go tool pprof -raw %s`", path);
    sp_buf_free(&ours);
    sp_buf_free(&theirs);
    sp_arena_destroy(a);
}

static void test_go_cpu_matches_go_tool(void)
{
    check_against_go(fixture("go-cpu-spanid.pprof"), 100);
}

static void test_pyroscope_matches_go_tool(void)
{
    check_against_go(fixture("pyroscope-ingest.pprof"), 10);
}

static void test_go_cpu_labels(void)
{
    size_t len;
    unsigned char *body = sp_test_read_file(fixture("go-cpu-spanid.pprof"), &len);
    ASSERT(body != NULL);
    struct sp_arena *a = sp_arena_create(0);
    sp_pprof *p = NULL;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_pprof_decode(body, len, 32u << 20, a, &p, NULL, &err), 0);
    free(body);
    ASSERT(sp_pprof_is_labelled_type(p));
    ASSERT_EQ_INT(p->n_sample_type, 2);
    ASSERT_EQ_STR(sp_pprof_str(p, p->sample_type[1]->type), "cpu");
    ASSERT_EQ_STR(sp_pprof_str(p, p->sample_type[1]->unit), "nanoseconds");
    ASSERT_EQ_INT(p->period, 10000000);
    size_t labelled = 0;
    for (size_t i = 0; i < p->n_sample; i++)
        for (size_t j = 0; j < p->sample[i]->n_label; j++)
            if (strcmp(sp_pprof_str(p, p->sample[i]->label[j]->key), "span_id") == 0) {
                ASSERT_EQ_INT(strlen(sp_pprof_str(p, p->sample[i]->label[j]->str)), 16);
                labelled++;
            }
    ASSERT(labelled > 50);
    ASSERT(sp_pprof_str(p, -1) == NULL);
    ASSERT(sp_pprof_str(p, (int64_t)p->n_string_table) == NULL);
    ASSERT_EQ_STR(sp_pprof_str(p, 0), "");
    sp_arena_destroy(a);
}

static void test_roundtrip(void)
{
    size_t len;
    unsigned char *body = sp_test_read_file(fixture("go-cpu-spanid.pprof"), &len);
    ASSERT(body != NULL);
    struct sp_arena *a = sp_arena_create(0);
    sp_pprof *p = NULL;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_pprof_decode(body, len, 32u << 20, a, &p, NULL, &err), 0);
    free(body);
    struct sp_buf want = {0};
    ASSERT_EQ_INT(pprof_raw_render(p, &want), 0);
    const enum sp_compression cs[] = {SP_COMPRESSION_NONE, SP_COMPRESSION_GZIP,
                                      SP_COMPRESSION_ZSTD};
    for (size_t i = 0; i < 3; i++) {
        struct sp_buf enc = {0};
        ASSERT_EQ_INT(sp_pprof_encode(p, cs[i], &enc, &err), 0);
        sp_pprof *q = NULL;
        enum sp_compression got = 99;
        ASSERT_EQ_INT(sp_pprof_decode(enc.data, enc.len, 32u << 20, a, &q, &got, &err), 0);
        ASSERT_EQ_INT(got, cs[i]);
        struct sp_buf again = {0};
        ASSERT_EQ_INT(pprof_raw_render(q, &again), 0);
        ASSERT_EQ_STR((char *)again.data, (char *)want.data);
        sp_buf_free(&again);
        sp_buf_free(&enc);
    }
    sp_buf_free(&want);
    sp_arena_destroy(a);
}

static void test_intern(void)
{
    size_t len;
    unsigned char *body = sp_test_read_file(fixture("go-cpu-spanid.pprof"), &len);
    ASSERT(body != NULL);
    struct sp_arena *a = sp_arena_create(0);
    sp_pprof *p = NULL;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_pprof_decode(body, len, 32u << 20, a, &p, NULL, &err), 0);
    free(body);
    size_t n0 = p->n_string_table;
    /* existing strings are found, not appended */
    ASSERT_EQ_INT(sp_pprof_intern(p, a, ""), 0);
    int64_t cpu = sp_pprof_intern(p, a, "cpu");
    ASSERT(cpu > 0);
    ASSERT_EQ_INT(p->n_string_table, n0);
    ASSERT_EQ_INT(p->sample_type[1]->type, cpu);
    /* new strings are appended and stay where they are while more are added */
    int64_t k = sp_pprof_intern(p, a, "span id");
    ASSERT_EQ_INT(k, (int64_t)n0);
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "endpoint-%d", i);
        ASSERT_EQ_INT(sp_pprof_intern(p, a, name), (int64_t)n0 + 1 + i);
    }
    ASSERT_EQ_INT(sp_pprof_intern(p, a, "span id"), k);
    ASSERT_EQ_STR(sp_pprof_str(p, k), "span id");
    ASSERT_EQ_STR(sp_pprof_str(p, (int64_t)n0 + 1 + 4999), "endpoint-4999");
    ASSERT_EQ_INT(sp_pprof_validate(p, &err), 0);
    /* a label using the new string survives encode/decode */
    size_t li = 0;
    while (li < p->n_sample && p->sample[li]->n_label == 0)
        li++;
    ASSERT(li < p->n_sample);
    p->sample[li]->label[0]->key = k;
    struct sp_buf enc = {0};
    ASSERT_EQ_INT(sp_pprof_encode(p, SP_COMPRESSION_GZIP, &enc, &err), 0);
    sp_pprof *q = NULL;
    ASSERT_EQ_INT(sp_pprof_decode(enc.data, enc.len, 32u << 20, a, &q, NULL, &err), 0);
    ASSERT_EQ_STR(sp_pprof_str(q, q->sample[li]->label[0]->key), "span id");
    ASSERT_EQ_INT(q->n_string_table, n0 + 5001);
    sp_buf_free(&enc);
    sp_arena_destroy(a);

    /* A fresh arena can reuse the freed profile's address: nothing stale. */
    struct sp_arena *b = sp_arena_create(0);
    sp_pprof *r = sp_arena_calloc(b, 1, sizeof(*r));
    perftools__profiles__profile__init(r);
    ASSERT_EQ_INT(sp_pprof_intern(r, b, ""), 0);
    ASSERT_EQ_INT(sp_pprof_intern(r, b, "x"), 1);
    ASSERT_EQ_INT(r->n_string_table, 2);
    sp_arena_destroy(b);
}

/* --- hand-made profiles ---------------------------------------------------- */

/* A minimal valid profile: strings "", "cpu", "nanoseconds", "main", "k",
 * "v"; one function, one mapping, one location, one labelled sample. */
struct mini {
    sp_pprof p;
    Perftools__Profiles__ValueType vt, *vtp[1];
    Perftools__Profiles__Function fn, *fnp[1];
    Perftools__Profiles__Mapping mp, *mpp[1];
    Perftools__Profiles__Line ln, *lnp[1];
    Perftools__Profiles__Location loc, *locp[1];
    Perftools__Profiles__Label lb, *lbp[1];
    Perftools__Profiles__Sample s, *sp[1];
    uint64_t locid[1];
    int64_t val[1];
    char *strs[6];
};

static void mini_init(struct mini *m)
{
    memset(m, 0, sizeof(*m));
    perftools__profiles__profile__init(&m->p);
    perftools__profiles__value_type__init(&m->vt);
    perftools__profiles__function__init(&m->fn);
    perftools__profiles__mapping__init(&m->mp);
    perftools__profiles__line__init(&m->ln);
    perftools__profiles__location__init(&m->loc);
    perftools__profiles__label__init(&m->lb);
    perftools__profiles__sample__init(&m->s);
    static const char *const s[] = {"", "cpu", "nanoseconds", "main", "k", "v"};
    for (int i = 0; i < 6; i++)
        m->strs[i] = (char *)s[i];
    m->p.string_table = m->strs;
    m->p.n_string_table = 6;
    m->vt.type = 1;
    m->vt.unit = 2;
    m->vtp[0] = &m->vt;
    m->p.sample_type = m->vtp;
    m->p.n_sample_type = 1;
    m->fn.id = 1;
    m->fn.name = 3;
    m->fnp[0] = &m->fn;
    m->p.function = m->fnp;
    m->p.n_function = 1;
    m->mp.id = 1;
    m->mpp[0] = &m->mp;
    m->p.mapping = m->mpp;
    m->p.n_mapping = 1;
    m->ln.function_id = 1;
    m->ln.line = 7;
    m->lnp[0] = &m->ln;
    m->loc.id = 1;
    m->loc.mapping_id = 1;
    m->loc.line = m->lnp;
    m->loc.n_line = 1;
    m->locp[0] = &m->loc;
    m->p.location = m->locp;
    m->p.n_location = 1;
    m->lb.key = 4;
    m->lb.str = 5;
    m->lbp[0] = &m->lb;
    m->locid[0] = 1;
    m->val[0] = 10000000;
    m->s.location_id = m->locid;
    m->s.n_location_id = 1;
    m->s.value = m->val;
    m->s.n_value = 1;
    m->s.label = m->lbp;
    m->s.n_label = 1;
    m->sp[0] = &m->s;
    m->p.sample = m->sp;
    m->p.n_sample = 1;
}

/* Packs m (raw), decodes it and returns the code; err gets the message. */
static int mini_decode(struct mini *m, struct sp_err *err)
{
    struct sp_buf b = {0};
    if (sp_pprof_encode(&m->p, SP_COMPRESSION_NONE, &b, err) != 0)
        return -100;
    struct sp_arena *a = sp_arena_create(0);
    sp_pprof *out = NULL;
    sp_err_clear(err);
    int rc = sp_pprof_decode(b.data, b.len, 1u << 20, a, &out, NULL, err);
    if (rc == 0 && !out)
        rc = -101;
    sp_arena_destroy(a);
    sp_buf_free(&b);
    return rc;
}

static void test_mini_valid(void)
{
    struct mini m;
    mini_init(&m);
    struct sp_err err = {0};
    ASSERT_EQ_INT(mini_decode(&m, &err), 0);
    ASSERT(sp_pprof_is_labelled_type(&m.p));
}

static void test_bad_label_string_index(void)
{
    struct mini m;
    mini_init(&m);
    m.lb.str = 900;
    struct sp_err err = {0};
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_EQ_STR(err.msg,
                  "sample[0].label[0].str: string index 900 out of range (table has 6 strings)");
    mini_init(&m);
    m.lb.key = -1;
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "sample[0].label[0].key: string index -1");
}

static void test_bad_other_string_indexes(void)
{
    struct mini m;
    struct sp_err err = {0};
    mini_init(&m);
    m.fn.filename = 6;
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "function[0].filename: string index 6");
    mini_init(&m);
    m.vt.unit = 77;
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "sample_type[0].unit");
    mini_init(&m);
    m.mp.build_id = 1000000;
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "mapping[0].build_id");
    mini_init(&m);
    m.p.drop_frames = 8;
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "drop_frames");
    mini_init(&m);
    m.strs[0] = "x";
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "string_table[0]");
}

static void test_bad_references(void)
{
    struct mini m;
    struct sp_err err = {0};
    mini_init(&m);
    m.locid[0] = 2;
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_EQ_STR(err.msg, "sample[0].location_id[0]: no location with id 2");
    mini_init(&m);
    m.loc.mapping_id = 5;
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "location[0].mapping_id: no mapping with id 5");
    mini_init(&m);
    m.ln.function_id = 3;
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "location[0].line[0].function_id: no function with id 3");
    mini_init(&m);
    m.fn.id = 0;
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "function[0].id: id 0");
    /* sparse ids resolve through the sorted path */
    mini_init(&m);
    m.loc.id = 1000;
    m.locid[0] = 1000;
    ASSERT_EQ_INT(mini_decode(&m, &err), 0);
    m.locid[0] = 999;
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
}

static void test_bad_value_count(void)
{
    struct mini m;
    mini_init(&m);
    int64_t two[2] = {1, 2};
    m.s.value = two;
    m.s.n_value = 2;
    struct sp_err err = {0};
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_EQ_STR(err.msg, "sample[0]: 2 values for 1 sample types");
}

static void test_duplicate_ids(void)
{
    struct mini m;
    mini_init(&m);
    Perftools__Profiles__Location loc2 = m.loc;
    loc2.id = 1;
    m.loc.id = 1;
    Perftools__Profiles__Location *locs[2] = {&m.loc, &loc2};
    m.p.location = locs;
    m.p.n_location = 2;
    struct sp_err err = {0};
    ASSERT_EQ_INT(mini_decode(&m, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "location: duplicate id 1");
}

static void test_bad_bytes(void)
{
    struct sp_arena *a = sp_arena_create(0);
    sp_pprof *p = NULL;
    struct sp_err err = {0};
    /* empty */
    ASSERT_EQ_INT(sp_pprof_decode((const uint8_t *)"", 0, 1024, a, &p, NULL, &err), SP_EDECODE);
    /* not protobuf (field 0, wire type 7) */
    const uint8_t junk[] = {0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ_INT(sp_pprof_decode(junk, sizeof(junk), 1024, a, &p, NULL, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "not a valid pprof protobuf");
    /* HTML where a profile was expected */
    const char *html = "<html><body>404 page not found</body></html>";
    ASSERT(sp_pprof_decode((const uint8_t *)html, strlen(html), 1024, a, &p, NULL, &err) < 0);
    /* truncated protobuf: a string_table entry claiming more bytes than exist */
    const uint8_t trunc[] = {0x32, 0x10, 'a', 'b'};
    ASSERT_EQ_INT(sp_pprof_decode(trunc, sizeof(trunc), 1024, a, &p, NULL, &err), SP_EDECODE);
    /* truncated gzip */
    size_t len;
    unsigned char *body = sp_test_read_file(fixture("go-cpu-spanid.pprof"), &len);
    ASSERT(body != NULL);
    ASSERT_EQ_INT(sp_pprof_decode(body, len / 2, 32u << 20, a, &p, NULL, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "truncated");
    /* inflated size over the cap */
    ASSERT_EQ_INT(sp_pprof_decode(body, len, 4096, a, &p, NULL, &err), SP_ETOOBIG);
    free(body);
    /* raw body over the cap */
    uint8_t big[300] = {0};
    ASSERT_EQ_INT(sp_pprof_decode(big, sizeof(big), 100, a, &p, NULL, &err), SP_ETOOBIG);
    ASSERT(p == NULL);
    sp_arena_destroy(a);
}

static void test_bombs(void)
{
    /* 64 MiB of zeros compresses to a few KiB: inflating must stop at the cap. */
    size_t n = 64u << 20;
    uint8_t *zeros = calloc(1, n);
    ASSERT(zeros != NULL);
    struct sp_err err = {0};
    const enum sp_compression cs[] = {SP_COMPRESSION_GZIP, SP_COMPRESSION_ZSTD};
    for (int i = 0; i < 2; i++) {
        struct sp_buf z = {0};
        ASSERT_EQ_INT(sp_compress(cs[i], 9, zeros, n, &z, &err), 0);
        ASSERT(z.len < 200000);
        struct sp_arena *a = sp_arena_create(0);
        sp_pprof *p = NULL;
        ASSERT_EQ_INT(sp_pprof_decode(z.data, z.len, 1u << 20, a, &p, NULL, &err), SP_ETOOBIG);
        ASSERT(sp_arena_bytes(a) < (8u << 20));
        sp_arena_destroy(a);
        sp_buf_free(&z);
    }
    free(zeros);
}

static void test_arena_limit(void)
{
    size_t len;
    unsigned char *body = sp_test_read_file(fixture("go-cpu-spanid.pprof"), &len);
    ASSERT(body != NULL);
    /* inflate fits (small limit on the raw size is generous), unpack does not */
    struct sp_arena *a = sp_arena_create(0);
    sp_arena_set_limit(a, 64 * 1024);
    sp_pprof *p = NULL;
    struct sp_err err = {0};
    int rc = sp_pprof_decode(body, len, 32u << 20, a, &p, NULL, &err);
    ASSERT(rc == SP_ETOOBIG || rc == SP_ENOMEM);
    free(body);
    sp_arena_destroy(a);
}

static void test_labelled_types(void)
{
    struct mini m;
    mini_init(&m);
    ASSERT(sp_pprof_is_labelled_type(&m.p));
    m.strs[1] = "alloc_space";
    ASSERT(!sp_pprof_is_labelled_type(&m.p));
    m.strs[1] = "goroutine";
    ASSERT(sp_pprof_is_labelled_type(&m.p));
    m.strs[1] = "wall";
    ASSERT(sp_pprof_is_labelled_type(&m.p));
    m.strs[1] = "contentions";
    ASSERT(!sp_pprof_is_labelled_type(&m.p));
    ASSERT(!sp_pprof_is_labelled_type(NULL));
}

static const char *compare_path;

static void test_compare_file(void)
{
    check_against_go(compare_path, 1);
}

/* `test_pprof_codec --compare FILE`: decode FILE and compare with `go tool
 * pprof -raw FILE` (used by the integration tests on profiles that real Go
 * programs produce and on what spanprof hands to the next stage). */
int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--compare") == 0) {
        compare_path = argv[2];
        RUN(test_compare_file);
        return sp_test_summary();
    }
    RUN(test_go_cpu_matches_go_tool);
    RUN(test_pyroscope_matches_go_tool);
    RUN(test_go_cpu_labels);
    RUN(test_roundtrip);
    RUN(test_intern);
    RUN(test_mini_valid);
    RUN(test_bad_label_string_index);
    RUN(test_bad_other_string_indexes);
    RUN(test_bad_references);
    RUN(test_bad_value_count);
    RUN(test_duplicate_ids);
    RUN(test_bad_bytes);
    RUN(test_bombs);
    RUN(test_arena_limit);
    RUN(test_labelled_types);
    return sp_test_summary();
}
