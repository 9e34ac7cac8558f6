/* safetensors files (FORMATS.md): an mmap-based reader that enforces every validation rule, and a
 * writer. One file = 8-byte LE header length N, N bytes of JSON header, then the data buffer. */
#ifndef MIMO_SAFETENSORS_H
#define MIMO_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "mimo/error.h"

typedef enum {
    MIMO_DTYPE_F32, MIMO_DTYPE_F16, MIMO_DTYPE_BF16, MIMO_DTYPE_F8_E4M3,
    MIMO_DTYPE_U8, MIMO_DTYPE_I8, MIMO_DTYPE_I32, MIMO_DTYPE_I64, MIMO_DTYPE_BOOL,
    MIMO_DTYPE_COUNT
} mimo_dtype;

const char *mimo_dtype_name(mimo_dtype d);           /* "F32", "F8_E4M3", ... */
int         mimo_dtype_from_name(const char *name, mimo_dtype *out); /* -1 if unknown */
size_t      mimo_dtype_size(mimo_dtype d);

#define MIMO_MAX_DIMS 8
#define MIMO_SAFETENSORS_MAX_HEADER (100u * 1000u * 1000u)

typedef struct {
    char      *name;
    mimo_dtype dtype;
    int        ndim;
    int64_t    shape[MIMO_MAX_DIMS];
    uint64_t   begin, end;   /* data_offsets relative to the data buffer */
    const void *data;        /* points into the mapping */
} mimo_st_tensor;

typedef struct {
    char           *path;
    void           *map;       /* whole file mapped read-only */
    size_t          map_size;
    const uint8_t  *data;      /* start of the data buffer */
    size_t          data_size;
    mimo_st_tensor *tensors;   /* in header order */
    int             n_tensors;
    char          **meta_keys, **meta_values; /* __metadata__ */
    int             n_meta;
} mimo_st_file;

/* Opens and validates one file. On any violation returns -1 with a message naming the file and,
 * where there is one, the tensor. */
int  mimo_st_open(const char *path, mimo_st_file *f, mimo_error *err);
/* Same validation over a buffer already in memory (used by the fuzz target and tests). The buffer
 * must outlive f; mimo_st_close does not free it. */
int  mimo_st_parse(const void *buf, size_t size, const char *name, mimo_st_file *f, mimo_error *err);
void mimo_st_close(mimo_st_file *f);
const mimo_st_tensor *mimo_st_find(const mimo_st_file *f, const char *name);
const char *mimo_st_meta(const mimo_st_file *f, const char *key);

/* ---- writer: collect tensors, then write the file atomically (temp + rename) ---- */
typedef struct {
    const char *name;
    mimo_dtype  dtype;
    int         ndim;
    int64_t     shape[MIMO_MAX_DIMS];
    const void *data;
    size_t      nbytes;
} mimo_st_write_tensor;

/* Tensors are laid out in the given order, contiguous, no holes. meta may be NULL. */
int mimo_st_write(const char *path, const mimo_st_write_tensor *tensors, int n,
                  const char *const *meta_keys, const char *const *meta_values, int n_meta,
                  mimo_error *err);

#endif
