/* datadog exporter: a profile -> its final multipart upload request (what
 * the queue holds for it, built from the settings alone).
 *
 * The body (event.json plus every attachment, re-encoded only where the
 * join changed a pprof) is model/dd_profile_upload.c's. Headers are those
 * Datadog's own profilers send: DD-EVP-ORIGIN(-VERSION) from the upload when
 * it came from a Datadog profiler (so the intake sees the real library),
 * else spanprof's own; the container id when the upload had one. The
 * sender adds DD-API-KEY (agentless only), so no stored request holds it. */
#include <stdlib.h>
#include <string.h>

#include "datadog_int.h"
#include "dd_profile_upload.h"
#include "sp_version.h"

static bool dd_nonempty(const char *s)
{
    return s && *s;
}

/* Header values come from clients: keep them on one line. */
static bool dd_header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

int dd_profile_req(const struct dd_settings *s, const struct sp_profile *p, struct dd_req **out,
                   struct sp_err *err)
{
    *out = NULL;
    struct dd_req *r = dd_req_new(SP_SIGNAL_PROFILES, "POST");
    if (!r)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    r->count = 1;
    struct sp_dd_profile_opts o = {
        .env = s->env,
        .hostname = s->hostname,
        .tags = s->tags,
    };
    char *ctype = NULL;
    int rc = sp_dd_profile_multipart(p, &o, &r->body, &ctype, err);
    if (rc) {
        free(ctype);
        dd_req_free(r);
        return rc;
    }
    bool own_origin = !(dd_nonempty(p->origin) && dd_header_safe(p->origin));
    rc |= dd_req_add_header(r, "Content-Type: %s", ctype);
    free(ctype);
    rc |= dd_req_add_header(r, "DD-EVP-ORIGIN: %s", own_origin ? "spanprof" : p->origin);
    if (own_origin)
        rc |= dd_req_add_header(r, "DD-EVP-ORIGIN-VERSION: %s", SP_VERSION);
    else if (dd_nonempty(p->origin_version) && dd_header_safe(p->origin_version))
        rc |= dd_req_add_header(r, "DD-EVP-ORIGIN-VERSION: %s", p->origin_version);
    if (dd_nonempty(p->container_id) && dd_header_safe(p->container_id))
        rc |= dd_req_add_header(r, "Datadog-Container-ID: %s", p->container_id);
    if (rc) {
        dd_req_free(r);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    *out = r;
    return 0;
}
