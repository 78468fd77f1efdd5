/* YAML text to a bounded node tree, for the configuration loader.
 *
 * libyaml's event parser (not its document loader) feeds a small builder so
 * every node keeps the file:line:col it came from, and so the costs an
 * untrusted file can cause are capped as they accrue: file size, nesting
 * depth, node count with aliases counted at their expanded size (an alias
 * bomb fails after SP_CONF_MAX_NODES instead of taking exponential time
 * later), anchor count and scalar length. Aliases share the anchored node
 * instead of copying it; the tree is immutable once built, so sharing is
 * safe. `${env:...}` is expanded in every value scalar here, before any
 * typing, like the Collector's confmap. Diagnostics (sp_diag) live here too. */
#include "sp_conf_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* ---- diagnostics ---- */

enum sp_diag_level { SP_DIAG_ERROR = 0, SP_DIAG_WARN, SP_DIAG_INFO };

__attribute__((format(printf, 4, 0)))
static void sp_diag_vadd(struct sp_diag *d, enum sp_diag_level level,
                         const struct sp_conf_pos *pos, const char *fmt, va_list ap)
{
    if (!d)
        return;
    size_t total = d->errors + d->warnings + d->infos;
    if (level == SP_DIAG_WARN)
        d->warnings++;
    else if (level == SP_DIAG_INFO)
        d->infos++;
    else
        d->errors++;
    /* Hostile input can produce an error per line; keep the first ones. */
    if (total == SP_CONF_MAX_ERRORS) {
        sp_buf_printf(&d->text, "too many problems: only the first %d are shown\n",
                      SP_CONF_MAX_ERRORS);
        return;
    }
    if (total > SP_CONF_MAX_ERRORS)
        return;
    if (pos && pos->file && pos->line > 0)
        sp_buf_printf(&d->text, "%s:%d:%d: ", pos->file, pos->line, pos->col);
    else if (pos && pos->file)
        sp_buf_printf(&d->text, "%s: ", pos->file);
    if (level == SP_DIAG_WARN)
        sp_buf_append_str(&d->text, "warning: ");
    else if (level == SP_DIAG_INFO)
        sp_buf_append_str(&d->text, "info: ");
    sp_buf_vprintf(&d->text, fmt, ap);
    sp_buf_append_byte(&d->text, '\n');
}

void sp_diag_error(struct sp_diag *d, const struct sp_conf_pos *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sp_diag_vadd(d, SP_DIAG_ERROR, pos, fmt, ap);
    va_end(ap);
}

void sp_diag_warn(struct sp_diag *d, const struct sp_conf_pos *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sp_diag_vadd(d, SP_DIAG_WARN, pos, fmt, ap);
    va_end(ap);
}

void sp_diag_info(struct sp_diag *d, const struct sp_conf_pos *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sp_diag_vadd(d, SP_DIAG_INFO, pos, fmt, ap);
    va_end(ap);
}

void sp_diag_free(struct sp_diag *d)
{
    if (!d)
        return;
    sp_buf_free(&d->text);
    d->errors = d->warnings = d->infos = 0;
}

/* ---- messages ---- */

void sp_conf_quote(struct sp_buf *out, const char *value, size_t len)
{
    size_t max = 80;
    sp_buf_append_byte(out, '\'');
    for (size_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '\n')
            sp_buf_append_str(out, "\\n");
        else if (c == '\t')
            sp_buf_append_str(out, "\\t");
        else if (c < 0x20 || c == 0x7f)
            sp_buf_printf(out, "\\x%02x", c);
        else
            sp_buf_append_byte(out, c);
    }
    if (len > max)
        sp_buf_append_str(out, "...");
    sp_buf_append_byte(out, '\'');
}

const char *sp_node_kind_name(const struct sp_node *n)
{
    if (!n)
        return "nothing";
    switch (n->kind) {
    case SP_NODE_NULL: return "nothing";
    case SP_NODE_SCALAR: return "a scalar";
    case SP_NODE_MAP: return "a mapping";
    case SP_NODE_SEQ: return "a sequence";
    }
    return "?";
}

/* ---- ${env:...} expansion ---- */

#define SP_ENV_MAX_NESTING 8

static bool sp_env_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 255 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

struct sp_env_ctx {
    struct sp_buf *out;
    struct sp_diag *d;
    struct sp_conf_pos pos;
    bool col_exact;
    int errors;
};

