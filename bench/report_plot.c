/* gnuplot at run time: each plot is a script + a data file in the output directory (so a reader can
 * redraw or restyle it), run once to draw a PNG (pngcairo) and an SVG. */
#include "report.h"
#include "report_io.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

bool mimo_gnuplot_available(char *why, size_t size)
{
    const char *off = getenv("MIMO_NO_GNUPLOT");
    if (off && !strcmp(off, "1")) {
        snprintf(why, size, "MIMO_NO_GNUPLOT=1 is set");
        return false;
    }
    const char *path = getenv("PATH");
    if (path && *path) {
        char *copy = mimo_xstrdup(path);
        for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
            char candidate[4200];
            snprintf(candidate, sizeof candidate, "%s/gnuplot", *dir ? dir : ".");
            if (access(candidate, X_OK) == 0) {
                free(copy);
                return true;
            }
        }
        free(copy);
    }
    snprintf(why, size, "gnuplot is not on PATH (install gnuplot-nox for plots)");
    return false;
}

char *mimo_gnuplot_quote(const char *s)
{
    size_t n = 2;
    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 2 : 1;
    char *q = mimo_xmalloc(n + 1), *o = q;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            *o++ = '\'';
        *o++ = (*p == '\n') ? ' ' : *p;
    }
    *o++ = '\'';
    *o = '\0';
    return q;
}

/* body with every @DAT@ replaced by the quoted data file name. */
static char *expand_body(const char *body, const char *dat_quoted)
{
    size_t cap = strlen(body) + 1, n = 0;
    for (const char *p = strstr(body, "@DAT@"); p; p = strstr(p + 5, "@DAT@"))
        cap += strlen(dat_quoted);
    char *out = mimo_xmalloc(cap);
    for (const char *p = body; *p;) {
        if (!strncmp(p, "@DAT@", 5)) {
            memcpy(out + n, dat_quoted, strlen(dat_quoted));
            n += strlen(dat_quoted);
            p += 5;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

static bool nonempty_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

int mimo_gnuplot_render(const char *dir, const char *name, const char *title, const char *body, const char *data,
                        int width, int height, mimo_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.dat", dir, name);
    if (mimo_report_write_file(path, data, strlen(data), err) != 0)
        return -1;

    char dat_name[300], png_name[300], svg_name[300];
    snprintf(dat_name, sizeof dat_name, "%s.dat", name);
    snprintf(png_name, sizeof png_name, "%s.png", name);
    snprintf(svg_name, sizeof svg_name, "%s.svg", name);
    char *dat_q = mimo_gnuplot_quote(dat_name), *png_q = mimo_gnuplot_quote(png_name);
    char *svg_q = mimo_gnuplot_quote(svg_name), *title_q = mimo_gnuplot_quote(title);
    char *expanded = expand_body(body, dat_q);
    char *script = mimo_strf(
        "# mimo-bench report plot '%s': run `gnuplot %s.gp` in this directory to redraw it.\n"
        "set encoding utf8\n"
        "set terminal pngcairo noenhanced size %d,%d font 'sans,10'\n"
        "set output %s\n"
        "set title %s\n"
        "%s\n"
        "set terminal svg noenhanced size %d,%d font 'sans,10' background rgb 'white'\n"
        "set output %s\n"
        "replot\n"
        "unset output\n",
        name, name, width, height, png_q, title_q, expanded, width, height, svg_q);
    free(dat_q);
    free(png_q);
    free(svg_q);
    free(title_q);
    free(expanded);
    snprintf(path, sizeof path, "%s/%s.gp", dir, name);
    int rc = mimo_report_write_file(path, script, strlen(script), err);
    free(script);
    if (rc != 0)
        return -1;

    char png[4200], svg[4200];
    snprintf(png, sizeof png, "%s/%s", dir, png_name);
    snprintf(svg, sizeof svg, "%s/%s", dir, svg_name);
    unlink(png);   /* a stale plot must not pass for a new one */
    unlink(svg);

    /* The directory goes into a shell command: single-quote it (a quote becomes '\''). */
    size_t dn = strlen(dir);
    char *cmd = mimo_xmalloc(4 * dn + strlen(name) + 64), *o = cmd;
    o += sprintf(o, "cd '");
    for (const char *p = dir; *p; p++) {
        if (*p == '\'')
            o += sprintf(o, "'\\''");
        else
            *o++ = *p;
    }
    sprintf(o, "' && gnuplot '%s.gp' 2>&1", name);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p)
        return mimo_fail(err, "%s: cannot start gnuplot", name);
    char first[512] = "";
    char line[512];
    while (fgets(line, sizeof line, p)) {
        if (!first[0] && strspn(line, " \t\r\n") != strlen(line)) {
            line[strcspn(line, "\r\n")] = '\0';
            snprintf(first, sizeof first, "%s", line);
        }
    }
    int status = pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return mimo_fail(err, "%s.gp: gnuplot failed%s%s", name, first[0] ? ": " : "", first);
    if (!nonempty_file(png) || !nonempty_file(svg))
        return mimo_fail(err, "%s.gp: gnuplot ran but %s or %s is missing%s%s", name, png_name, svg_name,
                         first[0] ? ": " : "", first);
    return 0;
}
