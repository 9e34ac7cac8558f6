/* Where named tensors come from: a checkpoint directory (sharded safetensors, opened lazily and
 * mmapped) or an in-memory set (synthetic weights, conversions). Everything downstream (weights
 * binding, inspect, convert, the backends' uploads) sees only this interface. */
#ifndef MIMO_TENSOR_SOURCE_H
#define MIMO_TENSOR_SOURCE_H

#include "mimo/safetensors.h"

typedef struct {
    const char *name;
    mimo_dtype  dtype;
    int         ndim;
    int64_t     shape[MIMO_MAX_DIMS];
    const void *data;
    size_t      nbytes;
} mimo_tensor_view;

typedef struct mimo_tensor_source mimo_tensor_source;

/* Checkpoint directory: model.safetensors.index.json (weight_map) or a single model.safetensors,
 * or every *.safetensors in the directory. Shards are opened on first use. */
int mimo_source_open_dir(const char *dir, mimo_tensor_source **out, mimo_error *err);
/* An empty in-memory set; tensors added with mimo_source_add are owned by the set. */
mimo_tensor_source *mimo_source_new_memory(void);
/* Takes ownership of data (malloc'd). Replaces a tensor of the same name. */
void mimo_source_add(mimo_tensor_source *s, const char *name, mimo_dtype dtype, int ndim,
                     const int64_t *shape, void *data, size_t nbytes);

/* Looks a tensor up; -1 (with err naming the tensor and the file) when absent or its shard is bad. */
int  mimo_source_get(mimo_tensor_source *s, const char *name, mimo_tensor_view *out, mimo_error *err);
bool mimo_source_has(mimo_tensor_source *s, const char *name);
int  mimo_source_count(const mimo_tensor_source *s);
const char *mimo_source_name_at(const mimo_tensor_source *s, int i);   /* sorted by name */
const char *mimo_source_file_of(mimo_tensor_source *s, const char *name); /* shard file, or NULL for memory */
const char *mimo_source_dir(const mimo_tensor_source *s);                 /* NULL for memory */
/* A value of the index's "metadata" map (strings; numbers as their decimal text), NULL when absent.
 * Single-file checkpoints: the file's __metadata__. Memory sources: NULL. */
const char *mimo_source_metadata(mimo_tensor_source *s, const char *key);
void mimo_source_free(mimo_tensor_source *s);

/* Writes every tensor of s (sorted by name) to dir as shards of at most max_shard_bytes plus
 * model.safetensors.index.json, atomically per file. */
int mimo_source_write_dir(mimo_tensor_source *s, const char *dir, uint64_t max_shard_bytes,
                          mimo_error *err);

/* Writes a text file (config.json, index) through a temp file + rename: never half-written. */
int mimo_write_text_file_atomic(const char *path, const char *text, mimo_error *err);
/* mkdir -p. */
int mimo_make_dirs(const char *dir, mimo_error *err);

/* Streams a checkpoint to dir one shard at a time (synth, convert): shard i is written from an
 * in-memory set as "model-%05d-of-%05d.safetensors"; finish writes model.safetensors.index.json
 * (weight_map + metadata total_size). Peak memory = one shard. */
typedef struct mimo_shard_writer mimo_shard_writer;
mimo_shard_writer *mimo_shard_writer_new(const char *dir, int n_shards);
int  mimo_shard_writer_add(mimo_shard_writer *w, mimo_tensor_source *shard, mimo_error *err);
int  mimo_shard_writer_finish(mimo_shard_writer *w, mimo_error *err);
void mimo_shard_writer_free(mimo_shard_writer *w);

#endif
