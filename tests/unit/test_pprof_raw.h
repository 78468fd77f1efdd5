/* Test helper: renders a decoded profile in the text format of
 * `go tool pprof -raw` (the Samples, Locations and Mappings sections of
 * Go's profile.Profile.String()), and runs the real tool, so tests compare
 * our decoding with Go's on the same bytes. Formats written from observing
 * the tool's output; header lines (time, duration) are not compared. */
#ifndef TEST_PPROF_RAW_H
#define TEST_PPROF_RAW_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof_codec.h"
#include "sp_buf.h"

static const char *pprof_raw_s(const sp_pprof *p, int64_t i)
{
    const char *s = sp_pprof_str(p, i);
    return s ? s : "";
}

/* Go prints %#x of 0 as "0x0" where C prints "0". */
static void pprof_raw_hex(struct sp_buf *b, uint64_t v)
{
    sp_buf_printf(b, "0x%llx", (unsigned long long)v);
}

static int pprof_raw_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One sample's label line, grouped by key in arrival order, the
 * "key:[values]" items sorted as Go sorts them. Go reads a label with a
 * str as a string label, else one with num or num_unit as numeric, and
 * prints units only when every value of the key has one. */
static int pprof_raw_kind(const Perftools__Profiles__Label *l)
{
    if (l->str != 0)
        return 0;
    if (l->num != 0 || l->num_unit != 0)
        return 1;
    return -1;
}

static void pprof_raw_labels(const sp_pprof *p, const Perftools__Profiles__Sample *s,
                             struct sp_buf *b, int numeric)
{
    size_t n = s->n_label;
    char **items = calloc(n ? n : 1, sizeof(char *));
    int *done = calloc(n ? n : 1, sizeof(int));
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (done[i] || pprof_raw_kind(s->label[i]) != numeric)
            continue;
        const char *key = pprof_raw_s(p, s->label[i]->key);
        size_t nv = 0, nu = 0;
        for (size_t j = i; j < n; j++) {
            const Perftools__Profiles__Label *m = s->label[j];
            if (pprof_raw_kind(m) == numeric && strcmp(pprof_raw_s(p, m->key), key) == 0) {
                nv++;
                nu += m->num_unit != 0;
            }
        }
        struct sp_buf item = {0};
        sp_buf_printf(&item, "%s:[", key);
        size_t k = 0;
        for (size_t j = i; j < n; j++) {
            const Perftools__Profiles__Label *m = s->label[j];
            if (pprof_raw_kind(m) != numeric || strcmp(pprof_raw_s(p, m->key), key) != 0)
                continue;
            done[j] = 1;
            if (k++)
                sp_buf_append_str(&item, " ");
            if (!numeric)
                sp_buf_append_str(&item, pprof_raw_s(p, m->str));
            else if (nu == nv)
                sp_buf_printf(&item, "%lld %s", (long long)m->num, pprof_raw_s(p, m->num_unit));
            else
                sp_buf_printf(&item, "%lld", (long long)m->num);
        }
        sp_buf_append_str(&item, "]");
        size_t ignored;
        items[count++] = (char *)sp_buf_steal(&item, &ignored);
    }
    if (count) {
        qsort(items, count, sizeof(char *), pprof_raw_strcmp);
        sp_buf_append_str(b, "\n                ");
        for (size_t i = 0; i < count; i++) {
            sp_buf_printf(b, "%s%s", i ? " " : "", items[i]);
            free(items[i]);
        }
    }
    free(items);
    free(done);
}

static const Perftools__Profiles__Function *pprof_raw_fn(const sp_pprof *p, uint64_t id)
{
    for (size_t i = 0; i < p->n_function; i++)
        if (p->function[i]->id == id)
            return p->function[i];
    return NULL;
}

