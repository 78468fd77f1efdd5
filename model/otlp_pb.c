/* OTLP protobuf on the wire: the wire check that runs before protobuf-c
 * (metrics and logs), and the single-pass decoder that replaces check and
 * protobuf-c for traces, the hot path (see otlp_codec.h).
 *
 * Why not protobuf_c_message_unpack() alone: it recurses once per nested
 * message with no depth limit (a few bytes per level are enough to exhaust
 * the stack) and says nothing about what failed. The wire check walks the
 * same bytes with the same descriptors, iteratively bounded by
 * SP_OTLP_MAX_PB_DEPTH, and names the field path and byte offset of the
 * first problem; protobuf-c then only decodes input already known good.
 *
 * Why a decoder of our own for traces: check plus unpack cost ~24k
 * instructions per span, a quarter of the whole pipeline (bench/RESULTS.md):
 * two walks over the bytes, protobuf-c's own two passes per message (a scan
 * that records every field, then the parse), and one allocator call per
 * message, string, array and scan slab. sp_otlp_pb_decode walks the bytes
 * once, with the check's explicit stack, depth limit and error messages, and
 * fills the very structs protobuf-c would (same descriptors, same field
 * semantics: unknown fields kept for re-packing, last value wins for a
 * scalar, a singular message given twice merged as protobuf-c's
 * merge_messages() does, packed and unpacked repeated scalars, oneof last
 * wins, NUL-terminated string copies, NULL for empty bytes), bump-allocating
 * from 4-64 KiB chunks of the batch arena (so its limit and memory charge
 * hold). Repeated fields grow by doubling (no counting pass), so arrays may
 * hold up to twice their elements' room. Canonical attributes (a KeyValue of
 * a scalar AnyValue) are decoded without stack frames of their own. The
 * check and the decoder share the field reader and the error messages.
 * tests/fuzz/fuzz_otlp_trace_decode.c holds it to protobuf-c: both accept or
 * both refuse every input, and what both accept packs to the same bytes. */
#include "otlp_codec.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "sp_assert.h"

/* ---- field paths for messages ------------------------------------------ */

struct otlp_path {
    char buf[200];
    size_t len;
};

/* Appends ".name" (or "name" at the root) and "[idx]" when idx >= 0. A path
 * that no longer fits ends in "..." rather than being cut mid-name. Only
 * used to report an error (see otlp_pb_path). */
static void otlp_path_push(struct otlp_path *p, const char *name, long idx)
{
    size_t old = p->len;
    size_t room = sizeof(p->buf) - p->len;
    int n;
    if (idx >= 0)
        n = snprintf(p->buf + p->len, room, "%s%s[%ld]", p->len ? "." : "", name, idx);
    else
        n = snprintf(p->buf + p->len, room, "%s%s", p->len ? "." : "", name);
    if (n < 0 || (size_t)n >= room) {
        if (sizeof(p->buf) - old > 4) {
            memcpy(p->buf + old, "...", 4);
            p->len = old + 3;
        }
        return;
    }
    p->len += (size_t)n;
}

static const char *otlp_path_str(const struct otlp_path *p)
{
    return p->len ? p->buf : "(request)";
}

/* ---- protobuf wire check ------------------------------------------------ */

enum { WT_VARINT = 0, WT_64BIT = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_32BIT = 5 };

static const char *otlp_wt_name(unsigned wt)
{
    switch (wt) {
    case WT_VARINT: return "varint";
    case WT_64BIT: return "64-bit";
    case WT_LEN: return "length-delimited";
    case WT_SGROUP: return "start-group";
    case WT_EGROUP: return "end-group";
    case WT_32BIT: return "32-bit";
    default: return "invalid";
    }
}

/* 0 and the value, or -1 when the varint is truncated or over 10 bytes. */
static int otlp_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (*pos >= len)
            return -1;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* The wire type each field type travels in (a table: the decoder asks once
 * per field). */
static const uint8_t otlp_type_wt[PROTOBUF_C_TYPE_MESSAGE + 1] = {
    [PROTOBUF_C_TYPE_INT32] = WT_VARINT,   [PROTOBUF_C_TYPE_SINT32] = WT_VARINT,
    [PROTOBUF_C_TYPE_SFIXED32] = WT_32BIT, [PROTOBUF_C_TYPE_INT64] = WT_VARINT,
    [PROTOBUF_C_TYPE_SINT64] = WT_VARINT,  [PROTOBUF_C_TYPE_SFIXED64] = WT_64BIT,
    [PROTOBUF_C_TYPE_UINT32] = WT_VARINT,  [PROTOBUF_C_TYPE_FIXED32] = WT_32BIT,
    [PROTOBUF_C_TYPE_UINT64] = WT_VARINT,  [PROTOBUF_C_TYPE_FIXED64] = WT_64BIT,
    [PROTOBUF_C_TYPE_FLOAT] = WT_32BIT,    [PROTOBUF_C_TYPE_DOUBLE] = WT_64BIT,
    [PROTOBUF_C_TYPE_BOOL] = WT_VARINT,    [PROTOBUF_C_TYPE_ENUM] = WT_VARINT,
    [PROTOBUF_C_TYPE_STRING] = WT_LEN,     [PROTOBUF_C_TYPE_BYTES] = WT_LEN,
    [PROTOBUF_C_TYPE_MESSAGE] = WT_LEN,
};

