/* The report document: sections of text, tables and plots, rendered as index.md and a self-contained
 * index.html (PNG plots embedded as base64 data URIs, no external assets). */
#include "report.h"
#include "report_io.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* vprintf into a new string: a first pass into a small buffer measures it. */
static char *vstrf(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    char small[256];
    if (!fmt)   /* never, but UBSan's nonnull instrumentation makes GCC see a NULL path */
        fmt = "";
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0)
        n = 0;
    char *s = mimo_xmalloc((size_t)n + 1);
    if ((size_t)n < sizeof small)
        memcpy(s, small, (size_t)n + 1);
    else
        vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

char *mimo_strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vstrf(fmt, ap);
    va_end(ap);
    return s;
}

mimo_report_section *mimo_report_add_section(mimo_report_doc *d, int level, const char *title)
{
    if (d->n_sections == d->cap_sections) {
        d->cap_sections = d->cap_sections ? 2 * d->cap_sections : 16;
        d->sections = mimo_xrealloc(d->sections, (size_t)d->cap_sections * sizeof *d->sections);
    }
    mimo_report_section *s = mimo_xcalloc(1, sizeof *s);
    d->sections[d->n_sections++] = s;
    s->level = level;
    s->title = mimo_xstrdup(title);
    return s;
}

void mimo_report_section_text(mimo_report_section *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *add = vstrf(fmt, ap);
    va_end(ap);
    if (!s->text) {
        s->text = add;
        return;
    }
    char *joined = mimo_strf("%s\n\n%s", s->text, add);   /* paragraphs */
    free(s->text);
    free(add);
    s->text = joined;
}

mimo_report_table *mimo_report_add_table(mimo_report_section *s, const char *caption, int n_cols, ...)
{
    s->tables = mimo_xrealloc(s->tables, (size_t)(s->n_tables + 1) * sizeof *s->tables);
    mimo_report_table *t = mimo_xcalloc(1, sizeof *t);
    s->tables[s->n_tables++] = t;
    t->caption = caption ? mimo_xstrdup(caption) : NULL;
    t->n_cols = n_cols;
    t->header = mimo_xcalloc((size_t)n_cols, sizeof *t->header);
    va_list ap;
    va_start(ap, n_cols);
    for (int i = 0; i < n_cols; i++)
        t->header[i] = mimo_xstrdup(va_arg(ap, const char *));
    va_end(ap);
    return t;
}

void mimo_report_table_row(mimo_report_table *t, ...)
{
    if (t->n_rows == t->cap_rows) {
        t->cap_rows = t->cap_rows ? 2 * t->cap_rows : 8;
        t->cells = mimo_xrealloc(t->cells, (size_t)t->cap_rows * (size_t)t->n_cols * sizeof *t->cells);
    }
    va_list ap;
    va_start(ap, t);
    for (int i = 0; i < t->n_cols; i++) {
        const char *c = va_arg(ap, const char *);
        t->cells[(size_t)t->n_rows * (size_t)t->n_cols + (size_t)i] = mimo_xstrdup(c ? c : "-");
    }
    va_end(ap);
    t->n_rows++;
}

void mimo_report_doc_free(mimo_report_doc *d)
{
    for (int i = 0; i < d->n_sections; i++) {
        mimo_report_section *s = d->sections[i];
        for (int t = 0; t < s->n_tables; t++) {
            mimo_report_table *tb = s->tables[t];
            for (int c = 0; c < tb->n_cols; c++)
                free(tb->header[c]);
            for (int c = 0; c < tb->n_rows * tb->n_cols; c++)
                free(tb->cells[c]);
            free(tb->header);
            free(tb->cells);
            free(tb->caption);
            free(tb);
        }
        free(s->tables);
        free(s->title);
        free(s->text);
        free(s->plot);
        free(s->plot_skipped);
        free(s);
    }
    free(d->sections);
    free(d->out_dir);
    free(d->gnuplot_note);
    memset(d, 0, sizeof *d);
}

/* ---- Markdown ---- */

/* Numbers (and "-") align right, text left. */
static bool column_is_numeric(const mimo_report_table *t, int c)
{
    for (int r = 0; r < t->n_rows; r++) {
        const char *cell = t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
        if (strcmp(cell, "-") != 0 && strspn(cell, "0123456789.-+eE%x") != strlen(cell))
            return false;
    }
    return t->n_rows > 0;
}

static void md_table(FILE *f, const mimo_report_table *t)
{
    if (t->caption)
        fprintf(f, "**%s**\n\n", t->caption);
    fputc('|', f);
    for (int c = 0; c < t->n_cols; c++) {
        fputc(' ', f);
        mimo_md_text(f, t->header[c]);
        fputs(" |", f);
    }
    fputs("\n|", f);
    for (int c = 0; c < t->n_cols; c++)
        fputs(column_is_numeric(t, c) ? "---:|" : "---|", f);
    fputc('\n', f);
    for (int r = 0; r < t->n_rows; r++) {
        fputc('|', f);
        for (int c = 0; c < t->n_cols; c++) {
            fputc(' ', f);
            mimo_md_text(f, t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c]);
            fputs(" |", f);
        }
        fputc('\n', f);
    }
    if (t->n_rows == 0)
        fprintf(f, "\n_(no rows)_\n");
    fputc('\n', f);
}

static void gnuplot_status_line(FILE *f, const mimo_report_doc *d)
{
    if (d->gnuplot)
        fprintf(f, "Plots: %d drawn with gnuplot (PNG + SVG next to this file), %d skipped (each says why).\n",
                d->n_plots, d->n_plots_skipped);
    else
        fprintf(f, "Plots skipped: %s. Tables only.\n", d->gnuplot_note ? d->gnuplot_note : "gnuplot unavailable");
}

