/* Unit tests of model/multipart.c on the real dd-trace-js upload fixture and
 * on hand-made edge cases: boundaries, every truncation of a real body,
 * bounds on parts, part sizes and header blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "multipart.h"
#include "pprof_codec.h"
#include "sp_test.h"
#include "test_pprof_raw.h"

static char path_buf[4096];

static const char *fixture(const char *name)
{
    return sp_test_fixture(path_buf, sizeof(path_buf), name);
}

/* The boundary recorded with the fixture (dd-profile-upload.headers.json). */
static void fixture_boundary(char *out)
{
    size_t len;
    char *h = (char *)sp_test_read_file(fixture("dd-profile-upload.headers.json"), &len);
    const char *ct = h ? strstr(h, "multipart/form-data") : NULL;
    out[0] = 0;
    if (ct) {
        char line[256];
        size_t n = strcspn(ct, "\"");
        snprintf(line, sizeof(line), "%.*s", (int)n, ct);
        struct sp_err err = {0};
        sp_multipart_boundary(line, out, &err);
    }
    free(h);
}

static void test_boundary(void)
{
    char b[SP_MULTIPART_BOUNDARY_MAX + 1];
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_multipart_boundary("multipart/form-data; boundary=abc", b, &err), 0);
    ASSERT_EQ_STR(b, "abc");
    ASSERT_EQ_INT(sp_multipart_boundary("Multipart/Form-Data;charset=x; BOUNDARY=\"a b;c\"", b,
                                        &err),
                  0);
    ASSERT_EQ_STR(b, "a b;c");
    ASSERT_EQ_INT(sp_multipart_boundary("multipart/form-data", b, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "without a boundary");
    ASSERT_EQ_INT(sp_multipart_boundary("multipart/form-data; boundary=", b, &err), SP_EDECODE);
    ASSERT_EQ_INT(sp_multipart_boundary("multipart/form-data; boundary=\"\"", b, &err),
                  SP_EDECODE);
    ASSERT_EQ_INT(sp_multipart_boundary("application/octet-stream", b, &err), SP_EUNSUPPORTED);
    ASSERT_EQ_INT(sp_multipart_boundary("multipart/form-datax; boundary=a", b, &err),
                  SP_EUNSUPPORTED);
    ASSERT_EQ_INT(sp_multipart_boundary(NULL, b, &err), SP_EUNSUPPORTED);
    char longb[200];
    snprintf(longb, sizeof(longb), "multipart/form-data; boundary=%0100d", 7);
    ASSERT_EQ_INT(sp_multipart_boundary(longb, b, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "longer than 70");
    /* found by fuzzing: exactly 71 bytes overflowed the caller's buffer */
    snprintf(longb, sizeof(longb), "multipart/form-data; boundary=%071d", 7);
    ASSERT_EQ_INT(sp_multipart_boundary(longb, b, &err), SP_EDECODE);
    snprintf(longb, sizeof(longb), "multipart/form-data; boundary=%070d", 7);
    ASSERT_EQ_INT(sp_multipart_boundary(longb, b, &err), 0);
    ASSERT_EQ_INT(strlen(b), 70);
}

static void test_dd_fixture(void)
{
    char boundary[SP_MULTIPART_BOUNDARY_MAX + 1];
    fixture_boundary(boundary);
    ASSERT_EQ_STR(boundary, "22617a2eef51a8ff");
    size_t len;
    unsigned char *body = sp_test_read_file(fixture("dd-profile-upload.multipart"), &len);
    ASSERT(body != NULL);
    struct sp_arena *a = sp_arena_create(0);
    struct sp_multipart_part *parts;
    size_t n;
    struct sp_err err = {0};
    int rc = sp_multipart_parse(body, len, boundary, NULL, a, &parts, &n, &err);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(n, 3);
    ASSERT_EQ_STR(parts[0].name, "event");
    ASSERT_EQ_STR(parts[0].filename, "event.json");
    ASSERT_EQ_STR(parts[0].content_type, "application/json");
    ASSERT(parts[0].len > 100);
    ASSERT_EQ_INT(parts[0].data[0], '{');
    ASSERT_EQ_INT(parts[0].data[parts[0].len - 1], '}');
    ASSERT_EQ_STR(parts[1].name, "wall.pprof");
    ASSERT_EQ_STR(parts[1].filename, "wall.pprof");
    ASSERT_EQ_STR(parts[1].content_type, "application/octet-stream");
    ASSERT_EQ_STR(parts[2].name, "events.pprof");
    /* the sizes add up: every byte of the body is a part, a header or a delimiter */
    size_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += parts[i].len;
    ASSERT(sum < len && sum > len - 600);
    for (size_t i = 1; i < 3; i++) {
        ASSERT_EQ_INT(parts[i].data[0], 0x1f);
        ASSERT_EQ_INT(parts[i].data[1], 0x8b);
        sp_pprof *p = NULL;
        rc = sp_pprof_decode(parts[i].data, parts[i].len, 32u << 20, a, &p, NULL, &err);
        if (rc)
            fprintf(stderr, "  %s: %s\n", parts[i].name, err.msg);
        ASSERT_EQ_INT(rc, 0);
        ASSERT(p->n_sample_type > 0);
    }
    ASSERT(sp_multipart_find(parts, n, "events.pprof") == &parts[2]);
    ASSERT(sp_multipart_find(parts, n, "nope") == NULL);

    /* part limit: wall.pprof is over 5000 bytes, the others are not */
    struct sp_multipart_limits lim = {.max_part_size = 5000};
    ASSERT_EQ_INT(sp_multipart_parse(body, len, boundary, &lim, a, &parts, &n, &err), 0);
    ASSERT_EQ_INT(n, 3);
    ASSERT(parts[1].oversize && parts[1].data == NULL && parts[1].len > 5000);
    ASSERT(!parts[2].oversize && parts[2].data != NULL);
    ASSERT(!parts[0].oversize && parts[0].data != NULL);

    /* too many parts */
    lim = (struct sp_multipart_limits){.max_parts = 2};
    ASSERT_EQ_INT(sp_multipart_parse(body, len, boundary, &lim, a, &parts, &n, &err), SP_ETOOBIG);
    /* wrong boundary */
    ASSERT_EQ_INT(sp_multipart_parse(body, len, "nope", NULL, a, &parts, &n, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "no delimiter");
    free(body);
    sp_arena_destroy(a);
}

/* The pprof parts of the upload decode exactly as Go's pprof tool reads
 * them once written to a file. */
static void test_dd_attachments_match_go_tool(void)
{
    size_t len;
    unsigned char *body = sp_test_read_file(fixture("dd-profile-upload.multipart"), &len);
    ASSERT(body != NULL);
    struct sp_arena *a = sp_arena_create(0);
    struct sp_multipart_part *parts;
    size_t n;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_multipart_parse(body, len, "22617a2eef51a8ff", NULL, a, &parts, &n, &err), 0);
    for (size_t i = 1; i < n; i++) {
        char tmp[] = "/tmp/sp-mp-XXXXXX";
        int fd = mkstemp(tmp);
        ASSERT(fd >= 0);
        FILE *f = fdopen(fd, "wb");
        fwrite(parts[i].data, 1, parts[i].len, f);
        fclose(f);
        sp_pprof *p = NULL;
        ASSERT_EQ_INT(
            sp_pprof_decode(parts[i].data, parts[i].len, 32u << 20, a, &p, NULL, &err), 0);
        struct sp_buf ours = {0}, theirs = {0};
        pprof_raw_render(p, &ours);
        int grc = pprof_raw_go(tmp, &theirs);
        unlink(tmp);
        ASSERT_EQ_INT(grc, 0);
        char *co = pprof_raw_canon((char *)ours.data), *ct = pprof_raw_canon((char *)theirs.data);
        int same = strcmp(co, ct) == 0;
        if (!same)
            pprof_raw_diff(co, ct);
        free(co);
        free(ct);
        sp_buf_free(&ours);
        sp_buf_free(&theirs);
        if (!same)
            SP_TEST_FAIL("%s differs from go tool pprof -raw", parts[i].name);
    }
    free(body);
    sp_arena_destroy(a);
}

/* Every strict prefix of a real body is rejected, never read past its end
 * (run under ASan, the copy is exactly the prefix length). */
static void test_every_truncation(void)
{
    char boundary[SP_MULTIPART_BOUNDARY_MAX + 1];
    fixture_boundary(boundary);
    size_t len;
    unsigned char *body = sp_test_read_file(fixture("dd-profile-upload.multipart"), &len);
    ASSERT(body != NULL);
    /* the closing delimiter ends "--\r\n": the body minus its final CRLF is still complete */
    size_t complete = len;
    while (complete > 0 && (body[complete - 1] == '\n' || body[complete - 1] == '\r'))
        complete--;
    int failures = 0;
    for (size_t cut = 0; cut < complete; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, body, cut);
        struct sp_arena *a = sp_arena_create(0);
        struct sp_multipart_part *parts;
        size_t n;
        struct sp_err err = {0};
        int rc = sp_multipart_parse(copy, cut, boundary, NULL, a, &parts, &n, &err);
        if (rc != SP_EDECODE) {
            if (failures++ < 3)
                fprintf(stderr, "  prefix of %zu bytes: rc %d\n", cut, rc);
        }
        sp_arena_destroy(a);
        free(copy);
    }
    ASSERT_EQ_INT(failures, 0);
    free(body);
}

