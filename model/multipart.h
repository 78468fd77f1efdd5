/* multipart/form-data (RFC 7578 over RFC 2046) parsing, bounded.
 *
 * Used by the pprof receiver for Datadog profile uploads and Pyroscope
 * ingest, and by tests that read what the Datadog exporter sends. The whole
 * body is in memory (sp_httpd buffers it under max_body), so parsing is one
 * pass over it: part data are views into the body (no copy), names and
 * headers are copied into the arena. Every count and size is bounded by
 * struct sp_multipart_limits; a part over max_part_size is not an error of
 * the body: it is returned with `oversize` set and no data, so the caller
 * can refuse that part alone and keep the others. */
#ifndef SP_MULTIPART_H
#define SP_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_arena.h"
#include "sp_err.h"

#define SP_MULTIPART_BOUNDARY_MAX 70 /* RFC 2046 §5.1.1 */

struct sp_multipart_part {
    const char *name;         /* Content-Disposition name, "" when absent */
    const char *filename;     /* Content-Disposition filename, NULL when absent */
    const char *content_type; /* NULL when absent */
    const uint8_t *data;      /* view into the body; NULL when oversize */
    size_t len;               /* bytes of data (also set when oversize) */
    bool oversize;            /* len > max_part_size: data dropped */
};

struct sp_multipart_limits {
    size_t max_parts;        /* 0 = 64 */
    size_t max_part_size;    /* 0 = no per-part limit (the body is bounded anyway) */
    size_t max_header_bytes; /* header block of one part; 0 = 8 KiB */
};

/* Extracts the boundary parameter of a multipart/form-data Content-Type
 * (quoted or not) into out (SP_MULTIPART_BOUNDARY_MAX + 1 bytes).
 * SP_EUNSUPPORTED when the media type is not multipart/form-data, SP_EDECODE
 * when the boundary is missing, empty or too long. */
int sp_multipart_boundary(const char *content_type, char *out, struct sp_err *err);

/* Parses body into *parts (arena array of *count parts, in body order).
 * SP_EDECODE with a message naming the part and byte offset when the body
 * is not a complete multipart body (no opening or closing delimiter,
 * truncated part, header block without its blank line or over the limit);
 * SP_ETOOBIG when there are more than max_parts parts; SP_ENOMEM. */
int sp_multipart_parse(const uint8_t *body, size_t len, const char *boundary,
                       const struct sp_multipart_limits *limits, struct sp_arena *arena,
                       struct sp_multipart_part **parts, size_t *count, struct sp_err *err);

/* The first part whose name equals name, or NULL. */
const struct sp_multipart_part *sp_multipart_find(const struct sp_multipart_part *parts,
                                                  size_t count, const char *name);

#endif
