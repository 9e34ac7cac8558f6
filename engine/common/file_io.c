#include "mimo/file_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int mimo_read_text_file(const char *path, size_t max_bytes, char **text, size_t *len, mimo_error *err)
{
    *text = NULL;
    if (len)
        *len = 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return mimo_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return mimo_fail(err, "%s: cannot open: Is a directory", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return mimo_fail(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = mimo_xmalloc(cap);
    for (;;) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        if (cap > max_bytes) {
            fclose(f);
            free(buf);
            return mimo_fail(err, "%s: larger than %zu bytes: not a config file", path, max_bytes);
        }
        cap *= 2;
        buf = mimo_xrealloc(buf, cap);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return mimo_fail(err, "%s: read error", path);
    }
    buf[n] = '\0';
    *text = buf;
    if (len)
        *len = n;
    return 0;
}
