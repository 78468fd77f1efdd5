/* Region allocator. Blocks grow geometrically (to 1 MiB) so a small request
 * costs one small block and a large profile does not cost thousands of
 * mallocs; a request bigger than a block gets a block of its own. */
#include "sp_arena.h"

#include "sp_err.h"
#include "sp_memory.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SP_ARENA_ALIGN 16
#define SP_ARENA_MAX_BLOCK (1u << 20)

struct sp_arena_block {
    struct sp_arena_block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(SP_ARENA_ALIGN) unsigned char data[];
};

struct sp_arena_cleanup {
    struct sp_arena_cleanup *next;
    void (*fn)(void *);
    void *data;
};

struct sp_arena {
    struct sp_arena_block *head;
    struct sp_arena_cleanup *cleanups;
    size_t next_size;
    size_t bytes;
    size_t limit;
    bool charged;                /* blocks are charged to the memory ceiling */
    bool ceiling_hit;            /* a block was refused at the ceiling's hard mark */
    enum sp_mem_class mem_class;
    bool wipe;                   /* explicit_bzero every block at destroy */
};

struct sp_arena *sp_arena_create(size_t first_block)
{
    struct sp_arena *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->next_size = first_block ? first_block : 4096;
    return a;
}

void sp_arena_set_wipe(struct sp_arena *a)
{
    a->wipe = true;
}

void sp_arena_set_limit(struct sp_arena *a, size_t limit)
{
    a->limit = limit;
}

void sp_arena_set_mem_class(struct sp_arena *a, enum sp_mem_class c)
{
    if (a->charged) {
        sp_memory_move(a->mem_class, c, a->bytes);
    } else {
        /* What the arena holds already was allocated: charge it as it is. */
        sp_memory_charge(c, a->bytes);
        a->charged = true;
    }
    a->mem_class = c;
}

bool sp_arena_ceiling_hit(const struct sp_arena *a)
{
    return a->ceiling_hit;
}

void sp_arena_destroy(struct sp_arena *a)
{
    if (!a)
        return;
    for (struct sp_arena_cleanup *c = a->cleanups; c; c = c->next)
        c->fn(c->data);
    if (a->charged)
        sp_memory_release(a->mem_class, a->bytes);
    struct sp_arena_block *b = a->head;
    while (b) {
        struct sp_arena_block *next = b->next;
        if (a->wipe)
            explicit_bzero(b->data, b->size);
        free(b);
        b = next;
    }
    free(a);
}

static struct sp_arena_block *sp_arena_grow(struct sp_arena *a, size_t need)
{
    size_t size = a->next_size;
    while (size < need)
        size *= 2;
    if (a->limit && a->bytes + size + sizeof(struct sp_arena_block) > a->limit) {
        /* Try the exact size before giving up: the cap is on real use. */
        size = need;
        if (a->bytes + size + sizeof(struct sp_arena_block) > a->limit)
            return NULL;
    }
    if (a->charged && sp_memory_reserve(a->mem_class, sizeof(struct sp_arena_block) + size)) {
        /* Over the process ceiling: fails like the arena's own limit, and
         * remembers why so the caller can answer "retry" not "too large". */
        a->ceiling_hit = true;
        return NULL;
    }
    struct sp_arena_block *b = malloc(sizeof(*b) + size);
    if (!b) {
        if (a->charged)
            sp_memory_release(a->mem_class, sizeof(struct sp_arena_block) + size);
        return NULL;
    }
    b->size = size;
    b->used = 0;
    a->bytes += sizeof(*b) + size;
    if (a->next_size < SP_ARENA_MAX_BLOCK)
        a->next_size *= 2;
    /* A big one-off block goes behind the head so the head's tail stays usable. */
    if (a->head && size > a->next_size && a->head->size - a->head->used > 256) {
        b->next = a->head->next;
        a->head->next = b;
    } else {
        b->next = a->head;
        a->head = b;
    }
    return b;
}

/* sp_arena_alloc's path through a new block, out of line: the common case
 * (room in the head block) then compiles to a leaf without register saves
 * (protobuf-c's unpack calls it for every message, string and array). */
static __attribute__((noinline)) void *sp_arena_alloc_grow(struct sp_arena *a, size_t n)
{
    struct sp_arena_block *b = sp_arena_grow(a, n);
    if (!b)
        return NULL;
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void *sp_arena_alloc(struct sp_arena *a, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + SP_ARENA_ALIGN - 1) & ~(size_t)(SP_ARENA_ALIGN - 1);
    struct sp_arena_block *b = a->head;
    if (__builtin_expect(!b || b->size - b->used < n, 0))
        return sp_arena_alloc_grow(a, n);
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void *sp_arena_calloc(struct sp_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = sp_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *sp_arena_memdup(struct sp_arena *a, const void *p, size_t n)
{
    void *q = sp_arena_alloc(a, n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

char *sp_arena_strndup(struct sp_arena *a, const char *s, size_t n)
{
    char *q = sp_arena_alloc(a, n + 1);
    if (!q)
        return NULL;
    if (n)
        memcpy(q, s, n);
    q[n] = '\0';
    return q;
}

char *sp_arena_strdup(struct sp_arena *a, const char *s)
{
    return sp_arena_strndup(a, s, strlen(s));
}

char *sp_arena_sprintf(struct sp_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = sp_arena_alloc(a, (size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

size_t sp_arena_bytes(const struct sp_arena *a)
{
    return a->bytes;
}

static void *sp_arena_pb_alloc(void *data, size_t size)
{
    return sp_arena_alloc(data, size);
}

static void sp_arena_pb_free(void *data, void *p)
{
    (void)data;
    (void)p; /* freed with the arena */
}

void sp_arena_pb_allocator(struct sp_arena *a, ProtobufCAllocator *out)
{
    out->alloc = sp_arena_pb_alloc;
    out->free = sp_arena_pb_free;
    out->allocator_data = a;
}

int sp_arena_on_destroy(struct sp_arena *a, void (*fn)(void *), void *data)
{
    struct sp_arena_cleanup *c = sp_arena_alloc(a, sizeof(*c));
    if (!c)
        return SP_ENOMEM;
    c->fn = fn;
    c->data = data;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}
