/* Writes a sharded safetensors checkpoint one shard at a time (tensor_source.h). */
#include "mimo/tensor_source.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mimo_shard_writer {
    char    *dir;
    int      n_shards, written;
    json_t  *weight_map;
    uint64_t total;
};

mimo_shard_writer *mimo_shard_writer_new(const char *dir, int n_shards)
{
    mimo_shard_writer *w = mimo_xcalloc(1, sizeof *w);
    w->dir = mimo_xstrdup(dir);
    w->n_shards = n_shards;
    w->weight_map = json_object();
    return w;
}

int mimo_shard_writer_add(mimo_shard_writer *w, mimo_tensor_source *shard, mimo_error *err)
{
    if (w->written >= w->n_shards)
        return mimo_fail(err, "%s: more shards than the %d announced", w->dir, w->n_shards);
    char file[64];
    snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", w->written + 1, w->n_shards);
    size_t plen = strlen(w->dir) + sizeof file + 2;
    char *path = mimo_xmalloc(plen);
    snprintf(path, plen, "%s/%s", w->dir, file);
    int n = mimo_source_count(shard);
    mimo_st_write_tensor *wt = mimo_xcalloc((size_t)(n ? n : 1), sizeof *wt);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        mimo_tensor_view v;
        rc = mimo_source_get(shard, mimo_source_name_at(shard, i), &v, err);
        if (rc)
            break;
        wt[i] = (mimo_st_write_tensor){.name = v.name, .dtype = v.dtype, .ndim = v.ndim, .data = v.data,
                                       .nbytes = v.nbytes};
        memcpy(wt[i].shape, v.shape, sizeof wt[i].shape);
        w->total += v.nbytes;
        json_object_set_new(w->weight_map, v.name, json_string(file));
    }
    const char *mk[] = {"format"}, *mv[] = {"pt"};
    if (rc == 0)
        rc = mimo_st_write(path, wt, n, mk, mv, 1, err);
    free(wt);
    free(path);
    w->written++;
    return rc;
}

int mimo_shard_writer_finish(mimo_shard_writer *w, mimo_error *err)
{
    if (w->written != w->n_shards)
        return mimo_fail(err, "%s: %d of %d shards written", w->dir, w->written, w->n_shards);
    json_t *index = json_object();
    json_object_set_new(index, "metadata", json_pack("{s:I}", "total_size", (json_int_t)w->total));
    json_object_set(index, "weight_map", w->weight_map);
    char *text = json_dumps(index, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(index);
    size_t plen = strlen(w->dir) + 40;
    char *path = mimo_xmalloc(plen);
    snprintf(path, plen, "%s/model.safetensors.index.json", w->dir);
    int rc = text ? mimo_write_text_file_atomic(path, text, err) : mimo_fail(err, "%s: cannot encode index", path);
    free(text);
    free(path);
    return rc;
}

void mimo_shard_writer_free(mimo_shard_writer *w)
{
    if (!w)
        return;
    json_decref(w->weight_map);
    free(w->dir);
    free(w);
}
