/* Filling component config structs from their struct sp_conf_key tables.
 *
 * The table is the single description of a component's options: the
 * loader walks it to type each YAML value into the struct (offsetof),
 * apply defaults, reject unknown keys with the closest valid one, and
 * remember where each value came from so a component's create() can point
 * at it (sp_conf_errorf). The same walk prints the effective config with
 * secrets redacted and writes the reference. The scalar parsers (durations,
 * sizes, booleans, endpoints) and sp_conf_errorf live in core/sp_conf.c,
 * next to their header. */
#include "sp_conf_internal.h"
#include "sp_text.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- positions ---- */

static const char *sp_skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static void sp_ctx_record(struct sp_conf_ctx *ctx, const char *path, const struct sp_conf_pos *pos)
{
    if (!ctx || !ctx->arena)
        return;
    struct sp_conf_posent *e = sp_arena_alloc(ctx->arena, sizeof(*e));
    if (!e)
        return;
    e->path = sp_arena_strdup(ctx->arena, path);
    if (!e->path)
        return;
    e->pos = *pos;
    e->next = ctx->entries;
    ctx->entries = e;
}

/* ---- filling ---- */

struct sp_fill {
    struct sp_conf_ctx *ctx;
    struct sp_diag *d;
    size_t errors;
};

static void sp_fill_error(struct sp_fill *f, const struct sp_conf_pos *pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sp_fill_error(struct sp_fill *f, const struct sp_conf_pos *pos, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sp_diag_error(f->d, pos, "%s", msg);
    f->errors++;
}

static char *sp_join_path(struct sp_arena *a, const char *base, const char *name)
{
    if (!base || !*base)
        return sp_arena_strdup(a, name);
    return sp_arena_sprintf(a, "%s.%s", base, name);
}

static const char *sp_full(struct sp_fill *f, const char *path)
{
    const char *prefix = f->ctx->prefix ? f->ctx->prefix : "";
    if (!path || !*path)
        return prefix;
    if (!*prefix)
        return path;
    const char *full = sp_arena_sprintf(f->ctx->arena, "%s.%s", prefix, path);
    return full ? full : path;
}

static const char *sp_expect_text(enum sp_conf_type t)
{
    switch (t) {
    case SP_CONF_BOOL: return "expected true or false";
    case SP_CONF_INT: return "expected an integer";
    case SP_CONF_SIZE: return "expected a size like 64KiB or 20MiB";
    case SP_CONF_DURATION: return "expected a duration like 10s";
    default: return "expected a string";
    }
}

/* Types one scalar into dst. text is the YAML value or the table default.
 * Returns false (after reporting, at pos) when it does not parse. */
static bool sp_fill_scalar(struct sp_fill *f, const struct sp_conf_key *k, void *dst,
                           const char *text, const char *path, const struct sp_conf_pos *pos,
                           bool from_default)
{
    bool ok = true;
    switch (k->type) {
    case SP_CONF_BOOL:
        ok = sp_conf_parse_bool(text, (bool *)dst) == 0;
        break;
    case SP_CONF_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        ok = *text && !isspace((unsigned char)*text) && *end == '\0' && errno == 0;
        if (ok)
            *(int64_t *)dst = v;
        break;
    }
    case SP_CONF_SIZE:
        ok = sp_conf_parse_size(text, (uint64_t *)dst) == 0;
        break;
    case SP_CONF_DURATION:
        ok = sp_conf_parse_duration_ms(text, (int64_t *)dst) == 0;
        break;
    case SP_CONF_STRING:
    case SP_CONF_SECRET: {
        char *copy = sp_arena_strdup(f->ctx->arena, text);
        if (!copy) {
            sp_fill_error(f, pos, "out of memory");
            return false;
        }
        *(char **)dst = copy;
        break;
    }
    default:
        break;
    }
    if (ok)
        return true;
    if (from_default) {
        sp_fill_error(f, pos, "%s: bad default '%s' in the key table (a bug in spanprof)",
                      sp_full(f, path), text);
    } else if (k->type == SP_CONF_SECRET) {
        sp_fill_error(f, pos, "%s: %s", sp_full(f, path), sp_expect_text(k->type));
    } else {
        struct sp_buf q = {0};
        sp_conf_quote(&q, text, strlen(text));
        sp_fill_error(f, pos, "%s: %s, got %s", sp_full(f, path), sp_expect_text(k->type),
                      q.data ? (const char *)q.data : "''");
        sp_buf_free(&q);
    }
    return false;
}

