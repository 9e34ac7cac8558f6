/* The knobs `mimo-bench kernels` records (bench/kernel_knobs.c) are exactly the environment variables that
 * engine/cuda/ reads: getenv("MIMO_...") and env_switch_on("MIMO_...") calls in its sources. A knob added to the
 * engine without the list would leave A/B results that do not say what they ran. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_knobs.h"
#include "support.h"

#define MAX_READ 256

typedef struct {
    char name[MAX_READ][64];
    char file[MAX_READ][64];
    int n;
} env_reads;

static bool ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Every string literal starting with MIMO_ passed to one of the two readers in text. */
static void collect(const char *text, const char *file, env_reads *r)
{
    static const char *const readers[] = {"getenv(\"", "env_switch_on(\""};
    for (size_t k = 0; k < sizeof readers / sizeof readers[0]; k++)
        for (const char *p = strstr(text, readers[k]); p; p = strstr(p + 1, readers[k])) {
            const char *name = p + strlen(readers[k]), *end = strchr(name, '"');
            if (!end || strncmp(name, "MIMO_", 5) || end - name >= 64)
                continue;
            cr_assert_lt(r->n, MAX_READ);
            snprintf(r->name[r->n], sizeof r->name[r->n], "%.*s", (int)(end - name), name);
            snprintf(r->file[r->n], sizeof r->file[r->n], "%s", file);
            r->n++;
        }
}

static bool listed(const char *name)
{
    for (size_t i = 0; i < mimo_cuda_knob_count; i++)
        if (!strcmp(mimo_cuda_knobs[i], name))
            return true;
    return false;
}

Test(kernel_knobs, the_list_is_what_the_cuda_backend_reads)
{
    const char *dir = MIMO_SOURCE_DIR "/engine/cuda";
    DIR *d = opendir(dir);
    cr_assert(d, "cannot open %s", dir);
    static env_reads r;
    memset(&r, 0, sizeof r);
    int files = 0;
    for (struct dirent *e = readdir(d); e; e = readdir(d)) {
        if (!ends_with(e->d_name, ".cu") && !ends_with(e->d_name, ".cuh") && !ends_with(e->d_name, ".c") &&
            !ends_with(e->d_name, ".h"))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text = mimo_test_read_file(path, NULL);
        cr_assert(text, "cannot read %s", path);
        collect(text, e->d_name, &r);
        free(text);
        files++;
    }
    closedir(d);
    cr_assert_gt(files, 5, "engine/cuda/ sources not found under %s", dir);
    cr_assert_gt(r.n, 10, "the scan found only %d knob reads: has the engine's way of reading them changed?", r.n);
    for (int i = 0; i < r.n; i++)
        cr_expect(listed(r.name[i]), "%s reads %s, which bench/kernel_knobs.c does not list", r.file[i], r.name[i]);
    for (size_t i = 0; i < mimo_cuda_knob_count; i++) {
        bool read = false;
        for (int j = 0; j < r.n && !read; j++)
            read = !strcmp(r.name[j], mimo_cuda_knobs[i]);
        cr_expect(read, "bench/kernel_knobs.c lists %s, which engine/cuda/ no longer reads", mimo_cuda_knobs[i]);
    }
}

Test(kernel_knobs, names_are_unique)
{
    for (size_t i = 0; i < mimo_cuda_knob_count; i++)
        for (size_t j = i + 1; j < mimo_cuda_knob_count; j++)
            cr_expect(strcmp(mimo_cuda_knobs[i], mimo_cuda_knobs[j]), "%s listed twice", mimo_cuda_knobs[i]);
}
