/* Fuzz target: what the datadog exporter makes of an intake's or Agent's
 * answer. The input is one answer, as bytes:
 *   byte 0       the HTTP status (one of a table of the interesting ones)
 *   byte 1       the attempt number (backoff growth)
 *   byte 2       the jitter draw
 *   then         a Retry-After header value up to the first '\n'
 *   the rest     the body: an Agent's /v0.4/traces reply (rate_by_service JSON)
 * and goes through every decision taken from it: retry or not
 * (dd_classify), the Retry-After parser (sp_http_parse_retry_after: seconds
 * or an HTTP date), the wait before the next attempt (dd_backoff_ms) and the
 * rate_by_service parser (dd_parse_rate_by_service). None may fail on
 * anything; the checks below are their contracts. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "exporters/datadog/datadog_int.h"
#include "sp_http_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long dd_fuzz_statuses[] = {0,   200, 202, 204, 301, 400, 403, 404, 408,
                                        413, 429, 500, 502, 503, 504, 599, 100, 999};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    long status = dd_fuzz_statuses[data[0] % (sizeof(dd_fuzz_statuses) / sizeof(long))];
    unsigned attempt = data[1] % 40;
    double rnd = data[2] / 256.0;
    data += 3;
    size -= 3;

    char ra[128];
    size_t n = 0;
    while (n < size && data[n] != '\n' && n < sizeof(ra) - 1)
        n++;
    memcpy(ra, data, n);
    ra[n] = '\0';
    bool have_ra = n > 0;
    if (n < size && data[n] == '\n')
        n++;
    data += n;
    size -= n;

    enum dd_verdict v = dd_classify(status);
    if (v != DD_SENT && v != DD_RETRY && v != DD_PERMANENT)
        __builtin_trap();
    if (status >= 200 && status < 300 && v != DD_SENT)
        __builtin_trap();

    int64_t retry_after = have_ra ? sp_http_parse_retry_after(ra) : -1;
    if (retry_after < -1 || retry_after > (int64_t)SP_HTTP_RETRY_AFTER_MAX_S * 1000)
        __builtin_trap();

    struct dd_retry_conf rc = {
        .enabled = true, .initial_interval_ms = 100, .max_interval_ms = 30000,
        .max_elapsed_ms = 300000};
    int64_t wait = dd_backoff_ms(&rc, attempt, rnd, retry_after);
    if (wait < 0)
        __builtin_trap();

    double def = -1;
    size_t rates = dd_parse_rate_by_service(data, size, &def);
    if (rates == 0 && def != -1)
        __builtin_trap(); /* a default rate needs a well-formed rate */
    if (def != -1 && !(def >= 0.0 && def <= 1.0))
        __builtin_trap();
    return 0;
}