/* Table defaults for lists and maps: "a, b" or "[a, b]"; "k: v, k2: v2". */
static void sp_split_default(const char *s, char **parts, size_t *n, size_t max, char *buf,
                             size_t buflen)
{
    snprintf(buf, buflen, "%s", s);
    char *p = buf;
    p = (char *)sp_skip_space(p);
    size_t len = strlen(p);
    if (len && (p[0] == '[' || p[0] == '{') && (p[len - 1] == ']' || p[len - 1] == '}')) {
        p[len - 1] = '\0';
        p++;
    }
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(p, ",", &save); tok && *n < max; tok = strtok_r(NULL, ",", &save)) {
        tok = (char *)sp_skip_space(tok);
        size_t tl = strlen(tok);
        while (tl && tok[tl - 1] == ' ')
            tok[--tl] = '\0';
        if (tl)
            parts[(*n)++] = tok;
    }
}

static void sp_fill_strlist(struct sp_fill *f, const struct sp_conf_key *k, struct sp_strlist *l,
                            const struct sp_node *v, const char *path)
{
    struct sp_arena *a = f->ctx->arena;
    if (!v || v->kind == SP_NODE_NULL) {
        if (!k->defval)
            return;
        char buf[1024];
        char *parts[64];
        size_t n;
        sp_split_default(k->defval, parts, &n, 64, buf, sizeof(buf));
        l->v = sp_arena_calloc(a, n ? n : 1, sizeof(char *));
        for (size_t i = 0; l->v && i < n; i++)
            l->v[l->n++] = sp_arena_strdup(a, parts[i]);
        return;
    }
    if (v->kind != SP_NODE_SEQ) {
        sp_fill_error(f, &v->pos, "%s: expected a list like [a, b], got %s", sp_full(f, path),
                      sp_node_kind_name(v));
        return;
    }
    l->v = sp_arena_calloc(a, v->nitems ? v->nitems : 1, sizeof(char *));
    if (!l->v) {
        sp_fill_error(f, &v->pos, "out of memory");
        return;
    }
    for (size_t i = 0; i < v->nitems; i++) {
        const struct sp_node *it = v->items[i];
        char ipath[64];
        snprintf(ipath, sizeof(ipath), "[%zu]", i);
        char *full = sp_arena_sprintf(a, "%s%s", path, ipath);
        if (full)
            sp_ctx_record(f->ctx, full, &it->pos);
        if (it->kind != SP_NODE_SCALAR) {
            sp_fill_error(f, &it->pos, "%s%s: expected a string, got %s", sp_full(f, path),
                          ipath, sp_node_kind_name(it));
            continue;
        }
        l->v[l->n++] = (char *)it->str;
    }
}

static void sp_fill_strmap(struct sp_fill *f, const struct sp_conf_key *k, struct sp_strmap *m,
                           const struct sp_node *v, const char *path)
{
    struct sp_arena *a = f->ctx->arena;
    if (!v || v->kind == SP_NODE_NULL) {
        if (!k->defval)
            return;
        char buf[1024];
        char *parts[64];
        size_t n;
        sp_split_default(k->defval, parts, &n, 64, buf, sizeof(buf));
        m->keys = sp_arena_calloc(a, n ? n : 1, sizeof(char *));
        m->values = sp_arena_calloc(a, n ? n : 1, sizeof(char *));
        for (size_t i = 0; m->keys && m->values && i < n; i++) {
            char *colon = strchr(parts[i], ':');
            if (!colon)
                continue;
            *colon = '\0';
            m->keys[m->n] = sp_arena_strdup(a, parts[i]);
            m->values[m->n] = sp_arena_strdup(a, sp_skip_space(colon + 1));
            m->n++;
        }
        return;
    }
    if (v->kind != SP_NODE_MAP) {
        sp_fill_error(f, &v->pos, "%s: expected a mapping of names to values, got %s",
                      sp_full(f, path), sp_node_kind_name(v));
        return;
    }
    m->keys = sp_arena_calloc(a, v->npairs ? v->npairs : 1, sizeof(char *));
    m->values = sp_arena_calloc(a, v->npairs ? v->npairs : 1, sizeof(char *));
    if (!m->keys || !m->values) {
        sp_fill_error(f, &v->pos, "out of memory");
        return;
    }
    for (size_t i = 0; i < v->npairs; i++) {
        const struct sp_node_pair *p = &v->pairs[i];
        char *full = sp_join_path(a, path, p->key);
        if (full)
            sp_ctx_record(f->ctx, full, &p->value->pos);
        if (p->value->kind == SP_NODE_MAP || p->value->kind == SP_NODE_SEQ) {
            sp_fill_error(f, &p->value->pos, "%s.%s: expected a string, got %s",
                          sp_full(f, path), p->key, sp_node_kind_name(p->value));
            continue;
        }
        m->keys[m->n] = (char *)p->key;
        m->values[m->n] = (char *)p->value->str;
        m->n++;
    }
}

