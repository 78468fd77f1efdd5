/* OTLP/JSON decoding onto protobuf-c structs, driven by the descriptors.
 *
 * One walk serves every message: for each key of a JSON object the field is
 * found in the message's ProtobufCMessageDescriptor (by its proto name, or
 * its lowerCamelCase JSON name turned back into snake_case), and the value
 * is converted by field type, so ExportTraceServiceRequest, Span, KeyValue,
 * AnyValue... need no code of their own. The OTLP-specific rules of the
 * spec's JSON mapping: trace_id/span_id/parent_span_id bytes are hex
 * (case-insensitive), not base64; 64-bit integers come as strings or
 * numbers; enums as integers (names also accepted); unknown keys ignored.
 *
 * Two implementations of that walk: the reference, over json-c's tree, and
 * a streaming one (further down) that decodes well-formed requests straight
 * from the bytes, 5x cheaper, and declines anything it cannot decode exactly
 * as the reference does; sp_otlp_decode_json tries it first.
 *
 * json-c (Debian's libjson-c5): already a dependency, maintained, parses
 * 64-bit integers exactly (no detour through double), validates UTF-8 and
 * bounds nesting depth in its tokener. Its tree is costly (an object is
 * ~750 bytes, an array ~350, whatever their size), so a pre-scan estimates
 * the tree from the body's structure and refuses, before parsing, a body
 * whose tree would pass SP_OTLP_JSON_MAX_TREE. The tree lives only during
 * the call; the result is in the caller's arena. */
#include "otlp_codec.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Transient json-c memory one decode may need (estimated, see above). */
#define SP_OTLP_JSON_MAX_TREE ((size_t)256 << 20)

struct otlp_jctx {
    struct sp_arena *arena;
    struct sp_err *err;
    char path[200];
    size_t path_len;
};

/* Appends ".key" (key_len bytes; "key" at the root), or "[idx]" when
 * idx >= 0; returns the length to restore with jpath_pop. */
static size_t jpath_push(struct otlp_jctx *c, const char *key, size_t key_len, long idx)
{
    size_t old = c->path_len;
    size_t room = sizeof(c->path) - old;
    int n = idx >= 0 ? snprintf(c->path + old, room, "[%ld]", idx)
                     : snprintf(c->path + old, room, "%s%.*s", old ? "." : "", (int)key_len, key);
    if (n < 0 || (size_t)n >= room) {
        if (room > 4) {
            memcpy(c->path + old, "...", 4);
            c->path_len = old + 3;
        }
        return old;
    }
    c->path_len += (size_t)n;
    return old;
}

static void jpath_pop(struct otlp_jctx *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

__attribute__((format(printf, 2, 3))) static int jfail(struct otlp_jctx *c, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sp_err_set(c->err, SP_EDECODE, "'%s': %s", c->path_len ? c->path : "(request)", msg);
}

static int jnomem(struct otlp_jctx *c)
{
    return sp_err_set(c->err, SP_ETOOBIG, "'%s': decoded request passes its memory limit",
                      c->path_len ? c->path : "(request)");
}

static const char *jtype(json_object *v)
{
    return v ? json_type_to_name(json_object_get_type(v)) : "null";
}

/* ---- field lookup ------------------------------------------------------- */

static const ProtobufCFieldDescriptor *jfield(const ProtobufCMessageDescriptor *desc,
                                              const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
    if (f)
        return f;
    /* lowerCamelCase -> snake_case: "startTimeUnixNano" -> "start_time_unix_nano". */
    char snake[96];
    size_t o = 0;
    for (const char *p = key; *p; p++) {
        if (o + 3 >= sizeof(snake))
            return NULL;
        if (*p >= 'A' && *p <= 'Z') {
            snake[o++] = '_';
            snake[o++] = (char)(*p - 'A' + 'a');
        } else {
            snake[o++] = *p;
        }
    }
    snake[o] = '\0';
    return protobuf_c_message_descriptor_get_field_by_name(desc, snake);
}

/* The OTLP ids: hex in JSON, wherever they appear (Span, Span.Link). */
static bool jis_hex_id(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_BYTES &&
           (strcmp(f->name, "trace_id") == 0 || strcmp(f->name, "span_id") == 0 ||
            strcmp(f->name, "parent_span_id") == 0);
}

/* ---- scalars ------------------------------------------------------------ */

static int jhexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int jhex(struct otlp_jctx *c, const char *s, size_t n, ProtobufCBinaryData *out)
{
    bool hex = n % 2 == 0;
    for (size_t i = 0; hex && i < n; i++)
        hex = jhexval(s[i]) >= 0;
    if (!hex)
        return jfail(c, "'%.48s%s' is not a hex id: OTLP/JSON trace and span ids are hex strings "
                        "(e.g. 32 hex digits for a trace id), not base64",
                     s, n > 48 ? "..." : "");
    out->len = n / 2;
    out->data = NULL;
    if (n == 0)
        return 0;
    out->data = sp_arena_alloc(c->arena, n / 2);
    if (!out->data)
        return jnomem(c);
    for (size_t i = 0; i < n / 2; i++)
        out->data[i] = (uint8_t)(jhexval(s[2 * i]) << 4 | jhexval(s[2 * i + 1]));
    return 0;
}

static int jb64val(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

/* Standard or URL-safe alphabet, padding optional (proto3 JSON accepts all). */
static int jbase64(struct otlp_jctx *c, const char *s, size_t n, ProtobufCBinaryData *out)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return jfail(c, "invalid base64: %zu significant characters", n);
    uint8_t *d = sp_arena_alloc(c->arena, n * 3 / 4 + 1);
    if (!d)
        return jnomem(c);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = jb64val(s[i]);
        if (v < 0)
            return jfail(c, "invalid base64 character at offset %zu", i);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = o ? d : NULL;
    out->len = o;
    return 0;
}

/* A JSON integer, integral number or decimal string as int64 (is_signed)
 * or uint64. */
static int jint(struct otlp_jctx *c, json_object *v, bool is_signed, int64_t *s, uint64_t *u)
{
    switch (json_object_get_type(v)) {
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        if (i < 0) {
            if (!is_signed)
                return jfail(c, "negative value %lld for an unsigned field", (long long)i);
            *s = i;
            return 0;
        }
        uint64_t x = json_object_get_uint64(v);
        if (is_signed && x > (uint64_t)INT64_MAX)
            return jfail(c, "value %llu is out of range", (unsigned long long)x);
        *s = (int64_t)x;
        *u = x;
        return 0;
    }
    case json_type_double: {
        double d = json_object_get_double(v);
        if (!isfinite(d) || d != floor(d))
            return jfail(c, "%g is not an integer", d);
        if (is_signed ? (d < -9223372036854775808.0 || d >= 9223372036854775808.0)
                      : (d < 0 || d >= 18446744073709551616.0))
            return jfail(c, "%g is out of range", d);
        if (is_signed)
            *s = (int64_t)d;
        else
            *u = (uint64_t)d;
        return 0;
    }
    case json_type_string: {
        const char *str = json_object_get_string(v);
        const char *digits = str[0] == '-' ? str + 1 : str;
        if (!*digits || strspn(digits, "0123456789") != strlen(digits) ||
            (!is_signed && str[0] == '-'))
            return jfail(c, "'%.40s' is not an integer", str);
        char *end;
        errno = 0;
        if (is_signed)
            *s = strtoll(str, &end, 10);
        else
            *u = strtoull(str, &end, 10);
        if (errno == ERANGE)
            return jfail(c, "'%.40s' is out of range", str);
        return 0;
    }
    default:
        return jfail(c, "expected an integer, got %s", jtype(v));
    }
}

