/* SP_ASSERT: a broken contract aborts with a message, in every build (this
 * file is compiled with NDEBUG on to show assert(3)'s switch does not turn
 * it off). Each case runs in a child process and checks it died of SIGABRT
 * with the contract named on stderr. */
#define NDEBUG 1

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "sp_assert.h"
#include "sp_batch.h"
#include "sp_http_client.h"
#include "sp_httpd.h"
#include "sp_test.h"

/* Runs fn in a child; returns what it wrote to stderr (static) and whether
 * it was killed by SIGABRT. */
static const char *in_child(void (*fn)(void), int *aborted)
{
    static char text[4096];
    int p[2];
    text[0] = 0;
    *aborted = 0;
    if (pipe(p) != 0)
        return text;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        fn();
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(text) - 1 && (r = read(p[0], text + n, sizeof(text) - 1 - n)) > 0)
        n += (size_t)r;
    text[n] = 0;
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *aborted = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
    return text;
}

static void plain_assert(void)
{
    SP_ASSERT(1 + 1 == 3, "arithmetic still works");
}

static void client_destroyed_twice(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sp_http_client *c = sp_http_client_create(&loop);
    sp_http_client_destroy(c);
    sp_http_client_destroy(c);
}

static void no_handler(void *ud, struct sp_http_request *req)
{
    (void)ud;
    (void)req;
}

static void server_stopped_twice(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sp_httpd_opts o = {.endpoint = "127.0.0.1:0"};
    struct sp_httpd *h = NULL;
    struct sp_err err = {0};
    if (sp_httpd_start(&loop, &o, no_handler, NULL, &h, &err) != 0)
        return;
    sp_httpd_stop(h, NULL, NULL);
    sp_httpd_stop(h, NULL, NULL);
}

static void batch_ref_after_last_unref(void)
{
    struct sp_batch *b = sp_batch_create(SP_SIGNAL_TRACES, 0);
    b->refcount = 0; /* what a double unref leaves behind, without freeing */
    sp_batch_ref(b);
}

static void test_assert_aborts_with_message(void)
{
    int aborted;
    const char *t = in_child(plain_assert, &aborted);
    ASSERT(aborted);
    ASSERT_CONTAINS(t, "spanprof: contract broken: arithmetic still works (1 + 1 == 3) at ");
    ASSERT_CONTAINS(t, "test_contracts.c:");
}

static void test_second_close(void)
{
    int aborted;
    const char *t = in_child(client_destroyed_twice, &aborted);
    ASSERT(aborted);
    ASSERT_CONTAINS(t, "sp_http_client_destroy called twice");
    t = in_child(server_stopped_twice, &aborted);
    ASSERT(aborted);
    ASSERT_CONTAINS(t, "sp_httpd_stop called twice");
}

static void test_refcount_above_zero(void)
{
    int aborted;
    const char *t = in_child(batch_ref_after_last_unref, &aborted);
    ASSERT(aborted);
    ASSERT_CONTAINS(t, "sp_batch_ref on a batch whose last reference was dropped");
}

int main(void)
{
    RUN(test_assert_aborts_with_message);
    RUN(test_second_close);
    RUN(test_refcount_above_zero);
    return sp_test_summary();
}