static void sp_fill_map(struct sp_fill *f, const struct sp_conf_key *keys, size_t nkeys,
                        void *base, const struct sp_node *node, const char *path,
                        const struct sp_conf_pos *owner_pos);

static void sp_fill_key(struct sp_fill *f, const struct sp_conf_key *k, void *base,
                        const struct sp_node *node, const char *path,
                        const struct sp_conf_pos *owner_pos)
{
    struct sp_arena *a = f->ctx->arena;
    const struct sp_node_pair *pair = NULL;
    const struct sp_node *v = sp_node_get(node, k->name, &pair);
    char *kpath = sp_join_path(a, path, k->name);
    if (!kpath) {
        sp_fill_error(f, owner_pos, "out of memory");
        return;
    }
    void *dst = (char *)base + k->offset;
    const struct sp_conf_pos *vpos = pair ? (v->kind == SP_NODE_NULL ? &pair->key_pos : &v->pos)
                                          : owner_pos;
    if (pair)
        sp_ctx_record(f->ctx, kpath, vpos);

    switch (k->type) {
    case SP_CONF_BLOCK:
        if (k->flags & SP_CONF_OPTIONAL_BLOCK)
            *(bool *)dst = pair != NULL;
        if (v && v->kind != SP_NODE_MAP && v->kind != SP_NODE_NULL) {
            sp_fill_error(f, vpos, "%s: expected a mapping, got %s", sp_full(f, kpath),
                          sp_node_kind_name(v));
            v = NULL;
        }
        sp_fill_map(f, k->sub, k->sub_count, dst, v, kpath, pair ? &pair->key_pos : owner_pos);
        if (k->flags & SP_CONF_OPTIONAL_BLOCK)
            *(bool *)dst = pair != NULL; /* the sub-table must not overwrite it */
        if ((k->flags & SP_CONF_REQUIRED) && !pair)
            sp_fill_error(f, owner_pos, "missing required key '%s' in %s", k->name,
                          sp_full(f, path));
        return;
    case SP_CONF_BLOCKLIST: {
        struct sp_blocklist *bl = dst;
        if (!v || v->kind == SP_NODE_NULL) {
            if (pair && (k->flags & SP_CONF_REQUIRED))
                sp_fill_error(f, vpos, "%s: expected a list of mappings, got nothing",
                              sp_full(f, kpath));
            else if (!pair && (k->flags & SP_CONF_REQUIRED))
                sp_fill_error(f, owner_pos, "missing required key '%s' in %s", k->name,
                              sp_full(f, path));
            return;
        }
        if (v->kind != SP_NODE_SEQ) {
            sp_fill_error(f, vpos, "%s: expected a list of mappings, got %s", sp_full(f, kpath),
                          sp_node_kind_name(v));
            return;
        }
        if (!k->sub_size || !v->nitems)
            return;
        bl->items = sp_arena_calloc(a, v->nitems, k->sub_size);
        if (!bl->items) {
            sp_fill_error(f, vpos, "out of memory");
            return;
        }
        bl->n = v->nitems;
        for (size_t i = 0; i < v->nitems; i++) {
            const struct sp_node *it = v->items[i];
            char *ipath = sp_arena_sprintf(a, "%s[%zu]", kpath, i);
            if (!ipath)
                continue;
            sp_ctx_record(f->ctx, ipath, &it->pos);
            if (it->kind != SP_NODE_MAP && it->kind != SP_NODE_NULL) {
                sp_fill_error(f, &it->pos, "%s: expected a mapping, got %s", sp_full(f, ipath),
                              sp_node_kind_name(it));
                continue;
            }
            sp_fill_map(f, k->sub, k->sub_count, (char *)bl->items + i * k->sub_size, it, ipath,
                        &it->pos);
        }
        return;
    }
    case SP_CONF_STRLIST:
        sp_fill_strlist(f, k, dst, v, kpath);
        break;
    case SP_CONF_STRMAP:
        sp_fill_strmap(f, k, dst, v, kpath);
        break;
    default:
        if (v && (v->kind == SP_NODE_MAP || v->kind == SP_NODE_SEQ)) {
            sp_fill_error(f, vpos, "%s: %s, got %s", sp_full(f, kpath), sp_expect_text(k->type),
                          sp_node_kind_name(v));
            return;
        }
        if (v && v->kind == SP_NODE_SCALAR) {
            sp_fill_scalar(f, k, dst, v->str, kpath, vpos, false);
            return;
        }
        if (k->defval)
            sp_fill_scalar(f, k, dst, k->defval, kpath, vpos, true);
        break;
    }
    if ((k->flags & SP_CONF_REQUIRED) && (!v || v->kind == SP_NODE_NULL)) {
        if (pair)
            sp_fill_error(f, vpos, "%s: a value is required", sp_full(f, kpath));
        else
            sp_fill_error(f, owner_pos, "missing required key '%s' in %s", k->name,
                          sp_full(f, path));
    }
}

