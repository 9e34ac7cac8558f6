/* Output-file helpers of compare and report: directories, atomic writes (temp file + rename),
 * escaping for HTML and Markdown, base64 for data URIs. */
#ifndef MIMO_BENCH_REPORT_IO_H
#define MIMO_BENCH_REPORT_IO_H

#include "mimo/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* mkdir -p */
int  mimo_report_mkdirs(const char *dir, mimo_error *err);
/* Writes data to path via path.tmp.PID + rename: never a half-written file. */
int  mimo_report_write_file(const char *path, const void *data, size_t size, mimo_error *err);
/* An in-memory FILE* to render into; mimo_report_buffer_commit writes it atomically to path and frees it. */
typedef struct {
    FILE  *f;
    char  *data;
    size_t size;
} mimo_report_buffer;
void mimo_report_buffer_open(mimo_report_buffer *b);
int  mimo_report_buffer_commit(mimo_report_buffer *b, const char *path, mimo_error *err);
void mimo_report_buffer_discard(mimo_report_buffer *b);
/* Whole file into memory (NUL-terminated); NULL when unreadable. */
char *mimo_report_read_file(const char *path, size_t *size);
/* &, <, >, " escaped. */
void mimo_html_text(FILE *f, const char *s);
/* A Markdown table cell's text: '|' escaped, newlines as spaces (NULL writes nothing). */
void mimo_md_text(FILE *f, const char *s);
void mimo_base64_write(FILE *f, const unsigned char *data, size_t size);

#endif
