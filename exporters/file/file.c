/* file exporter: the Datadog payloads spanprof would send, written to a
 * directory instead of the network (local use, the demo, CI).
 *
 *   <path>/traces.jsonl   one Datadog span per line, mapped exactly as the
 *                         datadog exporter maps it (model/dd_map.c and
 *                         dd_encode.c sp_dd_encode_json_lines), with its chunk and
 *                         tracer-payload context; rotated by size into
 *                         traces.jsonl.1 (newest) .. traces.jsonl.<max_files>.
 *   <path>/profiles/<seq>-<service>-<unixtime>/
 *                         event.json (as the datadog exporter builds it) and
 *                         every attachment under its own name, byte for byte
 *                         the part that would be uploaded: a pprof the join
 *                         changed is re-encoded (gzip, or zstd when the
 *                         upload used zstd), anything else is written as
 *                         received. A zstd pprof also gets a gzip copy
 *                         `<name>.gz`, since `go tool pprof` reads gzip only.
 *                         At most max_profile_uploads directories are kept.
 *
 * Writes are synchronous on the loop: a batch is a few hundred KiB of
 * lines or one profile upload, and the disk is local. A failed write never
 * fails the pipeline: the data is counted as failed and logged (at most
 * once per interval), and the exporter carries on. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "dd_encode.h"
#include "dd_map.h"
#include "dd_profile_upload.h"
#include "pprof_codec.h"
#include "sp_buf.h"
#include "sp_component.h"
#include "sp_log.h"
#include "sp_metrics.h"
#include "sp_status.h"
#include "sp_version.h"

#define FILE_TRACES "traces.jsonl"
#define FILE_PROFILES "profiles"
#define FILE_LOG_INTERVAL_NS INT64_C(10000000000) /* one failure line per 10 s */
#define FILE_MAX_NAME 128

struct file_conf {
    char *path;
    uint64_t max_file_size;
    int64_t max_files;
    int64_t max_profile_uploads;
    char *hostname;
    char *env;
    struct sp_strlist tags;
};

/* One kept profile upload directory (oldest first in the ring). */
struct file_upload {
    uint64_t seq;
    char name[FILE_MAX_NAME + 64];
};

struct file_ctx {
    struct sp_component *comp;
    struct file_conf *conf;
    const char **tags; /* NULL-terminated view of conf->tags */
    int traces_fd;
    uint64_t traces_size;
    uint64_t seq;
    struct file_upload *uploads; /* ring of max_profile_uploads */
    size_t up_head, up_count;
    /* failure log rate limit */
    int64_t last_log_ns;
    uint64_t unlogged_failures;
    struct sp_metric *sent_spans, *sent_profiles, *failed_spans, *failed_profiles;
    struct sp_metric *dropped_invalid, *bytes_traces, *bytes_profiles, *rotations;
};

static int64_t file_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Logs a write failure at most once per interval, with how many were
 * not logged in between. */
__attribute__((format(printf, 2, 3))) static void file_fail(struct file_ctx *ctx, const char *fmt,
                                                            ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sp_status_note(ctx->comp->id, SP_STATUS_EXPORT_ERROR, "%s", msg);
    int64_t now = file_mono_ns();
    if (ctx->last_log_ns && now - ctx->last_log_ns < FILE_LOG_INTERVAL_NS) {
        ctx->unlogged_failures++;
        return;
    }
    if (ctx->unlogged_failures)
        sp_log_warn(ctx->comp->id, "%s (and %" PRIu64 " more write failures since the last report)",
                    msg, ctx->unlogged_failures);
    else
        sp_log_warn(ctx->comp->id, "%s", msg);
    ctx->last_log_ns = now;
    ctx->unlogged_failures = 0;
}