static void sp_env_error(struct sp_env_ctx *e, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sp_env_error(struct sp_env_ctx *e, size_t offset, const char *fmt, ...)
{
    struct sp_conf_pos p = e->pos;
    if (e->col_exact && offset < 100000)
        p.col += (int)offset;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sp_diag_error(e->d, &p, "%s", msg);
    e->errors++;
}

/* base: offset of s inside the original scalar, for error columns. */
static void sp_env_expand(struct sp_env_ctx *e, const char *s, size_t len, size_t base, int depth)
{
    size_t i = 0;
    while (i < len) {
        if (e->out->len > SP_CONF_MAX_SCALAR) {
            sp_env_error(e, base, "value longer than %u bytes after expansion",
                         SP_CONF_MAX_SCALAR);
            return;
        }
        char c = s[i];
        if (c != '$' || i + 1 == len) {
            sp_buf_append_byte(e->out, (uint8_t)c);
            i++;
            continue;
        }
        if (s[i + 1] == '$') {
            sp_buf_append_byte(e->out, '$');
            i += 2;
            continue;
        }
        if (s[i + 1] != '{') {
            /* A lone '$' (e.g. "$HOME", "a$b") is kept as written. */
            sp_buf_append_byte(e->out, '$');
            i++;
            continue;
        }
        /* Find the matching '}', so defaults may hold braces and nested ${env:}. */
        size_t j = i + 2;
        int open = 1;
        for (; j < len; j++) {
            if (s[j] == '{')
                open++;
            else if (s[j] == '}' && --open == 0)
                break;
        }
        if (j >= len) {
            sp_env_error(e, base + i, "unterminated '${' (write '$$' for a literal '$')");
            return;
        }
        const char *inner = s + i + 2;
        size_t ilen = j - (i + 2);
        int shown = ilen > 60 ? 60 : (int)ilen;
        if (ilen >= 4 && memcmp(inner, "env:", 4) == 0) {
            const char *name = inner + 4;
            size_t nlen = ilen - 4;
            const char *def = NULL;
            size_t dlen = 0;
            const char *sep = NULL;
            for (size_t k = 0; k + 1 < nlen; k++) {
                if (name[k] == ':' && name[k + 1] == '-') {
                    sep = name + k;
                    break;
                }
            }
            if (sep) {
                def = sep + 2;
                dlen = nlen - (size_t)(def - name);
                nlen = (size_t)(sep - name);
            }
            if (!sp_env_name_ok(name, nlen)) {
                sp_env_error(e, base + i,
                             "invalid environment variable name in '${%.*s}' (expected "
                             "${env:NAME} or ${env:NAME:-default}, NAME made of letters, "
                             "digits and '_')",
                             shown, inner);
                i = j + 1;
                continue;
            }
            char nbuf[256];
            memcpy(nbuf, name, nlen);
            nbuf[nlen] = '\0';
            const char *val = getenv(nbuf);
            /* Like the shell's ${NAME:-default}: unset or empty takes the default. */
            if (def && (!val || !*val)) {
                if (depth >= SP_ENV_MAX_NESTING) {
                    sp_env_error(e, base + i, "'${env:...}' nested too deeply");
                    return;
                }
                sp_env_expand(e, def, dlen, base + (size_t)(def - s), depth + 1);
            } else if (val) {
                size_t vl = strlen(val);
                if (vl > SP_CONF_MAX_SCALAR) {
                    sp_env_error(e, base + i, "environment variable '%s' is longer than %u bytes",
                                 nbuf, SP_CONF_MAX_SCALAR);
                    return;
                }
                /* The value is taken as is, never expanded again. */
                sp_buf_append(e->out, val, vl);
            } else {
                struct sp_conf_pos p = e->pos;
                if (e->col_exact)
                    p.col += (int)(base + i);
                sp_diag_warn(e->d, &p,
                             "environment variable '%s' is not set: '${env:%s}' expands to an "
                             "empty value",
                             nbuf, nbuf);
            }
        } else {
            size_t k = 0;
            while (k < ilen && (isalnum((unsigned char)inner[k]) || inner[k] == '_'))
                k++;
            if (k > 0 && k < ilen && inner[k] == ':')
                sp_env_error(e, base + i,
                             "unsupported config provider '%.*s' in '${%.*s}': only "
                             "${env:NAME} is supported",
                             (int)k, inner, shown, inner);
            else
                sp_env_error(e, base + i,
                             "unsupported reference '${%.*s}': write '${env:%.*s}' for an "
                             "environment variable or '$$' for a literal '$'",
                             shown, inner, shown, inner);
        }
        i = j + 1;
    }
}

int sp_conf_expand_env(const char *s, size_t len, struct sp_buf *out, struct sp_diag *d,
                       const struct sp_conf_pos *pos, bool col_exact)
{
    struct sp_env_ctx e = {.out = out, .d = d, .pos = *pos, .col_exact = col_exact};
    sp_env_expand(&e, s, len, 0, 0);
    if (sp_buf_reserve(out, 1) != 0)
        return SP_ENOMEM;
    out->data[out->len] = '\0';
    return e.errors ? SP_EINVAL : 0;
}

/* ---- the tree builder ---- */

struct sp_frame {
    struct sp_node *node;
    char *anchor;
    /* Growing children (malloc), moved to the arena when the node closes. */
    struct sp_node_pair *pairs;
    size_t npairs, cap_pairs;
    struct sp_node **items;
    size_t nitems, cap_items;
    /* Mapping state: the key waiting for its value. */
    bool have_key;
    const char *key;
    struct sp_conf_pos key_pos;
    /* `<<: *anchor` merge sources. */
    struct sp_node **merges;
    size_t nmerges, cap_merges;
};

struct sp_anchor {
    char *name;
    struct sp_node *node;
};

struct sp_builder {
    struct sp_arena *arena;
    const char *file;
    struct sp_diag *d;
    struct sp_frame stack[SP_CONF_MAX_DEPTH + 1];
    int depth;
    struct sp_anchor anchors[SP_CONF_MAX_ANCHORS];
    size_t nanchors;
    uint64_t weight;
    struct sp_node *root;
    int documents;
    bool failed;
    bool fatal; /* stop reading: a bound was hit or memory ran out */
    struct sp_buf scratch;
};

static struct sp_conf_pos sp_mark_pos(const struct sp_builder *b, yaml_mark_t m)
{
    struct sp_conf_pos p = {b->file, (int)m.line + 1, (int)m.column + 1};
    return p;
}

static bool sp_builder_charge(struct sp_builder *b, uint64_t w, const struct sp_conf_pos *pos)
{
    b->weight += w;
    if (b->weight > SP_CONF_MAX_NODES) {
        sp_diag_error(b->d, pos,
                      "document too large: more than %d nodes (aliases counted expanded)",
                      SP_CONF_MAX_NODES);
        b->failed = b->fatal = true;
        return false;
    }
    return true;
}

static void sp_builder_oom(struct sp_builder *b, const struct sp_conf_pos *pos)
{
    if (!b->fatal)
        sp_diag_error(b->d, pos, "out of memory while reading the configuration");
    b->failed = b->fatal = true;
}

static bool sp_grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 8;
    void *nv = realloc(*v, nc * size);
    if (!nv)
        return false;
    *v = nv;
    *cap = nc;
    return true;
}