static inline unsigned otlp_expected_wt(ProtobufCType t)
{
    SP_ASSERT((unsigned)t <= PROTOBUF_C_TYPE_MESSAGE, "a protobuf-c field type this code knows");
    return otlp_type_wt[t];
}

/* One message level being walked: the explicit stack replaces recursion.
 * Nothing here is formatted while the input is good: a frame records how it
 * was entered (the parent's field and the byte of its tag) and the
 * human-readable path ("resource_spans[0].scope_spans[0].spans[3]") is
 * rebuilt from the frames only when a check fails. */
struct otlp_pb_frame {
    const ProtobufCMessageDescriptor *desc;
    size_t start;                           /* offset of this message's first byte */
    size_t end;                             /* offset just past its last byte */
    const ProtobufCFieldDescriptor *via;    /* the parent's field holding it (NULL: root) */
    size_t via_at;                          /* offset of that field's tag in the parent */
};

/* The field numbered num of desc, as protobuf_c_message_descriptor_get_field
 * returns it. Descriptors list their fields sorted by number and OTLP's are
 * numbered 1..n without gaps, so fields[num - 1] is nearly always it;
 * checking its id keeps any other layout correct via the library lookup. */
static inline const ProtobufCFieldDescriptor *otlp_pb_field(const ProtobufCMessageDescriptor *d,
                                                            uint64_t num)
{
    if (num - 1 < d->n_fields && d->fields[num - 1].id == num)
        return &d->fields[num - 1];
    return protobuf_c_message_descriptor_get_field(d, (unsigned)num);
}

/* What the error path needs to know about the fields of a message that
 * precede byte `at` (all already walked successfully): how many times field
 * number num occurred, and whether a nested message was entered and left. */
static void otlp_pb_scan(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t start,
                         size_t at, uint32_t num, long *count, bool *had_child)
{
    size_t pos = start;
    uint64_t tag, v;
    *count = 0;
    *had_child = false;
    while (pos < at) {
        if (otlp_varint(data, at, &pos, &tag))
            return;
        switch (tag & 7) {
        case WT_VARINT:
            otlp_varint(data, at, &pos, &v);
            break;
        case WT_64BIT:
            pos += 8;
            break;
        case WT_32BIT:
            pos += 4;
            break;
        default: { /* WT_LEN: the only other type a walked field can have */
            if (otlp_varint(data, at, &pos, &v))
                return;
            pos += (size_t)v;
            const ProtobufCFieldDescriptor *f = otlp_pb_field(desc, tag >> 3);
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE)
                *had_child = true;
            break;
        }
        }
        if ((tag >> 3) == num)
            ++*count;
    }
}

/* The index shown for field f of the message whose bytes start at `start`,
 * the field's tag being at byte `at`: how many times f occurred before, for
 * a repeated field with one of the first 32 field indexes ("spans[3]"); 0
 * for a repeated field past those; -1 (no index) otherwise. */
static long otlp_pb_index(const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *f,
                          const uint8_t *data, size_t start, size_t at)
{
    long n;
    bool had_child;
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return -1;
    if ((size_t)(f - desc->fields) >= 32)
        return 0;
    otlp_pb_scan(desc, data, start, at, f->id, &n, &had_child);
    return n;
}

/* The path of the message at stack[depth] (whose field with its tag at
 * byte `at` failed), then, when leaf is set, that field's name: the text
 * the check used to build as it went, made of the same pushes. One quirk
 * of that incremental text is kept so messages stay identical: a segment
 * pushed with no room left (past 196 characters) leaves its cut-off text
 * visible after the path until a nested message is left, whose pop ended
 * the string there again. */
static const char *otlp_pb_path(struct otlp_path *path, const struct otlp_pb_frame *stack,
                                int depth, const uint8_t *data, size_t at,
                                const ProtobufCFieldDescriptor *leaf)
{
    size_t before = 0;
    path->len = 0;
    path->buf[0] = '\0';
    for (int d = 1; d <= depth; d++) {
        const struct otlp_pb_frame *parent = &stack[d - 1];
        before = path->len;
        otlp_path_push(path, stack[d].via->name,
                       otlp_pb_index(parent->desc, stack[d].via, data, parent->start,
                                     stack[d].via_at));
    }
    if (depth > 0 && path->len == before && sizeof(path->buf) - before <= 4) {
        long n;
        bool had_child;
        otlp_pb_scan(stack[depth].desc, data, stack[depth].start, at, 0, &n, &had_child);
        if (had_child)
            path->buf[path->len] = '\0';
    }
    if (leaf)
        otlp_path_push(path, leaf->name,
                       otlp_pb_index(stack[depth].desc, leaf, data, stack[depth].start, at));
    return otlp_path_str(path);
}