static int file_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* mkdir -p */
static int file_mkdirs(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(tmp, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* ---- traces ---- */

static int file_open_traces(struct file_ctx *ctx)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/" FILE_TRACES, ctx->conf->path);
    ctx->traces_fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (ctx->traces_fd < 0)
        return -1;
    struct stat st;
    ctx->traces_size = fstat(ctx->traces_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

/* traces.jsonl -> .1 -> ... -> .<max_files> (rename replaces the oldest). */
static int file_rotate(struct file_ctx *ctx)
{
    char from[4096], to[4096];
    if (ctx->traces_fd >= 0)
        close(ctx->traces_fd);
    ctx->traces_fd = -1;
    const char *dir = ctx->conf->path;
    int64_t keep = ctx->conf->max_files;
    if (keep == 0) {
        snprintf(from, sizeof from, "%s/" FILE_TRACES, dir);
        if (unlink(from) != 0 && errno != ENOENT)
            return -1;
    } else {
        for (int64_t i = keep - 1; i >= 1; i--) {
            snprintf(from, sizeof from, "%s/" FILE_TRACES ".%" PRId64, dir, i);
            snprintf(to, sizeof to, "%s/" FILE_TRACES ".%" PRId64, dir, i + 1);
            if (rename(from, to) != 0 && errno != ENOENT)
                return -1;
        }
        snprintf(from, sizeof from, "%s/" FILE_TRACES, dir);
        snprintf(to, sizeof to, "%s/" FILE_TRACES ".1", dir);
        if (rename(from, to) != 0 && errno != ENOENT)
            return -1;
    }
    sp_metric_inc(ctx->rotations);
    return file_open_traces(ctx);
}

/* Appends whole lines, rotating before a line that would take the file
 * past max_file_size (a single longer line gets a file of its own). */
static int file_append_lines(struct file_ctx *ctx, const uint8_t *p, size_t n)
{
    uint64_t max = ctx->conf->max_file_size;
    while (n) {
        if (ctx->traces_fd < 0 && file_open_traces(ctx) != 0)
            return -1;
        uint64_t room = ctx->traces_size < max ? max - ctx->traces_size : 0;
        size_t take = 0;
        /* As many whole lines as fit in the room. */
        while (take < n) {
            const uint8_t *nl = memchr(p + take, '\n', n - take);
            size_t end = nl ? (size_t)(nl - p) + 1 : n;
            if (end > room && (take > 0 || ctx->traces_size > 0))
                break;
            take = end;
            if (end > room)
                break; /* an oversized line alone in a fresh file */
        }
        if (take == 0) {
            if (file_rotate(ctx) != 0)
                return -1;
            continue;
        }
        if (file_write_all(ctx->traces_fd, p, take) != 0)
            return -1;
        ctx->traces_size += take;
        p += take;
        n -= take;
    }
    return 0;
}

static size_t file_payload_spans(const Datadog__Trace__AgentPayload *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_tracerpayloads; i++)
        for (size_t j = 0; j < p->tracerpayloads[i]->n_chunks; j++)
            n += p->tracerpayloads[i]->chunks[j]->n_spans;
    return n;
}

static void file_traces(struct file_ctx *ctx, struct sp_batch *b)
{
    struct sp_arena *arena = sp_arena_create(0);
    struct sp_dd_map_opts mo = {
        .hostname = ctx->conf->hostname && *ctx->conf->hostname ? ctx->conf->hostname : NULL,
        .env = ctx->conf->env && *ctx->conf->env ? ctx->conf->env : NULL,
        .tags = ctx->tags,
        .agent_version = "spanprof/" SP_VERSION,
    };
    Datadog__Trace__AgentPayload *p = NULL;
    size_t dropped = 0, total = b->u.traces.span_count;
    struct sp_buf out = {0};
    struct sp_err err = {0};
    int rc = arena ? sp_dd_map_traces(&b->u.traces, &mo, arena, &p, &dropped, &err)
                   : sp_err_set(&err, SP_ENOMEM, "out of memory");
    if (rc == 0)
        rc = sp_dd_encode_json_lines(p, &out, &err);
    if (rc) {
        sp_metric_add(ctx->failed_spans, (double)total);
        file_fail(ctx, "cannot map %zu spans: %s", total, err.msg);
        goto done;
    }
    sp_metric_add(ctx->dropped_invalid, (double)dropped);
    size_t n = file_payload_spans(p);
    if (out.len && file_append_lines(ctx, out.data, out.len) != 0) {
        sp_metric_add(ctx->failed_spans, (double)n);
        file_fail(ctx, "cannot write %zu spans to '%s/" FILE_TRACES "': %s", n, ctx->conf->path,
                  strerror(errno));
        goto done;
    }
    sp_metric_add(ctx->sent_spans, (double)n);
    sp_metric_add(ctx->bytes_traces, (double)out.len);
    sp_status_note(ctx->comp->id, SP_STATUS_DELIVERED, "%zu spans to " FILE_TRACES, n);
done:
    sp_buf_free(&out);
    if (arena)
        sp_arena_destroy(arena);
}

/* ---- profiles ---- */

/* File names from the network: a safe alphabet, never "." or "..". */
static void file_safe_name(char *out, size_t cap, const char *in, const char *fallback)
{
    size_t n = 0;
    for (; in && *in && n + 1 < cap; in++) {
        char c = *in;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_';
        out[n++] = ok ? c : '_';
    }
    out[n] = 0;
    if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        snprintf(out, cap, "%s", fallback);
    else if (out[0] == '.')
        out[0] = '_';
}

static int file_write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = file_write_all(fd, p, n);
    int saved = errno;
    if (close(fd) != 0 && rc == 0)
        return -1;
    errno = saved;
    return rc;
}

static void file_remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char p[4096];
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

/* Remembers an upload directory; removes the oldest beyond the bound. */
static void file_keep_upload(struct file_ctx *ctx, uint64_t seq, const char *name)
{
    size_t cap = (size_t)ctx->conf->max_profile_uploads;
    if (ctx->up_count == cap) {
        char p[4096];
        snprintf(p, sizeof p, "%s/" FILE_PROFILES "/%s", ctx->conf->path,
                 ctx->uploads[ctx->up_head].name);
        file_remove_dir(p);
        ctx->up_head = (ctx->up_head + 1) % cap;
        ctx->up_count--;
    }
    struct file_upload *u = &ctx->uploads[(ctx->up_head + ctx->up_count) % cap];
    u->seq = seq;
    snprintf(u->name, sizeof u->name, "%s", name);
    ctx->up_count++;
}

/* The attachment names event.json lists (what the upload's parts are
 * called), so the files match the event. */
static const char *file_event_name(json_object *ev, size_t i)
{
    json_object *arr;
    if (!ev || !json_object_object_get_ex(ev, "attachments", &arr) ||
        !json_object_is_type(arr, json_type_array) || i >= json_object_array_length(arr))
        return NULL;
    return json_object_get_string(json_object_array_get_idx(arr, i));
}

static int file_profile_write(struct file_ctx *ctx, const struct sp_profile *p, const char *dir,
                              struct sp_err *err)
{
    struct sp_dd_profile_opts po = {
        .env = ctx->conf->env && *ctx->conf->env ? ctx->conf->env : NULL,
        .hostname = ctx->conf->hostname && *ctx->conf->hostname ? ctx->conf->hostname : NULL,
        .tags = ctx->tags,
    };
    struct sp_buf ev = {0}, enc = {0};
    int rc = sp_dd_profile_event_json(p, &po, &ev, err);
    if (rc)
        return rc;
    size_t total = ev.len;
    if (file_write_file(dir, "event.json", ev.data, ev.len) != 0) {
        rc = sp_err_set(err, SP_EIO, "cannot write '%s/event.json': %s", dir, strerror(errno));
        goto done;
    }
    json_object *evj = json_tokener_parse((const char *)ev.data);
    char (*names)[FILE_MAX_NAME] = calloc(p->attachment_count + 1, sizeof *names);
    if (!names) {
        json_object_put(evj);
        rc = sp_err_set(err, SP_ENOMEM, "out of memory");
        goto done;
    }
    strcpy(names[p->attachment_count], "event.json");
    for (size_t i = 0; rc == 0 && i < p->attachment_count; i++) {
        const struct sp_attachment *a = &p->attachments[i];
        char fb[48], base[FILE_MAX_NAME - 8];
        snprintf(fb, sizeof fb, "attachment-%zu", i);
        const char *nm = file_event_name(evj, i);
        file_safe_name(base, sizeof base, nm ? nm : a->name, fb);
        /* Two parts must not share a file (nor event.json). */
        snprintf(names[i], FILE_MAX_NAME, "%s", base);
        for (int k = 1;; k++) {
            bool clash = false;
            for (size_t j = 0; j <= p->attachment_count && !clash; j++)
                clash = j != i && (j < i || j == p->attachment_count) &&
                        strcmp(names[j], names[i]) == 0;
            if (!clash)
                break;
            snprintf(names[i], FILE_MAX_NAME, "%s-%d", base, k);
        }

        const uint8_t *data = a->data;
        size_t len = a->len;
        sp_buf_reset(&enc);
        /* The part the datadog exporter would upload. */
        if (a->pprof && (a->modified || !a->data)) {
            enum sp_compression c =
                a->compression == SP_COMPRESSION_ZSTD ? SP_COMPRESSION_ZSTD : SP_COMPRESSION_GZIP;
            rc = sp_pprof_encode(a->pprof, c, &enc, err);
            if (rc) {
                sp_err_prefix(err, "attachment '%s'", names[i]);
                break;
            }
            data = enc.data;
            len = enc.len;
        }
        if (file_write_file(dir, names[i], data, len) != 0) {
            rc = sp_err_set(err, SP_EIO, "cannot write '%s/%s': %s", dir, names[i],
                            strerror(errno));
            break;
        }
        total += len;
        if (a->pprof && a->compression == SP_COMPRESSION_ZSTD) {
            char gz[FILE_MAX_NAME + 4];
            snprintf(gz, sizeof gz, "%s.gz", names[i]);
            sp_buf_reset(&enc);
            rc = sp_pprof_encode(a->pprof, SP_COMPRESSION_GZIP, &enc, err);
            if (rc == 0 && file_write_file(dir, gz, enc.data, enc.len) != 0)
                rc = sp_err_set(err, SP_EIO, "cannot write '%s/%s': %s", dir, gz,
                                strerror(errno));
        }
    }
    free(names);
    json_object_put(evj);
    if (rc == 0)
        sp_metric_add(ctx->bytes_profiles, (double)total);
done:
    sp_buf_free(&ev);
    sp_buf_free(&enc);
    return rc;
}

static void file_profile(struct file_ctx *ctx, struct sp_batch *b)
{
    const struct sp_profile *p = &b->u.profile;
    char svc[64], name[FILE_MAX_NAME + 64], dir[4096];
    file_safe_name(svc, sizeof svc, p->service, "unknown");
    int64_t secs = p->start_ns > 0 ? p->start_ns / 1000000000 : (int64_t)time(NULL);
    uint64_t seq = ++ctx->seq;
    snprintf(name, sizeof name, "%06" PRIu64 "-%s-%" PRId64, seq, svc, secs);
    snprintf(dir, sizeof dir, "%s/" FILE_PROFILES "/%s", ctx->conf->path, name);
    struct sp_err err = {0};
    int rc = 0;
    bool created = mkdir(dir, 0755) == 0;
    if (!created)
        rc = sp_err_set(&err, SP_EIO, "cannot create '%s': %s", dir, strerror(errno));
    if (rc == 0)
        rc = file_profile_write(ctx, p, dir, &err);
    if (rc) {
        sp_metric_inc(ctx->failed_profiles);
        file_fail(ctx, "profile of service '%s' not written: %s", p->service ? p->service : "",
                  err.msg);
        if (created) /* no half-written upload left behind */
            file_remove_dir(dir);
        return;
    }
    file_keep_upload(ctx, seq, name);
    sp_metric_inc(ctx->sent_profiles);
    sp_status_note(ctx->comp->id, SP_STATUS_DELIVERED, "profile %s", name);
}

/* Resumes numbering after the upload directories already there and takes
 * the newest max_profile_uploads of them under the bound. */
static int file_upload_cmp(const void *x, const void *y)
{
    const struct file_upload *a = x, *b = y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void file_scan_uploads(struct file_ctx *ctx, const char *pdir)
{
    DIR *d = opendir(pdir);
    if (!d)
        return;
    size_t n = 0, cap = 0;
    struct file_upload *v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        unsigned long long seq = strtoull(e->d_name, &end, 10);
        if (end == e->d_name || *end != '-' || strlen(e->d_name) >= sizeof v->name)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct file_upload *nv = realloc(v, nc * sizeof *nv);
            if (!nv)
                break;
            v = nv;
            cap = nc;
        }
        v[n].seq = seq;
        snprintf(v[n].name, sizeof v[n].name, "%s", e->d_name);
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, file_upload_cmp);
    for (size_t i = 0; i < n; i++) {
        if (v[i].seq > ctx->seq)
            ctx->seq = v[i].seq;
        file_keep_upload(ctx, v[i].seq, v[i].name);
    }
    free(v);
}