static int jdouble(struct otlp_jctx *c, json_object *v, double *out)
{
    switch (json_object_get_type(v)) {
    case json_type_int:
    case json_type_double:
        *out = json_object_get_double(v);
        return 0;
    case json_type_string: {
        const char *str = json_object_get_string(v);
        if (strcmp(str, "NaN") == 0) {
            *out = NAN;
            return 0;
        }
        if (strcmp(str, "Infinity") == 0 || strcmp(str, "-Infinity") == 0) {
            *out = str[0] == '-' ? -INFINITY : INFINITY;
            return 0;
        }
        char *end;
        errno = 0;
        *out = strtod(str, &end);
        if (!*str || *end || errno == ERANGE)
            return jfail(c, "'%.40s' is not a number", str);
        return 0;
    }
    default:
        return jfail(c, "expected a number, got %s", jtype(v));
    }
}

/* ---- messages ----------------------------------------------------------- */

static int jmessage(struct otlp_jctx *c, const ProtobufCMessageDescriptor *desc, json_object *obj,
                    ProtobufCMessage **out);

static size_t jelem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 8;
    }
}

/* Converts one JSON value (not null) into *dst per the field's type. */
static int jvalue(struct otlp_jctx *c, const ProtobufCFieldDescriptor *f, json_object *v, void *dst)
{
    int64_t s = 0;
    uint64_t u = 0;
    int rc;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return jmessage(c, f->descriptor, v, (ProtobufCMessage **)dst);
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_object_is_type(v, json_type_string))
            return jfail(c, "expected a string, got %s", jtype(v));
        char *str = sp_arena_strndup(c->arena, json_object_get_string(v),
                                     (size_t)json_object_get_string_len(v));
        if (!str)
            return jnomem(c);
        *(char **)dst = str;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!json_object_is_type(v, json_type_string))
            return jfail(c, "expected a %s string, got %s", jis_hex_id(f) ? "hex" : "base64",
                         jtype(v));
        const char *str = json_object_get_string(v);
        size_t n = (size_t)json_object_get_string_len(v);
        return jis_hex_id(f) ? jhex(c, str, n, dst) : jbase64(c, str, n, dst);
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_object_is_type(v, json_type_boolean))
            return jfail(c, "expected true or false, got %s", jtype(v));
        *(protobuf_c_boolean *)dst = json_object_get_boolean(v) ? 1 : 0;
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        if (json_object_is_type(v, json_type_string)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(f->descriptor,
                                                             json_object_get_string(v));
            if (ev) {
                *(int32_t *)dst = ev->value;
                return 0;
            }
        }
        if ((rc = jint(c, v, true, &s, &u)))
            return rc;
        if (s < INT32_MIN || s > INT32_MAX)
            return jfail(c, "enum value %lld is out of range", (long long)s);
        *(int32_t *)dst = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((rc = jint(c, v, true, &s, &u)))
            return rc;
        if (s < INT32_MIN || s > INT32_MAX)
            return jfail(c, "value %lld is out of range for a 32-bit integer", (long long)s);
        *(int32_t *)dst = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((rc = jint(c, v, false, &s, &u)))
            return rc;
        if (u > UINT32_MAX)
            return jfail(c, "value %llu is out of range for a 32-bit unsigned integer",
                         (unsigned long long)u);
        *(uint32_t *)dst = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((rc = jint(c, v, true, &s, &u)))
            return rc;
        *(int64_t *)dst = s;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((rc = jint(c, v, false, &s, &u)))
            return rc;
        *(uint64_t *)dst = u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT: {
        double d;
        if ((rc = jdouble(c, v, &d)))
            return rc;
        *(float *)dst = (float)d;
        return 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE:
        return jdouble(c, v, (double *)dst);
    }
    return jfail(c, "unsupported field type %d", (int)f->type);
}