static int otlp_pb_packed_ok(ProtobufCType t, const uint8_t *p, size_t len)
{
    switch (otlp_expected_wt(t)) {
    case WT_32BIT: return len % 4 == 0;
    case WT_64BIT: return len % 8 == 0;
    default: {
        size_t pos = 0;
        uint64_t v;
        while (pos < len)
            if (otlp_varint(p, len, &pos, &v))
                return 0;
        return 1;
    }
    }
}

/* One field's header and value bounds, as both walkers read them. */
struct otlp_pb_field {
    uint64_t num;     /* field number */
    uint64_t v;       /* a varint's value; a length-delimited value's length */
    unsigned wt;      /* wire type */
    size_t start;     /* byte of the tag */
    size_t after_tag; /* first byte after the tag (a length prefix for WT_LEN) */
    size_t val;       /* first byte of the value itself */
    size_t val_len;   /* bytes of the value (after any length prefix) */
    size_t left;      /* for OTLP_PB_LEN_PAST: bytes left in the message */
};

/* What can be wrong with a field; each has one message (otlp_pb_fail). */
enum otlp_pb_problem {
    OTLP_PB_OK = 0,
    OTLP_PB_TAG_TRUNC,
    OTLP_PB_TAG_LONG,
    OTLP_PB_FIELD_NUM,
    OTLP_PB_VARINT_TRUNC,
    OTLP_PB_FIXED_TRUNC,
    OTLP_PB_LEN_TRUNC,
    OTLP_PB_LEN_LONG,
    OTLP_PB_LEN_PAST,
    OTLP_PB_WT_UNSUPPORTED,
    OTLP_PB_WT_MISMATCH,
    OTLP_PB_PACKED_BAD,
    OTLP_PB_TOO_DEEP,
    OTLP_PB_PACKED, /* not a problem: a packed run of the field's scalars */
};

/* Reads the field starting at *pos, up to end. strict adds protobuf-c's
 * own limits, which the wire check (followed by protobuf-c) leaves to the
 * library: a tag or a length prefix in at most 5 bytes, a length under
 * 2 GiB. */
static inline enum otlp_pb_problem otlp_pb_read(const uint8_t *data, size_t end, size_t *pos,
                                                bool strict, struct otlp_pb_field *fl)
{
    size_t p = *pos;
    uint64_t tag;
    fl->start = p;
    fl->v = 0;
    /* One-byte tags (fields 1-15) are the rule: skip the loop for them. */
    if (data[p] < 0x80) {
        tag = data[p++];
    } else {
        if (otlp_varint(data, end, &p, &tag))
            return OTLP_PB_TAG_TRUNC;
        if (strict && p - fl->start > 5)
            return OTLP_PB_TAG_LONG;
    }
    fl->num = tag >> 3;
    fl->wt = (unsigned)(tag & 7);
    if (fl->num == 0 || fl->num > 536870911u)
        return OTLP_PB_FIELD_NUM;
    fl->after_tag = fl->val = p;
    switch (fl->wt) {
    case WT_VARINT:
        if (p < end && data[p] < 0x80)
            fl->v = data[p++];
        else if (otlp_varint(data, end, &p, &fl->v))
            return OTLP_PB_VARINT_TRUNC;
        fl->val_len = p - fl->val;
        break;
    case WT_64BIT:
    case WT_32BIT:
        fl->val_len = fl->wt == WT_64BIT ? 8 : 4;
        if (end - p < fl->val_len)
            return OTLP_PB_FIXED_TRUNC;
        p += fl->val_len;
        break;
    case WT_LEN:
        if (p < end && data[p] < 0x80) {
            fl->v = data[p++];
        } else {
            if (otlp_varint(data, end, &p, &fl->v))
                return OTLP_PB_LEN_TRUNC;
            if (strict && (p - fl->val > 5 || fl->v > INT_MAX))
                return OTLP_PB_LEN_LONG;
        }
        if (fl->v > end - p) {
            fl->left = end - p;
            return OTLP_PB_LEN_PAST;
        }
        fl->val = p;
        fl->val_len = (size_t)fl->v;
        p += fl->val_len;
        break;
    default:
        return OTLP_PB_WT_UNSUPPORTED;
    }
    *pos = p;
    return OTLP_PB_OK;
}

/* Whether the value fits its field f: OTLP_PB_OK, OTLP_PB_PACKED (a valid
 * packed run of a repeated scalar) or the problem. */
static inline enum otlp_pb_problem otlp_pb_fits(const ProtobufCFieldDescriptor *f,
                                                const struct otlp_pb_field *fl,
                                                const uint8_t *data)
{
    unsigned want = otlp_expected_wt(f->type);
    if (fl->wt == want)
        return OTLP_PB_OK;
    if (f->label != PROTOBUF_C_LABEL_REPEATED || fl->wt != WT_LEN || want == WT_LEN)
        return OTLP_PB_WT_MISMATCH;
    return otlp_pb_packed_ok(f->type, data + fl->val, fl->val_len) ? OTLP_PB_PACKED
                                                                   : OTLP_PB_PACKED_BAD;
}

/* The SP_EDECODE message of problem k of field fl (f: its descriptor, for
 * the problems found once it is known) in the message at path. */
