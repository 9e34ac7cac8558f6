/* safetensors reader and writer (FORMATS.md): a round trip with every dtype and metadata, then one
 * test per malformed file, each asserting -1 and a message naming the file and the tensor. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mimo/safetensors.h"
#include "support.h"

static char *tmpdir;

static void setup(void)
{
    tmpdir = mimo_test_tmpdir();
    cr_assert_not_null(tmpdir);
}

static void teardown(void)
{
    mimo_test_rmtree(tmpdir);
    free(tmpdir);
}

TestSuite(safetensors, .init = setup, .fini = teardown);

static char *path_in_tmp(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- round trip ---- */

Test(safetensors, round_trip_every_dtype)
{
    enum { N = MIMO_DTYPE_COUNT };
    mimo_st_write_tensor t[N + 1];
    unsigned char *bufs[N + 1];
    char names[N + 1][32];
    for (int d = 0; d < N; d++) {
        size_t es = mimo_dtype_size((mimo_dtype)d);
        cr_assert_gt(es, 0);
        snprintf(names[d], sizeof names[d], "layer.%d.%s", d, mimo_dtype_name((mimo_dtype)d));
        int64_t rows = 3 + d, cols = 5;
        bufs[d] = malloc(es * rows * cols);
        for (size_t i = 0; i < es * rows * cols; i++)
            bufs[d][i] = (unsigned char)(i * 7 + d);
        t[d] = (mimo_st_write_tensor){names[d], (mimo_dtype)d, 2, {rows, cols}, bufs[d], es * rows * cols};
    }
    /* a scalar (ndim 0) and an empty tensor share the end of the buffer */
    static const float scalar = 2.5f;
    t[N] = (mimo_st_write_tensor){"scalar", MIMO_DTYPE_F32, 0, {0}, &scalar, 4};
    bufs[N] = NULL;
    const char *keys[] = {"format", "note"}, *values[] = {"pt", "h\xc3\xa9llo \"quoted\""};
    mimo_error err = {{0}};
    const char *path = path_in_tmp("model.safetensors");
    cr_assert_eq(mimo_st_write(path, t, N + 1, keys, values, 2, &err), 0, "%s", err.msg);
    cr_assert_eq(count_files(tmpdir), 1, "temporary file left behind");

    mimo_st_file f;
    cr_assert_eq(mimo_st_open(path, &f, &err), 0, "%s", err.msg);
    cr_assert_eq(f.n_tensors, N + 1);
    cr_assert_eq((f.data - (const uint8_t *)f.map) % 8, 0, "data buffer not 8-byte aligned");
    const char *header = (const char *)f.map + 8;
    size_t header_len = (size_t)(f.data - (const uint8_t *)f.map) - 8;
    cr_assert_eq(header[0], '{');
    cr_assert(header[header_len - 1] == '}' || header[header_len - 1] == ' ', "padding is not spaces");
    cr_assert_str_eq(mimo_st_meta(&f, "format"), "pt");
    cr_assert_str_eq(mimo_st_meta(&f, "note"), values[1]);
    cr_assert_null(mimo_st_meta(&f, "absent"));
    for (int d = 0; d <= N; d++) {
        cr_assert_str_eq(f.tensors[d].name, t[d].name, "header order not kept");
        const mimo_st_tensor *s = mimo_st_find(&f, t[d].name);
        cr_assert_not_null(s, "tensor %s not found", t[d].name);
        cr_assert_eq(s->dtype, t[d].dtype);
        cr_assert_eq(s->ndim, t[d].ndim);
        for (int i = 0; i < s->ndim; i++)
            cr_assert_eq(s->shape[i], t[d].shape[i]);
        cr_assert_eq(s->end - s->begin, t[d].nbytes);
        cr_assert_eq(memcmp(s->data, t[d].data, t[d].nbytes), 0, "data of %s differs", t[d].name);
    }
    cr_assert_null(mimo_st_find(&f, "layer.99"));
    mimo_st_close(&f);

    /* overwriting replaces the file atomically, again without leftovers */
    cr_assert_eq(mimo_st_write(path, t, 1, NULL, NULL, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_st_open(path, &f, &err), 0, "%s", err.msg);
    cr_assert_eq(f.n_tensors, 1);
    cr_assert_eq(f.n_meta, 0);
    mimo_st_close(&f);
    cr_assert_eq(count_files(tmpdir), 1);
    for (int d = 0; d < N; d++)
        free(bufs[d]);
}

Test(safetensors, dtype_names)
{
    for (int d = 0; d < MIMO_DTYPE_COUNT; d++) {
        mimo_dtype back;
        cr_assert_eq(mimo_dtype_from_name(mimo_dtype_name((mimo_dtype)d), &back), 0);
        cr_assert_eq(back, (mimo_dtype)d);
    }
    mimo_dtype x;
    cr_assert_eq(mimo_dtype_from_name("F64", &x), -1);
    cr_assert_eq(mimo_dtype_size(MIMO_DTYPE_F8_E4M3), 1);
    cr_assert_eq(mimo_dtype_size(MIMO_DTYPE_BF16), 2);
    cr_assert_eq(mimo_dtype_size(MIMO_DTYPE_I64), 8);
}

Test(safetensors, writer_rejects_bad_tensors)
{
    float data[4] = {0};
    mimo_error err = {{0}};
    const char *path = path_in_tmp("bad.safetensors");
    mimo_st_write_tensor wrong_size = {"w", MIMO_DTYPE_F32, 1, {3}, data, 16};
    cr_assert_eq(mimo_st_write(path, &wrong_size, 1, NULL, NULL, 0, &err), -1);
    cr_assert(strstr(err.msg, path) && strstr(err.msg, "'w'"), "%s", err.msg);
    mimo_st_write_tensor dup[2] = {{"a", MIMO_DTYPE_F32, 1, {2}, data, 8}, {"a", MIMO_DTYPE_F32, 1, {2}, data, 8}};
    cr_assert_eq(mimo_st_write(path, dup, 2, NULL, NULL, 0, &err), -1);
    cr_assert(strstr(err.msg, "'a'") && strstr(err.msg, "duplicate"), "%s", err.msg);
    cr_assert_eq(count_files(tmpdir), 0, "a failed write left a file");
    cr_assert_eq(mimo_st_write("/nonexistent-dir/x.safetensors", dup, 1, NULL, NULL, 0, &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent-dir/x.safetensors"), "%s", err.msg);
}

/* ---- malformed files ---- */

/* Writes [8-byte length][header][data_len bytes] (length field = header_len unless forced). */
static const char *write_raw(const char *header, size_t data_len, const uint64_t *forced_len)
{
    const char *path = path_in_tmp("bad.safetensors");
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    uint64_t n = forced_len ? *forced_len : strlen(header);
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, fp);
    fwrite(header, 1, strlen(header), fp);
    for (size_t i = 0; i < data_len; i++)
        fputc((int)(i & 0xFF), fp);
    fclose(fp);
    return path;
}

/* Opens the file, and the same bytes through mimo_st_parse; both must fail naming the file and
 * every string in want (NULL-terminated). */
static void expect_error_bytes(const char *path, const char *const *want)
{
    mimo_st_file f;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_st_open(path, &f, &err), -1, "%s opened", path);
    cr_assert(strstr(err.msg, path), "message does not name the file: %s", err.msg);
    for (int i = 0; want[i]; i++)
        cr_assert(strstr(err.msg, want[i]), "message lacks \"%s\": %s", want[i], err.msg);
    cr_log_info("%s", err.msg);

    size_t size;
    char *buf = mimo_test_read_file(path, &size);
    mimo_error err2 = {{0}};
    cr_assert_eq(mimo_st_parse(buf, size, "in-memory.safetensors", &f, &err2), -1);
    cr_assert(strstr(err2.msg, "in-memory.safetensors"), "%s", err2.msg);
    for (int i = 0; want[i]; i++)
        cr_assert(strstr(err2.msg, want[i]), "message lacks \"%s\": %s", want[i], err2.msg);
    free(buf);
}

#define EXPECT_ERROR(path, ...) expect_error_bytes((path), (const char *const[]){__VA_ARGS__, NULL})

Test(safetensors, truncated_file_in_data)
{
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10, NULL), "'w'");
}

