/* safetensors reader (FORMATS.md): maps a file read-only and validates it with the reference
 * library's rules before anything downstream touches a byte. Every error names the file and, where
 * there is one, the tensor. */
#include "mimo/safetensors.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_LEN_BYTES 8
#define METADATA_KEY "__metadata__"

/* The tensors array is allocated with a name-sorted index of n ints behind its n entries, so that
 * mimo_st_find is a binary search without widening the public struct. */
static int *sorted_index(const mimo_st_file *f)
{
    return (int *)(void *)(f->tensors + f->n_tensors);
}

static uint64_t read_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Decodes the JSON string literal header[begin..end] (quotes included) into out. */
static void decode_json_string(const char *header, size_t begin, size_t end, char *out, size_t n)
{
    json_t *str = json_loadb(header + begin, end - begin + 1, JSON_DECODE_ANY, NULL);
    snprintf(out, n, "%s", json_is_string(str) ? json_string_value(str) : "?");
    json_decref(str);
}

/* jansson reports a duplicate key without naming it, at the position just past the key's closing
 * quote. Re-scan the header up to there to recover the key and, when it sits inside an entry, the
 * tensor that entry belongs to (the last key seen at the top level). */
static int fail_duplicate_key(const char *file, const char *header, size_t header_len, size_t position,
                              mimo_error *err)
{
    size_t str_begin = 0, key_begin = 0, key_end = 0, top_begin = 0, top_end = 0;
    int depth = 0, key_depth = 0;
    bool in_string = false, have_key = false, have_top = false;
    for (size_t i = 0; i < position && i < header_len; i++) {
        char c = header[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"') {
                in_string = false;
                key_begin = str_begin, key_end = i, key_depth = depth, have_key = true;
                if (depth == 1)
                    top_begin = str_begin, top_end = i, have_top = true;
            }
        } else if (c == '"') {
            in_string = true;
            str_begin = i;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    char key[256] = "?", tensor[256] = "?";
    if (have_key)
        decode_json_string(header, key_begin, key_end, key, sizeof key);
    if (!have_key || key_depth == 1)
        return mimo_fail(err, "%s: tensor '%s': duplicate name in the header", file, key);
    if (have_top)
        decode_json_string(header, top_begin, top_end, tensor, sizeof tensor);
    if (strcmp(tensor, METADATA_KEY) == 0)
        return mimo_fail(err, "%s: " METADATA_KEY ": duplicate key '%s'", file, key);
    return mimo_fail(err, "%s: tensor '%s': duplicate key '%s' in its entry", file, tensor, key);
}

static int parse_metadata(json_t *meta, const char *name, mimo_st_file *f, mimo_error *err)
{
    if (!json_is_object(meta))
        return mimo_fail(err, "%s: " METADATA_KEY " must be a JSON object of strings", name);
    size_t n = json_object_size(meta);
    f->meta_keys = mimo_xcalloc(n, sizeof *f->meta_keys);
    f->meta_values = mimo_xcalloc(n, sizeof *f->meta_values);
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value) {
        if (!json_is_string(value))
            return mimo_fail(err, "%s: " METADATA_KEY " value of key '%s' is not a string", name, key);
        f->meta_keys[f->n_meta] = mimo_xstrdup(key);
        f->meta_values[f->n_meta] = mimo_xstrdup(json_string_value(value));
        f->n_meta++;
    }
    return 0;
}