static int otlp_pb_fail(struct sp_err *err, enum otlp_pb_problem k, const char *path,
                        const struct otlp_pb_field *fl, const ProtobufCFieldDescriptor *f)
{
    unsigned want = f ? otlp_expected_wt(f->type) : WT_VARINT;
    switch (k) {
    case OTLP_PB_TAG_TRUNC:
        return sp_err_set(err, SP_EDECODE, "'%s': truncated field tag at byte %zu", path,
                          fl->start);
    case OTLP_PB_TAG_LONG:
        return sp_err_set(err, SP_EDECODE, "'%s': field tag at byte %zu is longer than 5 bytes",
                          path, fl->start);
    case OTLP_PB_FIELD_NUM:
        return sp_err_set(err, SP_EDECODE, "'%s': invalid field number %" PRIu64 " at byte %zu",
                          path, fl->num, fl->start);
    case OTLP_PB_VARINT_TRUNC:
        return sp_err_set(err, SP_EDECODE, "'%s': field %" PRIu64 ": truncated varint at byte %zu",
                          path, fl->num, fl->after_tag);
    case OTLP_PB_FIXED_TRUNC:
        return sp_err_set(err, SP_EDECODE,
                          "'%s': field %" PRIu64 ": truncated %s value at byte %zu", path, fl->num,
                          otlp_wt_name(fl->wt), fl->after_tag);
    case OTLP_PB_LEN_TRUNC:
        return sp_err_set(err, SP_EDECODE, "'%s': field %" PRIu64 ": truncated length at byte %zu",
                          path, fl->num, fl->after_tag);
    case OTLP_PB_LEN_LONG:
        return sp_err_set(err, SP_EDECODE,
                          "'%s': field %" PRIu64 ": length at byte %zu is over 5 bytes or 2 GiB",
                          path, fl->num, fl->after_tag);
    case OTLP_PB_LEN_PAST:
        return sp_err_set(err, SP_EDECODE,
                          "'%s': field %" PRIu64 ": length %" PRIu64
                          " at byte %zu runs past the end of its message (%zu bytes left)",
                          path, fl->num, fl->v, fl->after_tag, fl->left);
    case OTLP_PB_WT_UNSUPPORTED:
        return sp_err_set(err, SP_EDECODE,
                          "'%s': field %" PRIu64 ": unsupported wire type %u (%s) at byte %zu",
                          path, fl->num, fl->wt, otlp_wt_name(fl->wt), fl->start);
    case OTLP_PB_WT_MISMATCH:
        return sp_err_set(err, SP_EDECODE,
                          "'%s': wire type %u (%s) at byte %zu where %s was expected", path,
                          fl->wt, otlp_wt_name(fl->wt), fl->start,
                          want == WT_LEN ? "a length-delimited value"
                                         : want == WT_VARINT ? "a varint" : "a fixed-size value");
    case OTLP_PB_PACKED_BAD:
        return sp_err_set(err, SP_EDECODE, "'%s': malformed packed values at byte %zu", path,
                          fl->val);
    case OTLP_PB_TOO_DEEP:
        return sp_err_set(err, SP_EDECODE, "'%s': messages nested deeper than %d levels", path,
                          SP_OTLP_MAX_PB_DEPTH);
    default:
        SP_ASSERT(0, "otlp_pb_fail called with a problem it has no message for");
        return SP_EDECODE;
    }
}

/* The leaf named in a problem's path: the field, once it is known. */
static bool otlp_pb_names_field(enum otlp_pb_problem k)
{
    return k == OTLP_PB_WT_MISMATCH || k == OTLP_PB_PACKED_BAD || k == OTLP_PB_TOO_DEEP;
}

int sp_otlp_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                     struct sp_err *err)
{
    struct otlp_pb_frame stack[SP_OTLP_MAX_PB_DEPTH];
    struct otlp_path path;
    int depth = 0;
    size_t pos = 0;

    stack[0] = (struct otlp_pb_frame){.desc = desc, .start = 0, .end = len};
    for (;;) {
        struct otlp_pb_frame *fr = &stack[depth];
        if (pos == fr->end) {
            if (depth == 0)
                return 0;
            depth--;
            continue;
        }
        struct otlp_pb_field fl;
        const ProtobufCFieldDescriptor *f = NULL;
        enum otlp_pb_problem k = otlp_pb_read(data, fr->end, &pos, false, &fl);
        if (k == OTLP_PB_OK) {
            f = otlp_pb_field(fr->desc, fl.num);
            if (!f)
                continue; /* unknown fields are kept by protobuf-c, whatever they hold */
            k = otlp_pb_fits(f, &fl, data);
            if (k == OTLP_PB_OK && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                depth + 1 >= SP_OTLP_MAX_PB_DEPTH)
                k = OTLP_PB_TOO_DEEP;
        }
        if (k == OTLP_PB_PACKED)
            continue;
        if (k != OTLP_PB_OK)
            return otlp_pb_fail(err, k,
                                otlp_pb_path(&path, stack, depth, data, fl.start,
                                             otlp_pb_names_field(k) ? f : NULL),
                                &fl, f);
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        depth++;
        stack[depth] = (struct otlp_pb_frame){.desc = f->descriptor,
                                              .start = fl.val,
                                              .end = fl.val + fl.val_len,
                                              .via = f,
                                              .via_at = fl.start};
        pos = fl.val;
    }
}

