/* A synthetic drafter on disk: DIR/config.json + safetensors (+ index), each file written atomically. */
#include "mimo/dflash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p */
static int make_dirs(const char *dir, mimo_error *err)
{
    char *path = mimo_xstrdup(dir);
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                mimo_fail(err, "%s: cannot create directory: %s", path, strerror(e));
                free(path);
                return -1;
            }
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    free(path);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mimo_fail(err, "%s: not a directory", dir);
    return 0;
}

static int write_text_atomic(const char *path, const char *text, mimo_error *err)
{
    size_t n = strlen(path) + 16;
    char *tmp = mimo_xmalloc(n);
    snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(tmp);
        return mimo_fail(err, "%s: cannot write: %s", path, strerror(e));
    }
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        free(tmp);
        return mimo_fail(err, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}

int mimo_drafter_write_dir(const mimo_drafter_config *cfg, uint64_t seed, const char *dir, mimo_error *err)
{
    if (make_dirs(dir, err))
        return -1;
    mimo_tensor_source *src = NULL;
    if (mimo_drafter_synth(cfg, seed, &src, err))
        return -1;
    /* Shards of at most 4 GiB, like the target's. */
    int rc = mimo_source_write_dir(src, dir, 4ull << 30, err);
    mimo_source_free(src);
    if (rc)
        return mimo_fail_prefix(err, "drafter %s", dir);
    char *json = mimo_drafter_config_to_json(cfg);
    size_t n = strlen(dir) + 16;
    char *path = mimo_xmalloc(n);
    snprintf(path, n, "%s/config.json", dir);
    rc = write_text_atomic(path, json, err);
    free(path);
    free(json);
    return rc;
}
