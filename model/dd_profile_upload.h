/* A profile envelope -> the multipart/form-data body Datadog's profile
 * intake takes (agentless /api/v2/profile, or an Agent's /profiling/v1/input):
 * an `event` part (event.json) and one part per attachment. */
#ifndef SP_DD_PROFILE_UPLOAD_H
#define SP_DD_PROFILE_UPLOAD_H

#include "sp_batch.h"
#include "sp_buf.h"
#include "sp_err.h"

struct sp_dd_profile_opts {
    const char *env;            /* overrides an empty envelope env */
    const char *hostname;       /* overrides an empty envelope host */
    const char *const *tags;    /* extra "k:v" tags, NULL-terminated, may be NULL */
};

/* event.json for the envelope: attachments, start, end, family, version "4",
 * tags_profiler (service, env, version, host, runtime-id, the upload's own
 * tags), endpoint_counts (the join's merged with the upload's), and every
 * other field of the original event.json kept. */
int sp_dd_profile_event_json(const struct sp_profile *p, const struct sp_dd_profile_opts *o,
                             struct sp_buf *out, struct sp_err *err);

/* The whole multipart body; *content_type receives the Content-Type with
 * the boundary (static storage inside out is not used: caller frees it). */
int sp_dd_profile_multipart(const struct sp_profile *p, const struct sp_dd_profile_opts *o,
                            struct sp_buf *out, char **content_type, struct sp_err *err);

#endif
