/* The parts of sp_conf.h that components and the core use at run time:
 * the scalar parsers (durations, sizes, booleans, endpoints) shared by the
 * config loader, query strings and CLI flags, and sp_conf_errorf(), which
 * turns a component's validation error into `file:line:col: key: message`
 * from the positions the loader recorded in struct sp_conf_ctx, and the
 * did-you-mean of every "unknown name" message (sp_conf_suggest). No YAML
 * here: config/ fills the structs, core only reads them. */
#include "sp_conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- scalar parsers ---- */

static const char *sp_skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Trims surrounding blanks into buf; false when too long. */
static bool sp_trim_copy(const char *s, char *buf, size_t n)
{
    s = sp_skip_space(s);
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len >= n)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return true;
}

int sp_conf_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    char buf[8];
    if (!s || !sp_trim_copy(s, buf, sizeof(buf)))
        return SP_EINVAL;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(buf, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(buf, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return SP_EINVAL;
}

/* Parses digits[.digits] at *p into a double; false when there is none. */
static bool sp_parse_decimal(const char **p, double *out)
{
    const char *s = *p;
    double v = 0;
    bool digits = false;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (*s - '0');
        s++;
        digits = true;
    }
    if (*s == '.') {
        s++;
        double scale = 0.1;
        while (isdigit((unsigned char)*s)) {
            v += (*s - '0') * scale;
            scale /= 10;
            s++;
            digits = true;
        }
    }
    if (!digits || v > 1e30)
        return false;
    *p = s;
    *out = v;
    return true;
}

/* Go's duration syntax (what the Collector's configs use): one or more
 * number+unit, units ns us ms s m h; "0" alone is allowed. */
int sp_conf_parse_duration_ms(const char *s, int64_t *out)
{
    char buf[64];
    if (!s || !sp_trim_copy(s, buf, sizeof(buf)) || !buf[0])
        return SP_EINVAL;
    if (strcmp(buf, "0") == 0) {
        *out = 0;
        return 0;
    }
    static const struct {
        const char *unit;
        double ns;
    } units[] = {
        {"ns", 1},      {"us", 1e3},    {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
        {"ms", 1e6},    {"s", 1e9},     {"m", 60e9},        {"h", 3600e9},
    };
    const char *p = buf;
    double total_ns = 0;
    while (*p) {
        double v;
        if (!sp_parse_decimal(&p, &v))
            return SP_EINVAL;
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].unit);
            /* Longest match, so "ms" is not read as "m" followed by "s". */
            if (ul > best_len && strncmp(p, units[i].unit, ul) == 0) {
                best = i;
                best_len = ul;
            }
        }
        if (!best_len)
            return SP_EINVAL;
        p += best_len;
        total_ns += v * units[best].ns;
    }
    if (total_ns > 9.0e18)
        return SP_EINVAL;
    double ms = total_ns / 1e6;
    int64_t r = (int64_t)llround(ms);
    /* A positive duration never rounds down to 0 ("no timeout" to many). */
    if (r == 0 && total_ns > 0)
        r = 1;
    *out = r;
    return 0;
}

int sp_conf_parse_size(const char *s, uint64_t *out)
{
    char buf[64];
    if (!s || !sp_trim_copy(s, buf, sizeof(buf)) || !buf[0])
        return SP_EINVAL;
    const char *p = buf;
    double v;
    if (!sp_parse_decimal(&p, &v))
        return SP_EINVAL;
    p = sp_skip_space(p);
    static const struct {
        const char *unit;
        double mult;
    } units[] = {
        {"", 1},          {"b", 1},
        {"k", 1e3},       {"kb", 1e3},      {"ki", 1024.0},           {"kib", 1024.0},
        {"m", 1e6},       {"mb", 1e6},      {"mi", 1048576.0},        {"mib", 1048576.0},
        {"g", 1e9},       {"gb", 1e9},      {"gi", 1073741824.0},     {"gib", 1073741824.0},
        {"t", 1e12},      {"tb", 1e12},     {"ti", 1099511627776.0},  {"tib", 1099511627776.0},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(p, units[i].unit) != 0)
            continue;
        double bytes = v * units[i].mult;
        if (bytes >= 1.8e19)
            return SP_EINVAL;
        *out = (uint64_t)llround(bytes);
        return 0;
    }
    return SP_EINVAL;
}