static int jrepeated(struct otlp_jctx *c, const ProtobufCFieldDescriptor *f, json_object *v,
                     void *msg)
{
    if (!json_object_is_type(v, json_type_array))
        return jfail(c, "expected an array, got %s", jtype(v));
    size_t n = json_object_array_length(v);
    size_t esz = jelem_size(f->type);
    char *arr = n ? sp_arena_calloc(c->arena, n, esz) : NULL;
    if (n && !arr)
        return jnomem(c);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        size_t old = jpath_push(c, NULL, 0, (long)i);
        int rc;
        if (!e && f->type == PROTOBUF_C_TYPE_MESSAGE) {
            /* null in a list of messages: an empty message, never a NULL slot */
            rc = jmessage(c, f->descriptor, NULL, (ProtobufCMessage **)(arr + i * esz));
        } else if (!e && f->type == PROTOBUF_C_TYPE_STRING) {
            *(char **)(arr + i * esz) = (char *)"";
            rc = 0;
        } else {
            rc = e ? jvalue(c, f, e, arr + i * esz) : 0;
        }
        if (rc)
            return rc;
        jpath_pop(c, old);
    }
    *(size_t *)((char *)msg + f->quantifier_offset) = n;
    *(void **)((char *)msg + f->offset) = arr;
    return 0;
}

/* obj NULL (JSON null) gives an empty message. */
static int jmessage(struct otlp_jctx *c, const ProtobufCMessageDescriptor *desc, json_object *obj,
                    ProtobufCMessage **out)
{
    if (obj && !json_object_is_type(obj, json_type_object))
        return jfail(c, "expected an object, got %s", jtype(obj));
    ProtobufCMessage *m = sp_arena_alloc(c->arena, desc->sizeof_message);
    if (!m)
        return jnomem(c);
    protobuf_c_message_init(desc, m);
    *out = m;
    if (!obj)
        return 0;
    json_object_object_foreach(obj, key, val)
    {
        const ProtobufCFieldDescriptor *f = jfield(desc, key);
        if (!f || !val)
            continue; /* unknown keys are ignored; null means the default */
        size_t old = jpath_push(c, key, strlen(key), -1);
        int rc;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = jrepeated(c, f, val, m);
        } else {
            rc = jvalue(c, f, val, (char *)m + f->offset);
            if (rc == 0 && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
            else if (rc == 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
                *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
        }
        if (rc)
            return rc;
        jpath_pop(c, old);
    }
    return 0;
}

/* Upper bound of json-c's tree for this body, from its structure. */
static size_t jestimate_tree(const uint8_t *p, size_t len)
{
    size_t cost = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = p[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = false;
            continue;
        }
        switch (ch) {
        case '"': in_str = true; cost += 48; break;
        case '{': cost += 800; break;
        case '[': cost += 400; break;
        case ',':
        case ':': cost += 64; break;
        default: break;
        }
    }
    return cost + len;
}

/* ---- streaming decoder (the common case) -------------------------------- *
 *
 * Most of the tree path's cost is json-c itself: a malloc per value, key and
 * container, the teardown, and the walk over the tree. Well-formed requests
 * are decoded here instead, straight from the bytes onto the same protobuf-c
 * structs, in two passes over the body:
 *   1. validate: everything the tree path would check (JSON syntax, UTF-8,
 *      nesting, field types, hex ids, base64, integer ranges), counting the
 *      elements of each array and summing jestimate_tree's costs from the
 *      tokens, with no allocation;
 *   2. build: the same walk again, allocating in the arena exactly what the
 *      tree path allocates, in the same order and sizes, so the arena limit
 *      is reached (or not) at the same point, with the same message.
 * Anything the first pass does not take (invalid input, and valid input it
 * leaves to json-c: escapes in keys, ids, numbers; duplicate keys, whose
 * order json-c resolves differently; numbers json-c would saturate; -0;
 * nesting past JF_MAX_DEPTH...) leaves the arena untouched, and the tree path
 * decodes it, so every error message stays the tree path's. What this pass
 * accepts is a subset of what json-c accepts with the tree path's flags
 * (checked against json-c 0.16: raw control characters other than NUL are
 * accepted in strings and kept as they are, like json-c does). */

/* Below the tree path's tokener depth (SP_OTLP_MAX_JSON_DEPTH), so nothing
 * taken here is refused there for depth. */
#define JF_MAX_DEPTH 100
#define JF_DECLINE SP_OTLP_JSON_DECLINED

/* One step of the path, kept on the C stack and formatted only when the
 * arena refuses an allocation. */
struct jf_path {
    const struct jf_path *up;
    const char *key; /* NULL: an array index */
    size_t key_len;
    long idx;
};

struct jf {
    const uint8_t *p, *end;
    struct sp_arena *arena; /* NULL in the validating pass */
    struct sp_err *err;
    size_t cost;  /* jestimate_tree's sum of token costs */
    int depth;
    size_t *counts; /* elements of each mapped array, in document order */
    size_t n_counts, cap_counts, next_count;
    size_t counts0[128];
    /* Keys already looked up (the same few recur in every span), by a hash
     * of the descriptor and the key; key points into the body. */
    struct jf_key {
        const ProtobufCMessageDescriptor *desc;
        const uint8_t *key;
        size_t n;
        const ProtobufCFieldDescriptor *f;
    } keys[64];
};

/* Bytes of a JSON string that need no attention: everything but NUL, '"',
 * '\\' and non-ASCII. */