static struct sp_node *sp_anchor_find(struct sp_builder *b, const char *name)
{
    for (size_t i = b->nanchors; i-- > 0;)
        if (strcmp(b->anchors[i].name, name) == 0)
            return b->anchors[i].node;
    return NULL;
}

static void sp_anchor_add(struct sp_builder *b, char *name, struct sp_node *node,
                          const struct sp_conf_pos *pos)
{
    if (!name)
        return;
    for (size_t i = 0; i < b->nanchors; i++) {
        if (strcmp(b->anchors[i].name, name) == 0) {
            /* YAML allows redefining an anchor: later aliases see the new node. */
            free(b->anchors[i].name);
            b->anchors[i].name = name;
            b->anchors[i].node = node;
            return;
        }
    }
    if (b->nanchors == SP_CONF_MAX_ANCHORS) {
        sp_diag_error(b->d, pos, "too many anchors (at most %d)", SP_CONF_MAX_ANCHORS);
        b->failed = b->fatal = true;
        free(name);
        return;
    }
    b->anchors[b->nanchors].name = name;
    b->anchors[b->nanchors].node = node;
    b->nanchors++;
}

static char *sp_dup_anchor(const yaml_char_t *a)
{
    return a ? strdup((const char *)a) : NULL;
}

/* Attaches a finished node to the open container (or makes it the root). */
static void sp_builder_add(struct sp_builder *b, struct sp_node *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    struct sp_frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == SP_NODE_SEQ) {
        if (!sp_grow((void **)&f->items, &f->cap_items, f->nitems, sizeof(*f->items))) {
            sp_builder_oom(b, &n->pos);
            return;
        }
        f->items[f->nitems++] = n;
        return;
    }
    if (!f->have_key) {
        if (n->kind != SP_NODE_SCALAR && n->kind != SP_NODE_NULL) {
            sp_diag_error(b->d, &n->pos, "mapping keys must be scalars, got %s",
                          sp_node_kind_name(n));
            b->failed = true;
            f->key = NULL;
        } else {
            f->key = n->str;
        }
        f->key_pos = n->pos;
        f->have_key = true;
        return;
    }
    f->have_key = false;
    if (!f->key)
        return;
    if (strcmp(f->key, "<<") == 0) {
        /* YAML merge key: `<<: *base` or `<<: [*a, *b]`. */
        size_t count = n->kind == SP_NODE_SEQ ? n->nitems : 1;
        for (size_t i = 0; i < count; i++) {
            struct sp_node *src = n->kind == SP_NODE_SEQ ? n->items[i] : n;
            if (src->kind != SP_NODE_MAP) {
                sp_diag_error(b->d, &src->pos, "'<<' merges mappings, got %s",
                              sp_node_kind_name(src));
                b->failed = true;
                continue;
            }
            if (!sp_grow((void **)&f->merges, &f->cap_merges, f->nmerges, sizeof(*f->merges))) {
                sp_builder_oom(b, &n->pos);
                return;
            }
            f->merges[f->nmerges++] = src;
        }
        return;
    }
    if (!sp_grow((void **)&f->pairs, &f->cap_pairs, f->npairs, sizeof(*f->pairs))) {
        sp_builder_oom(b, &n->pos);
        return;
    }
    f->pairs[f->npairs].key = f->key;
    f->pairs[f->npairs].key_pos = f->key_pos;
    f->pairs[f->npairs].value = n;
    f->npairs++;
}