static void sp_unknown_key(struct sp_fill *f, const struct sp_conf_key *keys, size_t nkeys,
                           const struct sp_node_pair *p, const char *path)
{
    const char *names[128];
    size_t n = nkeys < 128 ? nkeys : 128;
    for (size_t i = 0; i < n; i++)
        names[i] = keys[i].name;
    struct sp_buf q = {0};
    sp_conf_quote(&q, p->key, strlen(p->key));
    const char *qk = q.data ? (const char *)q.data : "''";
    const char *where = sp_full(f, path);
    const struct sp_otelcol_key *oc = sp_otelcol_key(p->key, where);
    const char *best = sp_conf_suggest(p->key, names, n);
    if (oc && oc->ignore) {
        sp_diag_warn(f->d, &p->key_pos, "%s.%s is an OpenTelemetry Collector setting spanprof "
                     "does not have, ignored: %s", where, p->key, oc->hint);
    } else if (oc) {
        sp_fill_error(f, &p->key_pos, "%s.%s is an OpenTelemetry Collector setting spanprof "
                      "does not have: %s; remove it", where, p->key, oc->hint);
    } else if (best) {
        sp_fill_error(f, &p->key_pos, "unknown key %s in %s (did you mean '%s'?)", qk, where,
                      best);
    } else if (n == 0) {
        sp_fill_error(f, &p->key_pos, "unknown key %s in %s (it takes no settings)", qk, where);
    } else {
        struct sp_buf list = {0};
        for (size_t i = 0; i < n && i < 16; i++)
            sp_buf_printf(&list, "%s%s", i ? ", " : "", names[i]);
        if (n > 16)
            sp_buf_append_str(&list, ", ...");
        sp_fill_error(f, &p->key_pos, "unknown key %s in %s (valid keys: %s)", qk, where,
                      (const char *)list.data);
        sp_buf_free(&list);
    }
    sp_buf_free(&q);
}

static void sp_fill_map(struct sp_fill *f, const struct sp_conf_key *keys, size_t nkeys,
                        void *base, const struct sp_node *node, const char *path,
                        const struct sp_conf_pos *owner_pos)
{
    for (size_t i = 0; i < nkeys; i++)
        sp_fill_key(f, &keys[i], base, node, path, owner_pos);
    if (!node || node->kind != SP_NODE_MAP)
        return;
    for (size_t i = 0; i < node->npairs; i++) {
        bool known = false;
        for (size_t j = 0; j < nkeys && !known; j++)
            known = strcmp(keys[j].name, node->pairs[i].key) == 0;
        if (!known)
            sp_unknown_key(f, keys, nkeys, &node->pairs[i], path);
    }
}