static const uint8_t jf_plain[256] = {
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static inline void jf_ws(struct jf *c)
{
    if (c->p < c->end && *c->p > ' ')
        return; /* compact JSON: nothing to skip */
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

/* The first byte from p on that jf_plain does not take, or end. Strings are
 * short (keys, ids, attribute values), so the first block read usually
 * holds the closing quote: its position comes from a bit mask, not from a
 * loop over the bytes. Blocks may read past the string, never past end. */
static inline const uint8_t *jf_scan_plain(const uint8_t *p, const uint8_t *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i zero = _mm_setzero_si128();
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i sp = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                  _mm_cmpeq_epi8(v, zero));
        /* movemask also takes each byte's top bit: non-ASCII. */
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(sp, v));
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
        /* A byte's top bit: non-ASCII, or (the lowest such byte exactly)
         * a NUL, '"' or '\\'. Little-endian assumed for the byte order. */
        uint64_t m = (v | ((v - ones) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
        if (m && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
            return p + __builtin_ctzll(m) / 8;
        if (m)
            break;
        p += 8;
    }
#endif
    while (p < end && jf_plain[*p])
        p++;
    return p;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), 0 if there is none. */
static size_t jf_utf8(const uint8_t *p, const uint8_t *end)
{
    size_t left = (size_t)(end - p);
    uint8_t b = p[0];
    if (b >= 0xc2 && b <= 0xdf)
        return left >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (b >= 0xe0 && b <= 0xef) {
        if (left < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if ((b == 0xe0 && p[1] < 0xa0) || (b == 0xed && p[1] > 0x9f))
            return 0;
        return 3;
    }
    if (b >= 0xf0 && b <= 0xf4) {
        if (left < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
            (p[3] & 0xc0) != 0x80)
            return 0;
        if ((b == 0xf0 && p[1] < 0x90) || (b == 0xf4 && p[1] > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

/* Four hex digits as a code unit, or -1. */
static long jf_hex4(const uint8_t *p)
{
    long u = 0;
    for (int i = 0; i < 4; i++) {
        int v = jhexval((char)p[i]);
        if (v < 0)
            return -1;
        u = u << 4 | v;
    }
    return u;
}

/* The string starting at c->p ('"'): *s and *n are its raw bytes between
 * the quotes, *esc whether they hold escapes. Takes the escapes json-c
 * turns into the same bytes (\uXXXX only outside surrogates and NUL). */
static int jf_string(struct jf *c, const uint8_t **s, size_t *n, bool *esc)
{
    const uint8_t *start = c->p + 1, *p = start, *end = c->end;
    bool e = false;
    c->cost += 48;
    for (;;) {
        p = jf_scan_plain(p, end);
        if (p >= end)
            return JF_DECLINE;
        if (*p == '"')
            break;
        if (*p == '\\') {
            if (end - p < 2)
                return JF_DECLINE;
            e = true;
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                continue;
            case 'u': {
                long u = end - p >= 6 ? jf_hex4(p + 2) : -1;
                if (u <= 0 || (u >= 0xd800 && u <= 0xdfff))
                    return JF_DECLINE;
                p += 6;
                continue;
            }
            default:
                return JF_DECLINE;
            }
        }
        size_t k = *p ? jf_utf8(p, end) : 0;
        if (!k)
            return JF_DECLINE;
        p += k;
    }
    *s = start;
    *n = (size_t)(p - start);
    *esc = e;
    c->p = p + 1;
    return 0;
}

/* Decodes the escapes of a string jf_string took into dst (NULL: only
 * counts); returns the decoded length. */
static size_t jf_unescape(const uint8_t *s, size_t n, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            if (dst)
                dst[o] = (char)s[i];
            o++;
            i++;
            continue;
        }
        char ch;
        switch (s[i + 1]) {
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            unsigned long u = (unsigned long)jf_hex4(s + i + 2);
            uint8_t b[3];
            size_t k;
            if (u < 0x80) {
                b[0] = (uint8_t)u;
                k = 1;
            } else if (u < 0x800) {
                b[0] = (uint8_t)(0xc0 | u >> 6);
                b[1] = (uint8_t)(0x80 | (u & 0x3f));
                k = 2;
            } else {
                b[0] = (uint8_t)(0xe0 | u >> 12);
                b[1] = (uint8_t)(0x80 | (u >> 6 & 0x3f));
                b[2] = (uint8_t)(0x80 | (u & 0x3f));
                k = 3;
            }
            if (dst)
                memcpy(dst + o, b, k);
            o += k;
            i += 6;
            continue;
        }
        default: ch = (char)s[i + 1]; break; /* '"', '\\', '/' */
        }
        if (dst)
            dst[o] = ch;
        o++;
        i += 2;
    }
    return o;
}

/* The literal lit (true, false, null) at c->p. */
static bool jf_literal(struct jf *c, const char *lit, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* A number token per RFC 8259 at c->p. *is_int when it has no fraction or
 * exponent. */
static int jf_number(struct jf *c, const uint8_t **tok, size_t *n, bool *is_int)
{
    const uint8_t *p = c->p, *end = c->end;
    bool integer = true;
    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return JF_DECLINE;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && *p == '.') {
        integer = false;
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return JF_DECLINE;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = false;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return JF_DECLINE;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && *p >= '0' && *p <= '9')
        return JF_DECLINE; /* "01" */
    if (integer && p - c->p == 2 && c->p[0] == '-')
        if (c->p[1] == '0')
            return JF_DECLINE; /* "-0": json-c makes it the integer 0 */
    *tok = c->p;
    *n = (size_t)(p - c->p);
    *is_int = integer;
    c->p = p;
    return 0;
}

/* Decimal digits d[0..n) as a uint64; false when empty or past UINT64_MAX. */
static bool jf_digits(const uint8_t *d, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (d[i] < '0' || d[i] > '9')
            return false;
        unsigned dig = d[i] - '0';
        if (v > (UINT64_MAX - dig) / 10)
            return false;
        v = v * 10 + dig;
    }
    *out = v;
    return true;
}

static int jf_skip(struct jf *c);

/* Skips the object or array at c->p (a value no field takes). */
static int jf_skip_container(struct jf *c)
{
    bool obj = *c->p == '{';
    uint8_t close = obj ? '}' : ']';
    int rc;
    if (++c->depth > JF_MAX_DEPTH)
        return JF_DECLINE;
    c->cost += obj ? 800 : 400;
    c->p++;
    jf_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        c->depth--;
        return 0;
    }
    for (;;) {
        if (obj) {
            const uint8_t *s;
            size_t n;
            bool esc;
            if (c->p >= c->end || *c->p != '"' || jf_string(c, &s, &n, &esc))
                return JF_DECLINE;
            jf_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return JF_DECLINE;
            c->cost += 64;
            c->p++;
            jf_ws(c);
        }
        if ((rc = jf_skip(c)))
            return rc;
        jf_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->cost += 64;
            c->p++;
            jf_ws(c);
            continue;
        }
        if (c->p < c->end && *c->p == close) {
            c->p++;
            c->depth--;
            return 0;
        }
        return JF_DECLINE;
    }
}

