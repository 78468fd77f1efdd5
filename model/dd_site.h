/* Datadog sites and API keys: what a valid one looks like, so a typo or a
 * web-app host is caught by `spanprof validate` instead of by the intake an
 * hour later. Pure functions, no I/O. */
#ifndef DD_SITE_H
#define DD_SITE_H

#include <stddef.h>

/* The Datadog sites (the `site` parameter Datadog's agents and tracers
 * take), as listed by Datadog's own tooling: DataDog/datadog-agent's
 * per-site tests and DataDog/browser-sdk scripts/lib/datacenter.ts. */
extern const char *const dd_sites[];
extern const size_t dd_site_count;

enum dd_site_verdict {
    DD_SITE_OK = 0,      /* one of dd_sites */
    DD_SITE_UNKNOWN = 1, /* <region>.datadoghq.com not in the list: maybe a new site; warn */
    DD_SITE_WRONG = 2,   /* a typo, the web app's host, a URL...: an error */
};

/* Checks site; for UNKNOWN and WRONG, msg (size n) says why and what was
 * probably meant. */
enum dd_site_verdict dd_site_check(const char *site, char *msg, size_t n);

/* Datadog API keys are 32 hexadecimal characters. Returns 1 when key looks
 * like one, else 0 with why (never quoting the key) in msg. */
int dd_api_key_plausible(const char *key, char *msg, size_t n);

#endif