size_t sp_conf_fill(struct sp_conf_ctx *ctx, const struct sp_conf_key *keys, size_t nkeys,
                    void *base, const struct sp_node *node, const char *path,
                    const struct sp_conf_pos *owner_pos, struct sp_diag *d)
{
    struct sp_fill f = {.ctx = ctx, .d = d};
    if (node && node->kind != SP_NODE_MAP && node->kind != SP_NODE_NULL) {
        sp_fill_error(&f, &node->pos, "%s: expected a mapping, got %s", sp_full(&f, path),
                      sp_node_kind_name(node));
        node = NULL;
    }
    sp_fill_map(&f, keys, nkeys, base, node, path ? path : "", owner_pos ? owner_pos : &ctx->pos);
    return f.errors;
}

/* ---- printing ---- */

void sp_conf_format_duration(char *buf, size_t n, int64_t ms)
{
    if (ms <= 0) {
        snprintf(buf, n, "%s", ms == 0 ? "0s" : "0s");
        return;
    }
    int64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, rest = ms % 1000;
    size_t off = 0;
    buf[0] = '\0';
    if (h)
        off += (size_t)snprintf(buf + off, n - off, "%" PRId64 "h", h);
    if (m && off < n)
        off += (size_t)snprintf(buf + off, n - off, "%" PRId64 "m", m);
    if (s && off < n)
        off += (size_t)snprintf(buf + off, n - off, "%" PRId64 "s", s);
    if (rest && off < n)
        snprintf(buf + off, n - off, "%" PRId64 "ms", rest);
}

void sp_conf_format_size(char *buf, size_t n, uint64_t bytes)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4; i++) {
        uint64_t unit = 1ull << (10 * (4 - i));
        if (bytes && bytes % unit == 0) {
            snprintf(buf, n, "%" PRIu64 "%s", bytes / unit, units[i]);
            return;
        }
    }
    snprintf(buf, n, "%" PRIu64, bytes);
}

static bool sp_plain_safe(const char *s, bool flow)
{
    static const char *const special[] = {"null", "Null", "NULL", "~", "true", "True", "TRUE",
                                          "false", "False", "FALSE", "yes", "Yes", "YES", "no",
                                          "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
                                          "y", "Y", "n", "N", "<<"};
    if (!*s)
        return false;
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (strcmp(s, special[i]) == 0)
            return false;
    if (strchr("-?:,[]{}#&*!|>'\"%@`=< ", s[0]))
        return false;
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        /* ASCII only: a plain scalar must not hide line separators (U+0085,
         * U+2028) or a BOM; anything else goes double-quoted. */
        if (!(isalnum(c) || strchr("_./:@+-$=<>()", c)))
            return false;
        if (c == ':' && (flow || i + 1 == len || s[i + 1] == ' '))
            return false;
    }
    return true;
}

static void sp_print_scalar(struct sp_buf *out, const char *s, bool flow)
{
    if (!s) {
        sp_buf_append_str(out, "null");
        return;
    }
    bool plain = sp_plain_safe(s, flow);
    if (!plain)
        sp_buf_append_byte(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (*p == '$') {
            sp_buf_append_str(out, "$$");
            p++;
        } else if (plain) {
            sp_buf_append_byte(out, *p++);
        } else if (*p == '"' || *p == '\\') {
            sp_buf_printf(out, "\\%c", *p++);
        } else if (*p == '\n') {
            sp_buf_append_str(out, "\\n");
            p++;
        } else if (*p == '\t') {
            sp_buf_append_str(out, "\\t");
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            sp_buf_printf(out, "\\x%02x", *p++);
        } else if (*p < 0x80) {
            sp_buf_append_byte(out, *p++);
        } else {
            uint32_t cp;
            size_t n = sp_utf8_decode(p, strnlen((const char *)p, 4), &cp);
            if (n == 1) {
                /* Not UTF-8 (an environment variable can hold anything):
                 * YAML cannot carry it, show the replacement character. */
                sp_buf_append_str(out, "\\uFFFD");
                p++;
            } else if (cp <= 0x9f || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff) {
                sp_buf_printf(out, "\\u%04X", (unsigned)cp);
                p += n;
            } else {
                sp_buf_append(out, p, n);
                p += n;
            }
        }
    }
    if (!plain)
        sp_buf_append_byte(out, '"');
}