static int jf_skip(struct jf *c)
{
    const uint8_t *s;
    size_t n;
    bool b;
    if (c->p >= c->end)
        return JF_DECLINE;
    switch (*c->p) {
    case '{':
    case '[':
        return jf_skip_container(c);
    case '"':
        return jf_string(c, &s, &n, &b);
    case 't':
        return jf_literal(c, "true", 4) ? 0 : JF_DECLINE;
    case 'f':
        return jf_literal(c, "false", 5) ? 0 : JF_DECLINE;
    case 'n':
        return jf_literal(c, "null", 4) ? 0 : JF_DECLINE;
    default:
        return jf_number(c, &s, &n, &b);
    }
}

/* SP_ETOOBIG with the tree path's message: the path is replayed with the
 * same pushes, which at an allocation is the text the tree path has. */
static int jf_nomem(struct jf *c, const struct jf_path *at)
{
    const struct jf_path *steps[2 * JF_MAX_DEPTH + 8];
    size_t n = 0;
    for (const struct jf_path *s = at; s && n < sizeof(steps) / sizeof(steps[0]); s = s->up)
        steps[n++] = s;
    struct otlp_jctx j = {.arena = c->arena, .err = c->err};
    j.path[0] = '\0';
    while (n--)
        jpath_push(&j, steps[n]->key, steps[n]->key_len, steps[n]->key ? -1 : steps[n]->idx);
    return jnomem(&j);
}

/* strcmp(name, key) for a key of n bytes holding no NUL, read as its
 * snake_case form when camel is set ('X' as "_x"). */
static int jf_cmp(const char *name, const uint8_t *key, size_t n, bool camel)
{
    const uint8_t *nm = (const uint8_t *)name;
    for (size_t i = 0; i < n; i++) {
        uint8_t k = key[i];
        if (camel && k >= 'A' && k <= 'Z') {
            if (*nm != '_')
                return (int)*nm - '_';
            nm++;
            k = (uint8_t)(k - 'A' + 'a');
        }
        if (*nm != k)
            return (int)*nm - k;
        nm++;
    }
    return *nm;
}

/* The field of desc named key (read as snake_case when camel is set): the
 * binary search protobuf_c_message_descriptor_get_field_by_name makes over
 * fields_sorted_by_name, without copying the key or calling strcmp. */
static const ProtobufCFieldDescriptor *jf_by_name(const ProtobufCMessageDescriptor *desc,
                                                  const uint8_t *key, size_t n, bool camel)
{
    size_t lo = 0, hi = desc->n_fields;
    if (!desc->fields_sorted_by_name)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const ProtobufCFieldDescriptor *f = desc->fields + desc->fields_sorted_by_name[mid];
        int r = jf_cmp(f->name, key, n, camel);
        if (r == 0)
            return f;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* jfield's answer for a key that is not NUL-terminated (and holds no NUL):
 * the field of that proto name, else of its lowerCamelCase reading, which
 * jfield only makes when its snake_case buffer holds it. */
static const ProtobufCFieldDescriptor *jf_field(const ProtobufCMessageDescriptor *desc,
                                                const uint8_t *key, size_t n)
{
    const ProtobufCFieldDescriptor *f = jf_by_name(desc, key, n, false);
    if (f)
        return f;
    size_t upper = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o + 3 >= 96) /* jfield's check before each character */
            return NULL;
        bool up = key[i] >= 'A' && key[i] <= 'Z';
        upper += up;
        o += up ? 2 : 1;
    }
    /* Without capitals the snake_case reading is the key itself: not found. */
    return upper ? jf_by_name(desc, key, n, true) : NULL;
}

static int jf_message(struct jf *c, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
                      const struct jf_path *path);

/* jint over a number token or a string's raw bytes (no escapes). */
static int jf_int(const uint8_t *tok, size_t n, bool is_signed, int64_t *s, uint64_t *u)
{
    bool neg = n > 0 && tok[0] == '-';
    uint64_t mag;
    if (!jf_digits(tok + neg, n - neg, &mag))
        return JF_DECLINE;
    if (neg) {
        /* The token cannot be "-0" (jf_number); the string "-0" is 0. */
        if (!is_signed || mag > (uint64_t)INT64_MAX + 1)
            return JF_DECLINE;
        *s = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
        return 0;
    }
    if (is_signed && mag > (uint64_t)INT64_MAX)
        return JF_DECLINE;
    *s = (int64_t)mag;
    *u = mag;
    return 0;
}

