#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *mimo_test_shared_dir(void)
{
    static char path[4096];
    struct stat st;
    const char *env = getenv("MIMO_SHARED_DIR");
    snprintf(path, sizeof path, "%s", env ? env : MIMO_SHARED_DIR);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return path;
    return NULL;
}

char *mimo_test_tmpdir(void)
{
    char tmpl[] = "/tmp/mimo-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d)
        return NULL;
    return strdup(d);
}

void mimo_test_rmtree(const char *dir)
{
    if (!dir || strncmp(dir, "/tmp/mimo-test-", 15) != 0)
        return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

char *mimo_test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[n] = '\0';
    if (size)
        *size = n;
    return buf;
}

double mimo_test_rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (isnan(num) || isnan(den))
        return NAN;
    if (den == 0)
        return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

float mimo_test_top2_margin(const float *x, int n)
{
    float a = -INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (x[i] > a) {
            b = a;
            a = x[i];
        } else if (x[i] > b) {
            b = x[i];
        }
    }
    return a - b;
}

int mimo_test_run_bench(const char *args, char **output)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", MIMO_BENCH_BIN, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, p)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    buf[n] = '\0';
    int status = pclose(p);
    if (output)
        *output = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
