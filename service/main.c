/* spanprof: the command line.
 *
 *   spanprof [--config FILE]...            run (no --config: embedded default)
 *   spanprof validate --config FILE...     check the config, bind nothing
 *   spanprof print-config --config FILE... effective config, secrets redacted
 *   spanprof healthcheck [--endpoint H:P]  probe a running spanprof (exit 0/1)
 *   spanprof reference                     configuration reference (Markdown)
 *   spanprof --version | --help */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#include "sp_config.h"
#include "sp_log.h"
#include "sp_metrics.h"
#include "sp_registry.h"
#include "sp_service.h"
#include "sp_version.h"

#define SP_MAX_CONFIGS 32

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spanprof [--config FILE]...\n"
            "       spanprof validate [--config FILE]...\n"
            "       spanprof print-config [--config FILE]...\n"
            "       spanprof healthcheck [--endpoint HOST:PORT]\n"
            "       spanprof reference\n"
            "       spanprof --version | --help\n"
            "\n"
            "An OpenTelemetry-Collector-style sidecar that joins OTLP spans with pprof\n"
            "profiles so Datadog's Endpoint Profiling and Code Hotspots work for\n"
            "OpenTelemetry-instrumented services.\n"
            "\n"
            "  --config FILE  YAML pipeline config; repeatable, later files merge over\n"
            "                 earlier ones. Without it the embedded default serves.\n"
            "  --endpoint     health check address for `healthcheck` (default 127.0.0.1:13133)\n");
}

/* The embedded default sends to Datadog when an API key is set, else to
 * files: it reads the choice from SPANPROF_EXPORTER. */
static void choose_default_exporter(void)
{
    const char *key = getenv("DD_API_KEY");
    if (getenv("SPANPROF_EXPORTER"))
        return;
    setenv("SPANPROF_EXPORTER", key && *key ? "datadog" : "file", 1);
}

/* Loads the config; errors and warnings go to stderr either way. */
static int load_config(const char **files, size_t n, struct sp_service_conf **conf)
{
    struct sp_diag diag = {0};
    choose_default_exporter();
    int rc = sp_service_conf_load(&sp_registry, files, n, conf, &diag);
    if (diag.text.len)
        fputs((const char *)diag.text.data, stderr);
    sp_diag_free(&diag);
    return rc;
}

static int cmd_validate(const char **files, size_t n)
{
    struct sp_service_conf *conf = NULL;
    if (load_config(files, n, &conf) != 0)
        return 1;
    /* Creating the components runs their own validation (no I/O). */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sp_service *svc = NULL;
    struct sp_diag diag = {0};
    int rc = sp_service_create(&loop, conf, &svc, &diag);
    if (diag.text.len)
        fputs((const char *)diag.text.data, stderr);
    sp_diag_free(&diag);
    sp_service_destroy(svc);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    sp_service_conf_free(conf);
    sp_metrics_reset();
    if (rc)
        return 1;
    printf("configuration is valid\n");
    return 0;
}

static int cmd_print_config(const char **files, size_t n)
{
    struct sp_service_conf *conf = NULL;
    if (load_config(files, n, &conf) != 0)
        return 1;
    struct sp_buf out = {0};
    sp_service_conf_print(conf, &out);
    if (out.len)
        fwrite(out.data, 1, out.len, stdout);
    sp_buf_free(&out);
    sp_service_conf_free(conf);
    return 0;
}

static int cmd_reference(void)
{
    struct sp_buf out = {0};
    sp_conf_reference(&sp_registry, &out);
    if (out.len)
        fwrite(out.data, 1, out.len, stdout);
    sp_buf_free(&out);
    return 0;
}

/* A plain-socket HTTP GET, so a distroless image needs no curl. */
static int cmd_healthcheck(const char *endpoint)
{
    /* A health check bound to all interfaces answers on loopback too. */
    char probe[300];
    if (strncmp(endpoint, "0.0.0.0:", 8) == 0)
        snprintf(probe, sizeof(probe), "127.0.0.1:%s", endpoint + 8);
    else
        snprintf(probe, sizeof(probe), "%s", endpoint);
    struct sockaddr_storage ss;
    unsigned slen;
    struct sp_err err = {0};
    if (sp_conf_endpoint_addr(probe, &ss, &slen, &err)) {
        fprintf(stderr, "healthcheck: %s\n", err.msg);
        return 1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 3};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, (socklen_t)slen) != 0) {
        fprintf(stderr, "healthcheck: cannot connect to %s: %s\n", endpoint, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    char req[512];
    int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     endpoint);
    if (write(fd, req, (size_t)n) != n) {
        fprintf(stderr, "healthcheck: write failed: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    char resp[4096];
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - (size_t)got)) > 0)
        got += r;
    close(fd);
    resp[got > 0 ? got : 0] = '\0';
    int status = 0;
    if (sscanf(resp, "HTTP/%*s %d", &status) != 1) {
        fprintf(stderr, "healthcheck: no HTTP answer from %s\n", endpoint);
        return 1;
    }
    char *body = strstr(resp, "\r\n\r\n");
    printf("%d %s\n", status, body ? body + 4 : "");
    return status == 200 ? 0 : 1;
}

/* The embedded default takes its addresses from these variables: a listen
 * error names the one that moves the port (with a config file, the error's
 * key path is the answer). */
