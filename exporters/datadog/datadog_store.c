/* datadog exporter: sending_queue.storage, sealed requests as files.
 *
 * Like the Collector's file_storage queue, but simpler: one file per sealed
 * request, written when it is sealed and removed once the intake answered
 * it (or it was given up); what is still there when the process stops, by
 * SIGTERM or a kill, is read back by the next start before anything new is
 * sent. A file holds
 * the request exactly as it would go on the wire, minus the API key (added
 * by the sender): signal, mode, span count, headers, body, and a CRC-32 of
 * all that, so a truncated or damaged file is recognised, never sent.
 *
 *   "SPDQ" 2 | signal u8 | agent_mode u8 | rates_reply u8 | encoding u8 |
 *   count u64 | n_headers u32 | (len u32, bytes)* | body_len u64 | body |
 *   crc32 u32
 *
 * (integers little-endian). encoding is the body's (0 none, 1 gzip, 2 zstd),
 * so a payload sealed with gzip is sent as gzip after a restart with
 * `compression: zstd`, and the reader checks that the Content-Encoding
 * header and the body's magic bytes agree with it. Version 1 files (the
 * same without the encoding byte) are still read: their encoding is the
 * one their Content-Encoding header names. Names are <unix ms>-<seq>.ddq,
 * so sorting them gives the order they were written in. A file is written
 * as .tmp and renamed, so a crash mid-write leaves a .tmp, which the next
 * start moves aside like any file it cannot read: renamed to <name>.bad,
 * reported by name and reason, counted, never fatal. Files are not fsync'd: they are
 * meant to survive a restart of the process, not of the machine. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libdeflate.h>

#include "datadog_int.h"

#define DD_STORE_MAGIC "SPDQ\x02"
#define DD_STORE_MAGIC_V1 "SPDQ\x01"
#define DD_STORE_MAGIC_LEN 5
/* A file larger than this is not ours (the intake takes 3.2 MB payloads;
 * profile uploads are bounded by the receivers well below). */
#define DD_STORE_FILE_MAX (256u << 20)

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static char *path_of(const struct dd_store *st, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", st->dir, name) < 0)
        return NULL;
    return p;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dd_store_open(struct dd_store *st, const char *dir, uint64_t max_bytes, bool agent_mode,
                  struct sp_err *err)
{
    memset(st, 0, sizeof(*st));
    st->max_bytes = max_bytes;
    st->agent_mode = agent_mode;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return sp_err_set(err, SP_EIO, "sending_queue.storage: cannot create '%s': %s", dir,
                          strerror(errno));
    st->dir = strdup(dir);
    if (!st->dir)
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    /* Writable? A probe file now, not a surprise at shutdown. */
    char *probe = NULL;
    if (asprintf(&probe, "%s/.probe-%ld", dir, (long)getpid()) < 0) {
        dd_store_close(st);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, "x", 1) != 1) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        unlink(probe);
        free(probe);
        dd_store_close(st);
        return sp_err_set(err, SP_EIO, "sending_queue.storage: cannot write to '%s': %s", dir,
                          strerror(e));
    }
    close(fd);
    unlink(probe);
    free(probe);

    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        dd_store_close(st);
        return sp_err_set(err, SP_EIO, "sending_queue.storage: cannot list '%s': %s", dir,
                          strerror(e));
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        /* .tmp: a write a crash interrupted; kept in the backlog so the
         * reader reports it and moves it aside. */
        if (!has_suffix(de->d_name, ".ddq") && !has_suffix(de->d_name, ".ddq.tmp"))
            continue;
        if (st->n_backlog == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nb = realloc(st->backlog, nc * sizeof(*nb));
            if (!nb)
                break;
            st->backlog = nb;
            cap = nc;
        }
        st->backlog[st->n_backlog] = strdup(de->d_name);
        if (!st->backlog[st->n_backlog])
            break;
        st->n_backlog++;
        struct stat sb;
        char *p = path_of(st, de->d_name);
        if (p && stat(p, &sb) == 0)
            st->used += (uint64_t)sb.st_size;
        free(p);
    }
    closedir(d);
    if (st->n_backlog > 1)
        qsort(st->backlog, st->n_backlog, sizeof(*st->backlog), name_cmp);
    return 0;
}