void sp_conf_print_scalar(struct sp_buf *out, const char *s)
{
    sp_print_scalar(out, s, false);
}

void sp_conf_print_scalar_flow(struct sp_buf *out, const char *s)
{
    sp_print_scalar(out, s, true);
}

static void sp_indent(struct sp_buf *out, int indent)
{
    for (int i = 0; i < indent; i++)
        sp_buf_append_byte(out, ' ');
}

static void sp_print_key(struct sp_buf *out, const struct sp_conf_key *k, const void *base,
                         int indent)
{
    const void *src = (const char *)base + k->offset;
    char tmp[64];
    switch (k->type) {
    case SP_CONF_BLOCK:
        if ((k->flags & SP_CONF_OPTIONAL_BLOCK) && !*(const bool *)src)
            return; /* absent: printing it would make it present on re-read */
        sp_indent(out, indent);
        sp_buf_printf(out, "%s:", k->name);
        if (k->sub_count == 0) {
            sp_buf_append_str(out, " {}\n");
            return;
        }
        sp_buf_append_byte(out, '\n');
        sp_conf_print_keys(out, k->sub, k->sub_count, src, indent + 2);
        return;
    case SP_CONF_BLOCKLIST: {
        const struct sp_blocklist *bl = src;
        sp_indent(out, indent);
        sp_buf_printf(out, "%s:", k->name);
        if (!bl->n) {
            sp_buf_append_str(out, " []\n");
            return;
        }
        sp_buf_append_byte(out, '\n');
        for (size_t i = 0; i < bl->n; i++) {
            size_t start = out->len;
            sp_conf_print_keys(out, k->sub, k->sub_count,
                               (const char *)bl->items + i * k->sub_size, indent + 4);
            if (out->len - start > (size_t)indent + 4) {
                out->data[start + (size_t)indent + 2] = '-';
            } else {
                out->len = start;
                sp_indent(out, indent + 2);
                sp_buf_append_str(out, "- {}\n");
            }
        }
        return;
    }
    default:
        break;
    }
    sp_indent(out, indent);
    sp_buf_printf(out, "%s: ", k->name);
    switch (k->type) {
    case SP_CONF_BOOL:
        sp_buf_append_str(out, *(const bool *)src ? "true" : "false");
        break;
    case SP_CONF_INT:
        sp_buf_printf(out, "%" PRId64, *(const int64_t *)src);
        break;
    case SP_CONF_SIZE:
        sp_conf_format_size(tmp, sizeof(tmp), *(const uint64_t *)src);
        sp_buf_append_str(out, tmp);
        break;
    case SP_CONF_DURATION:
        sp_conf_format_duration(tmp, sizeof(tmp), *(const int64_t *)src);
        sp_buf_append_str(out, tmp);
        break;
    case SP_CONF_STRING:
        sp_conf_print_scalar(out, *(char *const *)src);
        break;
    case SP_CONF_SECRET: {
        const char *s = *(char *const *)src;
        sp_buf_append_str(out, s && *s ? "\"[REDACTED]\"" : "\"\"");
        break;
    }
    case SP_CONF_STRLIST: {
        const struct sp_strlist *l = src;
        if (!l->n) {
            sp_buf_append_str(out, "[]");
            break;
        }
        for (size_t i = 0; i < l->n; i++) {
            sp_buf_append_byte(out, '\n');
            sp_indent(out, indent + 2);
            sp_buf_append_str(out, "- ");
            sp_conf_print_scalar(out, l->v[i]);
        }
        break;
    }
    case SP_CONF_STRMAP: {
        const struct sp_strmap *m = src;
        if (!m->n) {
            sp_buf_append_str(out, "{}");
            break;
        }
        for (size_t i = 0; i < m->n; i++) {
            sp_buf_append_byte(out, '\n');
            sp_indent(out, indent + 2);
            sp_conf_print_scalar(out, m->keys[i]);
            sp_buf_append_str(out, ": ");
            if (k->flags & SP_CONF_SECRET_VALUES)
                sp_buf_append_str(out, m->values[i][0] ? "\"[REDACTED]\"" : "\"\"");
            else
                sp_conf_print_scalar(out, m->values[i]);
        }
        break;
    }
    default:
        break;
    }
    sp_buf_append_byte(out, '\n');
}

