/* Contracts that are checked, not only written down.
 *
 * SP_ASSERT(cond, msg) checks an interface's promise (a component's
 * shutdown done() runs once, a batch is referenced only while its refcount
 * is above zero, a server or client is stopped once, ...) in every build:
 * unlike assert(3) it is not compiled out by NDEBUG, because a broken
 * contract in production is exactly when the message is needed. On failure
 * it writes "spanprof: contract broken: <msg> (<cond>) at file:line in
 * function" to stderr and aborts (a core dump, not a corrupted heap later).
 * Not for bad input: input errors are SP_E* codes with a message. */
#ifndef SP_ASSERT_H
#define SP_ASSERT_H

__attribute__((noreturn, cold)) void sp_assert_fail(const char *cond, const char *msg,
                                                    const char *file, int line,
                                                    const char *func);

#define SP_ASSERT(cond, msg)                                                                       \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0))                                                          \
            sp_assert_fail(#cond, (msg), __FILE__, __LINE__, __func__);                            \
    } while (0)

#endif