/* A JSON integer >= 0 (the reference library reads offsets and dims as unsigned integers). */
static bool json_get_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static int parse_tensor_entry(const char *file, const char *tname, json_t *entry, size_t data_size,
                              mimo_st_tensor *t, mimo_error *err)
{
    if (!json_is_object(entry))
        return mimo_fail(err, "%s: tensor '%s': header entry is not a JSON object", file, tname);

    json_t *dtype = json_object_get(entry, "dtype");
    if (!dtype)
        return mimo_fail(err, "%s: tensor '%s': missing \"dtype\"", file, tname);
    if (!json_is_string(dtype))
        return mimo_fail(err, "%s: tensor '%s': \"dtype\" is not a string", file, tname);
    if (mimo_dtype_from_name(json_string_value(dtype), &t->dtype) != 0)
        return mimo_fail(err, "%s: tensor '%s': unsupported dtype '%s' (supported: F32 F16 BF16 F8_E4M3 U8 I8 I32 I64 BOOL)",
                         file, tname, json_string_value(dtype));

    json_t *shape = json_object_get(entry, "shape");
    if (!shape)
        return mimo_fail(err, "%s: tensor '%s': missing \"shape\"", file, tname);
    if (!json_is_array(shape))
        return mimo_fail(err, "%s: tensor '%s': \"shape\" is not an array", file, tname);
    if (json_array_size(shape) > MIMO_MAX_DIMS)
        return mimo_fail(err, "%s: tensor '%s': shape has %zu dimensions (at most %d supported)",
                         file, tname, json_array_size(shape), MIMO_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    /* prod(shape) * dtype size, refusing overflow: a wrapped product could match a small buffer. */
    uint64_t nbytes = mimo_dtype_size(t->dtype);
    bool overflow = false;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t dim;
        if (!json_get_u64(json_array_get(shape, (size_t)i), &dim))
            return mimo_fail(err, "%s: tensor '%s': shape[%d] is not a non-negative integer", file, tname, i);
        t->shape[i] = (int64_t)dim;
        if (dim != 0 && nbytes > UINT64_MAX / dim)
            overflow = true;
        else
            nbytes *= dim;
    }

    json_t *offsets = json_object_get(entry, "data_offsets");
    if (!offsets)
        return mimo_fail(err, "%s: tensor '%s': missing \"data_offsets\"", file, tname);
    if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
        !json_get_u64(json_array_get(offsets, 0), &t->begin) ||
        !json_get_u64(json_array_get(offsets, 1), &t->end))
        return mimo_fail(err, "%s: tensor '%s': \"data_offsets\" is not a pair of non-negative integers", file, tname);
    if (t->begin > t->end)
        return mimo_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu) end before they begin", file, tname,
                         (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_size)
        return mimo_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu) run past the data buffer (%zu bytes)",
                         file, tname, (unsigned long long)t->begin, (unsigned long long)t->end, data_size);
    if (overflow)
        return mimo_fail(err, "%s: tensor '%s': shape x %s overflows 64 bits", file, tname, mimo_dtype_name(t->dtype));
    if (nbytes != t->end - t->begin)
        return mimo_fail(err, "%s: tensor '%s': data_offsets hold %llu bytes but shape x %s needs %llu", file, tname,
                         (unsigned long long)(t->end - t->begin), mimo_dtype_name(t->dtype), (unsigned long long)nbytes);
    return 0;
}

/* Sort key of one tensor; sorting copies (not the tensors) keeps header order and needs no globals. */
typedef struct {
    uint64_t    begin, end;
    const char *name;
    int         index;
} tensor_key;

static int compare_by_offsets(const void *a, const void *b)
{
    const tensor_key *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int compare_by_name(const void *a, const void *b)
{
    return strcmp(((const tensor_key *)a)->name, ((const tensor_key *)b)->name);
}

static tensor_key *tensor_keys(const mimo_st_file *f)
{
    tensor_key *keys = mimo_xcalloc((size_t)f->n_tensors + 1, sizeof *keys);
    for (int i = 0; i < f->n_tensors; i++)
        keys[i] = (tensor_key){f->tensors[i].begin, f->tensors[i].end, f->tensors[i].name, i};
    return keys;
}

/* Tensors sorted by offset must tile the data buffer exactly: no overlap, no hole, no tail. */
static int check_coverage(const char *file, mimo_st_file *f, mimo_error *err)
{
    int n = f->n_tensors;
    tensor_key *keys = tensor_keys(f);
    qsort(keys, (size_t)n, sizeof *keys, compare_by_offsets);
    uint64_t expected = 0;
    int rc = 0;
    const char *previous = NULL;
    for (int i = 0; i < n && rc == 0; i++) {
        const tensor_key *t = &keys[i];
        if (t->begin < expected)
            rc = mimo_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu) overlap tensor '%s'", file, t->name,
                           (unsigned long long)t->begin, (unsigned long long)t->end, previous);
        else if (t->begin > expected)
            rc = mimo_fail(err, "%s: tensor '%s': hole of %llu unused bytes in the data buffer before it (at offset %llu)",
                           file, t->name, (unsigned long long)(t->begin - expected), (unsigned long long)expected);
        expected = t->end;
        previous = t->name;
    }
    if (rc == 0 && expected != f->data_size) {
        if (previous)
            rc = mimo_fail(err, "%s: %llu trailing bytes of the data buffer belong to no tensor (after tensor '%s', offset %llu)",
                           file, (unsigned long long)(f->data_size - expected), previous, (unsigned long long)expected);
        else
            rc = mimo_fail(err, "%s: %llu bytes of data buffer but the header lists no tensor", file,
                           (unsigned long long)f->data_size);
    }
    free(keys);
    return rc;
}