void sp_conf_print_keys(struct sp_buf *out, const struct sp_conf_key *keys, size_t nkeys,
                        const void *base, int indent)
{
    for (size_t i = 0; i < nkeys; i++)
        sp_print_key(out, &keys[i], base, indent);
}

void sp_conf_each_secret(const struct sp_conf_key *keys, size_t nkeys, const void *base,
                         void (*fn)(const char *secret))
{
    for (size_t i = 0; i < nkeys; i++) {
        const struct sp_conf_key *k = &keys[i];
        const void *src = (const char *)base + k->offset;
        if (k->type == SP_CONF_SECRET) {
            const char *s = *(char *const *)src;
            if (s && *s)
                fn(s);
        } else if (k->type == SP_CONF_STRMAP && (k->flags & SP_CONF_SECRET_VALUES)) {
            const struct sp_strmap *m = src;
            for (size_t j = 0; j < m->n; j++)
                if (m->values[j][0])
                    fn(m->values[j]);
        } else if (k->type == SP_CONF_BLOCK) {
            sp_conf_each_secret(k->sub, k->sub_count, src, fn);
        } else if (k->type == SP_CONF_BLOCKLIST) {
            const struct sp_blocklist *bl = src;
            for (size_t j = 0; j < bl->n; j++)
                sp_conf_each_secret(k->sub, k->sub_count,
                                    (const char *)bl->items + j * k->sub_size, fn);
        }
    }
}

/* ---- reference ---- */

static const char *sp_type_doc(const struct sp_conf_key *k)
{
    switch (k->type) {
    case SP_CONF_BOOL: return "bool";
    case SP_CONF_INT: return "int";
    case SP_CONF_SIZE: return "size";
    case SP_CONF_DURATION: return "duration";
    case SP_CONF_STRING: return "string";
    case SP_CONF_SECRET: return "secret";
    case SP_CONF_STRLIST: return "list of strings";
    case SP_CONF_STRMAP:
        return k->flags & SP_CONF_SECRET_VALUES ? "map of secrets" : "map of strings";
    case SP_CONF_BLOCK: return k->flags & SP_CONF_OPTIONAL_BLOCK ? "optional block" : "block";
    case SP_CONF_BLOCKLIST: return "list of blocks";
    }
    return "?";
}

/* Markdown table cell text: pipes escaped, newlines flattened. */
static void sp_md_cell(struct sp_buf *out, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            sp_buf_append_str(out, "\\|");
        else if (*s == '\n')
            sp_buf_append_byte(out, ' ');
        else
            sp_buf_append_byte(out, (uint8_t)*s);
    }
}

void sp_conf_reference_keys(struct sp_buf *out, const struct sp_conf_key *keys, size_t nkeys,
                            const char *prefix)
{
    for (size_t i = 0; i < nkeys; i++) {
        const struct sp_conf_key *k = &keys[i];
        char path[512];
        snprintf(path, sizeof(path), "%s%s%s", prefix && *prefix ? prefix : "",
                 prefix && *prefix ? "." : "", k->name);
        sp_buf_append_str(out, "| `");
        sp_md_cell(out, path);
        sp_buf_printf(out, "` | %s | ", sp_type_doc(k));
        if (k->flags & SP_CONF_REQUIRED) {
            sp_buf_append_str(out, "required");
        } else if (k->defval) {
            sp_buf_append_str(out, "`");
            sp_md_cell(out, *k->defval ? k->defval : "\"\"");
            sp_buf_append_str(out, "`");
        } else {
            sp_buf_append_str(out, "-");
        }
        sp_buf_append_str(out, " | ");
        sp_md_cell(out, k->doc ? k->doc : "");
        sp_buf_append_str(out, " |\n");
        if (k->type == SP_CONF_BLOCK) {
            sp_conf_reference_keys(out, k->sub, k->sub_count, path);
        } else if (k->type == SP_CONF_BLOCKLIST) {
            char sub[520];
            snprintf(sub, sizeof(sub), "%s[]", path);
            sp_conf_reference_keys(out, k->sub, k->sub_count, sub);
        }
    }
}