static bool sp_builder_open(struct sp_builder *b, enum sp_node_kind kind,
                            const struct sp_conf_pos *pos, const yaml_char_t *anchor)
{
    if (b->depth == SP_CONF_MAX_DEPTH) {
        sp_diag_error(b->d, pos, "nesting deeper than %d levels", SP_CONF_MAX_DEPTH);
        b->failed = b->fatal = true;
        return false;
    }
    if (!sp_builder_charge(b, 1, pos))
        return false;
    struct sp_node *n = sp_arena_calloc(b->arena, 1, sizeof(*n));
    if (!n) {
        sp_builder_oom(b, pos);
        return false;
    }
    n->kind = kind;
    n->pos = *pos;
    n->str = "";
    struct sp_frame *f = &b->stack[b->depth++];
    memset(f, 0, sizeof(*f));
    f->node = n;
    f->anchor = sp_dup_anchor(anchor);
    return true;
}

static void sp_frame_free(struct sp_frame *f)
{
    free(f->pairs);
    free(f->items);
    free(f->merges);
    free(f->anchor);
    memset(f, 0, sizeof(*f));
}

static int sp_pair_cmp(const void *pa, const void *pb)
{
    const struct sp_node_pair *a = *(const struct sp_node_pair *const *)pa;
    const struct sp_node_pair *b = *(const struct sp_node_pair *const *)pb;
    int c = strcmp(a->key, b->key);
    if (c)
        return c;
    return a < b ? -1 : a > b;
}

/* Rejects duplicate keys (the Collector's YAML decoder does too): sorting a
 * copy keeps it O(n log n) on hostile input. */
static void sp_check_duplicates(struct sp_builder *b, struct sp_node_pair *pairs, size_t n)
{
    if (n < 2)
        return;
    struct sp_node_pair **sorted = malloc(n * sizeof(*sorted));
    if (!sorted) {
        sp_builder_oom(b, &pairs[0].key_pos);
        return;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = &pairs[i];
    qsort(sorted, n, sizeof(*sorted), sp_pair_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(sorted[i]->key, sorted[i - 1]->key) != 0)
            continue;
        size_t first = i - 1;
        while (first > 0 && strcmp(sorted[first - 1]->key, sorted[i]->key) == 0)
            first--;
        struct sp_buf q = {0};
        sp_conf_quote(&q, sorted[i]->key, strlen(sorted[i]->key));
        sp_diag_error(b->d, &sorted[i]->key_pos, "duplicate key %s (first defined at %d:%d)",
                      q.data ? (const char *)q.data : "''", sorted[first]->key_pos.line,
                      sorted[first]->key_pos.col);
        sp_buf_free(&q);
        b->failed = true;
    }
    free(sorted);
}