/* A JSON number as a double, as json_object_get_double gives it. */
static int jf_double(const uint8_t *tok, size_t n, bool is_int, double *out)
{
    if (is_int) {
        /* json-c keeps integers as int64 (negative, or up to INT64_MAX) or
         * uint64; get_double converts that integer. */
        bool neg = tok[0] == '-';
        uint64_t mag;
        if (!jf_digits(tok + neg, n - neg, &mag) || (neg && mag > (uint64_t)INT64_MAX + 1))
            return JF_DECLINE;
        *out = neg ? (mag == (uint64_t)INT64_MAX + 1 ? (double)INT64_MIN : (double)-(int64_t)mag)
                   : (double)mag;
        return 0;
    }
    char buf[64];
    if (n >= sizeof(buf))
        return JF_DECLINE;
    memcpy(buf, tok, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + n || errno == ERANGE || !isfinite(d))
        return JF_DECLINE;
    *out = d;
    return 0;
}

/* One value (not null) for field f into dst (NULL in the validating pass):
 * jvalue's conversions. */
static int jf_value(struct jf *c, const ProtobufCFieldDescriptor *f, void *dst,
                    const struct jf_path *path)
{
    const uint8_t *s;
    size_t n;
    bool esc, is_int;
    int64_t sv = 0;
    uint64_t uv = 0;
    int rc;
    if (c->p >= c->end)
        return JF_DECLINE;
    uint8_t ch = *c->p;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        if (ch != '{')
            return JF_DECLINE;
        return jf_message(c, f->descriptor, dst, path);
    case PROTOBUF_C_TYPE_STRING: {
        if (ch != '"' || (rc = jf_string(c, &s, &n, &esc)))
            return JF_DECLINE;
        if (!dst)
            return 0;
        char *str;
        if (!esc) {
            str = sp_arena_strndup(c->arena, (const char *)s, n);
        } else {
            size_t un = jf_unescape(s, n, NULL);
            str = sp_arena_alloc(c->arena, un + 1);
            if (str) {
                jf_unescape(s, n, str);
                str[un] = '\0';
            }
        }
        if (!str)
            return jf_nomem(c, path);
        *(char **)dst = str;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (ch != '"' || jf_string(c, &s, &n, &esc) || esc)
            return JF_DECLINE;
        ProtobufCBinaryData *bd = dst;
        if (jis_hex_id(f)) {
            if (n % 2)
                return JF_DECLINE;
            for (size_t i = 0; i < n; i++)
                if (jhexval((char)s[i]) < 0)
                    return JF_DECLINE;
            if (!bd)
                return 0;
            bd->len = n / 2;
            bd->data = NULL;
            if (n == 0)
                return 0;
            if (!(bd->data = sp_arena_alloc(c->arena, n / 2)))
                return jf_nomem(c, path);
            for (size_t i = 0; i < n / 2; i++)
                bd->data[i] = (uint8_t)(jhexval((char)s[2 * i]) << 4 | jhexval((char)s[2 * i + 1]));
            return 0;
        }
        while (n > 0 && s[n - 1] == '=')
            n--;
        if (n % 4 == 1)
            return JF_DECLINE;
        for (size_t i = 0; i < n; i++)
            if (jb64val((char)s[i]) < 0)
                return JF_DECLINE;
        if (!bd)
            return 0;
        uint8_t *d = sp_arena_alloc(c->arena, n * 3 / 4 + 1);
        if (!d)
            return jf_nomem(c, path);
        size_t o = 0;
        uint32_t acc = 0;
        int bits = 0;
        for (size_t i = 0; i < n; i++) {
            acc = acc << 6 | (uint32_t)jb64val((char)s[i]);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                d[o++] = (uint8_t)(acc >> bits);
            }
        }
        bd->data = o ? d : NULL;
        bd->len = o;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        bool v;
        if (jf_literal(c, "true", 4))
            v = true;
        else if (jf_literal(c, "false", 5))
            v = false;
        else
            return JF_DECLINE;
        if (dst)
            *(protobuf_c_boolean *)dst = v ? 1 : 0;
        return 0;
    }
    case PROTOBUF_C_TYPE_ENUM:
        if (ch == '"') {
            char name[64];
            if (jf_string(c, &s, &n, &esc) || esc || n >= sizeof(name))
                return JF_DECLINE;
            memcpy(name, s, n);
            name[n] = '\0';
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, name);
            if (!ev)
                return JF_DECLINE; /* the tree path then reads it as an integer, or fails */
            if (dst)
                *(int32_t *)dst = ev->value;
            return 0;
        }
        /* Otherwise an integer, as below. */
        /* fall through */
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        bool is_signed = f->type != PROTOBUF_C_TYPE_UINT32 && f->type != PROTOBUF_C_TYPE_FIXED32 &&
                         f->type != PROTOBUF_C_TYPE_UINT64 && f->type != PROTOBUF_C_TYPE_FIXED64;
        if (ch == '"') {
            if (jf_string(c, &s, &n, &esc) || esc)
                return JF_DECLINE;
        } else if (jf_number(c, &s, &n, &is_int) || !is_int) {
            return JF_DECLINE; /* 1.0 or 1e3 for an integer: left to the tree path */
        }
        if (jf_int(s, n, is_signed, &sv, &uv))
            return JF_DECLINE;
        switch (f->type) {
        case PROTOBUF_C_TYPE_ENUM:
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
            if (sv < INT32_MIN || sv > INT32_MAX)
                return JF_DECLINE;
            if (dst)
                *(int32_t *)dst = (int32_t)sv;
            return 0;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            if (uv > UINT32_MAX)
                return JF_DECLINE;
            if (dst)
                *(uint32_t *)dst = (uint32_t)uv;
            return 0;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            if (dst)
                *(uint64_t *)dst = uv;
            return 0;
        default:
            if (dst)
                *(int64_t *)dst = sv;
            return 0;
        }
    }
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double d;
        if (ch == '"' || jf_number(c, &s, &n, &is_int) || jf_double(s, n, is_int, &d))
            return JF_DECLINE; /* "NaN", "Infinity" and numbers in strings: tree path */
        if (dst && f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)dst = (float)d;
        else if (dst)
            *(double *)dst = d;
        return 0;
    }
    }
    return JF_DECLINE;
}