/* ---- the single-pass decoder --------------------------------------------- */

/* Bump allocation from chunks of the arena: a call to sp_arena_alloc per
 * string and struct costs more than the decoding around it. Chunks grow
 * from 4 KiB to 64 KiB; a value over a quarter of a chunk gets an arena
 * allocation of its own, so a chunk's unused tail stays small. Everything
 * still comes from the arena, so its limit and memory charge apply. */
#define PBD_FIRST_CHUNK 4096
#define PBD_MAX_CHUNK (64u << 10)

struct pbd_mem {
    struct sp_arena *arena;
    uint8_t *cur, *end;
    size_t chunk;
};

static void *pbd_alloc_slow(struct pbd_mem *m, size_t n)
{
    if (n > m->chunk / 4)
        return sp_arena_alloc(m->arena, n);
    uint8_t *p = sp_arena_alloc(m->arena, m->chunk);
    if (!p)
        return sp_arena_alloc(m->arena, n); /* near the limit: the exact size may fit */
    m->cur = p + n;
    m->end = p + m->chunk;
    if (m->chunk < PBD_MAX_CHUNK)
        m->chunk *= 2;
    return p;
}

/* n bytes aligned for any protobuf-c struct (8 bytes). */
static inline void *pbd_alloc(struct pbd_mem *m, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + 7) & ~(size_t)7;
    if ((size_t)(m->end - m->cur) < n)
        return pbd_alloc_slow(m, n);
    void *p = m->cur;
    m->cur += n;
    return p;
}

/* Room in bytes of one element of a repeated field, as protobuf-c lays it
 * out (its sizeof_elt_in_repeated_array). */
static const uint8_t pbd_elt[PROTOBUF_C_TYPE_MESSAGE + 1] = {
    [PROTOBUF_C_TYPE_INT32] = 4,    [PROTOBUF_C_TYPE_SINT32] = 4,
    [PROTOBUF_C_TYPE_SFIXED32] = 4, [PROTOBUF_C_TYPE_INT64] = 8,
    [PROTOBUF_C_TYPE_SINT64] = 8,   [PROTOBUF_C_TYPE_SFIXED64] = 8,
    [PROTOBUF_C_TYPE_UINT32] = 4,   [PROTOBUF_C_TYPE_FIXED32] = 4,
    [PROTOBUF_C_TYPE_UINT64] = 8,   [PROTOBUF_C_TYPE_FIXED64] = 8,
    [PROTOBUF_C_TYPE_FLOAT] = 4,    [PROTOBUF_C_TYPE_DOUBLE] = 8,
    [PROTOBUF_C_TYPE_BOOL] = sizeof(protobuf_c_boolean),
    [PROTOBUF_C_TYPE_ENUM] = 4,     [PROTOBUF_C_TYPE_STRING] = sizeof(char *),
    [PROTOBUF_C_TYPE_BYTES] = sizeof(ProtobufCBinaryData),
    [PROTOBUF_C_TYPE_MESSAGE] = sizeof(ProtobufCMessage *),
};

static inline size_t pbd_elt_size(ProtobufCType t)
{
    return pbd_elt[t]; /* t checked by otlp_expected_wt first */
}

/* A repeated field holding n elements has room for pbd_cap(n): 0, then
 * powers of two from 4. Arrays are only ever grown by pbd_room, so the room
 * follows from the count and needs no field of its own. */
static size_t pbd_cap(size_t n)
{
    size_t c = 4;
    if (n == 0)
        return 0;
    while (c < n)
        c <<= 1;
    return c;
}

/* The address of element n of *arr after making room for `add` more. */
static void *pbd_room(struct pbd_mem *m, void **arr, size_t n, size_t add, size_t el)
{
    if (n + add > pbd_cap(n)) {
        size_t cap = pbd_cap(n + add);
        if (cap < n + add || cap > SIZE_MAX / el)
            return NULL;
        void *a = pbd_alloc(m, cap * el);
        if (!a)
            return NULL;
        if (n)
            memcpy(a, *arr, n * el);
        *arr = a;
    }
    return (char *)*arr + n * el;
}

/* Element n of a repeated field: the common case (room left) inline. */
static inline void *pbd_append(struct pbd_mem *m, void **arr, size_t n, size_t el)
{
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return (char *)*arr + n * el;
    return pbd_room(m, arr, n, 1, el);
}

static ProtobufCMessage *pbd_new(struct pbd_mem *m, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *msg = pbd_alloc(m, desc->sizeof_message);
    if (!msg)
        return NULL;
    if (desc->message_init) /* the generated initialiser, without the library's wrapper */
        desc->message_init(msg);
    else
        protobuf_c_message_init(desc, msg);
    return msg;
}

/* A varint scalar as protobuf-c stores it (parse_required_member):
 * 32-bit types keep the low 32 bits, sint types unzigzag, a bool is true
 * when any payload bit of its bytes is set (even past bit 63). */