size_t dd_store_backlog(const struct dd_store *st)
{
    return st->n_backlog - st->next;
}

/* ---- reading ---- */

struct rd {
    const uint8_t *p;
    size_t left;
};

static bool rd_bytes(struct rd *r, void *out, size_t n)
{
    if (r->left < n)
        return false;
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return true;
}

static bool rd_u(struct rd *r, size_t n, uint64_t *v)
{
    uint8_t b[8];
    if (!rd_bytes(r, b, n))
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v |= (uint64_t)b[i] << (8 * i);
    return true;
}

/* The file's encoding codes: fixed here, not the enum's values. */
enum { DD_STORE_ENC_NONE = 0, DD_STORE_ENC_GZIP = 1, DD_STORE_ENC_ZSTD = 2 };

static const enum sp_compression store_codecs[] = {SP_COMPRESSION_NONE, SP_COMPRESSION_GZIP,
                                                   SP_COMPRESSION_ZSTD};

static uint8_t store_enc_code(enum sp_compression c)
{
    return c == SP_COMPRESSION_GZIP   ? DD_STORE_ENC_GZIP
           : c == SP_COMPRESSION_ZSTD ? DD_STORE_ENC_ZSTD
                                      : DD_STORE_ENC_NONE;
}

/* What the Content-Encoding header of q names: NONE without one, -1 for an
 * encoding spanprof never writes. */
static int header_encoding(const struct dd_req *q)
{
    static const char name[] = "Content-Encoding:";
    for (size_t i = 0; i < q->n_headers; i++) {
        if (strncasecmp(q->headers[i], name, sizeof(name) - 1) != 0)
            continue;
        const char *v = q->headers[i] + sizeof(name) - 1;
        while (*v == ' ')
            v++;
        int c = sp_compression_parse(v);
        return c == SP_COMPRESSION_GZIP || c == SP_COMPRESSION_ZSTD ? c : -1;
    }
    return SP_COMPRESSION_NONE;
}

/* Sets q->encoding from the file (v2) or its header (v1), and refuses a
 * file whose header, encoding byte and body disagree: sent as it is, the
 * intake could not decode it. */
static bool store_encoding(struct dd_req *q, bool v1, uint64_t enc, const char **why)
{
    int h = header_encoding(q);
    if (h < 0) {
        *why = "unknown Content-Encoding header";
        return false;
    }
    enum sp_compression c = v1 ? (enum sp_compression)h : store_codecs[enc];
    if ((int)c != h) {
        *why = "encoding byte and Content-Encoding header disagree";
        return false;
    }
    if (c != SP_COMPRESSION_NONE && sp_compression_sniff(q->body.data, q->body.len) != c) {
        *why = c == SP_COMPRESSION_GZIP ? "body is not gzip although its encoding says so"
                                        : "body is not zstd although its encoding says so";
        return false;
    }
    q->encoding = c;
    return true;
}