/* The array for repeated field f of msg (NULL in the validating pass). */
static int jf_repeated(struct jf *c, const ProtobufCFieldDescriptor *f, void *msg,
                       const struct jf_path *path)
{
    size_t esz = jelem_size(f->type), n = 0, slot = 0;
    char *arr = NULL;
    int rc;
    if (c->p >= c->end || *c->p != '[')
        return JF_DECLINE;
    if (!msg) {
        /* Reserve this array's place in the counts: arrays are numbered in
         * the order they start, in both passes. */
        if (c->n_counts == c->cap_counts) {
            size_t cap = c->cap_counts * 2;
            size_t *nc = c->counts == c->counts0 ? malloc(cap * sizeof(*nc))
                                                  : realloc(c->counts, cap * sizeof(*nc));
            if (!nc)
                return JF_DECLINE;
            if (c->counts == c->counts0)
                memcpy(nc, c->counts0, sizeof(c->counts0));
            c->counts = nc;
            c->cap_counts = cap;
        }
        slot = c->n_counts++;
    } else {
        n = c->counts[c->next_count++];
        arr = n ? sp_arena_calloc(c->arena, n, esz) : NULL;
        if (n && !arr)
            return jf_nomem(c, path);
    }
    if (++c->depth > JF_MAX_DEPTH)
        return JF_DECLINE;
    c->cost += 400;
    c->p++;
    jf_ws(c);
    size_t i = 0;
    if (c->p < c->end && *c->p == ']') {
        c->p++;
    } else {
        for (;; i++) {
            struct jf_path ip = {.up = path, .key = NULL, .idx = (long)i};
            void *slot_p = arr ? arr + i * esz : NULL;
            if (jf_literal(c, "null", 4)) {
                /* null in a list of messages: an empty message, never a NULL slot */
                if (f->type == PROTOBUF_C_TYPE_MESSAGE && arr) {
                    const ProtobufCMessageDescriptor *md = f->descriptor;
                    ProtobufCMessage *m = sp_arena_alloc(c->arena, md->sizeof_message);
                    if (!m)
                        return jf_nomem(c, &ip);
                    protobuf_c_message_init(md, m);
                    *(ProtobufCMessage **)slot_p = m;
                } else if (f->type == PROTOBUF_C_TYPE_STRING && arr) {
                    *(char **)slot_p = (char *)"";
                }
            } else if ((rc = jf_value(c, f, slot_p, &ip))) {
                return rc;
            }
            jf_ws(c);
            if (c->p < c->end && *c->p == ',') {
                c->cost += 64;
                c->p++;
                jf_ws(c);
                continue;
            }
            if (c->p < c->end && *c->p == ']') {
                c->p++;
                i++;
                break;
            }
            return JF_DECLINE;
        }
    }
    c->depth--;
    if (!msg) {
        c->counts[slot] = i;
        return 0;
    }
    *(size_t *)((char *)msg + f->quantifier_offset) = n;
    *(void **)((char *)msg + f->offset) = arr;
    return 0;
}

/* The object at c->p as a message of type desc: jmessage's walk. *out is
 * only written in the building pass (out is NULL in the validating one). */
static int jf_message(struct jf *c, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
                      const struct jf_path *path)
{
    ProtobufCMessage *m = NULL;
    uint64_t seen = 0;
    int rc;
    if (out) {
        m = sp_arena_alloc(c->arena, desc->sizeof_message);
        if (!m)
            return jf_nomem(c, path);
        protobuf_c_message_init(desc, m);
        *out = m;
    }
    if (++c->depth > JF_MAX_DEPTH)
        return JF_DECLINE;
    c->cost += 800;
    c->p++;
    jf_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        c->depth--;
        return 0;
    }
    for (;;) {
        const uint8_t *key;
        size_t klen;
        bool esc;
        if (c->p >= c->end || *c->p != '"' || jf_string(c, &key, &klen, &esc) || esc)
            return JF_DECLINE;
        const ProtobufCFieldDescriptor *f;
        struct jf_key *ck = &c->keys[(((uintptr_t)desc >> 4) + klen * 7 +
                                      (klen ? key[0] + key[klen - 1] * 3u : 0)) & 63];
        if (ck->desc == desc && ck->n == klen && memcmp(ck->key, key, klen) == 0) {
            f = ck->f;
        } else {
            f = jf_field(desc, key, klen);
            *ck = (struct jf_key){.desc = desc, .key = key, .n = klen, .f = f};
        }
        jf_ws(c);
        if (c->p >= c->end || *c->p != ':')
            return JF_DECLINE;
        c->cost += 64;
        c->p++;
        jf_ws(c);
        if (!f) {
            if ((rc = jf_skip(c)))
                return rc; /* unknown keys are ignored */
        } else {
            /* A field named twice (same key, or proto and JSON name): json-c
             * keeps the first key's place with the last value, which a
             * single pass cannot see coming. */
            size_t fidx = (size_t)(f - desc->fields);
            if (fidx >= 64 || (seen & (uint64_t)1 << fidx))
                return JF_DECLINE;
            seen |= (uint64_t)1 << fidx;
            if (!jf_literal(c, "null", 4)) { /* null means the default */
                struct jf_path kp = {.up = path, .key = (const char *)key, .key_len = klen};
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                    rc = jf_repeated(c, f, m, &kp);
                } else {
                    rc = jf_value(c, f, m ? (char *)m + f->offset : NULL, &kp);
                    if (rc == 0 && m && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                        *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
                    else if (rc == 0 && m && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                             f->quantifier_offset)
                        *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
                }
                if (rc)
                    return rc;
            }
        }
        jf_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->cost += 64;
            c->p++;
            jf_ws(c);
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            c->depth--;
            return 0;
        }
        return JF_DECLINE;
    }
}

