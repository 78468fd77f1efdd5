/* multipart/form-data parser: one pass over a buffered body.
 *
 * Accepts what real clients send (dd-trace-go's mime/multipart, dd-trace-js's
 * form-data, libdatadog's reqwest/hyper, pyroscope-go, Node's undici
 * FormData): CRLF line ends (bare LF tolerated, as Go's reader does), an
 * optional preamble, transport padding after delimiters, quoted or bare
 * Content-Disposition parameters. Anything malformed fails with the part
 * number and byte offset; nothing is read outside [body, body + len). */
#include "multipart.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* --- Content-Type ---------------------------------------------------------- */

/* Reads one media-type parameter value (token or quoted-string) at *p into
 * out (cap bytes, NUL-terminated), advancing *p. False when too long. */
static bool mp_param_value(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1])
                s++;
            if (n + 1 >= cap)
                return false;
            out[n++] = *s++;
        }
        if (*s == '"')
            s++;
    } else {
        while (*s && *s != ';' && *s != ',' && !isspace((unsigned char)*s)) {
            if (n + 1 >= cap)
                return false;
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
    *p = s;
    return true;
}

/* Steps over separators to the next `name=` of a header's parameter list
 * (Content-Type, Content-Disposition). Returns true with *p at the value
 * when the parameter has one; false when it has none (*p is then at the
 * next ';' or the end). */
static bool mp_next_param(const char **pp, const char **name, size_t *nlen)
{
    const char *p = *pp;
    while (*p == ';' || isspace((unsigned char)*p))
        p++;
    *name = p;
    while (*p && *p != '=' && *p != ';')
        p++;
    size_t n = (size_t)(p - *name);
    while (n && isspace((unsigned char)(*name)[n - 1]))
        n--;
    *nlen = n;
    if (*p != '=') {
        *pp = p;
        return false;
    }
    p++;
    while (isspace((unsigned char)*p))
        p++;
    *pp = p;
    return true;
}

int sp_multipart_boundary(const char *content_type, char *out, struct sp_err *err)
{
    out[0] = '\0';
    if (!content_type || !*content_type)
        return sp_err_set(err, SP_EUNSUPPORTED, "missing Content-Type (want multipart/form-data)");
    const char *p = content_type;
    while (isspace((unsigned char)*p))
        p++;
    static const char mt[] = "multipart/form-data";
    char after = p[0] ? p[strnlen(p, sizeof(mt) - 1)] : '\0';
    if (strncasecmp(p, mt, sizeof(mt) - 1) != 0 ||
        (after && after != ';' && !isspace((unsigned char)after)))
        return sp_err_set(err, SP_EUNSUPPORTED, "content type '%.100s' is not multipart/form-data",
                          content_type);
    p += sizeof(mt) - 1;
    while (*p) {
        const char *name;
        size_t nlen;
        if (!mp_next_param(&p, &name, &nlen))
            continue;
        /* room for the longest valid boundary and its NUL: longer fails */
        char val[SP_MULTIPART_BOUNDARY_MAX + 1];
        bool ok = mp_param_value(&p, val, sizeof(val));
        if (nlen == 8 && strncasecmp(name, "boundary", 8) == 0) {
            if (!ok)
                return sp_err_set(err, SP_EDECODE, "multipart boundary is longer than %d bytes",
                                  SP_MULTIPART_BOUNDARY_MAX);
            if (!val[0])
                return sp_err_set(err, SP_EDECODE, "multipart boundary is empty");
            memcpy(out, val, strlen(val) + 1);
            return 0;
        }
        if (!ok) /* skip an over-long other parameter */
            while (*p && *p != ';')
                p++;
    }
    return sp_err_set(err, SP_EDECODE, "multipart/form-data without a boundary parameter");
}

/* --- body ------------------------------------------------------------------ */

static const uint8_t *mp_memmem(const uint8_t *hay, size_t hlen, const uint8_t *needle, size_t nlen)
{
    if (nlen == 0 || hlen < nlen)
        return NULL;
    return memmem(hay, hlen, needle, nlen);
}

/* After "--boundary": "--" closes; otherwise optional padding then a line
 * end. Sets *next to the first byte after the delimiter line. */
static int mp_after_delim(const uint8_t *b, size_t len, size_t pos, bool *closing, size_t *next)
{
    if (pos + 2 <= len && b[pos] == '-' && b[pos + 1] == '-') {
        *closing = true;
        *next = pos + 2;
        return 0;
    }
    *closing = false;
    while (pos < len && (b[pos] == ' ' || b[pos] == '\t'))
        pos++;
    if (pos < len && b[pos] == '\r')
        pos++;
    if (pos < len && b[pos] == '\n') {
        *next = pos + 1;
        return 0;
    }
    return -1;
}

/* Finds the next delimiter line: "--boundary" at the start of a line at or
 * after from, followed by "--" or a line end (or by the end of the body,
 * which the caller reports as truncation). *at is the offset of the "--";
 * *data_end is where the preceding part's data ends (before its line end). */
static bool mp_find_delim(const uint8_t *b, size_t len, size_t from, const char *dash_boundary,
                          size_t dlen, size_t *at, size_t *data_end)
{
    size_t pos = from;
    while (pos < len) {
        const uint8_t *hit = mp_memmem(b + pos, len - pos, (const uint8_t *)dash_boundary, dlen);
        if (!hit)
            return false;
        size_t off = (size_t)(hit - b);
        bool closing;
        size_t next;
        bool line_start = off == 0 || b[off - 1] == '\n';
        bool well_ended =
            off + dlen >= len || mp_after_delim(b, len, off + dlen, &closing, &next) == 0;
        if (line_start && well_ended) {
            *at = off;
            if (off == 0)
                *data_end = 0;
            else
                *data_end = (off >= 2 && b[off - 2] == '\r') ? off - 2 : off - 1;
            if (*data_end < from)
                *data_end = from;
            return true;
        }
        pos = off + 1;
    }
    return false;
}

/* Content-Disposition: form-data; name="x"; filename="y". */
static void mp_disposition(const char *v, size_t vlen, struct sp_arena *a,
                           struct sp_multipart_part *part)
{
    char buf[1024];
    if (vlen >= sizeof(buf))
        vlen = sizeof(buf) - 1;
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    const char *p = buf;
    while (*p && *p != ';')
        p++;
    while (*p) {
        const char *name;
        size_t nlen;
        if (!mp_next_param(&p, &name, &nlen))
            continue;
        char val[1024];
        if (!mp_param_value(&p, val, sizeof(val))) {
            while (*p && *p != ';')
                p++;
            continue;
        }
        if (nlen == 4 && strncasecmp(name, "name", 4) == 0)
            part->name = sp_arena_strdup(a, val);
        else if (nlen == 8 && strncasecmp(name, "filename", 8) == 0)
            part->filename = sp_arena_strdup(a, val);
    }
}

/* Parses the header block [h, h + hlen) of one part. */
static int mp_headers(const uint8_t *h, size_t hlen, struct sp_arena *a,
                      struct sp_multipart_part *part)
{
    size_t pos = 0;
    while (pos < hlen) {
        const uint8_t *eol = memchr(h + pos, '\n', hlen - pos);
        size_t end = eol ? (size_t)(eol - h) : hlen;
        size_t line_end = (end > pos && h[end - 1] == '\r') ? end - 1 : end;
        const char *line = (const char *)h + pos;
        size_t llen = line_end - pos;
        const char *colon = memchr(line, ':', llen);
        if (colon) {
            size_t klen = (size_t)(colon - line);
            const char *v = colon + 1;
            size_t vlen = llen - klen - 1;
            while (vlen && isspace((unsigned char)*v)) {
                v++;
                vlen--;
            }
            while (vlen && isspace((unsigned char)v[vlen - 1]))
                vlen--;
            if (klen == 19 && strncasecmp(line, "Content-Disposition", 19) == 0)
                mp_disposition(v, vlen, a, part);
            else if (klen == 12 && strncasecmp(line, "Content-Type", 12) == 0)
                part->content_type = sp_arena_strndup(a, v, vlen);
        }
        pos = end + 1;
    }
    return 0;
}

int sp_multipart_parse(const uint8_t *body, size_t len, const char *boundary,
                       const struct sp_multipart_limits *limits, struct sp_arena *arena,
                       struct sp_multipart_part **parts, size_t *count, struct sp_err *err)
{
    *parts = NULL;
    *count = 0;
    size_t max_parts = limits && limits->max_parts ? limits->max_parts : 64;
    size_t max_part = limits ? limits->max_part_size : 0;
    size_t max_hdr = limits && limits->max_header_bytes ? limits->max_header_bytes : 8192;
    size_t blen = strlen(boundary);
    if (blen == 0 || blen > SP_MULTIPART_BOUNDARY_MAX)
        return sp_err_set(err, SP_EDECODE, "multipart boundary must be 1 to %d bytes",
                          SP_MULTIPART_BOUNDARY_MAX);
    char dash[SP_MULTIPART_BOUNDARY_MAX + 3];
    size_t dlen = (size_t)snprintf(dash, sizeof(dash), "--%s", boundary);

    size_t at, data_end;
    if (!mp_find_delim(body, len, 0, dash, dlen, &at, &data_end))
        return sp_err_set(err, SP_EDECODE,
                          "multipart body of %zu bytes has no delimiter for boundary '%s'", len,
                          boundary);
    struct sp_multipart_part *v = sp_arena_calloc(arena, max_parts < 16 ? max_parts : 16,
                                                  sizeof(*v));
    size_t cap = max_parts < 16 ? max_parts : 16, n = 0;
    if (!v)
        return sp_err_set(err, SP_ENOMEM, "out of memory parsing multipart");
    size_t pos = at + dlen;
    for (;;) {
        bool closing;
        size_t next;
        if (mp_after_delim(body, len, pos, &closing, &next) != 0) {
            if (pos >= len)
                return sp_err_set(err, SP_EDECODE,
                                  "multipart body truncated after part %zu (no closing delimiter)",
                                  n);
            return sp_err_set(err, SP_EDECODE,
                              "multipart delimiter at byte %zu is not followed by a line end", at);
        }
        if (closing)
            break;
        if (n == max_parts)
            return sp_err_set(err, SP_ETOOBIG, "multipart body has more than %zu parts",
                              max_parts);
        if (n == cap) {
            size_t ncap = cap * 2 > max_parts ? max_parts : cap * 2;
            struct sp_multipart_part *nv = sp_arena_calloc(arena, ncap, sizeof(*nv));
            if (!nv)
                return sp_err_set(err, SP_ENOMEM, "out of memory parsing multipart");
            memcpy(nv, v, n * sizeof(*v));
            v = nv;
            cap = ncap;
        }
        struct sp_multipart_part *part = &v[n];
        memset(part, 0, sizeof(*part));
        part->name = "";
        /* Header block: up to an empty line. */
        size_t hstart = next, hend = 0, dstart = 0;
        if (next < len && (body[next] == '\n' ||
                           (body[next] == '\r' && next + 1 < len && body[next + 1] == '\n'))) {
            hend = next; /* no headers at all */
            dstart = next + (body[next] == '\r' ? 2 : 1);
        } else {
            size_t scan_end = len - hstart > max_hdr + 4 ? hstart + max_hdr + 4 : len;
            const uint8_t *crlf = mp_memmem(body + hstart, scan_end - hstart,
                                            (const uint8_t *)"\r\n\r\n", 4);
            const uint8_t *lf = mp_memmem(body + hstart, scan_end - hstart,
                                          (const uint8_t *)"\n\n", 2);
            if (crlf && (!lf || crlf <= lf)) {
                hend = (size_t)(crlf - body);
                dstart = hend + 4;
            } else if (lf) {
                hend = (size_t)(lf - body);
                dstart = hend + 2;
            } else if (scan_end < len) {
                return sp_err_set(err, SP_EDECODE,
                                  "multipart part %zu at byte %zu: headers over %zu bytes", n,
                                  hstart, max_hdr);
            } else {
                return sp_err_set(err, SP_EDECODE,
                                  "multipart part %zu at byte %zu: truncated in its headers", n,
                                  hstart);
            }
        }
        if (hend - hstart > max_hdr)
            return sp_err_set(err, SP_EDECODE,
                              "multipart part %zu at byte %zu: headers over %zu bytes", n, hstart,
                              max_hdr);
        mp_headers(body + hstart, hend - hstart, arena, part);
        if (!part->name)
            return sp_err_set(err, SP_ENOMEM, "out of memory parsing multipart");
        if (!mp_find_delim(body, len, dstart, dash, dlen, &at, &data_end))
            return sp_err_set(err, SP_EDECODE,
                              "multipart part %zu ('%.100s') truncated: no delimiter after byte "
                              "%zu",
                              n, part->name, dstart);
        part->len = data_end - dstart;
        if (max_part && part->len > max_part) {
            part->oversize = true;
            part->data = NULL;
        } else {
            part->data = body + dstart;
        }
        n++;
        pos = at + dlen;
    }
    *parts = v;
    *count = n;
    return 0;
}

const struct sp_multipart_part *sp_multipart_find(const struct sp_multipart_part *parts,
                                                  size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (parts[i].name && strcmp(parts[i].name, name) == 0)
            return &parts[i];
    return NULL;
}