static int pprof_raw_render(const sp_pprof *p, struct sp_buf *b)
{
    sp_buf_append_str(b, "Samples:\n");
    const char *dflt = pprof_raw_s(p, p->default_sample_type);
    struct sp_buf h = {0};
    for (size_t i = 0; i < p->n_sample_type; i++) {
        const char *t = pprof_raw_s(p, p->sample_type[i]->type);
        sp_buf_printf(&h, "%s/%s%s ", t, pprof_raw_s(p, p->sample_type[i]->unit),
                      strcmp(t, dflt) == 0 ? "[dflt]" : "");
    }
    if (h.len)
        h.data[--h.len] = 0;
    sp_buf_printf(b, "%s\n", h.data ? (char *)h.data : "");
    sp_buf_free(&h);
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        for (size_t j = 0; j < s->n_value; j++)
            sp_buf_printf(b, " %10lld", (long long)s->value[j]);
        sp_buf_append_str(b, ": ");
        for (size_t j = 0; j < s->n_location_id; j++)
            sp_buf_printf(b, "%llu ", (unsigned long long)s->location_id[j]);
        pprof_raw_labels(p, s, b, 0);
        pprof_raw_labels(p, s, b, 1);
        sp_buf_append_str(b, "\n");
    }
    sp_buf_append_str(b, "Locations\n");
    for (size_t i = 0; i < p->n_location; i++) {
        const Perftools__Profiles__Location *l = p->location[i];
        struct sp_buf head = {0};
        sp_buf_printf(&head, "%6llu: ", (unsigned long long)l->id);
        pprof_raw_hex(&head, l->address);
        sp_buf_append_str(&head, " ");
        if (l->mapping_id)
            sp_buf_printf(&head, "M=%llu ", (unsigned long long)l->mapping_id);
        if (l->is_folded)
            sp_buf_append_str(&head, "[F] ");
        if (l->n_line == 0)
            sp_buf_printf(b, "%s\n", head.data);
        for (size_t j = 0; j < l->n_line; j++) {
            const Perftools__Profiles__Function *f = pprof_raw_fn(p, l->line[j]->function_id);
            sp_buf_append_str(b, j ? "             " : (char *)head.data);
            if (!f) {
                sp_buf_append_str(b, "??\n");
                continue;
            }
            const char *name = pprof_raw_s(p, f->name), *sys = pprof_raw_s(p, f->system_name);
            sp_buf_printf(b, "%s %s:%lld s=%lld", name, pprof_raw_s(p, f->filename),
                          (long long)l->line[j]->line, (long long)f->start_line);
            if (strcmp(name, sys) != 0)
                sp_buf_printf(b, "(%s)", sys);
            sp_buf_append_str(b, "\n");
        }
        sp_buf_free(&head);
    }
    sp_buf_append_str(b, "Mappings\n");
    for (size_t i = 0; i < p->n_mapping; i++) {
        const Perftools__Profiles__Mapping *m = p->mapping[i];
        sp_buf_printf(b, "%llu: ", (unsigned long long)m->id);
        pprof_raw_hex(b, m->memory_start);
        sp_buf_append_str(b, "/");
        pprof_raw_hex(b, m->memory_limit);
        sp_buf_append_str(b, "/");
        pprof_raw_hex(b, m->file_offset);
        sp_buf_printf(b, " %s %s %s%s%s%s\n", pprof_raw_s(p, m->filename),
                      pprof_raw_s(p, m->build_id), m->has_functions ? "[FN]" : "",
                      m->has_filenames ? "[FL]" : "", m->has_line_numbers ? "[LN]" : "",
                      m->has_inline_frames ? "[IN]" : "");
    }
    return 0;
}

/* Runs `go tool pprof -raw path` and keeps its output from "Samples:" on. */
static int pprof_raw_go(const char *path, struct sp_buf *out)
{
    char tmpl[] = "/tmp/sp-gocache-XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "HOME='%s' GOCACHE='%s/c' GOPATH='%s/p' PPROF_TMPDIR='%s' "
             "go tool pprof -raw -symbolize=none '%s' 2>/dev/null; rc=$?; rm -rf '%s'; exit $rc",
             tmpl, tmpl, tmpl, tmpl, path, tmpl);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    struct sp_buf all = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        sp_buf_append(&all, buf, n);
    int rc = pclose(f);
    if (rc != 0 || !all.data) {
        sp_buf_free(&all);
        return -1;
    }
    const char *s = strstr((char *)all.data, "Samples:\n");
    if (!s) {
        sp_buf_free(&all);
        return -1;
    }
    sp_buf_append_str(out, s);
    sp_buf_free(&all);
    return 0;
}