int mimo_report_write_markdown(const mimo_report_doc *d, const char *const *inputs, int n, mimo_error *err)
{
    mimo_report_buffer b;
    mimo_report_buffer_open(&b);
    FILE *f = b.f;
    fprintf(f, "# mimo-bench report\n\nResults files:\n\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%d. `%s`\n", i + 1, inputs[i]);
    fputc('\n', f);
    gnuplot_status_line(f, d);
    fputc('\n', f);
    for (int i = 0; i < d->n_sections; i++) {
        const mimo_report_section *s = d->sections[i];
        fprintf(f, "%s %s\n\n", s->level <= 2 ? "##" : "###", s->title);
        if (s->text)
            fprintf(f, "%s\n\n", s->text);
        if (s->plot)
            fprintf(f, "![%s](%s.png)\n\n([SVG](%s.svg), script `%s.gp`, data `%s.dat`)\n\n", s->title, s->plot, s->plot,
                    s->plot, s->plot);
        else if (s->plot_skipped)
            fprintf(f, "_Plot skipped: %s._\n\n", s->plot_skipped);
        for (int t = 0; t < s->n_tables; t++)
            md_table(f, s->tables[t]);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/index.md", d->out_dir);
    return mimo_report_buffer_commit(&b, path, err);
}

/* ---- HTML ---- */

static void html_paragraphs(FILE *f, const char *text)
{
    fputs("<p>", f);
    for (const char *p = text; *p; p++) {
        if (p[0] == '\n' && p[1] == '\n') {
            fputs("</p>\n<p>", f);
            p++;
        } else if (*p == '`') {
            continue;   /* Markdown code marks: plain text in HTML */
        } else {
            char c[2] = {*p, 0};
            mimo_html_text(f, c);
        }
    }
    fputs("</p>\n", f);
}

static void html_table(FILE *f, const mimo_report_table *t)
{
    fputs("<table>\n", f);
    if (t->caption) {
        fputs("<caption>", f);
        mimo_html_text(f, t->caption);
        fputs("</caption>\n", f);
    }
    fputs("<tr>", f);
    for (int c = 0; c < t->n_cols; c++) {
        fputs("<th>", f);
        mimo_html_text(f, t->header[c]);
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (int r = 0; r < t->n_rows; r++) {
        fputs("<tr>", f);
        for (int c = 0; c < t->n_cols; c++) {
            fputs(column_is_numeric(t, c) ? "<td class=\"n\">" : "<td>", f);
            mimo_html_text(f, t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c]);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void html_plot(FILE *f, const mimo_report_doc *d, const mimo_report_section *s)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.png", d->out_dir, s->plot);
    size_t size;
    char *png = mimo_report_read_file(path, &size);
    if (!png) {
        fprintf(f, "<p class=\"skip\">Plot %s.png could not be read back.</p>\n", s->plot);
        return;
    }
    fputs("<figure><img alt=\"", f);
    mimo_html_text(f, s->title);
    fputs("\" src=\"data:image/png;base64,", f);
    mimo_base64_write(f, (const unsigned char *)png, size);
    fprintf(f, "\"><figcaption>%s.png / %s.svg</figcaption></figure>\n", s->plot, s->plot);
    free(png);
}

int mimo_report_write_html(const mimo_report_doc *d, const char *const *inputs, int n, mimo_error *err)
{
    mimo_report_buffer b;
    mimo_report_buffer_open(&b);
    FILE *f = b.f;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mimo-bench report</title>\n"
          "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
          "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:3px 8px}"
          "th{background:#f0f0f0}td.n{text-align:right;font-variant-numeric:tabular-nums}"
          "caption{font-weight:bold;text-align:left;padding:4px 0}img{max-width:100%}"
          ".skip{color:#a33;font-style:italic}figure{margin:1em 0}figcaption{font-size:0.8em;color:#666}</style>\n"
          "</head><body>\n<h1>mimo-bench report</h1>\n<p>Results files:</p><ol>\n", f);
    for (int i = 0; i < n; i++) {
        fputs("<li><code>", f);
        mimo_html_text(f, inputs[i]);
        fputs("</code></li>\n", f);
    }
    fputs("</ol>\n", f);
    mimo_report_buffer line;
    mimo_report_buffer_open(&line);
    gnuplot_status_line(line.f, d);
    fflush(line.f);
    fputs("<p>", f);
    mimo_html_text(f, line.data);
    fputs("</p>\n", f);
    mimo_report_buffer_discard(&line);
    for (int i = 0; i < d->n_sections; i++) {
        const mimo_report_section *s = d->sections[i];
        fprintf(f, "<h%d>", s->level <= 2 ? 2 : 3);
        mimo_html_text(f, s->title);
        fprintf(f, "</h%d>\n", s->level <= 2 ? 2 : 3);
        if (s->text)
            html_paragraphs(f, s->text);
        if (s->plot)
            html_plot(f, d, s);
        else if (s->plot_skipped) {
            fputs("<p class=\"skip\">Plot skipped: ", f);
            mimo_html_text(f, s->plot_skipped);
            fputs(".</p>\n", f);
        }
        for (int t = 0; t < s->n_tables; t++)
            html_table(f, s->tables[t]);
    }
    fputs("</body></html>\n", f);
    char path[4200];
    snprintf(path, sizeof path, "%s/index.html", d->out_dir);
    return mimo_report_buffer_commit(&b, path, err);
}
