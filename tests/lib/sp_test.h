/* A tiny unit-test harness (header only), in the spirit of libuv's task.h.
 *
 *   static void test_arena_grows(void) { ASSERT_EQ_INT(1 + 1, 2); }
 *   int main(void) { RUN(test_arena_grows); return sp_test_summary(); }
 *
 * A failed assertion prints file:line, the expression and both values, marks
 * the current test failed and returns from it. The binary exits non-zero if
 * any test failed, so meson counts it. */
#ifndef SP_TEST_H
#define SP_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sp_test_failed_now;
static int sp_test_pass_count;
static int sp_test_fail_count;

#define SP_TEST_FAIL(...)                                                                          \
    do {                                                                                           \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                          \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        sp_test_failed_now = 1;                                                                    \
        return;                                                                                    \
    } while (0)

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            SP_TEST_FAIL("assertion failed: %s", #cond);                                           \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                                        \
    do {                                                                                           \
        long long sp_a_ = (long long)(a), sp_b_ = (long long)(b);                                  \
        if (sp_a_ != sp_b_)                                                                        \
            SP_TEST_FAIL("%s == %s: %lld != %lld", #a, #b, sp_a_, sp_b_);                          \
    } while (0)

#define ASSERT_EQ_U64(a, b)                                                                        \
    do {                                                                                           \
        uint64_t sp_a_ = (uint64_t)(a), sp_b_ = (uint64_t)(b);                                     \
        if (sp_a_ != sp_b_)                                                                        \
            SP_TEST_FAIL("%s == %s: %" PRIu64 " != %" PRIu64, #a, #b, sp_a_, sp_b_);               \
    } while (0)

#define ASSERT_EQ_STR(a, b)                                                                        \
    do {                                                                                           \
        const char *sp_a_ = (a), *sp_b_ = (b);                                                     \
        if (!sp_a_ || !sp_b_ || strcmp(sp_a_, sp_b_) != 0)                                         \
            SP_TEST_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, sp_a_ ? sp_a_ : "(null)",           \
                         sp_b_ ? sp_b_ : "(null)");                                                \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *sp_h_ = (hay), *sp_n_ = (needle);                                              \
        if (!sp_h_ || !strstr(sp_h_, sp_n_))                                                       \
            SP_TEST_FAIL("%s contains %s: \"%s\" lacks \"%s\"", #hay, #needle,                     \
                         sp_h_ ? sp_h_ : "(null)", sp_n_);                                         \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        sp_test_failed_now = 0;                                                                    \
        fn();                                                                                      \
        if (sp_test_failed_now) {                                                                  \
            sp_test_fail_count++;                                                                  \
            fprintf(stderr, "FAIL %s\n", #fn);                                                     \
        } else {                                                                                   \
            sp_test_pass_count++;                                                                  \
            fprintf(stderr, "ok   %s\n", #fn);                                                     \
        }                                                                                          \
    } while (0)

static inline int sp_test_summary(void)
{
    fprintf(stderr, "%d passed, %d failed\n", sp_test_pass_count, sp_test_fail_count);
    return sp_test_fail_count ? 1 : 0;
}

/* Path of tests/data/fixtures/NAME (real client payloads; see the README
 * there), under $SPANPROF_SRC (meson sets it) or else the working
 * directory. Writes it into out and returns out. */
static inline const char *sp_test_fixture(char *out, size_t cap, const char *name)
{
    const char *src = getenv("SPANPROF_SRC");
    snprintf(out, cap, "%s/tests/data/fixtures/%s", src && *src ? src : ".", name);
    return out;
}

/* Reads a whole file (tests only); NULL on error. Caller frees. */
static inline unsigned char *sp_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    unsigned char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

#endif