static const struct {
    const char *key;
    const char *var;
} default_config_vars[] = {
    {"receivers.otlp.protocols.grpc.endpoint", "SPANPROF_OTLP_GRPC_ENDPOINT"},
    {"receivers.otlp.protocols.http.endpoint", "SPANPROF_OTLP_HTTP_ENDPOINT"},
    {"receivers.pprof.endpoint", "SPANPROF_PPROF_ENDPOINT"},
    {"extensions.health_check.endpoint", "SPANPROF_HEALTH_ENDPOINT"},
    {"service.telemetry.metrics.address", "SPANPROF_METRICS_ENDPOINT"},
};

static void default_config_hint(struct sp_err *err)
{
    for (size_t i = 0; i < sizeof(default_config_vars) / sizeof(default_config_vars[0]); i++) {
        if (!strstr(err->msg, default_config_vars[i].key))
            continue;
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof(err->msg) - n,
                 " (the embedded default configuration takes this address from %s: set it to "
                 "another host:port, e.g. %s=127.0.0.1:0 for any free port)",
                 default_config_vars[i].var, default_config_vars[i].var);
        return;
    }
}

static int cmd_run(const char **files, size_t n)
{
    struct sp_service_conf *conf = NULL;
    if (load_config(files, n, &conf) != 0)
        return 1;
    sp_log_set_level((enum sp_log_level)conf->log_level);
    sp_log_set_format((enum sp_log_format)conf->log_format);
    sp_service_conf_register_secrets(conf);
    if (conf->from_embedded_default)
        sp_log_info(NULL, "no --config given: using the embedded default configuration "
                          "(exporter: %s)", getenv("SPANPROF_EXPORTER"));

    uv_loop_t *loop = uv_default_loop();
    struct sp_service *svc = NULL;
    struct sp_diag diag = {0};
    int rc = sp_service_create(loop, conf, &svc, &diag);
    if (diag.text.len)
        fputs((const char *)diag.text.data, stderr);
    sp_diag_free(&diag);
    if (rc) {
        sp_service_destroy(svc);
        sp_service_conf_free(conf);
        return 1;
    }
    struct sp_err err = {0};
    sp_log_info(NULL, "spanprof %s starting", SP_VERSION);
    rc = sp_service_start(svc, &err);
    if (rc) {
        if (conf->from_embedded_default)
            default_config_hint(&err);
        sp_log_error(NULL, "%s", err.msg);
        sp_service_shutdown(svc);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    int code = rc ? 1 : sp_service_exit_code(svc);
    sp_service_destroy(svc);
    /* Let close callbacks of handles closed by destroy run. */
    uv_run(loop, UV_RUN_NOWAIT);
    sp_service_conf_free(conf);
    sp_metrics_reset();
    sp_log_clear_secrets();
    return code;
}

/* glibc raises its mmap threshold each time a large block is freed (up to
 * 32 MiB), after which request bodies and payloads of a few MiB come from
 * the heap and fragment it: RSS then stays far above what the memory
 * ceiling accounts. A fixed threshold keeps every block over 1 MiB in its
 * own mapping, given back to the kernel when freed. Not lower: a request's
 * decode arena (~260 KB for 100 spans) and the bodies of ordinary exports
 * would then be mapped and unmapped once per request, and zeroing their
 * fresh pages cost ~35 page faults a request and ~15 % of spanprof's CPU at
 * 10k spans/s (bench/RESULTS.md, "malloc thresholds"). The heap keeps up to
 * 8 MiB of free top instead of trimming after every request; the service's
 * periodic malloc_trim gives it back when traffic stops. Two arenas (the
 * loop and the telemetry thread) bound the per-thread slack. */
static void sp_malloc_tune(void)
{
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    mallopt(M_ARENA_MAX, 2);
}

int main(int argc, char **argv)
{
    sp_malloc_tune();
    const char *files[SP_MAX_CONFIGS];
    size_t nfiles = 0;
    const char *cmd = "run";
    const char *endpoint = "127.0.0.1:13133";
    int i = 1;

    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        i = 2;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
            printf("spanprof %s\n", SP_VERSION);
            return 0;
        }
        if (strncmp(a, "--config=", 9) == 0) {
            val = a + 9;
        } else if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (++i == argc) {
                fprintf(stderr, "spanprof: %s needs a file\n", a);
                return 2;
            }
            val = argv[i];
        } else if (strncmp(a, "--endpoint=", 11) == 0) {
            endpoint = a + 11;
            continue;
        } else if (strcmp(a, "--endpoint") == 0) {
            if (++i == argc) {
                fprintf(stderr, "spanprof: --endpoint needs HOST:PORT\n");
                return 2;
            }
            endpoint = argv[i];
            continue;
        } else {
            fprintf(stderr, "spanprof: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (nfiles == SP_MAX_CONFIGS) {
            fprintf(stderr, "spanprof: at most %d --config files\n", SP_MAX_CONFIGS);
            return 2;
        }
        files[nfiles++] = val;
    }

    if (strcmp(cmd, "run") == 0)
        return cmd_run(files, nfiles);
    if (strcmp(cmd, "validate") == 0)
        return cmd_validate(files, nfiles);
    if (strcmp(cmd, "print-config") == 0)
        return cmd_print_config(files, nfiles);
    if (strcmp(cmd, "healthcheck") == 0)
        return cmd_healthcheck(endpoint);
    if (strcmp(cmd, "reference") == 0)
        return cmd_reference();
    fprintf(stderr, "spanprof: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
