/* Logging: one line per event on stderr, logfmt or JSON, secrets redacted. */
#include "sp_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sp_buf.h"

#define SP_LOG_MAX_SECRETS 16

static enum sp_log_level sp_log_level_cur = SP_LOG_INFO;
static enum sp_log_format sp_log_format_cur = SP_LOG_LOGFMT;
static char *sp_log_secrets[SP_LOG_MAX_SECRETS];
static size_t sp_log_secret_count;

void sp_log_set_level(enum sp_log_level level)
{
    sp_log_level_cur = level;
}

void sp_log_set_format(enum sp_log_format format)
{
    sp_log_format_cur = format;
}

int sp_log_level_parse(const char *s)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return SP_LOG_WARN;
    return -1;
}

bool sp_log_enabled(enum sp_log_level level)
{
    return level >= sp_log_level_cur;
}

void sp_log_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < 4 || sp_log_secret_count == SP_LOG_MAX_SECRETS)
        return;
    for (size_t i = 0; i < sp_log_secret_count; i++)
        if (strcmp(sp_log_secrets[i], secret) == 0)
            return;
    char *copy = strdup(secret);
    if (copy)
        sp_log_secrets[sp_log_secret_count++] = copy;
}

void sp_log_clear_secrets(void)
{
    for (size_t i = 0; i < sp_log_secret_count; i++) {
        explicit_bzero(sp_log_secrets[i], strlen(sp_log_secrets[i]));
        free(sp_log_secrets[i]);
    }
    sp_log_secret_count = 0;
}

/* Replaces every registered secret in msg (in place, shrinking only). */
void sp_log_redact_secrets(char *msg)
{
    static const char mark[] = "[REDACTED]";
    for (size_t i = 0; i < sp_log_secret_count; i++) {
        const char *sec = sp_log_secrets[i];
        size_t slen = strlen(sec);
        char *p;
        while ((p = strstr(msg, sec)) != NULL) {
            size_t mlen = slen < sizeof(mark) - 1 ? slen : sizeof(mark) - 1;
            memcpy(p, mark, mlen);
            memmove(p + mlen, p + slen, strlen(p + slen) + 1);
        }
    }
}

static void sp_log_quote_logfmt(struct sp_buf *b, const char *s)
{
    sp_buf_append_json_str(b, s, strlen(s));
}

void sp_log(enum sp_log_level level, const char *component, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char msg[2048];
    char ts[40];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (!sp_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sp_log_redact_secrets(msg);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

    struct sp_buf line = {0};
    if (sp_log_format_cur == SP_LOG_JSON) {
        sp_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts, names[level]);
        sp_buf_append_json_str(&line, component ? component : "service",
                               strlen(component ? component : "service"));
        sp_buf_append_str(&line, ",\"msg\":");
        sp_buf_append_json_str(&line, msg, strlen(msg));
        sp_buf_append_str(&line, "}\n");
    } else {
        sp_buf_printf(&line, "ts=%s level=%s component=%s msg=", ts, names[level],
                      component ? component : "service");
        sp_log_quote_logfmt(&line, msg);
        sp_buf_append_byte(&line, '\n');
    }
    if (line.data)
        fwrite(line.data, 1, line.len, stderr);
    sp_buf_free(&line);
}