struct dd_req *dd_store_parse(const uint8_t *data, size_t len, bool agent_mode, const char **why)
{
    bool v1 = len >= DD_STORE_MAGIC_LEN &&
              memcmp(data, DD_STORE_MAGIC_V1, DD_STORE_MAGIC_LEN) == 0;
    if (len < DD_STORE_MAGIC_LEN + 4 ||
        (!v1 && memcmp(data, DD_STORE_MAGIC, DD_STORE_MAGIC_LEN) != 0)) {
        *why = len < DD_STORE_MAGIC_LEN + 4 ? "truncated (shorter than a header)"
                                            : "not a spanprof queue file (bad magic)";
        return NULL;
    }
    uint32_t want = (uint32_t)data[len - 4] | (uint32_t)data[len - 3] << 8 |
                    (uint32_t)data[len - 2] << 16 | (uint32_t)data[len - 1] << 24;
    if ((uint32_t)libdeflate_crc32(0, data, len - 4) != want) {
        *why = "checksum mismatch (truncated or damaged)";
        return NULL;
    }
    struct rd r = {data + DD_STORE_MAGIC_LEN, len - DD_STORE_MAGIC_LEN - 4};
    uint64_t sig, mode, rates, enc = 0, count, nh;
    if (!rd_u(&r, 1, &sig) || !rd_u(&r, 1, &mode) || !rd_u(&r, 1, &rates) ||
        (!v1 && !rd_u(&r, 1, &enc)) || !rd_u(&r, 8, &count) || !rd_u(&r, 4, &nh)) {
        *why = "truncated header";
        return NULL;
    }
    if (!v1 && enc > DD_STORE_ENC_ZSTD) {
        *why = "unknown body encoding";
        return NULL;
    }
    if ((sig != SP_SIGNAL_TRACES && sig != SP_SIGNAL_PROFILES) || nh > 60) {
        *why = "bad header (signal or header count)";
        return NULL;
    }
    if ((mode != 0) != agent_mode) {
        *why = mode ? "written for an Agent (agent.endpoint), the exporter is now agentless"
                    : "written for the agentless intake, the exporter now sends to an Agent";
        return NULL;
    }
    const char *method = sig == SP_SIGNAL_TRACES && mode ? "PUT" : "POST";
    struct dd_req *q = dd_req_new((enum sp_signal)sig, method);
    if (!q) {
        *why = "out of memory";
        return NULL;
    }
    q->count = (size_t)count;
    q->rates_reply = rates != 0;
    for (uint64_t i = 0; i < nh; i++) {
        uint64_t hl;
        if (!rd_u(&r, 4, &hl) || hl > r.left || hl > 8192) {
            *why = "truncated header line";
            dd_req_free(q);
            return NULL;
        }
        if (dd_req_add_header(q, "%.*s", (int)hl, (const char *)r.p)) {
            *why = "out of memory";
            dd_req_free(q);
            return NULL;
        }
        r.p += hl;
        r.left -= hl;
    }
    uint64_t bl;
    if (!rd_u(&r, 8, &bl) || bl != r.left) {
        *why = "body length does not match the file";
        dd_req_free(q);
        return NULL;
    }
    if (sp_buf_append(&q->body, r.p, (size_t)bl)) {
        *why = "out of memory";
        dd_req_free(q);
        return NULL;
    }
    if (!store_encoding(q, v1, enc, why)) {
        dd_req_free(q);
        return NULL;
    }
    return q;
}

static void move_aside(struct dd_store *st, const char *name, const char *path)
{
    char *bad = NULL;
    if (asprintf(&bad, "%s.bad", path) >= 0 && rename(path, bad) != 0)
        unlink(path); /* cannot keep it: at least never read it again */
    free(bad);
    (void)st;
    (void)name;
}

struct dd_req *dd_store_next(struct dd_store *st,
                             void (*bad)(void *ud, const char *name, const char *why), void *ud)
{
    while (st->next < st->n_backlog) {
        const char *name = st->backlog[st->next++];
        char *path = path_of(st, name);
        if (!path)
            return NULL;
        const char *why = NULL;
        struct dd_req *q = NULL;
        uint8_t *data = NULL;
        struct stat sb;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            why = strerror(errno);
        } else if (fstat(fd, &sb) != 0 || sb.st_size > DD_STORE_FILE_MAX) {
            why = "too large to be a queue file";
        } else if (has_suffix(name, ".tmp")) {
            why = "incomplete write (the process stopped while writing it)";
        } else {
            size_t len = (size_t)sb.st_size, got = 0;
            data = malloc(len ? len : 1);
            while (data && got < len) {
                ssize_t k = read(fd, data + got, len - got);
                if (k <= 0)
                    break;
                got += (size_t)k;
            }
            if (!data)
                why = "out of memory";
            else if (got != len)
                why = "short read";
            else
                q = dd_store_parse(data, len, st->agent_mode, &why);
        }
        uint64_t size = fd >= 0 && why == NULL ? (uint64_t)sb.st_size : 0;
        if (fd >= 0)
            close(fd);
        free(data);
        if (q) {
            q->file = path;
            q->file_bytes = size;
            return q;
        }
        struct stat s2;
        if (stat(path, &s2) == 0)
            st->used -= (uint64_t)s2.st_size <= st->used ? (uint64_t)s2.st_size : st->used;
        move_aside(st, name, path);
        if (bad)
            bad(ud, name, why ? why : "unreadable");
        free(path);
    }
    return NULL;
}