static void sp_builder_close(struct sp_builder *b)
{
    struct sp_frame *f = &b->stack[b->depth - 1];
    struct sp_node *n = f->node;
    uint64_t w = 1;
    if (n->kind == SP_NODE_MAP) {
        sp_check_duplicates(b, f->pairs, f->npairs);
        /* Merged keys come after explicit ones and never override them. */
        for (size_t m = 0; m < f->nmerges && !b->fatal; m++) {
            struct sp_node *src = f->merges[m];
            if (!sp_builder_charge(b, src->weight, &src->pos))
                break;
            for (size_t k = 0; k < src->npairs; k++) {
                bool dup = false;
                for (size_t i = 0; i < f->npairs && !dup; i++)
                    dup = strcmp(f->pairs[i].key, src->pairs[k].key) == 0;
                if (dup)
                    continue;
                if (!sp_grow((void **)&f->pairs, &f->cap_pairs, f->npairs, sizeof(*f->pairs))) {
                    sp_builder_oom(b, &n->pos);
                    break;
                }
                f->pairs[f->npairs++] = src->pairs[k];
            }
        }
        if (f->npairs) {
            n->pairs = sp_arena_memdup(b->arena, f->pairs, f->npairs * sizeof(*f->pairs));
            if (!n->pairs)
                sp_builder_oom(b, &n->pos);
            else
                n->npairs = f->npairs;
        }
        for (size_t i = 0; i < n->npairs; i++)
            w += 1 + n->pairs[i].value->weight;
    } else {
        if (f->nitems) {
            n->items = sp_arena_memdup(b->arena, f->items, f->nitems * sizeof(*f->items));
            if (!n->items)
                sp_builder_oom(b, &n->pos);
            else
                n->nitems = f->nitems;
        }
        for (size_t i = 0; i < n->nitems; i++)
            w += n->items[i]->weight;
    }
    n->weight = w;
    char *anchor = f->anchor;
    f->anchor = NULL;
    sp_frame_free(f);
    b->depth--;
    sp_anchor_add(b, anchor, n, &n->pos);
    sp_builder_add(b, n);
}

static bool sp_is_null_text(const char *s, size_t n)
{
    return n == 0 || (n == 1 && s[0] == '~') ||
           (n == 4 && (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 ||
                       memcmp(s, "NULL", 4) == 0));
}

static void sp_builder_scalar(struct sp_builder *b, const yaml_event_t *ev)
{
    struct sp_conf_pos pos = sp_mark_pos(b, ev->start_mark);
    if (!sp_builder_charge(b, 1, &pos))
        return;
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    bool is_key = b->depth > 0 && b->stack[b->depth - 1].node->kind == SP_NODE_MAP &&
                  !b->stack[b->depth - 1].have_key;
    const char *tag = (const char *)ev->data.scalar.tag;
    struct sp_node *n = sp_arena_calloc(b->arena, 1, sizeof(*n));
    if (!n) {
        sp_builder_oom(b, &pos);
        return;
    }
    n->pos = pos;
    n->weight = 1;
    n->quoted = !plain;
    if (memchr(text, '\0', len)) {
        sp_diag_error(b->d, &pos, "value contains a NUL character");
        b->failed = true;
        text = "";
        len = 0;
    }
    if (!is_key && ((plain && sp_is_null_text(text, len)) ||
                    (tag && strcmp(tag, YAML_NULL_TAG) == 0))) {
        n->kind = SP_NODE_NULL;
        n->str = "";
    } else if (is_key) {
        n->kind = SP_NODE_SCALAR;
        n->str = sp_arena_strndup(b->arena, text, len);
        n->len = len;
    } else {
        n->kind = SP_NODE_SCALAR;
        /* Columns inside the scalar are exact only when the source text is
         * the value itself on one line (no escapes, no folding). */
        size_t quotes = plain ? 0 : 2;
        bool simple = plain || ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                      ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        bool exact = simple && ev->start_mark.line == ev->end_mark.line &&
                     ev->end_mark.index - ev->start_mark.index == len + quotes;
        struct sp_conf_pos inner = pos;
        if (exact && !plain)
            inner.col++;
        sp_buf_reset(&b->scratch);
        if (memchr(text, '$', len)) {
            if (sp_conf_expand_env(text, len, &b->scratch, b->d, &inner, exact) != 0)
                b->failed = true;
        } else {
            sp_buf_append(&b->scratch, text, len);
        }
        n->len = b->scratch.len;
        n->str = sp_arena_strndup(b->arena, b->scratch.data ? (const char *)b->scratch.data : "",
                                  b->scratch.len);
        if (n->str && memchr(n->str, '\0', n->len)) {
            sp_diag_error(b->d, &pos, "value contains a NUL character");
            b->failed = true;
        }
    }
    if (!n->str) {
        sp_builder_oom(b, &pos);
        return;
    }
    sp_anchor_add(b, sp_dup_anchor(ev->data.scalar.anchor), n, &pos);
    sp_builder_add(b, n);
}