static inline void pbd_store_varint(ProtobufCType t, void *member, uint64_t v, const uint8_t *raw,
                                    size_t n)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SINT32: {
        uint32_t u = (uint32_t)v;
        *(int32_t *)member = (int32_t)((u >> 1) ^ -(u & 1));
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        *(uint64_t *)member = v;
        break;
    case PROTOBUF_C_TYPE_SINT64:
        *(int64_t *)member = (int64_t)((v >> 1) ^ -(v & 1));
        break;
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean b = 0;
        for (size_t i = 0; i < n; i++)
            b |= (raw[i] & 0x7f) != 0;
        *(protobuf_c_boolean *)member = b;
        break;
    }
    default: /* int32, uint32, enum */
        *(uint32_t *)member = (uint32_t)v;
        break;
    }
}

/* The elements of a packed repeated scalar (already checked by
 * otlp_pb_packed_ok) appended to the field. 0 or SP_ENOMEM. */
static int pbd_packed(struct pbd_mem *m, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                      const uint8_t *p, size_t len)
{
    size_t *n = (size_t *)((char *)msg + f->quantifier_offset);
    void **arr = (void **)((char *)msg + f->offset);
    size_t el = pbd_elt_size(f->type);
    unsigned wt = otlp_expected_wt(f->type);
    size_t count = 0;
    if (wt != WT_VARINT) {
        count = len / el;
    } else {
        for (size_t i = 0; i < len; i++)
            count += !(p[i] & 0x80);
    }
    if (count == 0)
        return 0;
    uint8_t *out = pbd_room(m, arr, *n, count, el);
    if (!out)
        return SP_ENOMEM;
    if (wt != WT_VARINT) {
        memcpy(out, p, count * el); /* little-endian, as protobuf-c's no_unpacking_needed */
    } else {
        size_t pos = 0;
        for (size_t i = 0; i < count; i++) {
            size_t at = pos;
            uint64_t v = 0;
            otlp_varint(p, len, &pos, &v);
            pbd_store_varint(f->type, out + i * el, v, p + at, pos - at);
        }
    }
    *n += count;
    return 0;
}

/* protobuf-c's merge_messages(earlier, latter), for a singular message
 * field given twice: latter's repeated fields get earlier's elements in
 * front; latter keeps its own singular values, except that a string still
 * at its default, bytes with no data, an absent message (or one merged in
 * turn) and an unset oneof take earlier's. Plain proto3 scalars (no
 * has-flag) keep latter's value even when latter did not send one: the
 * library compares the messages' descriptor words there, always equal.
 * Unknown fields of earlier are dropped. Returns 0, SP_ENOMEM, or
 * SP_EDECODE where protobuf-c fails: a oneof set in neither message. */
static int pbd_merge(struct pbd_mem *m, ProtobufCMessage *e, ProtobufCMessage *l)
{
    const ProtobufCMessageDescriptor *desc = l->descriptor;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t *ne = (size_t *)((char *)e + f->quantifier_offset);
            size_t *nl = (size_t *)((char *)l + f->quantifier_offset);
            void **pe = (void **)((char *)e + f->offset);
            void **pl = (void **)((char *)l + f->offset);
            if (*ne == 0)
                continue;
            if (*nl > 0) {
                size_t el = pbd_elt_size(f->type);
                if (*ne + *nl > SIZE_MAX / el)
                    return SP_ENOMEM;
                uint8_t *a = pbd_alloc(m, (*ne + *nl) * el);
                if (!a)
                    return SP_ENOMEM;
                memcpy(a, *pe, *ne * el);
                memcpy(a + *ne * el, *pl, *nl * el);
                *pl = a;
                *nl += *ne;
            } else {
                *pl = *pe;
                *nl = *ne;
            }
            *ne = 0;
            *pe = NULL;
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REQUIRED)
            continue;
        uint32_t *ecase = (uint32_t *)((char *)e + f->quantifier_offset);
        uint32_t *lcase = (uint32_t *)((char *)l + f->quantifier_offset);
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*lcase != 0)
                continue;
            f = protobuf_c_message_descriptor_get_field(desc, *ecase);
            if (!f)
                return SP_EDECODE;
        }
        void *em = (char *)e + f->offset;
        void *lm = (char *)l + f->offset;
        bool take = false;
        switch (f->type) {
        case PROTOBUF_C_TYPE_MESSAGE: {
            ProtobufCMessage *a = *(ProtobufCMessage **)em, *b = *(ProtobufCMessage **)lm;
            if (a && b) {
                int rc = pbd_merge(m, a, b);
                if (rc)
                    return rc;
            } else {
                take = a != NULL;
            }
            break;
        }
        case PROTOBUF_C_TYPE_BYTES: {
            const ProtobufCBinaryData *def = f->default_value;
            const uint8_t *a = ((ProtobufCBinaryData *)em)->data;
            const uint8_t *b = ((ProtobufCBinaryData *)lm)->data;
            take = a && (!def || a != def->data) && (!b || (def && b == def->data));
            break;
        }
        case PROTOBUF_C_TYPE_STRING: {
            const char *def = f->default_value;
            take = *(char **)em != def && *(char **)lm == def;
            break;
        }
        default:
            take = f->quantifier_offset && *ecase != 0 && *lcase == 0;
            break;
        }
        if (take) {
            size_t el = pbd_elt_size(f->type);
            memcpy(lm, em, el);
            memset(em, 0, el);
            if (f->quantifier_offset) {
                *lcase = *ecase;
                *ecase = 0;
            }
        }
    }
    return 0;
}

