/* NFC normalizer (utf8proc). Only valid UTF-8 runs are normalized; invalid bytes pass through. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

typedef struct {
    char  *data;
    size_t len, cap;
} byte_buffer;

static void buffer_append(byte_buffer *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = mimo_xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* NFC of one valid UTF-8 run, appended to out. */
static void append_nfc(byte_buffer *out, const char *run, size_t len)
{
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)run, (utf8proc_ssize_t)len, &mapped,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) {   /* cannot happen on validated input; keep the text as it is */
        buffer_append(out, run, len);
        return;
    }
    buffer_append(out, (const char *)mapped, (size_t)n);
    free(mapped);
}

char *normalize_nfc(const char *text, size_t len, size_t *out_len)
{
    const uint8_t *p = (const uint8_t *)text;
    size_t i = 0;
    while (i < len && p[i] < 0x80)
        i++;
    if (i == len)
        return NULL;   /* ASCII is its own NFC */

    byte_buffer out = {0};
    buffer_append(&out, text, 0);
    size_t run_start = 0;
    i = 0;
    while (i < len) {
        size_t n = utf8_char_len(p + i, len - i);
        if (n) {
            i += n;
            continue;
        }
        if (i > run_start)
            append_nfc(&out, text + run_start, i - run_start);
        buffer_append(&out, text + i, 1);   /* an invalid byte, kept as is */
        i++;
        run_start = i;
    }
    if (i > run_start)
        append_nfc(&out, text + run_start, i - run_start);
    if (out.len == len && memcmp(out.data, text, len) == 0) {
        free(out.data);
        return NULL;
    }
    *out_len = out.len;
    return out.data;
}
