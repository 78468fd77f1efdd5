/* Differential fuzz target: the single-pass trace decoder (sp_otlp_pb_decode)
 * against the reference it replaced, the wire check followed by
 * protobuf_c_message_unpack() (sp_otlp_decode_msg with the traces request
 * descriptor). Both must accept or both refuse; what both accept must pack
 * (protobuf_c_message_pack, as the otlphttp exporter and batch clones do)
 * to the same bytes; when the wire check refused, the decoder must give the
 * check's very message, unless it stopped earlier at a problem only
 * protobuf-c detects (those messages are listed in otlp_codec.h). Any
 * difference aborts with both answers on stderr.
 * Traces are what the decoder serves; every input is also decoded as a
 * metrics and a logs request, whose protos have what traces lack (packed
 * repeated scalars, proto3 optional fields, oneofs of messages), so the
 * descriptor-driven code is held to protobuf-c for those too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void differ(const char *what, const char *old_msg, const char *new_msg)
{
    fprintf(stderr, "fuzz_otlp_trace_decode: %s\n  reference: %s\n  decoder:   %s\n", what,
            old_msg, new_msg);
    abort();
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(*len ? *len : 1);
    if (!p)
        abort();
    if (protobuf_c_message_pack(m, p) != *len)
        abort();
    return p;
}

/* Problems protobuf-c finds after the wire check passed. */
static bool protobuf_c_only(const char *msg)
{
    return strstr(msg, "longer than 5 bytes") || strstr(msg, "is over 5 bytes or 2 GiB") ||
           strstr(msg, "protobuf-c cannot merge");
}

static void compare(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size)
{
    struct sp_arena *ao = sp_arena_create(0), *an = sp_arena_create(0);
    if (!ao || !an)
        abort();
    ProtobufCMessage *mo = NULL, *mn = NULL;
    struct sp_err eo = {0}, en = {0}, ec = {0};
    int ro = sp_otlp_decode_msg(ao, desc, SP_OTLP_PROTOBUF, data, size, &mo, &eo);
    int rn = sp_otlp_pb_decode(an, desc, data, size, &mn, &en);
    if ((ro == 0) != (rn == 0))
        differ("one accepts, the other refuses", ro ? eo.msg : "accepted",
               rn ? en.msg : "accepted");
    if (ro == 0) {
        size_t lo, ln;
        uint8_t *po = pack(mo, &lo), *pn = pack(mn, &ln);
        if (lo != ln || memcmp(po, pn, lo) != 0)
            differ("both accept, packed bytes differ", "", "");
        free(po);
        free(pn);
    } else if (sp_otlp_pb_check(desc, data, size, &ec) != 0) {
        if (rn != SP_EDECODE || (strcmp(ec.msg, en.msg) != 0 && !protobuf_c_only(en.msg)))
            differ("the wire check refused with another message", ec.msg, en.msg);
    } else if (rn != SP_EDECODE || !protobuf_c_only(en.msg)) {
        differ("protobuf-c refused after the check, the decoder said something else", eo.msg,
               en.msg);
    }
    sp_arena_destroy(ao);
    sp_arena_destroy(an);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    compare(sp_otlp_request_desc(SP_SIGNAL_TRACES), data, size);
    compare(sp_otlp_request_desc(SP_SIGNAL_METRICS), data, size);
    compare(sp_otlp_request_desc(SP_SIGNAL_LOGS), data, size);
    return 0;
}
