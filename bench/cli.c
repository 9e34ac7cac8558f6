#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mimo_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mimo-bench %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\n", usage);
    return MIMO_EXIT_USAGE;
}

/* strto* skip leading blanks: " -1" would pass as a u64 (wrapping to 2^64-1); a value is the
 * whole string or nothing. */
static bool starts_with_blank(const char *s)
{
    return isspace((unsigned char)*s);
}

bool mimo_parse_int(const char *s, long min, long max, long *out)
{
    if (!s || !*s || starts_with_blank(s))
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool mimo_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || starts_with_blank(s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool mimo_parse_double(const char *s, double min, double max, double *out)
{
    if (!s || !*s || starts_with_blank(s))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool mimo_parse_int_list(const char *s, long min, long max, int32_t **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (!s || !*s)
        return false;
    int cap = 16, count = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char buf[32];
        long v;
        if (len == 0 || len >= sizeof buf) {
            free(ids);
            return false;
        }
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (!mimo_parse_int(buf, min, max, &v)) {
            free(ids);
            return false;
        }
        if (count == cap)
            ids = realloc(ids, (cap *= 2) * sizeof *ids);
        ids[count++] = (int32_t)v;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = ids;
    *n = count;
    return true;
}

bool mimo_parse_shard(const char *s, int *rank, int *count)
{
    if (!s)
        return false;
    const char *slash = strchr(s, '/');
    if (!slash)
        return false;
    char a[16], b[16];
    size_t la = (size_t)(slash - s);
    if (la == 0 || la >= sizeof a || strlen(slash + 1) >= sizeof b)
        return false;
    memcpy(a, s, la);
    a[la] = '\0';
    strcpy(b, slash + 1);
    long r, n;
    if (!mimo_parse_int(a, 0, 1023, &r) || !mimo_parse_int(b, 1, 1024, &n) || r >= n)
        return false;
    *rank = (int)r;
    *count = (int)n;
    return true;
}

bool mimo_parse_on_off(const char *s, bool *out)
{
    if (s && !strcmp(s, "on")) { *out = true; return true; }
    if (s && !strcmp(s, "off")) { *out = false; return true; }
    return false;
}

const char *mimo_format_si(double v, bool bytes, char *buf, size_t n)
{
    static const char *const counts[] = {"", " K", " M", " B", " T"};
    static const char *const sizes[] = {" B", " KB", " MB", " GB", " TB"};
    const char *const *unit = bytes ? sizes : counts;
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf(buf, n, "%.3g%s", v, unit[u]);
    return buf;
}