/* Go's tool renumbers locations in order of first use and drops mappings
 * no location uses, so ids cannot be compared. Both renderings are put in a
 * canonical form instead: each sample's location ids replaced by what the
 * location says (address, mapping file and range, every line), labels and
 * values as printed. Returns a malloc'd string. */
struct pprof_raw_ent {
    unsigned long long id;
    char *text;
};

static const char *pprof_raw_lookup(struct pprof_raw_ent *e, size_t n, unsigned long long id)
{
    for (size_t i = 0; i < n; i++)
        if (e[i].id == id)
            return e[i].text;
    return "(missing)";
}

static char *pprof_raw_canon(const char *text)
{
    char *dup = strdup(text);
    size_t nlines = 0;
    for (const char *c = dup; *c; c++)
        nlines += *c == '\n';
    char **lines = calloc(nlines + 1, sizeof(char *));
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(dup, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    size_t iloc = n, imap = n;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(lines[i], "Locations") == 0)
            iloc = i;
        if (strcmp(lines[i], "Mappings") == 0)
            imap = i;
    }
    struct pprof_raw_ent *maps = calloc(n + 1, sizeof(*maps));
    struct pprof_raw_ent *locs = calloc(n + 1, sizeof(*locs));
    size_t nm = 0, nl = 0;
    for (size_t i = imap + 1; i < n; i++) {
        char *colon = strstr(lines[i], ": ");
        if (!colon)
            continue;
        maps[nm].id = strtoull(lines[i], NULL, 10);
        maps[nm++].text = strdup(colon + 2);
    }
    for (size_t i = iloc + 1; i < imap; i++) {
        if (strncmp(lines[i], "             ", 13) == 0 && nl > 0) {
            struct sp_buf b = {0};
            sp_buf_printf(&b, "%s ; %s", locs[nl - 1].text, lines[i] + 13);
            free(locs[nl - 1].text);
            size_t ignored;
            locs[nl - 1].text = (char *)sp_buf_steal(&b, &ignored);
            continue;
        }
        char *colon = strstr(lines[i], ": ");
        if (!colon)
            continue;
        locs[nl].id = strtoull(lines[i], NULL, 10);
        struct sp_buf b = {0};
        char *m = strstr(colon, " M=");
        /* Go invents an empty mapping for profiles without one (Node's): same as none. */
        const char *mt = m ? pprof_raw_lookup(maps, nm, strtoull(m + 3, NULL, 10)) : NULL;
        if (m && strcmp(mt, "0x0/0x0/0x0   ") == 0) {
            char *after = strchr(m + 1, ' ');
            sp_buf_printf(&b, "%.*s%s", (int)(m - colon - 2), colon + 2, after ? after : "");
        } else if (m) {
            unsigned long long mid = strtoull(m + 3, NULL, 10);
            char *after = strchr(m + 1, ' ');
            sp_buf_printf(&b, "%.*s M={%s}%s", (int)(m - colon - 2), colon + 2,
                          pprof_raw_lookup(maps, nm, mid), after ? after : "");
        } else {
            sp_buf_append_str(&b, colon + 2);
        }
        size_t ignored;
        locs[nl++].text = (char *)sp_buf_steal(&b, &ignored);
    }
    /* Go's tool also merges samples with the same stack and labels (adding
     * their values) and leaves out samples whose values are all zero or
     * whose stack is empty; the canonical form does the same, keeping the
     * order of first appearance, as Go does. */
    struct canon_sample {
        char *key;        /* stack and label lines */
        long long vals[16];
        size_t nvals;
    };
    struct canon_sample *cs = calloc(iloc + 1, sizeof(*cs));
    size_t ncs = 0;
    struct sp_buf out = {0};
    struct canon_sample cur = {0};
    struct sp_buf key = {0};
    bool in_sample = false;
    for (size_t i = 0; i <= iloc; i++) {
        bool label = i < iloc && strncmp(lines[i], "                ", 16) == 0;
        if (label && in_sample) {
            sp_buf_printf(&key, "\n%s", lines[i]);
            continue;
        }
        if (in_sample) {
            /* close the current sample: merge or append */
            bool zero = true;
            for (size_t v = 0; v < cur.nvals; v++)
                zero &= cur.vals[v] == 0;
            bool empty_stack = key.data && strncmp((char *)key.data, "\n", 1) == 0;
            if (!zero && !empty_stack && key.data) {
                size_t k = 0;
                while (k < ncs && strcmp(cs[k].key, (char *)key.data) != 0)
                    k++;
                if (k == ncs) {
                    cs[ncs] = cur;
                    cs[ncs++].key = strdup((char *)key.data);
                } else {
                    for (size_t v = 0; v < cur.nvals && v < cs[k].nvals; v++)
                        cs[k].vals[v] += cur.vals[v];
                }
            }
            sp_buf_reset(&key);
            in_sample = false;
        }
        if (i == iloc)
            break;
        char *sep = strstr(lines[i], ": ");
        if (!sep || i < 2) {
            if (!label)
                sp_buf_printf(&out, "%s\n", lines[i]);
            continue;
        }
        memset(&cur, 0, sizeof(cur));
        char *vp = lines[i];
        while (vp < sep && cur.nvals < 16) {
            char *e;
            long long v = strtoll(vp, &e, 10);
            if (e == vp)
                break;
            cur.vals[cur.nvals++] = v;
            vp = e;
        }
        in_sample = true;
        for (char *q = sep + 2; *q;) {
            char *e;
            unsigned long long id = strtoull(q, &e, 10);
            if (e == q)
                break;
            sp_buf_printf(&key, " [%s]", pprof_raw_lookup(locs, nl, id));
            q = e;
            while (*q == ' ')
                q++;
        }
        if (!key.data)
            sp_buf_append_str(&key, ""); /* empty stack */
        if (key.len == 0)
            sp_buf_append_str(&key, "\n"); /* marks the empty stack */
    }
    for (size_t k = 0; k < ncs; k++) {
        for (size_t v = 0; v < cs[k].nvals; v++)
            sp_buf_printf(&out, " %lld", cs[k].vals[v]);
        sp_buf_printf(&out, ":%s\n", cs[k].key);
        free(cs[k].key);
    }
    free(cs);
    sp_buf_free(&key);
    for (size_t i = 0; i < nm; i++)
        free(maps[i].text);
    for (size_t i = 0; i < nl; i++)
        free(locs[i].text);
    free(maps);
    free(locs);
    free(lines);
    free(dup);
    size_t ignored;
    return (char *)sp_buf_steal(&out, &ignored);
}

/* Prints the first differing line of two renderings. */
static void pprof_raw_diff(const char *ours, const char *theirs)
{
    int line = 1;
    while (*ours && *theirs) {
        const char *eo = strchr(ours, '\n'), *et = strchr(theirs, '\n');
        size_t lo = eo ? (size_t)(eo - ours) : strlen(ours);
        size_t lt = et ? (size_t)(et - theirs) : strlen(theirs);
        if (lo != lt || memcmp(ours, theirs, lo) != 0) {
            fprintf(stderr, "  line %d differs:\n  ours: %.*s\n  go:   %.*s\n", line, (int)lo,
                    ours, (int)lt, theirs);
            return;
        }
        ours += lo + (eo ? 1 : 0);
        theirs += lt + (et ? 1 : 0);
        line++;
    }
    fprintf(stderr, "  one rendering is shorter (line %d)\n", line);
}

#endif
