/* Peer tag IP quantization (see dd_peer_ip.h for the rules and their source). */
#include "dd_peer_ip.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>

struct sl {
    const char *p;
    size_t n;
};

static const char *const schemes[] = {"dnspoll", "ftp", "file", "http", "https"};
static const char *const allowed[] = {"127.0.0.1", "::1", "169.254.169.254", "fd00:ec2::254",
                                      "169.254.170.2"};
static const char blocked[] = "blocked-ip-address";

static bool sl_is(struct sl s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static const char *sl_chr(struct sl s, char c)
{
    return s.n ? memchr(s.p, c, s.n) : NULL;
}

/* An "ip-" or "<scheme>://" (or ":///") prefix, and what follows it. */
static void split_prefix(struct sl raw, struct sl *prefix, struct sl *rest)
{
    *prefix = (struct sl){raw.p, 0};
    *rest = raw;
    if (raw.n >= 3 && memcmp(raw.p, "ip-", 3) == 0) {
        *prefix = (struct sl){raw.p, 3};
        *rest = (struct sl){raw.p + 3, raw.n - 3};
        return;
    }
    for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++) {
        size_t sn = strlen(schemes[i]);
        const char *at = memmem(raw.p, raw.n, schemes[i], sn);
        if (!at)
            continue;
        size_t after = (size_t)(at - raw.p) + sn; /* index just past the scheme name */
        size_t len = 0;
        if (after + 4 < raw.n && memcmp(raw.p + after, ":///", 4) == 0)
            len = 4;
        else if (after + 3 < raw.n && memcmp(raw.p + after, "://", 3) == 0)
            len = 3;
        if (!len)
            continue;
        *prefix = (struct sl){at, sn + len};
        *rest = (struct sl){raw.p + after + len, raw.n - after - len};
        return;
    }
}

/* "host:port" or "[host]:port" (net.SplitHostPort's shapes). */
static bool split_host_port(struct sl hp, struct sl *host, struct sl *port)
{
    const char *colon = NULL;
    for (size_t i = hp.n; i-- > 0;)
        if (hp.p[i] == ':') {
            colon = hp.p + i;
            break;
        }
    if (!colon)
        return false;
    size_t i = (size_t)(colon - hp.p), j = 0, k = 0;
    if (hp.p[0] == '[') {
        const char *end = sl_chr(hp, ']');
        if (!end || (size_t)(end - hp.p) + 1 != i)
            return false;
        *host = (struct sl){hp.p + 1, (size_t)(end - hp.p) - 1};
        j = 1;
        k = i;
    } else {
        *host = (struct sl){hp.p, i};
        if (sl_chr(*host, ':'))
            return false;
    }
    if (sl_chr((struct sl){hp.p + j, hp.n - j}, '[') || sl_chr((struct sl){hp.p + k, hp.n - k}, ']'))
        return false;
    *port = (struct sl){colon + 1, hp.n - i - 1};
    return true;
}

/* Four octets 0-255 without leading zeros, separated by sep; text may
 * follow the fourth octet. *end: where the address ends. */
static bool ipv4_prefix(struct sl s, char sep, size_t *end)
{
    unsigned val = 0, pos = 0, digits = 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c >= '0' && c <= '9') {
            if (digits == 1 && val == 0)
                return false;
            val = val * 10 + (unsigned)(c - '0');
            digits++;
            if (val > 255)
                return false;
        } else if (c == sep) {
            if (i == 0 || i == s.n - 1 || s.p[i - 1] == sep)
                return false;
            if (pos == 3) {
                *end = i;
                return true;
            }
            pos++;
            val = 0;
            digits = 0;
        } else {
            if (pos == 3 && digits > 0) {
                *end = i;
                return true;
            }
            return false;
        }
    }
    if (pos < 3)
        return false;
    *end = s.n;
    return true;
}

static bool ipv6_whole(struct sl s)
{
    char buf[64];
    const char *zone = sl_chr(s, '%');
    size_t n = zone ? (size_t)(zone - s.p) : s.n;
    if (n == 0 || n >= sizeof(buf) || (zone && zone + 1 == s.p + s.n))
        return false;
    memcpy(buf, s.p, n);
    buf[n] = '\0';
    unsigned char a[16];
    return inet_pton(AF_INET6, buf, a) == 1;
}

/* Whether s starts with an IP address; *end: where it ends. */
static bool ip_prefix(struct sl s, size_t *end)
{
    if (s.n == 0)
        return false;
    char c0 = s.p[0];
    if (!((c0 >= '0' && c0 <= '9') || (c0 >= 'a' && c0 <= 'f') || (c0 >= 'A' && c0 <= 'F') ||
          c0 == ':'))
        return false;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c == '.' || c == '_' || c == '-')
            return ipv4_prefix(s, c, end);
        if (c == ':') {
            *end = s.n;
            return ipv6_whole(s);
        }
        if (c == '%')
            return false;
    }
    return false;
}

struct out {
    char *p;
    size_t cap, len;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* Appends entry e quantized; true when it differs from e. */
static bool put_entry(struct out *o, struct sl e)
{
    struct sl prefix, rest, host, port = {NULL, 0};
    split_prefix(e, &prefix, &rest);
    if (!split_host_port(rest, &host, &port)) {
        host = rest;
        port.n = 0;
    }
    size_t end;
    if (!ip_prefix(host, &end))
        goto keep;
    struct sl ip = {host.p, end};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(*allowed); i++)
        if (sl_is(ip, allowed[i]))
            goto keep;
    put(o, prefix.p, prefix.n);
    put(o, blocked, sizeof(blocked) - 1);
    if (port.n) {
        put(o, ":", 1);
        put(o, port.p, port.n);
    }
    put(o, host.p + end, host.n - end);
    return true;
keep:
    put(o, e.p, e.n);
    return false;
}

size_t sp_dd_quantize_peer_ips(const char *raw, char *out, size_t cap)
{
    /* no digit, no ':', no list: nothing to change (most host names) */
    if (!strpbrk(raw, "0123456789:,"))
        return 0;
    /* entries start at these offsets of out (for the duplicates check) */
    size_t starts[64], n_starts = 0;
    struct out o = {out, cap, 0, false};
    bool changed = false;
    const char *p = raw;
    for (;;) {
        const char *comma = strchr(p, ',');
        struct sl e = {p, comma ? (size_t)(comma - p) : strlen(p)};
        size_t at = o.len;
        if (n_starts)
            put(&o, ",", 1);
        size_t from = o.len;
        changed |= put_entry(&o, e);
        if (o.overflow || n_starts == sizeof(starts) / sizeof(*starts))
            return 0;
        struct sl mine = {out + from, o.len - from};
        bool dup = false;
        for (size_t i = 0; i < n_starts && !dup; i++) {
            size_t s = starts[i];
            size_t len = (i + 1 < n_starts ? starts[i + 1] - 1 : at) - s;
            dup = mine.n == len && memcmp(out + s, mine.p, len) == 0;
        }
        if (dup) {
            o.len = at; /* keep the first of equal entries */
            changed = true;
        } else {
            starts[n_starts++] = from;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!changed)
        return 0;
    out[o.len] = '\0';
    return o.len;
}
