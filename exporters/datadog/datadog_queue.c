/* datadog exporter: the sending queue, a bounded FIFO of sealed requests.
 *
 * Bounded twice: by items (sealed payloads) and by the bytes their bodies
 * hold (compressed: what they cost in memory). The ring grows by doubling up to max_items
 * so a large queue_size costs nothing until it is used. What happens when
 * it is full is the caller's policy: refuse the newcomer (the pipeline then
 * answers 429/UNAVAILABLE upstream) or drop the oldest to make room. */
#include <stdlib.h>
#include <string.h>

#include "datadog_int.h"

void dd_queue_init(struct dd_queue *q, size_t max_items, size_t max_bytes,
                   enum dd_full_policy policy)
{
    memset(q, 0, sizeof(*q));
    q->max_items = max_items;
    q->max_bytes = max_bytes;
    q->policy = policy;
}

bool dd_queue_fits(const struct dd_queue *q, size_t bytes)
{
    if (q->len >= q->max_items)
        return false;
    if (q->len == 0)
        return true; /* an oversized payload alone still goes */
    return q->bytes + bytes <= q->max_bytes;
}

static int dd_queue_grow(struct dd_queue *q)
{
    size_t ncap = q->cap_alloc ? q->cap_alloc * 2 : 16;
    if (ncap > q->max_items)
        ncap = q->max_items;
    struct dd_item *n = malloc(ncap * sizeof(*n));
    if (!n)
        return SP_ENOMEM;
    for (size_t i = 0; i < q->len; i++)
        n[i] = q->ring[(q->head + i) % q->cap_alloc];
    free(q->ring);
    q->ring = n;
    q->cap_alloc = ncap;
    q->head = 0;
    return 0;
}

int dd_queue_push(struct dd_queue *q, const struct dd_item *it,
                  void (*drop)(void *ud, struct dd_item *it), void *ud)
{
    if (q->max_items == 0)
        return SP_EFULL;
    if (!dd_queue_fits(q, it->bytes)) {
        if (q->policy == DD_FULL_REFUSE)
            return SP_EFULL;
        struct dd_item old;
        while (!dd_queue_fits(q, it->bytes) && dd_queue_pop(q, &old)) {
            if (drop)
                drop(ud, &old);
        }
    }
    if (q->len == q->cap_alloc && dd_queue_grow(q) != 0)
        return SP_ENOMEM;
    q->ring[(q->head + q->len) % q->cap_alloc] = *it;
    q->len++;
    q->bytes += it->bytes;
    q->count += it->count;
    return 0;
}

bool dd_queue_pop(struct dd_queue *q, struct dd_item *out)
{
    if (q->len == 0)
        return false;
    *out = q->ring[q->head];
    q->head = (q->head + 1) % q->cap_alloc;
    q->len--;
    q->bytes -= out->bytes;
    q->count -= out->count;
    if (q->len == 0)
        q->head = 0;
    return true;
}

void dd_queue_free(struct dd_queue *q)
{
    free(q->ring);
    q->ring = NULL;
    q->cap_alloc = q->len = q->head = q->bytes = q->count = 0;
}
