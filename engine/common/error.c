#include "mimo/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mimo_fail(mimo_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int mimo_fail_prefix(mimo_error *err, const char *fmt, ...)
{
    if (err) {
        char prefix[MIMO_ERROR_MAX], old[MIMO_ERROR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        size_t n = strnlen(prefix, sizeof err->msg - 3);
        memcpy(err->msg, prefix, n);
        memcpy(err->msg + n, ": ", 2);
        size_t room = sizeof err->msg - n - 3;
        size_t m = strnlen(old, room);
        memcpy(err->msg + n + 2, old, m);
        err->msg[n + 2 + m] = '\0';
    }
    return -1;
}

void mimo_error_clear(mimo_error *err)
{
    if (err)
        err->msg[0] = '\0';
}

static void out_of_memory(size_t size)
{
    fprintf(stderr, "mimo: out of memory allocating %zu bytes\n", size);
    abort();
}

void *mimo_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *mimo_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *mimo_xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

char *mimo_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = mimo_xmalloc(n);
    memcpy(p, s, n);
    return p;
}
