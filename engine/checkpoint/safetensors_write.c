/* safetensors writer (FORMATS.md): header laid out like the reference library (compact JSON,
 * __metadata__ first, padded with spaces so the data buffer starts 8-byte aligned), written to a
 * temporary file in the target's directory and renamed into place, so a reader never sees a
 * half-written file. */
#include "mimo/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_tensor(const char *path, const mimo_st_write_tensor *t, mimo_error *err)
{
    if (!t->name)
        return mimo_fail(err, "%s: a tensor has no name", path);
    if (strcmp(t->name, "__metadata__") == 0)
        return mimo_fail(err, "%s: tensor '%s': name is reserved", path, t->name);
    if ((unsigned)t->dtype >= MIMO_DTYPE_COUNT)
        return mimo_fail(err, "%s: tensor '%s': invalid dtype %d", path, t->name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > MIMO_MAX_DIMS)
        return mimo_fail(err, "%s: tensor '%s': %d dimensions (0..%d supported)", path, t->name, t->ndim, MIMO_MAX_DIMS);
    uint64_t nbytes = mimo_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0)
            return mimo_fail(err, "%s: tensor '%s': negative dimension %lld", path, t->name, (long long)t->shape[i]);
        uint64_t dim = (uint64_t)t->shape[i];
        if (dim != 0 && nbytes > UINT64_MAX / dim)
            return mimo_fail(err, "%s: tensor '%s': shape overflows 64 bits", path, t->name);
        nbytes *= dim;
    }
    if (nbytes != t->nbytes)
        return mimo_fail(err, "%s: tensor '%s': %zu bytes given but shape x %s needs %llu", path, t->name,
                         t->nbytes, mimo_dtype_name(t->dtype), (unsigned long long)nbytes);
    if (nbytes > 0 && !t->data)
        return mimo_fail(err, "%s: tensor '%s': no data", path, t->name);
    return 0;
}

/* The JSON header (unpadded), or NULL with err set. */
static char *build_header(const char *path, const mimo_st_write_tensor *tensors, int n,
                          const char *const *meta_keys, const char *const *meta_values, int n_meta,
                          mimo_error *err)
{
    json_t *root = json_object();
    char *text = NULL;
    if (n_meta > 0) {
        json_t *meta = json_object();
        json_object_set_new(root, "__metadata__", meta);
        for (int i = 0; i < n_meta; i++) {
            if (!meta_keys[i] || !meta_values[i]) {
                mimo_fail(err, "%s: __metadata__ entry %d has no key or value", path, i);
                goto done;
            }
            if (json_object_set_new(meta, meta_keys[i], json_string(meta_values[i])) != 0) {
                mimo_fail(err, "%s: __metadata__ key '%s' is not valid UTF-8 or its value is not", path, meta_keys[i]);
                goto done;
            }
        }
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const mimo_st_write_tensor *t = &tensors[i];
        if (check_tensor(path, t, err) != 0)
            goto done;
        if (json_object_get(root, t->name)) {
            mimo_fail(err, "%s: tensor '%s': duplicate name", path, t->name);
            goto done;
        }
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", mimo_dtype_name(t->dtype), "shape", shape,
                                  "data_offsets", (json_int_t)offset, (json_int_t)(offset + t->nbytes));
        if (!entry || json_object_set_new(root, t->name, entry) != 0) {
            mimo_fail(err, "%s: tensor '%s': name is not valid UTF-8", path, t->name);
            goto done;
        }
        offset += t->nbytes;
    }
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        mimo_fail(err, "%s: cannot serialise the header", path);
done:
    json_decref(root);
    return text;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int mimo_st_write(const char *path, const mimo_st_write_tensor *tensors, int n,
                  const char *const *meta_keys, const char *const *meta_values, int n_meta,
                  mimo_error *err)
{
    char *json = build_header(path, tensors, n, meta_keys, meta_values, n_meta, err);
    if (!json)
        return -1;
    size_t json_len = strlen(json);
    size_t padded = (json_len + 7) / 8 * 8;   /* spaces, as the reference library pads */
    if (padded > MIMO_SAFETENSORS_MAX_HEADER) {
        free(json);
        return mimo_fail(err, "%s: header of %zu bytes exceeds the %u-byte limit", path, padded,
                         MIMO_SAFETENSORS_MAX_HEADER);
    }
    char *header = mimo_xmalloc(8 + padded);
    for (int i = 0; i < 8; i++)
        header[i] = (char)(((uint64_t)padded >> (8 * i)) & 0xFF);
    memcpy(header + 8, json, json_len);
    memset(header + 8 + json_len, ' ', padded - json_len);
    free(json);

    size_t tmp_len = strlen(path) + 16;
    char *tmp = mimo_xmalloc(tmp_len);
    snprintf(tmp, tmp_len, "%s.tmp.XXXXXX", path);
    int rc = 0;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = mimo_fail(err, "%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    bool ok = write_all(fd, header, 8 + padded) == 0;
    for (int i = 0; ok && i < n; i++)
        ok = write_all(fd, tensors[i].data, tensors[i].nbytes) == 0;
    ok = ok && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        unlink(tmp);
        rc = mimo_fail(err, "%s: write failed: %s", path, strerror(e));
    }
done:
    free(tmp);
    free(header);
    return rc;
}
