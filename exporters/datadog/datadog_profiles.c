/* datadog exporter: a profile batch -> one multipart upload request.
 *
 * The body (event.json plus every attachment, re-encoded only where the
 * join changed a pprof) is model/dd_profile_upload.c's. Headers are those
 * Datadog's own profilers send: DD-EVP-ORIGIN(-VERSION) from the upload when
 * it came from a Datadog profiler (so the intake sees the real library),
 * else spanprof's own; DD-API-KEY only agentless; the container id when the
 * upload had one. */
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

int dd_profiles_build(struct dd_exporter *dd, struct sp_batch *b, struct dd_req **reqs,
                      size_t *n, struct sp_err *err)
{
    const struct sp_profile *p = &b->u.profile;
    struct dd_req *nr = realloc(*reqs, (*n + 1) * sizeof(*nr));
    if (!nr)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    *reqs = nr;
    struct dd_req *r = &nr[*n];
    memset(r, 0, sizeof(*r));
    r->method = "POST";
    r->url = dd->set.profiles_url;
    r->signal = SP_SIGNAL_PROFILES;
    r->count = 1;

    struct sp_dd_profile_opts o = {
        .env = dd_nonempty(dd->conf->env) ? dd->conf->env : NULL,
        .hostname = dd_nonempty(dd->conf->hostname) ? dd->conf->hostname : NULL,
        .tags = dd->set.tags,
    };
    char *ctype = NULL;
    int rc = sp_dd_profile_multipart(p, &o, &r->body, &ctype, err);
    if (rc) {
        free(ctype);
        sp_buf_free(&r->body);
        return rc;
    }
    (*n)++;
    bool own_origin = !(dd_nonempty(p->origin) && dd_header_safe(p->origin));
    rc |= dd_req_add_header(r, "Content-Type: %s", ctype);
    free(ctype);
    if (!dd->set.agent_mode)
        rc |= dd_req_add_header(r, "DD-API-KEY: %s", dd->set.api_key ? dd->set.api_key : "");
    rc |= dd_req_add_header(r, "DD-EVP-ORIGIN: %s", own_origin ? "spanprof" : p->origin);
    if (own_origin)
        rc |= dd_req_add_header(r, "DD-EVP-ORIGIN-VERSION: %s", SP_VERSION);
    else if (dd_nonempty(p->origin_version) && dd_header_safe(p->origin_version))
        rc |= dd_req_add_header(r, "DD-EVP-ORIGIN-VERSION: %s", p->origin_version);
    if (dd_nonempty(p->container_id) && dd_header_safe(p->container_id))
        rc |= dd_req_add_header(r, "Datadog-Container-ID: %s", p->container_id);
    if (rc) {
        dd_req_free(r);
        (*n)--;
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    return 0;
}