int sp_otlp_decode_json_stream(struct sp_arena *arena, const uint8_t *data, size_t len,
                               sp_otlp_request **out, struct sp_err *err)
{
    const ProtobufCMessageDescriptor *desc =
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    struct jf c;
    memset(&c, 0, sizeof(c));
    c.p = data;
    c.end = data + len;
    c.err = err;
    c.cap_counts = 128;
    c.counts = c.counts0;
    int rc = JF_DECLINE;
    jf_ws(&c);
    if (c.p < c.end && *c.p == '{' && jf_message(&c, desc, NULL, NULL) == 0) {
        jf_ws(&c);
        rc = c.p == c.end ? 0 : JF_DECLINE;
    }
    if (rc == 0) {
        /* The tree path's checks before parsing, on the same figures. */
        size_t est = c.cost + len;
        if (est > SP_OTLP_JSON_MAX_TREE)
            rc = sp_err_set(err, SP_ETOOBIG,
                            "JSON body of %zu bytes has too many objects and arrays: parsing it "
                            "would take about %zu MiB, over the limit of %zu MiB",
                            len, est >> 20, SP_OTLP_JSON_MAX_TREE >> 20);
        else if (len > INT32_MAX)
            rc = sp_err_set(err, SP_ETOOBIG, "JSON body of %zu bytes is too large", len);
    }
    if (rc == 0) {
        ProtobufCMessage *m = NULL;
        c.p = data;
        c.arena = arena;
        c.depth = 0;
        jf_ws(&c);
        rc = jf_message(&c, desc, &m, NULL);
        if (rc == JF_DECLINE) /* cannot happen: the same walk took it once */
            rc = sp_err_set(err, SP_EDECODE, "JSON decoder passes disagree");
        else if (rc == 0)
            *out = (sp_otlp_request *)m;
    }
    if (c.counts != c.counts0)
        free(c.counts);
    return rc;
}

int sp_otlp_decode_json_tree(struct sp_arena *arena, const uint8_t *data, size_t len,
                             sp_otlp_request **out, struct sp_err *err)
{
    size_t est = jestimate_tree(data, len);
    if (est > SP_OTLP_JSON_MAX_TREE)
        return sp_err_set(err, SP_ETOOBIG,
                          "JSON body of %zu bytes has too many objects and arrays: parsing it "
                          "would take about %zu MiB, over the limit of %zu MiB",
                          len, est >> 20, SP_OTLP_JSON_MAX_TREE >> 20);
    if (len > INT32_MAX)
        return sp_err_set(err, SP_ETOOBIG, "JSON body of %zu bytes is too large", len);
    struct json_tokener *tok = json_tokener_new_ex(SP_OTLP_MAX_JSON_DEPTH);
    if (!tok)
        return sp_err_set(err, SP_ENOMEM, "out of memory creating a JSON parser");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                    JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tok, (const char *)data, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (jerr == json_tokener_continue || (!root && jerr == json_tokener_success)) {
        json_object_put(root);
        return sp_err_set(err, SP_EDECODE, "invalid JSON: body ends before the JSON value does");
    }
    if (jerr != json_tokener_success) {
        json_object_put(root);
        return sp_err_set(err, SP_EDECODE, "invalid JSON at byte %zu: %s", end,
                          json_tokener_error_desc(jerr));
    }
    for (size_t i = end; i < len; i++) {
        if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' && data[i] != '\n') {
            json_object_put(root);
            return sp_err_set(err, SP_EDECODE, "invalid JSON: unexpected data at byte %zu after "
                              "the request object", i);
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        int rc = sp_err_set(err, SP_EDECODE, "request must be a JSON object, got %s", jtype(root));
        json_object_put(root);
        return rc;
    }
    struct otlp_jctx c = {.arena = arena, .err = err};
    c.path[0] = '\0';
    ProtobufCMessage *m = NULL;
    const ProtobufCMessageDescriptor *desc =
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    int rc = jmessage(&c, desc, root, &m);
    json_object_put(root);
    if (rc)
        return rc;
    *out = (sp_otlp_request *)m;
    return 0;
}

int sp_otlp_decode_json(struct sp_arena *arena, const uint8_t *data, size_t len,
                        sp_otlp_request **out, struct sp_err *err)
{
    int rc = sp_otlp_decode_json_stream(arena, data, len, out, err);
    if (rc != SP_OTLP_JSON_DECLINED)
        return rc;
    return sp_otlp_decode_json_tree(arena, data, len, out, err);
}