/* ---- component ---- */

static int file_consume(struct sp_component *comp, struct sp_batch *batch)
{
    struct file_ctx *ctx = comp->ctx;
    if (batch->signal == SP_SIGNAL_TRACES)
        file_traces(ctx, batch);
    else if (batch->signal == SP_SIGNAL_PROFILES)
        file_profile(ctx, batch);
    return SP_OK;
}

static int file_conf_error(struct sp_component *comp, struct sp_err *err, const char *key,
                           const char *msg)
{
    if (comp->conf_ctx)
        return sp_conf_errorf(comp->conf_ctx, err, key, "%s", msg);
    return sp_err_set(err, SP_EINVAL, "'%s': %s", key, msg);
}

static int file_create(struct sp_component *comp, struct sp_err *err)
{
    struct file_conf *c = comp->conf;
    if (!c->path || !*c->path)
        return file_conf_error(comp, err, "path", "must name a directory");
    if (strlen(c->path) > 3000)
        return file_conf_error(comp, err, "path", "is longer than 3000 bytes");
    if (c->max_file_size < 4096)
        return file_conf_error(comp, err, "max_file_size", "must be at least 4KiB");
    if (c->max_files < 0 || c->max_files > 1000)
        return file_conf_error(comp, err, "max_files", "must be between 0 and 1000");
    if (c->max_profile_uploads < 1 || c->max_profile_uploads > 1000000)
        return file_conf_error(comp, err, "max_profile_uploads",
                               "must be between 1 and 1000000");
    for (size_t i = 0; i < c->tags.n; i++) {
        const char *colon = c->tags.v[i] ? strchr(c->tags.v[i], ':') : NULL;
        if (!colon || colon == c->tags.v[i])
            return file_conf_error(comp, err, "tags", "every tag must be 'key:value'");
    }
    struct file_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    ctx->tags = calloc(c->tags.n + 1, sizeof *ctx->tags);
    ctx->uploads = calloc((size_t)c->max_profile_uploads, sizeof *ctx->uploads);
    if (!ctx->tags || !ctx->uploads) {
        free(ctx->tags);
        free(ctx->uploads);
        free(ctx);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->tags.n; i++)
        ctx->tags[i] = c->tags.v[i];
    ctx->comp = comp;
    ctx->conf = c;
    ctx->traces_fd = -1;
    const char *l = comp->metric_labels;
    char ls[256];
    ctx->sent_spans = sp_counter("spanprof_exporter_sent_spans_total",
                                 "Spans an exporter delivered", l);
    ctx->sent_profiles = sp_counter("spanprof_exporter_sent_profiles_total",
                                    "Profiles an exporter delivered", l);
    ctx->failed_spans = sp_counter("spanprof_exporter_failed_spans_total",
                                   "Spans an exporter could not deliver", l);
    ctx->failed_profiles = sp_counter("spanprof_exporter_failed_profiles_total",
                                      "Profiles an exporter could not deliver", l);
    snprintf(ls, sizeof ls, "%s,reason=\"invalid\"", l ? l : "");
    ctx->dropped_invalid = sp_counter("spanprof_exporter_dropped_spans_total",
                                      "Data dropped by the exporter, by reason", ls);
    snprintf(ls, sizeof ls, "%s,signal=\"traces\"", l ? l : "");
    ctx->bytes_traces = sp_counter("spanprof_exporter_payload_bytes_total",
                                   "Bytes of payloads an exporter delivered", ls);
    snprintf(ls, sizeof ls, "%s,signal=\"profiles\"", l ? l : "");
    ctx->bytes_profiles = sp_counter("spanprof_exporter_payload_bytes_total",
                                     "Bytes of payloads an exporter delivered", ls);
    ctx->rotations = sp_counter("spanprof_exporter_file_rotations_total",
                                "Times the file exporter rotated traces.jsonl", l);
    comp->ctx = ctx;
    return 0;
}

