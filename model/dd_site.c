/* Datadog site names and API key shape (see dd_site.h). */
#include "dd_site.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "sp_conf.h"

const char *const dd_sites[] = {
    "datadoghq.com",     "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu",
    "ap1.datadoghq.com", "ap2.datadoghq.com", "ddog-gov.com",
};
const size_t dd_site_count = sizeof(dd_sites) / sizeof(dd_sites[0]);

static int dd_site_known(const char *s)
{
    for (size_t i = 0; i < dd_site_count; i++)
        if (strcmp(s, dd_sites[i]) == 0)
            return 1;
    return 0;
}

static void dd_site_list(char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < dd_site_count && o < n; i++) {
        int w = snprintf(out + o, n - o, "%s%s", i ? ", " : "", dd_sites[i]);
        if (w < 0)
            return;
        o += (size_t)w;
    }
}

enum dd_site_verdict dd_site_check(const char *site, char *msg, size_t n)
{
    char list[200];
    if (dd_site_known(site))
        return DD_SITE_OK;
    dd_site_list(list, sizeof(list));
    /* The host of the web app or of an intake, not the site. */
    static const char *const prefixes[] = {"app.", "api.", "trace.agent.", "intake.profile."};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i]);
        if (strncmp(site, prefixes[i], pl) == 0 && dd_site_known(site + pl)) {
            snprintf(msg, n, "'%s' is a Datadog host, not a site: the site is '%s'", site,
                     site + pl);
            return DD_SITE_WRONG;
        }
    }
    /* region.datadoghq.com: perhaps a site newer than this list (a warning
     * only; its typos are the user's to see in the warning). */
    const char *dot = strchr(site, '.');
    if (dot && dot != site && strcmp(dot + 1, "datadoghq.com") == 0) {
        int ok = 1;
        for (const char *p = site; p < dot; p++)
            ok = ok && (islower((unsigned char)*p) || isdigit((unsigned char)*p));
        if (ok) {
            snprintf(msg, n, "'%s' is not a Datadog site spanprof knows (%s); if Datadog "
                     "opened it recently, ignore this", site, list);
            return DD_SITE_UNKNOWN;
        }
    }
    const char *best = sp_conf_suggest(site, dd_sites, dd_site_count);
    if (best) {
        snprintf(msg, n, "'%s' is not a Datadog site (did you mean '%s'?)", site, best);
        return DD_SITE_WRONG;
    }
    snprintf(msg, n, "'%s' is not a Datadog site: use one of %s (the part after 'app.' in "
             "your Datadog URL), or set traces.endpoint and profiles.endpoint for another "
             "intake", site, list);
    return DD_SITE_WRONG;
}

int dd_api_key_plausible(const char *key, char *msg, size_t n)
{
    size_t len = strlen(key), nonhex = 0;
    for (const char *p = key; *p; p++)
        nonhex += !isxdigit((unsigned char)*p);
    if (len == 32 && nonhex == 0)
        return 1;
    if (len == 40 && nonhex == 0)
        snprintf(msg, n, "api.key is 40 hexadecimal characters, the shape of an application "
                 "key: the intakes take an API key (32 hexadecimal characters)");
    else if (nonhex)
        snprintf(msg, n, "api.key is %zu characters, %zu of them not hexadecimal: a Datadog API "
                 "key is 32 hexadecimal characters (a client token or a placeholder will be "
                 "refused)", len, nonhex);
    else
        snprintf(msg, n, "api.key is %zu characters: a Datadog API key is 32 hexadecimal "
                 "characters", len);
    return 0;
}
