/* Arena (region) allocator: one per batch, freed at once.
 *
 * A decoded OTLP request or pprof profile lives entirely in one arena, so a
 * batch is released by one sp_arena_destroy() whatever its shape. The arena
 * has an optional byte limit: a decoder fed hostile input fails with NULL
 * (and the caller reports SP_ENOMEM/SP_ETOOBIG) instead of growing without
 * bound. Not thread-safe; an arena belongs to one owner at a time. */
#ifndef SP_ARENA_H
#define SP_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "sp_memory.h"

struct sp_arena;

/* first_block: size of the first block (0 picks a default). */
struct sp_arena *sp_arena_create(size_t first_block);
void sp_arena_destroy(struct sp_arena *a);

/* Every block is zeroed with explicit_bzero at destroy: for an arena that
 * holds secrets (the configuration's, with API keys in it). */
void sp_arena_set_wipe(struct sp_arena *a);

/* Caps the total bytes the arena may take from malloc (0 = no cap). */
void sp_arena_set_limit(struct sp_arena *a, size_t limit);
/* Charges the arena's blocks to the process memory ceiling (sp_memory.h)
 * under class c: what it holds now, every later block (refused like the
 * arena's own limit at the hard mark), released at destroy. Called again,
 * moves the charge to another class. */
void sp_arena_set_mem_class(struct sp_arena *a, enum sp_mem_class c);
/* True once a block was refused at the ceiling's hard mark: the input was
 * not too large, the process was too full (answer "retry later"). */
bool sp_arena_ceiling_hit(const struct sp_arena *a);

/* 16-byte aligned; NULL when out of memory or over the limit. Memory is not
 * zeroed by sp_arena_alloc, it is by sp_arena_calloc. */
void *sp_arena_alloc(struct sp_arena *a, size_t n);
void *sp_arena_calloc(struct sp_arena *a, size_t count, size_t size);
void *sp_arena_memdup(struct sp_arena *a, const void *p, size_t n);
char *sp_arena_strdup(struct sp_arena *a, const char *s);
char *sp_arena_strndup(struct sp_arena *a, const char *s, size_t n);
char *sp_arena_sprintf(struct sp_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bytes taken from malloc so far (blocks, including unused tails): what the
 * batch costs, used for queue byte accounting. */
size_t sp_arena_bytes(const struct sp_arena *a);

/* A protobuf-c allocator whose free() is a no-op: protobuf_c_message_unpack()
 * with it puts the whole decoded message tree in the arena. */
void sp_arena_pb_allocator(struct sp_arena *a, ProtobufCAllocator *out);

/* Registers fn(data) to run when the arena is destroyed (for memory or
 * handles the arena does not own, e.g. a json-c object). 0 or SP_ENOMEM. */
int sp_arena_on_destroy(struct sp_arena *a, void (*fn)(void *), void *data);

#endif