static int file_start(struct sp_component *comp, struct sp_host *host, struct sp_err *err)
{
    (void)host;
    struct file_ctx *ctx = comp->ctx;
    char pdir[4096];
    snprintf(pdir, sizeof pdir, "%s/" FILE_PROFILES, ctx->conf->path);
    if (file_mkdirs(ctx->conf->path) != 0 || file_mkdirs(pdir) != 0)
        return sp_err_set(err, SP_EIO, "cannot create directory '%s': %s", pdir,
                          strerror(errno));
    if (file_open_traces(ctx) != 0)
        return sp_err_set(err, SP_EIO, "cannot open '%s/" FILE_TRACES "': %s", ctx->conf->path,
                          strerror(errno));
    file_scan_uploads(ctx, pdir);
    sp_log_info(comp->id,
                "writing the Datadog payloads spanprof would send under '%s' (" FILE_TRACES
                ", " FILE_PROFILES "/)",
                ctx->conf->path);
    return 0;
}

static void file_shutdown(struct sp_component *comp, sp_done_fn done)
{
    struct file_ctx *ctx = comp->ctx;
    if (ctx && ctx->traces_fd >= 0) {
        close(ctx->traces_fd);
        ctx->traces_fd = -1;
    }
    if (ctx && ctx->unlogged_failures)
        sp_log_warn(comp->id, "%" PRIu64 " write failures not reported yet",
                    ctx->unlogged_failures);
    done(comp);
}

