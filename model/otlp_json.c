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

/* Transient json-c memory one decode may need (estimated, see above). */
#define SP_OTLP_JSON_MAX_TREE ((size_t)256 << 20)

struct otlp_jctx {
    struct sp_arena *arena;
    struct sp_err *err;
    char path[200];
    size_t path_len;
};

static size_t jpath_push(struct otlp_jctx *c, const char *key, long idx)
{
    size_t old = c->path_len;
    size_t room = sizeof(c->path) - old;
    int n = idx >= 0 ? snprintf(c->path + old, room, "[%ld]", idx)
                     : snprintf(c->path + old, room, "%s%s", old ? "." : "", key);
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
        size_t old = jpath_push(c, NULL, (long)i);
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
        size_t old = jpath_push(c, key, -1);
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

int sp_otlp_decode_json(struct sp_arena *arena, const uint8_t *data, size_t len,
                        sp_otlp_request **out, struct sp_err *err)
{
    return sp_otlp_decode_json_msg(arena, sp_otlp_request_desc(SP_SIGNAL_TRACES), data, len,
                                   (ProtobufCMessage **)out, err);
}

int sp_otlp_decode_json_msg(struct sp_arena *arena, const ProtobufCMessageDescriptor *desc,
                            const uint8_t *data, size_t len, ProtobufCMessage **out,
                            struct sp_err *err)
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
    int rc = jmessage(&c, desc, root, &m);
    json_object_put(root);
    if (rc)
        return rc;
    *out = m;
    return 0;
}