/* The common attribute, KeyValue{key, value: AnyValue{a string, bool,
 * int, double or bytes}}, written canonically (fields in order, one-byte
 * lengths, nothing else), decoded without frames of its own: half of a
 * span's fields are in its attributes. Anything else returns 0 and takes
 * the generic path, which holds the same result to protobuf-c's. 1 when
 * done, SP_ENOMEM. */
static int pbd_fast_kv(struct pbd_mem *m, const uint8_t *p, size_t n, ProtobufCMessage **out)
{
    if (n < 4 || p[0] != 0x0a || p[1] >= 0x80)
        return 0;
    size_t kl = p[1], i = 2 + kl;
    if (i + 2 > n || p[i] != 0x12 || p[i + 1] >= 0x80 || i + 2 + p[i + 1] != n || p[i + 1] < 2)
        return 0;
    const uint8_t *a = p + i + 2;
    size_t al = p[i + 1];
    switch (a[0]) {
    case 0x0a: /* string_value */
    case 0x3a: /* bytes_value */
        if (a[1] >= 0x80 || 2 + (size_t)a[1] != al)
            return 0;
        break;
    case 0x10: /* bool_value */
    case 0x18: /* int_value */
        if (al > 11 || a[al - 1] >= 0x80)
            return 0;
        for (size_t j = 1; j + 1 < al; j++)
            if (a[j] < 0x80)
                return 0;
        break;
    case 0x21: /* double_value */
        if (al != 9)
            return 0;
        break;
    default:
        return 0;
    }
    sp_otlp_kv *kv = pbd_alloc(m, sizeof(*kv));
    sp_otlp_any *any = pbd_alloc(m, sizeof(*any));
    char *key = pbd_alloc(m, kl + 1);
    if (!kv || !any || !key)
        return SP_ENOMEM;
    *kv = (sp_otlp_kv)OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    *any = (sp_otlp_any)OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    memcpy(key, p + 2, kl);
    key[kl] = '\0';
    kv->key = key;
    kv->value = any;
    any->value_case = a[0] >> 3;
    switch (a[0]) {
    case 0x0a: {
        char *v = pbd_alloc(m, al - 1);
        if (!v)
            return SP_ENOMEM;
        memcpy(v, a + 2, al - 2);
        v[al - 2] = '\0';
        any->string_value = v;
        break;
    }
    case 0x3a:
        any->bytes_value.len = al - 2;
        if (al > 2) {
            any->bytes_value.data = pbd_alloc(m, al - 2);
            if (!any->bytes_value.data)
                return SP_ENOMEM;
            memcpy(any->bytes_value.data, a + 2, al - 2);
        }
        break;
    case 0x21:
        memcpy(&any->double_value, a + 1, 8);
        break;
    default: {
        size_t pos = 1;
        uint64_t v = 0;
        otlp_varint(a, al, &pos, &v);
        pbd_store_varint(a[0] == 0x10 ? PROTOBUF_C_TYPE_BOOL : PROTOBUF_C_TYPE_INT64,
                         a[0] == 0x10 ? (void *)&any->bool_value : (void *)&any->int_value, v,
                         a + 1, al - 1);
        break;
    }
    }
    *out = &kv->base;
    return 1;
}

/* What the decoder knows of each level besides the check's frame. */
struct pbd_level {
    ProtobufCMessage *msg;
    ProtobufCMessage *earlier; /* same singular field's earlier message: merged at the end */
};

#define PBD_PATH(leaf) otlp_pb_path(&path, stack, depth, data, field_start, leaf)