Test(safetensors, truncated_before_header_length)
{
    const char *path = path_in_tmp("short.safetensors");
    FILE *fp = fopen(path, "wb");
    fwrite("\x10\0\0", 1, 3, fp);
    fclose(fp);
    EXPECT_ERROR(path, "truncated");
    fp = fopen(path, "wb");   /* empty file */
    fclose(fp);
    EXPECT_ERROR(path, "truncated");
}

Test(safetensors, truncated_header)
{
    uint64_t n = 200;
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\"", 0, &n), "does not fit");
}

Test(safetensors, absurd_header_length)
{
    uint64_t n = (uint64_t)1 << 40;
    EXPECT_ERROR(write_raw("{}", 0, &n), "limit");
    n = MIMO_SAFETENSORS_MAX_HEADER + 1ull;
    EXPECT_ERROR(write_raw("{}", 0, &n), "limit");
    n = UINT64_MAX;
    EXPECT_ERROR(write_raw("{}", 0, &n), "limit");
}

Test(safetensors, header_not_json)
{
    EXPECT_ERROR(write_raw("{\"w\": {\"dtype\": \"F32\",", 0, NULL), "not valid JSON");
    EXPECT_ERROR(write_raw("{\"w\": \"\xff\xfe\"}", 0, NULL), "not valid JSON");   /* not UTF-8 */
}

