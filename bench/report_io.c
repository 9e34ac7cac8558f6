#include "report_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mimo_report_mkdirs(const char *dir, mimo_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return mimo_fail(err, "%s: path too long", dir);
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return mimo_fail(err, "%s: cannot create directory: %s", path, strerror(errno));
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mimo_fail(err, "%s: not a directory", dir);
    return 0;
}

int mimo_report_write_file(const char *path, const void *data, size_t size, mimo_error *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return mimo_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
    size_t wrote = size ? fwrite(data, 1, size, f) : 0;
    int close_rc = fclose(f);
    if (wrote != size || close_rc != 0) {
        unlink(tmp);
        return mimo_fail(err, "%s: write failed", path);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mimo_fail(err, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return 0;
}

void mimo_report_buffer_open(mimo_report_buffer *b)
{
    b->data = NULL;
    b->size = 0;
    b->f = open_memstream(&b->data, &b->size);
    if (!b->f) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
}

int mimo_report_buffer_commit(mimo_report_buffer *b, const char *path, mimo_error *err)
{
    fclose(b->f);
    b->f = NULL;
    int rc = mimo_report_write_file(path, b->data, b->size, err);
    free(b->data);
    b->data = NULL;
    return rc;
}

void mimo_report_buffer_discard(mimo_report_buffer *b)
{
    if (b->f)
        fclose(b->f);
    b->f = NULL;
    free(b->data);
    b->data = NULL;
}

char *mimo_report_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = mimo_xmalloc(cap + 1);
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = mimo_xrealloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[n] = '\0';
    if (size)
        *size = n;
    return buf;
}

void mimo_md_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

void mimo_html_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

void mimo_base64_write(FILE *f, const unsigned char *data, size_t size)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < size; i += 3) {
        unsigned v = (unsigned)data[i] << 16;
        if (i + 1 < size)
            v |= (unsigned)data[i + 1] << 8;
        if (i + 2 < size)
            v |= data[i + 2];
        fputc(alphabet[(v >> 18) & 63], f);
        fputc(alphabet[(v >> 12) & 63], f);
        fputc(i + 1 < size ? alphabet[(v >> 6) & 63] : '=', f);
        fputc(i + 2 < size ? alphabet[v & 63] : '=', f);
    }
}