int sp_otlp_pb_decode(struct sp_arena *arena, const ProtobufCMessageDescriptor *desc,
                      const uint8_t *data, size_t len, ProtobufCMessage **out, struct sp_err *err)
{
    struct otlp_pb_frame stack[SP_OTLP_MAX_PB_DEPTH];
    struct pbd_level lv[SP_OTLP_MAX_PB_DEPTH];
    struct otlp_path path;
    struct pbd_mem m = {.arena = arena, .chunk = PBD_FIRST_CHUNK};
    size_t before = sp_arena_bytes(arena);
    int depth = 0;
    size_t pos = 0, field_start = 0;

    stack[0] = (struct otlp_pb_frame){.desc = desc, .start = 0, .end = len};
    lv[0] = (struct pbd_level){.msg = pbd_new(&m, desc)};
    if (!lv[0].msg)
        goto nomem;
    for (;;) {
        struct otlp_pb_frame *fr = &stack[depth];
        ProtobufCMessage *msg = lv[depth].msg;
        if (pos == fr->end) {
            if (lv[depth].earlier) {
                int rc = pbd_merge(&m, lv[depth].earlier, msg);
                if (rc == SP_ENOMEM)
                    goto nomem;
                if (rc) {
                    field_start = fr->end;
                    return sp_err_set(err, SP_EDECODE,
                                      "'%s': message at byte %zu repeats a singular field where "
                                      "neither occurrence sets its oneof, which protobuf-c cannot "
                                      "merge", PBD_PATH(NULL), fr->via_at);
                }
            }
            if (depth == 0)
                break;
            depth--;
            continue;
        }
        struct otlp_pb_field fl;
        const ProtobufCFieldDescriptor *f = NULL;
        enum otlp_pb_problem k = otlp_pb_read(data, fr->end, &pos, true, &fl);
        field_start = fl.start;
        if (k != OTLP_PB_OK)
            return otlp_pb_fail(err, k, PBD_PATH(NULL), &fl, NULL);
        uint64_t num = fl.num, v = fl.v;
        unsigned wt = fl.wt;
        size_t after_tag = fl.after_tag, val_start = fl.val, val_len = fl.val_len;
        f = otlp_pb_field(fr->desc, num);
        if (!f) {
            /* Kept as protobuf-c keeps it: the value's bytes (with their
             * length prefix), re-packed after the known fields. */
            ProtobufCMessageUnknownField *u =
                pbd_append(&m, (void **)&msg->unknown_fields, msg->n_unknown_fields, sizeof(*u));
            if (!u)
                goto nomem;
            u->tag = (uint32_t)num;
            u->wire_type = (ProtobufCWireType)wt;
            u->len = pos - after_tag;
            u->data = pbd_alloc(&m, u->len);
            if (!u->data)
                goto nomem;
            memcpy(u->data, data + after_tag, u->len);
            msg->n_unknown_fields++;
            continue;
        }
        k = otlp_pb_fits(f, &fl, data);
        if (k == OTLP_PB_PACKED) {
            if (pbd_packed(&m, msg, f, data + val_start, val_len))
                goto nomem;
            continue;
        }
        if (k == OTLP_PB_OK && f->type == PROTOBUF_C_TYPE_MESSAGE &&
            depth + 1 >= SP_OTLP_MAX_PB_DEPTH)
            k = OTLP_PB_TOO_DEEP;
        if (k != OTLP_PB_OK)
            return otlp_pb_fail(err, k, PBD_PATH(f), &fl, f);

        void *member = (char *)msg + f->offset;
        ProtobufCMessage *earlier = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t *n = (size_t *)((char *)msg + f->quantifier_offset);
            member = pbd_append(&m, (void **)member, *n, pbd_elt_size(f->type));
            if (!member)
                goto nomem;
            ++*n;
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* Last one wins, whole: the earlier member is cleared first. */
            uint32_t *c = (uint32_t *)((char *)msg + f->quantifier_offset);
            if (*c != 0 && *c != num) {
                const ProtobufCFieldDescriptor *old =
                    protobuf_c_message_descriptor_get_field(fr->desc, *c);
                if (old)
                    memset(member, 0, pbd_elt_size(old->type));
            }
            *c = (uint32_t)num;
        } else {
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
                *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage **)member &&
                *(ProtobufCMessage **)member != f->default_value)
                earlier = *(ProtobufCMessage **)member;
        }

        switch (f->type) {
        case PROTOBUF_C_TYPE_MESSAGE: {
            if (f->descriptor == &opentelemetry__proto__common__v1__key_value__descriptor &&
                !earlier && depth + 2 < SP_OTLP_MAX_PB_DEPTH) {
                int rc = pbd_fast_kv(&m, data + val_start, val_len, (ProtobufCMessage **)member);
                if (rc == 1)
                    break;
                if (rc)
                    goto nomem;
            }
            ProtobufCMessage *child = pbd_new(&m, f->descriptor);
            if (!child)
                goto nomem;
            *(ProtobufCMessage **)member = child;
            depth++;
            stack[depth] = (struct otlp_pb_frame){.desc = f->descriptor,
                                                  .start = val_start,
                                                  .end = val_start + val_len,
                                                  .via = f,
                                                  .via_at = field_start};
            lv[depth] = (struct pbd_level){.msg = child, .earlier = earlier};
            pos = val_start;
            break;
        }
        case PROTOBUF_C_TYPE_STRING: {
            char *s = pbd_alloc(&m, val_len + 1);
            if (!s)
                goto nomem;
            memcpy(s, data + val_start, val_len);
            s[val_len] = '\0';
            *(char **)member = s;
            break;
        }
        case PROTOBUF_C_TYPE_BYTES: {
            ProtobufCBinaryData *b = member;
            b->len = val_len;
            b->data = NULL;
            if (val_len) {
                b->data = pbd_alloc(&m, val_len);
                if (!b->data)
                    goto nomem;
                memcpy(b->data, data + val_start, val_len);
            }
            break;
        }
        default:
            if (wt == WT_VARINT)
                pbd_store_varint(f->type, member, v, data + val_start, val_len);
            else
                memcpy(member, data + val_start, val_len);
            break;
        }
    }
    *out = lv[0].msg;
    return 0;
nomem:
    return sp_err_set(err, SP_ETOOBIG,
                      "request of %zu bytes needs more than the %zu bytes of memory its size "
                      "allows once decoded",
                      len, sp_arena_bytes(arena) - before);
}