static int parse_str(const char *body, const char *boundary, struct sp_arena *a,
                     struct sp_multipart_part **parts, size_t *n, struct sp_err *err)
{
    return sp_multipart_parse((const uint8_t *)body, strlen(body), boundary, NULL, a, parts, n,
                              err);
}

static void test_edge_cases(void)
{
    struct sp_arena *a = sp_arena_create(0);
    struct sp_multipart_part *parts;
    size_t n;
    struct sp_err err = {0};
    /* preamble, LF line ends, padding after the delimiter, bare parameters, empty part */
    const char *b1 = "preamble --xx not a delimiter\n--xx  \nContent-Disposition: form-data; "
                     "name=profile; filename=\"p.pprof\"\n\nDATA\n--xx\n"
                     "content-disposition: form-data; name=\"empty\"\r\n\r\n\r\n--xx--";
    ASSERT_EQ_INT(parse_str(b1, "xx", a, &parts, &n, &err), 0);
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_STR(parts[0].name, "profile");
    ASSERT_EQ_STR(parts[0].filename, "p.pprof");
    ASSERT_EQ_INT(parts[0].len, 4);
    ASSERT(memcmp(parts[0].data, "DATA", 4) == 0);
    ASSERT_EQ_STR(parts[1].name, "empty");
    ASSERT_EQ_INT(parts[1].len, 0);
    ASSERT(parts[1].filename == NULL);
    /* data holding the boundary string not at a line start, or followed by
     * other bytes, is data */
    const char *b2 = "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
                     "a--b\r\n--bb\r\nz\r\n--b--\r\n";
    ASSERT_EQ_INT(parse_str(b2, "b", a, &parts, &n, &err), 0);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_INT(parts[0].len, strlen("a--b\r\n--bb\r\nz"));
    /* a part without headers */
    ASSERT_EQ_INT(parse_str("--b\r\n\r\nraw\r\n--b--", "b", a, &parts, &n, &err), 0);
    ASSERT_EQ_INT(n, 1);
    ASSERT_EQ_STR(parts[0].name, "");
    ASSERT_EQ_INT(parts[0].len, 3);
    /* no parts at all */
    ASSERT_EQ_INT(parse_str("--b--\r\n", "b", a, &parts, &n, &err), 0);
    ASSERT_EQ_INT(n, 0);
    /* broken: no closing delimiter, junk after a delimiter, headers never end */
    ASSERT_EQ_INT(parse_str("--b\r\nA: b\r\n\r\ndata", "b", a, &parts, &n, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "truncated");
    ASSERT_EQ_INT(parse_str("--b\r\nA: b\r\n\r\ndata\r\n--b", "b", a, &parts, &n, &err),
                  SP_EDECODE);
    ASSERT_EQ_INT(parse_str("--b\r\nA: b\r\n", "b", a, &parts, &n, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "truncated in its headers");
    ASSERT_EQ_INT(parse_str("", "b", a, &parts, &n, &err), SP_EDECODE);
    /* header block over the limit */
    char big[20000];
    int off = snprintf(big, sizeof(big), "--b\r\nX: ");
    memset(big + off, 'y', 10000);
    snprintf(big + off + 10000, sizeof(big) - (size_t)off - 10000, "\r\n\r\nd\r\n--b--\r\n");
    ASSERT_EQ_INT(parse_str(big, "b", a, &parts, &n, &err), SP_EDECODE);
    ASSERT_CONTAINS(err.msg, "headers over");
    struct sp_multipart_limits lim = {.max_header_bytes = 16384};
    ASSERT_EQ_INT(sp_multipart_parse((uint8_t *)big, strlen(big), "b", &lim, a, &parts, &n, &err),
                  0);
    sp_arena_destroy(a);
}

static void test_many_parts(void)
{
    struct sp_buf b = {0};
    for (int i = 0; i < 40; i++)
        sp_buf_printf(&b, "--q\r\nContent-Disposition: form-data; name=\"p%d\"\r\n\r\n%d\r\n", i,
                      i);
    sp_buf_append_str(&b, "--q--\r\n");
    struct sp_arena *a = sp_arena_create(0);
    struct sp_multipart_part *parts;
    size_t n;
    struct sp_err err = {0};
    ASSERT_EQ_INT(sp_multipart_parse(b.data, b.len, "q", NULL, a, &parts, &n, &err), 0);
    ASSERT_EQ_INT(n, 40);
    ASSERT_EQ_STR(parts[39].name, "p39");
    ASSERT(memcmp(parts[39].data, "39", 2) == 0);
    struct sp_multipart_limits lim = {.max_parts = 39};
    ASSERT_EQ_INT(sp_multipart_parse(b.data, b.len, "q", &lim, a, &parts, &n, &err), SP_ETOOBIG);
    ASSERT_CONTAINS(err.msg, "more than 39 parts");
    sp_buf_free(&b);
    sp_arena_destroy(a);
}

int main(void)
{
    RUN(test_boundary);
    RUN(test_dd_fixture);
    RUN(test_dd_attachments_match_go_tool);
    RUN(test_every_truncation);
    RUN(test_edge_cases);
    RUN(test_many_parts);
    return sp_test_summary();
}
