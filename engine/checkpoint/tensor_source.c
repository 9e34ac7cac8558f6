/* Tensor sources: a checkpoint directory (safetensors shards, mmapped, opened on first use) or an
 * in-memory set. Entries are kept sorted by name so lookups are binary searches and listing order
 * is deterministic. */
#include "mimo/tensor_source.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char       *name;
    int         shard;      /* directory: index into shards; memory: -1 */
    /* memory entries only */
    mimo_dtype  dtype;
    int         ndim;
    int64_t     shape[MIMO_MAX_DIMS];
    void       *data;
    size_t      nbytes;
} source_entry;

typedef struct {
    char        *path;
    mimo_st_file file;
    bool         opened;
} source_shard;

struct mimo_tensor_source {
    char         *dir;       /* NULL for memory */
    source_entry *entries;
    int           n, cap;
    source_shard *shards;
    int           n_shards;
    char        **meta_keys, **meta_values;   /* index metadata */
    int           n_meta;
};

/* ---- sorted entry table ---- */

static int find_index(const mimo_tensor_source *s, const char *name, bool *found)
{
    int lo = 0, hi = s->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(s->entries[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static source_entry *insert_entry(mimo_tensor_source *s, const char *name, bool *existed)
{
    int i = find_index(s, name, existed);
    if (*existed)
        return &s->entries[i];
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->entries = mimo_xrealloc(s->entries, (size_t)s->cap * sizeof *s->entries);
    }
    memmove(&s->entries[i + 1], &s->entries[i], (size_t)(s->n - i) * sizeof *s->entries);
    s->n++;
    source_entry *e = &s->entries[i];
    memset(e, 0, sizeof *e);
    e->name = mimo_xstrdup(name);
    e->shard = -1;
    return e;
}

mimo_tensor_source *mimo_source_new_memory(void)
{
    return mimo_xcalloc(1, sizeof(mimo_tensor_source));
}

void mimo_source_add(mimo_tensor_source *s, const char *name, mimo_dtype dtype, int ndim,
                     const int64_t *shape, void *data, size_t nbytes)
{
    bool existed;
    source_entry *e = insert_entry(s, name, &existed);
    if (existed)
        free(e->data);
    e->shard = -1;
    e->dtype = dtype;
    e->ndim = ndim < 0 ? 0 : (ndim > MIMO_MAX_DIMS ? MIMO_MAX_DIMS : ndim);
    memset(e->shape, 0, sizeof e->shape);
    for (int d = 0; d < e->ndim; d++)
        e->shape[d] = shape[d];
    e->data = data;
    e->nbytes = nbytes;
}

/* ---- directory sources ---- */

static char *join_path(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = mimo_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static int shard_index(mimo_tensor_source *s, const char *file)
{
    for (int i = 0; i < s->n_shards; i++)
        if (!strcmp(strrchr(s->shards[i].path, '/') + 1, file))
            return i;
    s->shards = mimo_xrealloc(s->shards, (size_t)(s->n_shards + 1) * sizeof *s->shards);
    source_shard *sh = &s->shards[s->n_shards];
    memset(sh, 0, sizeof *sh);
    sh->path = join_path(s->dir, file);
    return s->n_shards++;
}

static int open_shard(mimo_tensor_source *s, int i, mimo_error *err)
{
    source_shard *sh = &s->shards[i];
    if (sh->opened)
        return 0;
    if (mimo_st_open(sh->path, &sh->file, err))
        return -1;
    sh->opened = true;
    return 0;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int load_index(mimo_tensor_source *s, const char *index_path, mimo_error *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(index_path, 0, &jerr);
    if (!root)
        return mimo_fail(err, "%s:%d: invalid JSON: %s", index_path, jerr.line, jerr.text);
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map)) {
        json_decref(root);
        return mimo_fail(err, "%s: missing key 'weight_map'", index_path);
    }
    const char *name;
    json_t *v;
    json_t *meta = json_object_get(root, "metadata");
    if (json_is_object(meta)) {
        json_object_foreach(meta, name, v) {
            char num[64];
            const char *text = json_string_value(v);
            if (!text && json_is_integer(v)) {
                snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
                text = num;
            }
            if (!text)
                continue;
            s->meta_keys = mimo_xrealloc(s->meta_keys, (size_t)(s->n_meta + 1) * sizeof *s->meta_keys);
            s->meta_values = mimo_xrealloc(s->meta_values, (size_t)(s->n_meta + 1) * sizeof *s->meta_values);
            s->meta_keys[s->n_meta] = mimo_xstrdup(name);
            s->meta_values[s->n_meta++] = mimo_xstrdup(text);
        }
    }
    json_object_foreach(map, name, v) {
        const char *file = json_string_value(v);
        if (!file || !*file || file[0] == '/' || strstr(file, "..") || strchr(file, '/')) {
            mimo_fail(err, "%s: weight_map entry for tensor '%s' must be a shard file name in the directory",
                      index_path, name);
            json_decref(root);   /* after the message: name belongs to root */
            return -1;
        }
        bool existed;
        source_entry *e = insert_entry(s, name, &existed);
        e->shard = shard_index(s, file);
    }
    json_decref(root);
    return 0;
}

/* Opens a shard now and lists its tensors (single file or "every *.safetensors" layouts). */
static int add_whole_shard(mimo_tensor_source *s, const char *file, mimo_error *err)
{
    int i = shard_index(s, file);
    if (open_shard(s, i, err))
        return -1;
    const mimo_st_file *f = &s->shards[i].file;
    for (int t = 0; t < f->n_tensors; t++) {
        bool existed;
        source_entry *e = insert_entry(s, f->tensors[t].name, &existed);
        if (existed)
            return mimo_fail(err, "%s: tensor '%s' also appears in %s", s->shards[i].path, f->tensors[t].name,
                             s->shards[e->shard].path);
        e->shard = i;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int mimo_source_open_dir(const char *dir, mimo_tensor_source **out, mimo_error *err)
{
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mimo_fail(err, "%s: not a directory", dir);
    mimo_tensor_source *s = mimo_source_new_memory();
    s->dir = mimo_xstrdup(dir);
    char *index = join_path(dir, "model.safetensors.index.json");
    char *single = join_path(dir, "model.safetensors");
    int rc = 0;
    if (file_exists(index)) {
        rc = load_index(s, index, err);
    } else if (file_exists(single)) {
        rc = add_whole_shard(s, "model.safetensors", err);
    } else {
        DIR *d = opendir(dir);
        if (!d) {
            rc = mimo_fail(err, "%s: cannot list directory: %s", dir, strerror(errno));
        } else {
            char **names = NULL;
            int n = 0;
            struct dirent *de;
            while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (len > 12 && !strcmp(de->d_name + len - 12, ".safetensors")) {
                    names = mimo_xrealloc(names, (size_t)(n + 1) * sizeof *names);
                    names[n++] = mimo_xstrdup(de->d_name);
                }
            }
            closedir(d);
            qsort(names, (size_t)n, sizeof *names, cmp_str);
            if (n == 0)
                rc = mimo_fail(err, "%s: no model.safetensors.index.json, model.safetensors or *.safetensors", dir);
            for (int i = 0; i < n; i++) {
                if (rc == 0)
                    rc = add_whole_shard(s, names[i], err);
                free(names[i]);
            }
            free(names);
        }
    }
    free(index);
    free(single);
    if (rc) {
        mimo_source_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* ---- lookups ---- */

int mimo_source_get(mimo_tensor_source *s, const char *name, mimo_tensor_view *out, mimo_error *err)
{
    bool found;
    int i = find_index(s, name, &found);
    if (!found)
        return mimo_fail(err, "%s: tensor '%s' not found", s->dir ? s->dir : "(memory)", name);
    source_entry *e = &s->entries[i];
    memset(out, 0, sizeof *out);
    out->name = e->name;
    if (e->shard < 0) {
        out->dtype = e->dtype;
        out->ndim = e->ndim;
        memcpy(out->shape, e->shape, sizeof out->shape);
        out->data = e->data;
        out->nbytes = e->nbytes;
        return 0;
    }
    if (open_shard(s, e->shard, err))
        return mimo_fail_prefix(err, "tensor '%s'", name);
    const mimo_st_tensor *t = mimo_st_find(&s->shards[e->shard].file, name);
    if (!t)
        return mimo_fail(err, "%s: tensor '%s' listed in the index is not in the file", s->shards[e->shard].path, name);
    out->dtype = t->dtype;
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, sizeof out->shape);
    out->data = t->data;
    out->nbytes = (size_t)(t->end - t->begin);
    return 0;
}

bool mimo_source_has(mimo_tensor_source *s, const char *name)
{
    bool found;
    find_index(s, name, &found);
    return found;
}

int mimo_source_count(const mimo_tensor_source *s) { return s->n; }

const char *mimo_source_name_at(const mimo_tensor_source *s, int i)
{
    return (i >= 0 && i < s->n) ? s->entries[i].name : NULL;
}

const char *mimo_source_file_of(mimo_tensor_source *s, const char *name)
{
    bool found;
    int i = find_index(s, name, &found);
    if (!found || s->entries[i].shard < 0)
        return NULL;
    return s->shards[s->entries[i].shard].path;
}

const char *mimo_source_dir(const mimo_tensor_source *s) { return s->dir; }

const char *mimo_source_metadata(mimo_tensor_source *s, const char *key)
{
    for (int i = 0; i < s->n_meta; i++)
        if (!strcmp(s->meta_keys[i], key))
            return s->meta_values[i];
    /* a single-file checkpoint carries its metadata in the safetensors header */
    if (s->n_shards == 1 && s->shards[0].opened)
        return mimo_st_meta(&s->shards[0].file, key);
    return NULL;
}

void mimo_source_free(mimo_tensor_source *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        free(s->entries[i].name);
        free(s->entries[i].data);
    }
    for (int i = 0; i < s->n_shards; i++) {
        if (s->shards[i].opened)
            mimo_st_close(&s->shards[i].file);
        free(s->shards[i].path);
    }
    for (int i = 0; i < s->n_meta; i++) {
        free(s->meta_keys[i]);
        free(s->meta_values[i]);
    }
    free(s->meta_keys);
    free(s->meta_values);
    free(s->entries);
    free(s->shards);
    free(s->dir);
    free(s);
}

/* ---- writer ---- */

static int make_dirs(const char *dir, mimo_error *err)
{
    char *p = mimo_xstrdup(dir);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return mimo_fail(err, "%s: cannot create directory: %s", dir, strerror(e));
        }
        *c = '/';
    }
    int rc = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        rc = mimo_fail(err, "%s: cannot create directory: %s", dir, strerror(errno));
    free(p);
    return rc;
}

/* Writes text to path through a temp file + rename, so readers never see half a file. */
static int write_text_atomic(const char *path, const char *text, mimo_error *err)
{
    size_t n = strlen(path) + 16;
    char *tmp = mimo_xmalloc(n);
    snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(tmp);
        return mimo_fail(err, "%s: cannot write: %s", path, strerror(errno));
    }
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    ok &= fflush(f) == 0;
    ok &= fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return mimo_fail(err, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}

int mimo_write_text_file_atomic(const char *path, const char *text, mimo_error *err)
{
    return write_text_atomic(path, text, err);
}

int mimo_make_dirs(const char *dir, mimo_error *err)
{
    return make_dirs(dir, err);
}

int mimo_source_write_dir(mimo_tensor_source *s, const char *dir, uint64_t max_shard_bytes, mimo_error *err)
{
    if (make_dirs(dir, err))
        return -1;
    if (max_shard_bytes == 0)
        max_shard_bytes = UINT64_MAX;
    /* views of every tensor, in name order */
    mimo_tensor_view *views = mimo_xcalloc((size_t)(s->n ? s->n : 1), sizeof *views);
    int *shard_of = mimo_xcalloc((size_t)(s->n ? s->n : 1), sizeof *shard_of);
    int rc = -1, n_shards = 0;
    uint64_t total = 0, cur = 0;
    for (int i = 0; i < s->n; i++) {
        if (mimo_source_get(s, s->entries[i].name, &views[i], err))
            goto done;
        if (i > 0 && cur > 0 && cur + views[i].nbytes > max_shard_bytes) {
            n_shards++;
            cur = 0;
        }
        shard_of[i] = n_shards;
        cur += views[i].nbytes;
        total += views[i].nbytes;
    }
    n_shards++;

    json_t *map = json_object();
    mimo_st_write_tensor *wt = mimo_xcalloc((size_t)(s->n ? s->n : 1), sizeof *wt);
    const char *meta_keys[] = {"format"}, *meta_values[] = {"pt"};
    int first = 0;
    for (int sh = 0; sh < n_shards; sh++) {
        char file[64];
        snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", sh + 1, n_shards);
        int n = 0;
        for (int i = first; i < s->n && shard_of[i] == sh; i++, n++) {
            wt[n] = (mimo_st_write_tensor){.name = views[i].name, .dtype = views[i].dtype, .ndim = views[i].ndim,
                                           .data = views[i].data, .nbytes = views[i].nbytes};
            memcpy(wt[n].shape, views[i].shape, sizeof wt[n].shape);
            json_object_set_new(map, views[i].name, json_string(file));
        }
        char *path = join_path(dir, file);
        int wrc = mimo_st_write(path, wt, n, meta_keys, meta_values, 1, err);
        free(path);
        if (wrc) {
            free(wt);
            json_decref(map);
            goto done;
        }
        first += n;
    }
    free(wt);

    json_t *index = json_object();
    json_object_set_new(index, "metadata", json_pack("{s:I}", "total_size", (json_int_t)total));
    json_object_set_new(index, "weight_map", map);
    char *text = json_dumps(index, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(index);
    char *index_path = join_path(dir, "model.safetensors.index.json");
    rc = text ? write_text_atomic(index_path, text, err) : mimo_fail(err, "%s: cannot encode index", index_path);
    free(index_path);
    free(text);
done:
    free(views);
    free(shard_of);
    return rc;
}
