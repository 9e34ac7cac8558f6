/* Error reporting shared by every part of the engine and the harness.
 * Functions that can fail return 0 on success and -1 on failure, and fill a caller-owned
 * mimo_error with one human-readable line that names the file, key, tensor or line at fault. */
#ifndef MIMO_ERROR_H
#define MIMO_ERROR_H

#include <stddef.h>

#define MIMO_ERROR_MAX 1024

typedef struct {
    char msg[MIMO_ERROR_MAX];
} mimo_error;

/* printf-style; safe with err == NULL. Always returns -1 so that `return mimo_fail(err, ...)` reads well. */
int mimo_fail(mimo_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix an existing message ("context: old message"). Returns -1. */
int mimo_fail_prefix(mimo_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mimo_error_clear(mimo_error *err);

/* Allocation that never returns NULL for size > 0 (aborts with a message: out of memory is not bad input). */
void *mimo_xmalloc(size_t size);
void *mimo_xcalloc(size_t count, size_t size);
void *mimo_xrealloc(void *ptr, size_t size);
char *mimo_xstrdup(const char *s);

#endif
