/* Error codes and error context.
 *
 * Every fallible function returns 0 (SP_OK) or a negative SP_E* code, like
 * libuv. What went wrong and where travels beside the code in a caller-owned
 * struct sp_err, filled by sp_err_set(): lowercase, no final period, the
 * subject quoted, the input and position named (git's message rules). */
#ifndef SP_ERR_H
#define SP_ERR_H

#include <stdarg.h>

enum sp_errcode {
    SP_OK = 0,
    SP_ENOMEM = -1,       /* allocation failed or a memory bound was hit */
    SP_EINVAL = -2,       /* invalid argument or configuration */
    SP_EDECODE = -3,      /* input could not be decoded */
    SP_EFULL = -4,        /* a bounded queue is full: retry later */
    SP_ERETRY = -5,       /* transient failure: retry later */
    SP_ETOOBIG = -6,      /* input over a configured size limit */
    SP_EUNSUPPORTED = -7, /* media type, encoding or method not supported */
    SP_EIO = -8,          /* socket, file or transport failure */
    SP_ENOTFOUND = -9,    /* no such thing (route, component, key) */
    SP_ESHUTDOWN = -10,   /* the service is shutting down */
};

#define SP_ERR_MSG_MAX 512

struct sp_err {
    int code;
    char msg[SP_ERR_MSG_MAX];
};

/* Sets code and message and returns code, so callers can write
 * `return sp_err_set(err, SP_EDECODE, "spans[%zu]: ...", i);`.
 * err may be NULL (the message is then dropped). */
int sp_err_set(struct sp_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sp_err_vset(struct sp_err *err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Prepends "prefix: " to an existing message (used to add context while an
 * error travels up, e.g. the attachment name before a pprof error). */
void sp_err_prefix(struct sp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void sp_err_clear(struct sp_err *err);

/* "SP_EDECODE" and "input could not be decoded". Never NULL. */
const char *sp_err_name(int code);
const char *sp_strerror(int code);

#endif