static void file_destroy(struct sp_component *comp)
{
    struct file_ctx *ctx = comp->ctx;
    if (!ctx)
        return;
    if (ctx->traces_fd >= 0)
        close(ctx->traces_fd);
    free(ctx->tags);
    free(ctx->uploads);
    free(ctx);
    comp->ctx = NULL;
}

static const struct sp_conf_key file_keys[] = {
    {"path", SP_CONF_STRING, offsetof(struct file_conf, path), "./spanprof-data", NULL, 0, 0, 0,
     "directory for traces.jsonl and profiles/ (created if missing)"},
    {"max_file_size", SP_CONF_SIZE, offsetof(struct file_conf, max_file_size), "64MiB", NULL, 0,
     0, 0, "traces.jsonl is rotated before it grows past this size"},
    {"max_files", SP_CONF_INT, offsetof(struct file_conf, max_files), "5", NULL, 0, 0, 0,
     "rotated trace files kept (traces.jsonl.1 is the newest)"},
    {"max_profile_uploads", SP_CONF_INT, offsetof(struct file_conf, max_profile_uploads), "500",
     NULL, 0, 0, 0, "profile upload directories kept (the oldest is removed)"},
    {"hostname", SP_CONF_STRING, offsetof(struct file_conf, hostname), NULL, NULL, 0, 0, 0,
     "host name for spans and profiles that carry none (as the datadog exporter)"},
    {"env", SP_CONF_STRING, offsetof(struct file_conf, env), NULL, NULL, 0, 0, 0,
     "env for spans and profiles that carry none (as the datadog exporter)"},
    {"tags", SP_CONF_STRLIST, offsetof(struct file_conf, tags), NULL, NULL, 0, 0, 0,
     "extra key:value tags (as the datadog exporter)"},
};

const struct sp_component_type sp_file_exporter_type = {
    .name = "file",
    .kind = SP_KIND_EXPORTER,
    .signals = SP_SIGNAL_BIT(SP_SIGNAL_TRACES) | SP_SIGNAL_BIT(SP_SIGNAL_PROFILES),
    .doc = "writes the Datadog payloads it would send (traces as JSON lines, profile uploads as "
           "event.json plus attachments) under a directory",
    .conf_keys = file_keys,
    .conf_key_count = SP_CONF_END_COUNT(file_keys),
    .conf_size = sizeof(struct file_conf),
    .create = file_create,
    .start = file_start,
    .consume = file_consume,
    .shutdown = file_shutdown,
    .destroy = file_destroy,
};