Test(safetensors, header_not_object)
{
    EXPECT_ERROR(write_raw("[1, 2, 3]", 0, NULL), "not a JSON object");
    EXPECT_ERROR(write_raw("", 0, NULL), "not a JSON object");
}

Test(safetensors, entry_not_object)
{
    EXPECT_ERROR(write_raw("{\"w\": [0, 4]}", 0, NULL), "'w'", "not a JSON object");
}

Test(safetensors, missing_fields)
{
    EXPECT_ERROR(write_raw("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, NULL), "'w'", "dtype");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, NULL), "'w'", "shape");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, NULL), "'w'", "data_offsets");
}

Test(safetensors, ill_typed_fields)
{
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, NULL), "'w'", "dtype");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4, NULL), "'w'", "shape");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, NULL), "'w'", "shape");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, NULL), "'w'", "shape");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4, NULL), "'w'", "data_offsets");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4, NULL), "'w'", "data_offsets");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, NULL), "'w'", "data_offsets");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, NULL),
                 "'w'", "dimensions");
}

Test(safetensors, unknown_dtype)
{
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, NULL), "'w'", "Q4_K");
}

Test(safetensors, out_of_range_offsets)
{
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 12, NULL), "'w'", "past");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 12, NULL), "'w'", "before");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,9223372036854775807]}}", 4, NULL), "'w'");
    /* past int64: jansson refuses the number itself, so the message points at it instead of a tensor */
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 4, NULL),
                 "not valid JSON", "18446744073709551615");
}

Test(safetensors, overlapping_offsets)
{
    EXPECT_ERROR(write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, NULL),
                 "'b'", "overlap", "'a'");
}

Test(safetensors, hole_between_tensors)
{
    EXPECT_ERROR(write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, NULL),
                 "'b'", "hole");
    EXPECT_ERROR(write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, NULL), "'a'", "hole");
}

Test(safetensors, trailing_unused_bytes)
{
    EXPECT_ERROR(write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9, NULL), "'a'", "trailing");
    EXPECT_ERROR(write_raw("{}", 3, NULL), "no tensor");
}

Test(safetensors, byte_size_not_shape_times_dtype)
{
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, NULL), "'w'", "shape");
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,6]}}", 6, NULL), "'w'");
    /* a product that wraps around 64 bits must not match a small buffer */
    EXPECT_ERROR(write_raw("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, NULL),
                 "'w'", "overflows");
}

Test(safetensors, duplicate_names)
{
    EXPECT_ERROR(write_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                           "\"dup.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                           "\"dup.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, NULL),
                 "'dup.weight'", "duplicate");
    /* an escaped quote inside the duplicated name */
    EXPECT_ERROR(write_raw("{\"q\\\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                           "\"q\\\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, NULL),
                 "'q\"x'", "duplicate");
    /* a key repeated inside one entry names the entry's tensor */
    EXPECT_ERROR(write_raw("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                           "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"dtype\":\"U8\",\"data_offsets\":[1,2]}}", 2, NULL),
                 "'w'", "duplicate key 'dtype'");
    EXPECT_ERROR(write_raw("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, NULL), "__metadata__", "'k'");
}

Test(safetensors, bad_metadata)
{
    EXPECT_ERROR(write_raw("{\"__metadata__\":[\"pt\"]}", 0, NULL), "__metadata__");
    EXPECT_ERROR(write_raw("{\"__metadata__\":{\"format\":1}}", 0, NULL), "__metadata__", "'format'");
    EXPECT_ERROR(write_raw("{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", 0, NULL), "__metadata__", "'a'");
}

Test(safetensors, minimal_valid_files)
{
    /* the smallest valid file, and a header with metadata, whitespace and an empty tensor */
    mimo_st_file f;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_st_open(write_raw("{}", 0, NULL), &f, &err), 0, "%s", err.msg);
    cr_assert_eq(f.n_tensors, 0);
    cr_assert_null(mimo_st_find(&f, "x"));
    mimo_st_close(&f);
    const char *path = write_raw("{\"__metadata__\":{\"format\":\"pt\"}, \"e\":{\"dtype\":\"I64\",\"shape\":[0,3],"
                                 "\"data_offsets\":[0,0]}, \"b\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}   ",
                                 2, NULL);
    cr_assert_eq(mimo_st_open(path, &f, &err), 0, "%s", err.msg);
    cr_assert_eq(f.n_tensors, 2);
    cr_assert_str_eq(mimo_st_meta(&f, "format"), "pt");
    cr_assert_eq(mimo_st_find(&f, "b")->end, 2);
    mimo_st_close(&f);
}