static int parse_header(const uint8_t *buf, size_t size, const char *name, mimo_st_file *f, mimo_error *err)
{
    if (size < HEADER_LEN_BYTES)
        return mimo_fail(err, "%s: truncated: %zu bytes, too short for the 8-byte header length", name, size);
    uint64_t header_len = read_le64(buf);
    if (header_len > MIMO_SAFETENSORS_MAX_HEADER)
        return mimo_fail(err, "%s: header length %llu exceeds the %u-byte limit", name,
                         (unsigned long long)header_len, MIMO_SAFETENSORS_MAX_HEADER);
    if (header_len > size - HEADER_LEN_BYTES)
        return mimo_fail(err, "%s: truncated: header length %llu does not fit the %zu-byte file", name,
                         (unsigned long long)header_len, size);
    const char *header = (const char *)buf + HEADER_LEN_BYTES;
    if (header_len == 0 || header[0] != '{')
        return mimo_fail(err, "%s: header is not a JSON object (must start with '{')", name);
    f->data = buf + HEADER_LEN_BYTES + header_len;
    f->data_size = size - HEADER_LEN_BYTES - (size_t)header_len;

    json_error_t jerr;
    json_t *root = json_loadb(header, (size_t)header_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            return fail_duplicate_key(name, header, (size_t)header_len, (size_t)jerr.position, err);
        return mimo_fail(err, "%s: header is not valid JSON: %s (line %d, column %d)", name, jerr.text,
                         jerr.line, jerr.column);
    }
    int rc = 0;
    if (!json_is_object(root)) {
        rc = mimo_fail(err, "%s: header is not a JSON object", name);
        goto done;
    }
    size_t n_entries = json_object_size(root);
    json_t *meta = json_object_get(root, METADATA_KEY);
    int n = (int)(n_entries - (meta ? 1 : 0));
    /* header order entries, then the name-sorted index (see sorted_index) */
    f->tensors = mimo_xcalloc(1, (size_t)n * (sizeof *f->tensors + sizeof(int)) + 1);
    if (meta && (rc = parse_metadata(meta, name, f, err)) != 0)
        goto done;

    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, METADATA_KEY) == 0)
            continue;
        mimo_st_tensor *t = &f->tensors[f->n_tensors];
        t->name = mimo_xstrdup(key);
        f->n_tensors++;
        if ((rc = parse_tensor_entry(name, key, value, f->data_size, t, err)) != 0)
            goto done;
        t->data = f->data + t->begin;
    }
    if ((rc = check_coverage(name, f, err)) != 0)
        goto done;

    tensor_key *keys = tensor_keys(f);
    qsort(keys, (size_t)f->n_tensors, sizeof *keys, compare_by_name);
    int *index = sorted_index(f);
    for (int i = 0; i < f->n_tensors; i++)
        index[i] = keys[i].index;
    free(keys);
done:
    json_decref(root);
    return rc;
}

int mimo_st_parse(const void *buf, size_t size, const char *name, mimo_st_file *f, mimo_error *err)
{
    memset(f, 0, sizeof *f);
    f->path = mimo_xstrdup(name ? name : "(buffer)");
    if (parse_header(buf, size, f->path, f, err) != 0) {
        mimo_st_close(f);
        return -1;
    }
    return 0;
}

int mimo_st_open(const char *path, mimo_st_file *f, mimo_error *err)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mimo_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mimo_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mimo_fail(err, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < HEADER_LEN_BYTES) {
        close(fd);
        return mimo_fail(err, "%s: truncated: %zu bytes, too short for the 8-byte header length", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);   /* the mapping stays valid */
    if (map == MAP_FAILED)
        return mimo_fail(err, "%s: cannot mmap %zu bytes: %s", path, size, strerror(e));
    if (mimo_st_parse(map, size, path, f, err) != 0) {
        munmap(map, size);
        return -1;
    }
    f->map = map;
    f->map_size = size;
    return 0;
}

void mimo_st_close(mimo_st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    if (f->map)
        munmap(f->map, f->map_size);
    memset(f, 0, sizeof *f);
}

const mimo_st_tensor *mimo_st_find(const mimo_st_file *f, const char *name)
{
    const int *index = sorted_index(f);
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[index[mid]].name);
        if (c == 0)
            return &f->tensors[index[mid]];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *mimo_st_meta(const mimo_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_values[i];
    return NULL;
}
