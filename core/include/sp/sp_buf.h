/* Growable owned byte buffer and {ptr,len} views.
 *
 * struct sp_buf owns its bytes (malloc); struct sp_str is a view that owns
 * nothing. sp_buf keeps a NUL after the data so text can be used as a C
 * string, but the data may hold NULs. */
#ifndef SP_BUF_H
#define SP_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sp_str {
    const char *ptr;
    size_t len;
};

#define SP_STR(lit) ((struct sp_str){(lit), sizeof(lit) - 1})

struct sp_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

/* All return 0 or SP_ENOMEM. An initialised buf is all zero. */
int sp_buf_reserve(struct sp_buf *b, size_t extra);
int sp_buf_append(struct sp_buf *b, const void *p, size_t n);
int sp_buf_append_str(struct sp_buf *b, const char *s);
int sp_buf_append_byte(struct sp_buf *b, uint8_t c);
int sp_buf_printf(struct sp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sp_buf_vprintf(struct sp_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string literal, quotes included, as Go's encoding/json
 * writes it without HTML escaping (sp_text.c; sp_text.h has the rules and
 * the HTML-escaping form the Datadog payloads use). */
int sp_buf_append_json_str(struct sp_buf *b, const char *s, size_t n);
void sp_buf_reset(struct sp_buf *b);
void sp_buf_free(struct sp_buf *b);
/* sp_buf_free for bytes that may hold a secret: zeroed (explicit_bzero,
 * which the compiler may not drop) before they go back to malloc. */
void sp_buf_wipe(struct sp_buf *b);
/* Hands the bytes to the caller (who frees them) and resets b. */
uint8_t *sp_buf_steal(struct sp_buf *b, size_t *len);

bool sp_str_eq(struct sp_str a, const char *s);
bool sp_str_eq_nocase(struct sp_str a, const char *s);

#endif
