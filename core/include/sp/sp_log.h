/* Leveled, one-line-per-event logging.
 *
 * Lines are logfmt by default (`ts=... level=info component=otlp msg="..."`)
 * or JSON, on stderr. The level is checked before formatting. Every value
 * registered with sp_log_add_secret() is replaced by "[REDACTED]" in every
 * line, so a secret that slips into a message (an URL, an error text) still
 * never reaches the log. Loop thread only. */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <stdbool.h>

enum sp_log_level { SP_LOG_DEBUG = 0, SP_LOG_INFO = 1, SP_LOG_WARN = 2, SP_LOG_ERROR = 3 };
enum sp_log_format { SP_LOG_LOGFMT = 0, SP_LOG_JSON = 1 };

void sp_log_set_level(enum sp_log_level level);
void sp_log_set_format(enum sp_log_format format);
/* "debug", "info", "warn", "error"; returns -1 for anything else. */
int sp_log_level_parse(const char *s);
bool sp_log_enabled(enum sp_log_level level);

/* The secret is copied; empty strings and strings under 4 bytes are ignored
 * (redacting "a" everywhere would garble every line). */
void sp_log_add_secret(const char *secret);
void sp_log_clear_secrets(void);
/* Replaces every registered secret in msg with [REDACTED] (in place; the
 * text only shrinks): for text shown elsewhere than the log (status page). */
void sp_log_redact_secrets(char *msg);

/* component: the instance id ("otlp", "datadog/eu") or NULL for the core. */
void sp_log(enum sp_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sp_log_debug(comp, ...)                                                                    \
    do {                                                                                           \
        if (sp_log_enabled(SP_LOG_DEBUG))                                                          \
            sp_log(SP_LOG_DEBUG, (comp), __VA_ARGS__);                                             \
    } while (0)
#define sp_log_info(comp, ...) sp_log(SP_LOG_INFO, (comp), __VA_ARGS__)
#define sp_log_warn(comp, ...) sp_log(SP_LOG_WARN, (comp), __VA_ARGS__)
#define sp_log_error(comp, ...) sp_log(SP_LOG_ERROR, (comp), __VA_ARGS__)

#endif
