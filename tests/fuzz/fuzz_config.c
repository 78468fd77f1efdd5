/* Fuzz target for the configuration loader: the input is a YAML file (or,
 * split at its first NUL byte, two files merged in order) fed through the
 * whole loader: libyaml, the node budget, ${env:} expansion, the key
 * tables of every registered component and the pipeline checks.
 *
 * Besides "no crash, no sanitizer report", it checks a property: a config
 * that loads prints (print-config) to YAML that loads again and prints the
 * same, so print-config output is always a usable config. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_conf_internal.h"
#include "sp_config.h"
#include "sp_log.h"
#include "sp_registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_roundtrip(const struct sp_service_conf *conf)
{
    struct sp_buf first = {0};
    sp_service_conf_print(conf, &first);
    struct sp_conf_source src = {"printed.yaml", (const char *)first.data, first.len};
    struct sp_service_conf *again = NULL;
    struct sp_diag d = {0};
    if (sp_service_conf_load_sources(&sp_registry, &src, 1, &again, &d) != 0) {
        fprintf(stderr, "print-config output does not load:\n%s\n--- output ---\n%s\n",
                d.text.data ? (const char *)d.text.data : "", (const char *)first.data);
        abort();
    }
    struct sp_buf second = {0};
    sp_service_conf_print(again, &second);
    if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0) {
        fprintf(stderr, "print-config is not stable:\n--- first ---\n%s\n--- second ---\n%s\n",
                (const char *)first.data, (const char *)second.data);
        abort();
    }
    sp_buf_free(&first);
    sp_buf_free(&second);
    sp_diag_free(&d);
    sp_service_conf_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        once = 1;
        /* Something for ${env:...} to find, including a '$' to escape. */
        setenv("SPANPROF_FUZZ_VALUE", "127.0.0.1:4$17", 1);
        setenv("SPANPROF_EXPORTER", "debug", 1);
        sp_log_set_level(SP_LOG_ERROR);
    }
    struct sp_conf_source src[2];
    size_t n = 1;
    const uint8_t *nul = memchr(data, 0, size);
    src[0].name = "fuzz.yaml";
    src[0].data = (const char *)data;
    src[0].len = size;
    if (nul) {
        src[0].len = (size_t)(nul - data);
        src[1].name = "fuzz2.yaml";
        src[1].data = (const char *)nul + 1;
        src[1].len = size - src[0].len - 1;
        n = 2;
    }
    struct sp_service_conf *conf = NULL;
    struct sp_diag d = {0};
    if (sp_service_conf_load_sources(&sp_registry, src, n, &conf, &d) == 0) {
        fuzz_roundtrip(conf);
        sp_service_conf_register_secrets(conf);
        sp_log_clear_secrets();
        sp_service_conf_free(conf);
    }
    sp_diag_free(&d);
    return 0;
}