static void sp_builder_alias(struct sp_builder *b, const yaml_event_t *ev)
{
    struct sp_conf_pos pos = sp_mark_pos(b, ev->start_mark);
    const char *name = (const char *)ev->data.alias.anchor;
    struct sp_node *target = sp_anchor_find(b, name);
    if (!target) {
        /* Also what an alias to an enclosing node gives: it is not closed yet. */
        sp_diag_error(b->d, &pos, "unknown anchor '%.64s' (aliases must refer to an anchor "
                      "defined earlier and outside of them)", name);
        b->failed = b->fatal = true;
        return;
    }
    if (!sp_builder_charge(b, target->weight, &pos))
        return;
    bool is_key = b->depth > 0 && b->stack[b->depth - 1].node->kind == SP_NODE_MAP &&
                  !b->stack[b->depth - 1].have_key;
    if (is_key && target->kind == SP_NODE_NULL) {
        struct sp_node *k = sp_arena_calloc(b->arena, 1, sizeof(*k));
        if (!k) {
            sp_builder_oom(b, &pos);
            return;
        }
        *k = *target;
        k->kind = SP_NODE_SCALAR;
        sp_builder_add(b, k);
        return;
    }
    sp_builder_add(b, target);
}

static void sp_builder_event(struct sp_builder *b, const yaml_event_t *ev)
{
    struct sp_conf_pos pos = sp_mark_pos(b, ev->start_mark);
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1) {
            sp_diag_error(b->d, &pos, "more than one YAML document in one file: use one file "
                          "per document, or several --config");
            b->failed = b->fatal = true;
        }
        break;
    case YAML_MAPPING_START_EVENT:
        sp_builder_open(b, SP_NODE_MAP, &pos, ev->data.mapping_start.anchor);
        break;
    case YAML_SEQUENCE_START_EVENT:
        sp_builder_open(b, SP_NODE_SEQ, &pos, ev->data.sequence_start.anchor);
        break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        if (b->depth > 0)
            sp_builder_close(b);
        break;
    case YAML_SCALAR_EVENT:
        sp_builder_scalar(b, ev);
        break;
    case YAML_ALIAS_EVENT:
        sp_builder_alias(b, ev);
        break;
    default:
        break;
    }
}

