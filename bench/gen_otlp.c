/* gen_otlp: writes the benchmark request bodies for load tools that replay
 * a file (h2load -d, wrk).
 *
 *   gen_otlp [--spans 100] [--seed 1] [--out DIR]
 *
 * DIR/otlp.pb    ExportTraceServiceRequest, protobuf (OTLP/HTTP body)
 * DIR/otlp.grpc  the same with the 5-byte gRPC prefix (OTLP/gRPC body)
 * DIR/otlp.json  the same request as OTLP JSON (OTLP/HTTP JSON body)
 * Timestamps start now, so a span_ttl-based index keeps them. Prints one
 * line per file with its size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_gen.h"

static int write_file(const char *dir, const char *name, const struct sp_buf *b)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        fprintf(stderr, "gen_otlp: cannot write '%s': %s\n", path, strerror(errno));
        return 1;
    }
    printf("%s %zu bytes\n", path, b->len);
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_otlp_opts o = {.spans = 100, .seed = 1, .base_time_ns = 0, .service = NULL};
    const char *dir = ".";
    uint32_t patch_seq = 0; /* test hook: write the bodies as request number N would look */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--spans") == 0 && i + 1 < argc)
            o.spans = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            o.seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--base-time-ns") == 0 && i + 1 < argc)
            o.base_time_ns = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--patch-seq") == 0 && i + 1 < argc)
            patch_seq = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--service") == 0 && i + 1 < argc)
            o.service = argv[++i];
        else {
            fprintf(stderr, "usage: gen_otlp [--spans N] [--seed N] [--service NAME] [--out DIR] [--base-time-ns T] [--patch-seq N]\n");
            return 2;
        }
    }
    struct sp_arena *a = sp_arena_create(0);
    sp_otlp_request *req = a ? bench_otlp_build(a, &o) : NULL;
    if (!req) {
        fprintf(stderr, "gen_otlp: out of memory\n");
        return 1;
    }
    struct sp_buf pb = {0}, grpc = {0}, json = {0};
    if (bench_otlp_pack(req, &pb) || bench_grpc_frame(pb.data, pb.len, &grpc) ||
        bench_otlp_json(req, &json)) {
        fprintf(stderr, "gen_otlp: out of memory\n");
        return 1;
    }
    if (patch_seq) {
        struct bench_patches pp, pj;
        if (bench_otlp_find_patches(req, pb.data, pb.len, 0, &pp) ||
            bench_otlp_find_patches(req, json.data, json.len, 1, &pj)) {
            fprintf(stderr, "gen_otlp: out of memory\n");
            return 1;
        }
        bench_otlp_patch(pb.data, &pp, patch_seq, 1000000000);
        bench_otlp_patch(grpc.data + 5, &pp, patch_seq, 1000000000);
        bench_otlp_patch(json.data, &pj, patch_seq, 1000000000);
        printf("patch points: %zu protobuf, %zu json\n", pp.n, pj.n);
        bench_patches_free(&pp);
        bench_patches_free(&pj);
    }
    int rc = write_file(dir, "otlp.pb", &pb) | write_file(dir, "otlp.grpc", &grpc) |
             write_file(dir, "otlp.json", &json);
    printf("spans per request: %zu\n", sp_traces_count_spans(req));
    sp_buf_free(&pb);
    sp_buf_free(&grpc);
    sp_buf_free(&json);
    sp_arena_destroy(a);
    return rc;
}