int sp_conf_parse_endpoint(const char *s, char *host_out, int *port_out, struct sp_err *err)
{
    if (!s || !*s)
        return sp_err_set(err, SP_EINVAL,
                          "endpoint is empty (expected host:port, e.g. 127.0.0.1:4317)");
    size_t len = strlen(s);
    if (len > 300)
        return sp_err_set(err, SP_EINVAL, "endpoint '%.40s...' is too long", s);
    if (strstr(s, "://"))
        return sp_err_set(err, SP_EINVAL,
                          "endpoint '%s' must be host:port, without a scheme", s);
    const char *host = s, *port = NULL;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return sp_err_set(err, SP_EINVAL,
                              "endpoint '%s': expected [ipv6]:port, e.g. [::1]:4317", s);
        host = s + 1;
        hlen = (size_t)(close - host);
        port = close + 2;
        if (hlen == 0)
            return sp_err_set(err, SP_EINVAL, "endpoint '%s': empty IPv6 address", s);
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return sp_err_set(err, SP_EINVAL,
                              "endpoint '%s': missing port (expected host:port, e.g. "
                              "127.0.0.1:4317)",
                              s);
        if (memchr(s, ':', (size_t)(colon - s)))
            return sp_err_set(err, SP_EINVAL,
                              "endpoint '%s': an IPv6 address needs brackets, e.g. [::1]:4317",
                              s);
        hlen = (size_t)(colon - s);
        port = colon + 1;
    }
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == '%' ||
              (s[0] == '[' && c == ':')))
            return sp_err_set(err, SP_EINVAL, "endpoint '%s': invalid character in host", s);
    }
    if (hlen >= 256)
        return sp_err_set(err, SP_EINVAL, "endpoint '%s': host is too long", s);
    if (!*port)
        return sp_err_set(err, SP_EINVAL, "endpoint '%s': missing port after ':'", s);
    long p = 0;
    for (const char *c = port; *c; c++) {
        if (!isdigit((unsigned char)*c) || p > 65535)
            return sp_err_set(err, SP_EINVAL, "endpoint '%s': port must be a number 0-65535",
                              s);
        p = p * 10 + (*c - '0');
    }
    if (p > 65535)
        return sp_err_set(err, SP_EINVAL, "endpoint '%s': port must be a number 0-65535", s);
    if (hlen == 0) {
        strcpy(host_out, "127.0.0.1");
    } else {
        memcpy(host_out, host, hlen);
        host_out[hlen] = '\0';
    }
    *port_out = (int)p;
    return 0;
}

int sp_conf_endpoint_addr(const char *endpoint, struct sockaddr_storage *ss, unsigned *len,
                          struct sp_err *err)
{
    char host[256];
    int port;
    if (sp_conf_parse_endpoint(endpoint, host, &port, err))
        return SP_EINVAL;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*sin6);
    } else {
        return sp_err_set(err, SP_EINVAL,
                          "endpoint '%s': host must be an IP address or localhost", endpoint);
    }
    return 0;
}

/* ---- component errors ---- */

static const struct sp_conf_pos *sp_ctx_lookup(const struct sp_conf_ctx *ctx, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path ? path : "");
    /* Accept "scrape.0.url" as well as "scrape[0].url". */
    for (char *p = buf; *p; p++) {
        if (*p == '.' && isdigit((unsigned char)p[1])) {
            char *q = p + 1;
            while (isdigit((unsigned char)*q))
                q++;
            if (*q == '.' || *q == '\0') {
                size_t digits = (size_t)(q - (p + 1));
                char tmp[512];
                snprintf(tmp, sizeof(tmp), "[%.*s]%s", (int)digits, p + 1, q);
                snprintf(p, sizeof(buf) - (size_t)(p - buf), "%s", tmp);
            }
        }
    }
    for (;;) {
        for (const struct sp_conf_posent *e = ctx->entries; e; e = e->next)
            if (strcmp(e->path, buf) == 0)
                return &e->pos;
        /* Not in the YAML (a default): point at the nearest enclosing key. */
        char *cut = strrchr(buf, '.');
        char *br = strrchr(buf, '[');
        if (br && (!cut || br > cut))
            cut = br;
        if (!cut)
            return &ctx->pos;
        *cut = '\0';
    }
}

int sp_conf_errorf(const struct sp_conf_ctx *ctx, struct sp_err *err, const char *path,
                   const char *fmt, ...)
{
    char msg[SP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *p = path && *path ? path : NULL;
    if (!ctx)
        return sp_err_set(err, SP_EINVAL, "%s%s%s", p ? p : "", p ? ": " : "", msg);
    const struct sp_conf_pos *pos = sp_ctx_lookup(ctx, p);
    char where[300];
    if (pos && pos->file && pos->line > 0)
        snprintf(where, sizeof(where), "%s:%d:%d: ", pos->file, pos->line, pos->col);
    else if (pos && pos->file)
        snprintf(where, sizeof(where), "%s: ", pos->file);
    else
        where[0] = '\0';
    return sp_err_set(err, SP_EINVAL, "%s%s%s%s: %s", where, ctx->prefix ? ctx->prefix : "",
                      p && ctx->prefix ? "." : "", p ? p : "", msg);
}

/* ---- did you mean ---- */

/* Damerau-Levenshtein (optimal string alignment) distance, case-insensitive,
 * capped: strings longer than 64 bytes are never suggestions. */
static size_t sp_conf_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca == cb ? 0 : 1;
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

const char *sp_conf_suggest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    size_t wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        size_t dist = sp_conf_distance(word, candidates[i]);
        if (dist < best_d) {
            best_d = dist;
            best = candidates[i];
        }
    }
    if (!best)
        return NULL;
    /* A typo is one or two edits; a third is allowed for long words. Short
     * words need a closer match or everything suggests everything. */
    size_t cl = strlen(best);
    size_t len = wl < cl ? wl : cl;
    size_t allowed = len <= 3 ? 1 : len <= 7 ? 2 : 3;
    if (best_d == 0 && strcmp(word, best) == 0)
        return NULL;
    return best_d <= allowed && best_d < len ? best : NULL;
}

/* ---- start-up lines ---- */

const char *sp_conf_endpoint_bound(const char *endpoint, int port, char *buf, size_t n)
{
    const char *colon = endpoint ? strrchr(endpoint, ':') : NULL;
    if (!colon || port <= 0) {
        snprintf(buf, n, "%s", endpoint ? endpoint : "");
        return buf;
    }
    snprintf(buf, n, "%.*s:%d", (int)(colon - endpoint), endpoint, port);
    return buf;
}
