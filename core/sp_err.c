/* Error codes, their names, and the message context that travels with them. */
#include "sp_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_assert.h"

void sp_assert_fail(const char *cond, const char *msg, const char *file, int line,
                    const char *func)
{
    fprintf(stderr, "spanprof: contract broken: %s (%s) at %s:%d in %s\n", msg, cond, file, line,
            func);
    fflush(stderr);
    abort();
}

int sp_err_vset(struct sp_err *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    }
    return code;
}

int sp_err_set(struct sp_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sp_err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void sp_err_prefix(struct sp_err *err, const char *fmt, ...)
{
    char prefix[SP_ERR_MSG_MAX];
    char old[SP_ERR_MSG_MAX];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
}

void sp_err_clear(struct sp_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

static const struct {
    int code;
    const char *name;
    const char *text;
} sp_err_table[] = {
    {SP_OK, "SP_OK", "success"},
    {SP_ENOMEM, "SP_ENOMEM", "out of memory or over a memory bound"},
    {SP_EINVAL, "SP_EINVAL", "invalid argument"},
    {SP_EDECODE, "SP_EDECODE", "input could not be decoded"},
    {SP_EFULL, "SP_EFULL", "queue full"},
    {SP_ERETRY, "SP_ERETRY", "temporary failure"},
    {SP_ETOOBIG, "SP_ETOOBIG", "input over the size limit"},
    {SP_EUNSUPPORTED, "SP_EUNSUPPORTED", "not supported"},
    {SP_EIO, "SP_EIO", "i/o error"},
    {SP_ENOTFOUND, "SP_ENOTFOUND", "not found"},
    {SP_ESHUTDOWN, "SP_ESHUTDOWN", "shutting down"},
};

const char *sp_err_name(int code)
{
    for (size_t i = 0; i < sizeof(sp_err_table) / sizeof(sp_err_table[0]); i++)
        if (sp_err_table[i].code == code)
            return sp_err_table[i].name;
    return "SP_EUNKNOWN";
}

const char *sp_strerror(int code)
{
    for (size_t i = 0; i < sizeof(sp_err_table) / sizeof(sp_err_table[0]); i++)
        if (sp_err_table[i].code == code)
            return sp_err_table[i].text;
    return "unknown error";
}
