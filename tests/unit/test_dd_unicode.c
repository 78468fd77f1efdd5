/* model/dd_naming.c's Unicode rules against Go's unicode package, code
 * point by code point.
 *
 * The Datadog Agent normalises service names and tag values with Go's
 * unicode.IsUpper/ToLower/IsLetter/IsDigit (datadog-agent
 * pkg/trace/traceutil/normalize/normalize.go, normalize); spanprof uses
 * utf8proc's tables. tests/unit/go/unicode_classes.go prints what Go makes
 * of every non-ASCII code point; this test normalises "a<cp>a" for each and
 * expects "a<kept or lower-cased cp>a" or "a_a" (cut).
 *
 * Usage: test_dd_unicode GO-PROGRAM SOURCE-FILE (meson passes both; the
 * test is left out when go is missing). Code points Go's (possibly older)
 * Unicode version does not assign are skipped and counted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "dd_naming.h"
#include "sp_test.h"

static const char *go_prog, *go_src;

static size_t put_utf8(char *p, unsigned long r)
{
    if (r < 0x80) {
        p[0] = (char)r;
        return 1;
    }
    if (r < 0x800) {
        p[0] = (char)(0xC0 | (r >> 6));
        p[1] = (char)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        p[0] = (char)(0xE0 | (r >> 12));
        p[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        p[2] = (char)(0x80 | (r & 0x3F));
        return 3;
    }
    p[0] = (char)(0xF0 | (r >> 18));
    p[1] = (char)(0x80 | ((r >> 12) & 0x3F));
    p[2] = (char)(0x80 | ((r >> 6) & 0x3F));
    p[3] = (char)(0x80 | (r & 0x3F));
    return 4;
}

static void test_every_code_point_as_go(void)
{
    /* Its own build cache and no network: the program needs no module. */
    const char *build = getenv("SPANPROF_BUILD");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "env GOCACHE='%s/go-cache' GOPATH='%s/go-path' GOFLAGS= GOPROXY=off "
             "GO111MODULE=off '%s' run '%s'",
             build ? build : "/tmp", build ? build : "/tmp", go_prog, go_src);
    FILE *f = popen(cmd, "r");
    ASSERT(f != NULL);
    char line[128], version[64] = "";
    ASSERT(fgets(line, sizeof line, f) && sscanf(line, "unicode %63s", version) == 1);
    fprintf(stderr, "  Go's Unicode %s, utf8proc's %s\n", version, utf8proc_unicode_version());
    struct sp_arena *a = sp_arena_create(0);
    unsigned long checked = 0, skipped = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long cp, out = 0;
        char what;
        int n = sscanf(line, "%lx %c %lx", &cp, &what, &out);
        ASSERT(n >= 2);
        if (what == '?') {
            skipped++;
            continue;
        }
        char in[8], want[8];
        size_t k = put_utf8(in + 1, cp);
        in[0] = in[k + 1] = 'a';
        in[k + 2] = 0;
        if (what == 'k') {
            k = put_utf8(want + 1, out);
            want[0] = want[k + 1] = 'a';
            want[k + 2] = 0;
        } else {
            strcpy(want, "a_a");
        }
        const char *got = sp_dd_normalize_tag_value(in, a);
        ASSERT(got != NULL);
        if (strcmp(got, want) != 0 && ++bad <= 20)
            fprintf(stderr, "  U+%04lX: Go gives \"%s\", spanprof \"%s\"\n", cp, want, got);
        checked++;
        if (checked % 4096 == 0) {
            sp_arena_destroy(a);
            a = sp_arena_create(0);
        }
    }
    int rc = pclose(f);
    sp_arena_destroy(a);
    fprintf(stderr, "  %lu code points compared, %lu unassigned in Go's version skipped\n",
            checked, skipped);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(checked > 250000); /* Unicode 13 assigns ~280k non-ASCII code points */
    ASSERT_EQ_INT(bad, 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s GO-PROGRAM unicode_classes.go\n", argv[0]);
        return 2;
    }
    go_prog = argv[1];
    go_src = argv[2];
    RUN(test_every_code_point_as_go);
    return sp_test_summary();
}