/* ---- writing ---- */

static int put_u(struct sp_buf *b, uint64_t v, size_t n)
{
    uint8_t x[8];
    for (size_t i = 0; i < n; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    return sp_buf_append(b, x, n);
}

int dd_store_encode(const struct dd_req *r, bool agent_mode, struct sp_buf *b)
{
    int rc = sp_buf_append(b, DD_STORE_MAGIC, DD_STORE_MAGIC_LEN);
    rc |= put_u(b, (uint64_t)r->signal, 1);
    rc |= put_u(b, agent_mode ? 1 : 0, 1);
    rc |= put_u(b, r->rates_reply ? 1 : 0, 1);
    rc |= put_u(b, store_enc_code(r->encoding), 1);
    rc |= put_u(b, r->count, 8);
    rc |= put_u(b, r->n_headers, 4);
    for (size_t i = 0; i < r->n_headers; i++) {
        size_t hl = strlen(r->headers[i]);
        rc |= put_u(b, hl, 4);
        rc |= sp_buf_append(b, r->headers[i], hl);
    }
    rc |= put_u(b, r->body.len, 8);
    rc |= sp_buf_append(b, r->body.data, r->body.len);
    if (rc == 0)
        rc = put_u(b, (uint32_t)libdeflate_crc32(0, b->data, b->len), 4);
    return rc ? SP_ENOMEM : 0;
}

int dd_store_write(struct dd_store *st, struct dd_req *r, struct sp_err *err)
{
    if (r->file)
        return 0; /* read from storage and not delivered: still there */
    struct sp_buf b = {0};
    if (dd_store_encode(r, st->agent_mode, &b)) {
        sp_buf_free(&b);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    if (st->used + b.len > st->max_bytes) {
        size_t need = b.len;
        sp_buf_free(&b);
        return sp_err_set(err, SP_EFULL,
                          "sending_queue.max_disk_bytes (%" PRIu64 ") reached: %" PRIu64
                          " bytes used, %zu more needed",
                          st->max_bytes, st->used, need);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char name[64];
    snprintf(name, sizeof(name), "%013" PRIu64 "-%06" PRIu64 ".ddq",
             (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000, ++st->seq);
    char *path = path_of(st, name), *tmp = NULL;
    if (!path || asprintf(&tmp, "%s.tmp", path) < 0) {
        free(path);
        sp_buf_free(&b);
        return sp_err_set(err, SP_ENOMEM, "out of memory");
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    size_t done = 0;
    while (fd >= 0 && done < b.len) {
        ssize_t k = write(fd, b.data + done, b.len - done);
        if (k <= 0)
            break;
        done += (size_t)k;
    }
    int e = errno;
    bool ok = fd >= 0 && done == b.len;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        unlink(tmp);
        free(tmp);
        free(path);
        sp_buf_free(&b);
        return sp_err_set(err, SP_EIO, "cannot write %s in sending_queue.storage '%s': %s", name,
                          st->dir, strerror(e ? e : EIO));
    }
    free(tmp);
    st->used += b.len;
    r->file = path;
    r->file_bytes = b.len;
    sp_buf_free(&b);
    return 0;
}

void dd_store_remove(struct dd_store *st, struct dd_req *r)
{
    if (!r->file)
        return;
    unlink(r->file);
    st->used -= r->file_bytes <= st->used ? r->file_bytes : st->used;
    free(r->file);
    r->file = NULL;
    r->file_bytes = 0;
}

void dd_store_close(struct dd_store *st)
{
    for (size_t i = 0; i < st->n_backlog; i++)
        free(st->backlog[i]);
    free(st->backlog);
    free(st->dir);
    memset(st, 0, sizeof(*st));
}