int sp_yaml_parse(struct sp_arena *a, const char *file, const char *data, size_t len,
                  struct sp_diag *d, struct sp_node **root)
{
    *root = NULL;
    struct sp_builder *b = calloc(1, sizeof(*b));
    if (!b) {
        sp_diag_error(d, NULL, "out of memory while reading the configuration");
        return SP_ENOMEM;
    }
    b->arena = a;
    b->d = d;
    b->file = sp_arena_strdup(a, file);
    if (!b->file) {
        free(b);
        sp_diag_error(d, NULL, "out of memory while reading the configuration");
        return SP_ENOMEM;
    }
    struct sp_conf_pos file_pos = {b->file, 0, 0};
    if (len > SP_CONF_MAX_FILE_BYTES) {
        sp_diag_error(d, &file_pos, "file is larger than the %u MiB limit",
                      SP_CONF_MAX_FILE_BYTES >> 20);
        free(b);
        return SP_EINVAL;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        free(b);
        sp_diag_error(d, &file_pos, "out of memory while reading the configuration");
        return SP_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    bool done = false;
    while (!done && !b->fatal) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            struct sp_conf_pos p = {b->file, (int)parser.problem_mark.line + 1,
                                    (int)parser.problem_mark.column + 1};
            if (parser.context)
                sp_diag_error(d, &p, "invalid YAML: %s %s (at %d:%d)",
                              parser.problem ? parser.problem : "syntax error", parser.context,
                              (int)parser.context_mark.line + 1,
                              (int)parser.context_mark.column + 1);
            else
                sp_diag_error(d, &p, "invalid YAML: %s",
                              parser.problem ? parser.problem : "syntax error");
            b->failed = true;
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        sp_builder_event(b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    while (b->depth > 0)
        sp_frame_free(&b->stack[--b->depth]);
    for (size_t i = 0; i < b->nanchors; i++)
        free(b->anchors[i].name);
    sp_buf_wipe(&b->scratch); /* scalars, secrets among them */

    int rc = 0;
    if (b->failed) {
        rc = SP_EINVAL;
    } else if (!b->root || b->root->kind == SP_NODE_NULL) {
        /* An empty file is an empty configuration. */
        struct sp_node *n = sp_arena_calloc(a, 1, sizeof(*n));
        if (!n) {
            sp_diag_error(d, &file_pos, "out of memory while reading the configuration");
            rc = SP_ENOMEM;
        } else {
            n->kind = SP_NODE_MAP;
            n->pos = (struct sp_conf_pos){b->file, 1, 1};
            n->str = "";
            n->weight = 1;
            *root = n;
        }
    } else if (b->root->kind != SP_NODE_MAP) {
        sp_diag_error(d, &b->root->pos, "the top level must be a mapping (receivers:, "
                      "exporters:, service: ...), got %s", sp_node_kind_name(b->root));
        rc = SP_EINVAL;
    } else {
        *root = b->root;
    }
    free(b);
    return rc;
}

/* ---- tree helpers ---- */

struct sp_node *sp_node_get(const struct sp_node *map, const char *key,
                            const struct sp_node_pair **pair_out)
{
    if (pair_out)
        *pair_out = NULL;
    if (!map || map->kind != SP_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->npairs; i++) {
        if (strcmp(map->pairs[i].key, key) == 0) {
            if (pair_out)
                *pair_out = &map->pairs[i];
            return map->pairs[i].value;
        }
    }
    return NULL;
}

struct sp_node *sp_node_merge(struct sp_arena *a, struct sp_node *base, struct sp_node *over)
{
    if (!base)
        return over;
    if (!over)
        return base;
    /* `receivers: {otlp: }` in an overlay names otlp without changing it. */
    if (over->kind == SP_NODE_NULL && base->kind == SP_NODE_MAP)
        return base;
    if (base->kind != SP_NODE_MAP || over->kind != SP_NODE_MAP)
        return over;
    struct sp_node *m = sp_arena_calloc(a, 1, sizeof(*m));
    size_t cap = base->npairs + over->npairs;
    struct sp_node_pair *pairs = cap ? sp_arena_calloc(a, cap, sizeof(*pairs)) : NULL;
    if (!m || (cap && !pairs))
        return NULL;
    *m = *over;
    size_t n = 0;
    uint64_t w = 1;
    for (size_t i = 0; i < base->npairs; i++) {
        pairs[n] = base->pairs[i];
        const struct sp_node_pair *op = NULL;
        struct sp_node *ov = sp_node_get(over, base->pairs[i].key, &op);
        if (op) {
            pairs[n].value = sp_node_merge(a, base->pairs[i].value, ov);
            if (!pairs[n].value)
                return NULL;
            /* Point at the later file's key: that is where the value now comes from. */
            if (pairs[n].value != base->pairs[i].value)
                pairs[n].key_pos = op->key_pos;
        }
        w += 1 + pairs[n].value->weight;
        n++;
    }
    for (size_t i = 0; i < over->npairs; i++) {
        if (sp_node_get(base, over->pairs[i].key, NULL))
            continue;
        pairs[n] = over->pairs[i];
        w += 1 + pairs[n].value->weight;
        n++;
    }
    m->pairs = pairs;
    m->npairs = n;
    m->weight = w;
    return m;
}
