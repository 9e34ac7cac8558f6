#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/tensor_source.h"
#include "support.h"

static void write_file(const char *dir, const char *file, const char *const *names, int n, float base)
{
    mimo_st_write_tensor t[8];
    float data[8][4];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 4; k++)
            data[i][k] = base + (float)(10 * i + k);
        t[i] = (mimo_st_write_tensor){.name = names[i], .dtype = MIMO_DTYPE_F32, .ndim = 2, .shape = {2, 2},
                                      .data = data[i], .nbytes = sizeof data[i]};
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_st_write(path, t, n, NULL, NULL, 0, &err), 0, "%s", err.msg);
}

static void write_text(const char *dir, const char *file, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_write_text_file_atomic(path, text, &err), 0, "%s", err.msg);
}

Test(tensor_source, memory_source_is_sorted_and_replaces)
{
    mimo_tensor_source *s = mimo_source_new_memory();
    int64_t shape[1] = {1};
    const char *names[] = {"b", "c", "a"};
    for (int i = 0; i < 3; i++) {
        float *v = malloc(4);
        *v = (float)i;
        mimo_source_add(s, names[i], MIMO_DTYPE_F32, 1, shape, v, 4);
    }
    float *v = malloc(4);
    *v = 42;
    mimo_source_add(s, "c", MIMO_DTYPE_F32, 1, shape, v, 4);
    cr_assert_eq(mimo_source_count(s), 3);
    cr_assert_str_eq(mimo_source_name_at(s, 0), "a");
    cr_assert_str_eq(mimo_source_name_at(s, 2), "c");
    cr_assert_null(mimo_source_name_at(s, 3));
    mimo_tensor_view t;
    cr_assert_eq(mimo_source_get(s, "c", &t, NULL), 0);
    cr_assert_eq(*(const float *)t.data, 42.0f);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_source_get(s, "zz", &t, &err), -1);
    cr_assert(strstr(err.msg, "zz"), "%s", err.msg);
    cr_assert_null(mimo_source_file_of(s, "a"));
    cr_assert_null(mimo_source_dir(s));
    cr_assert_null(mimo_source_metadata(s, "x"));
    mimo_source_free(s);
}

Test(tensor_source, single_file_and_every_safetensors_layouts)
{
    char *dir = mimo_test_tmpdir();
    const char *ab[] = {"a", "b"}, *c[] = {"c"};
    write_file(dir, "model.safetensors", ab, 2, 0);
    mimo_tensor_source *s;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_source_open_dir(dir, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_source_count(s), 2);
    mimo_tensor_view v;
    cr_assert_eq(mimo_source_get(s, "b", &v, &err), 0, "%s", err.msg);
    cr_assert_eq(((const float *)v.data)[1], 11.0f);
    cr_assert(strstr(mimo_source_file_of(s, "b"), "model.safetensors"));
    mimo_source_free(s);

    char *dir2 = mimo_test_tmpdir();
    write_file(dir2, "part-b.safetensors", c, 1, 100);
    write_file(dir2, "part-a.safetensors", ab, 2, 0);
    cr_assert_eq(mimo_source_open_dir(dir2, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_source_count(s), 3);
    cr_assert_eq(mimo_source_get(s, "c", &v, &err), 0, "%s", err.msg);
    cr_assert_eq(((const float *)v.data)[0], 100.0f);
    cr_assert(strstr(mimo_source_file_of(s, "c"), "part-b.safetensors"));
    mimo_source_free(s);
    /* one tensor in two files is refused */
    write_file(dir2, "part-c.safetensors", c, 1, 5);
    cr_assert_eq(mimo_source_open_dir(dir2, &s, &err), -1);
    cr_assert(strstr(err.msg, "'c'"), "%s", err.msg);
    mimo_test_rmtree(dir);
    mimo_test_rmtree(dir2);
    free(dir);
    free(dir2);
}

Test(tensor_source, index_opens_shards_lazily_and_names_bad_ones)
{
    char *dir = mimo_test_tmpdir();
    const char *ab[] = {"a", "b"};
    write_file(dir, "s1.safetensors", ab, 2, 0);
    write_text(dir, "s2.safetensors", "this is not a safetensors file");
    write_text(dir, "model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 48, \"qkv_layout\": \"plain\"},"
               " \"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\", \"x\": \"s2.safetensors\","
               " \"y\": \"s1.safetensors\"}}");
    mimo_tensor_source *s;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_source_open_dir(dir, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_source_count(s), 4);
    cr_assert_str_eq(mimo_source_metadata(s, "total_size"), "48");
    cr_assert_str_eq(mimo_source_metadata(s, "qkv_layout"), "plain");
    mimo_tensor_view v;
    cr_assert_eq(mimo_source_get(s, "a", &v, &err), 0, "%s", err.msg);   /* the bad shard is never touched */
    cr_assert_eq(mimo_source_get(s, "x", &v, &err), -1);
    cr_assert(strstr(err.msg, "'x'") && strstr(err.msg, "s2.safetensors"), "%s", err.msg);
    cr_assert_eq(mimo_source_get(s, "y", &v, &err), -1);
    cr_assert(strstr(err.msg, "'y'") && strstr(err.msg, "s1.safetensors"), "%s", err.msg);
    mimo_source_free(s);

    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"a\": \"../etc/passwd\"}}");
    cr_assert_eq(mimo_source_open_dir(dir, &s, &err), -1);
    cr_assert(strstr(err.msg, "'a'"), "%s", err.msg);
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": ");
    cr_assert_eq(mimo_source_open_dir(dir, &s, &err), -1);
    cr_assert(strstr(err.msg, "index.json"), "%s", err.msg);
    write_text(dir, "model.safetensors.index.json", "{\"metadata\": {}}");
    cr_assert_eq(mimo_source_open_dir(dir, &s, &err), -1);
    cr_assert(strstr(err.msg, "weight_map"), "%s", err.msg);
    cr_assert_eq(mimo_source_open_dir("/nonexistent/dir", &s, &err), -1);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(tensor_source, write_dir_shards_by_size)
{
    mimo_tensor_source *s = mimo_source_new_memory();
    int64_t shape[1] = {256};
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%02d", i);
        float *v = malloc(1024);
        for (int k = 0; k < 256; k++)
            v[k] = (float)(i * 1000 + k);
        mimo_source_add(s, name, MIMO_DTYPE_F32, 1, shape, v, 1024);
    }
    char *dir = mimo_test_tmpdir();
    mimo_error err = {{0}};
    cr_assert_eq(mimo_source_write_dir(s, dir, 3000, &err), 0, "%s", err.msg);   /* 2 tensors per shard */
    char path[4200];
    snprintf(path, sizeof path, "%s/model-00005-of-00005.safetensors", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "10 tensors of 1 KB in shards of <= 3 KB make 5 shards");
    fclose(f);
    mimo_tensor_source *d;
    cr_assert_eq(mimo_source_open_dir(dir, &d, &err), 0, "%s", err.msg);
    cr_assert_str_eq(mimo_source_metadata(d, "total_size"), "10240");
    for (int i = 0; i < 10; i++) {
        mimo_tensor_view a, b;
        const char *name = mimo_source_name_at(s, i);
        cr_assert_eq(mimo_source_get(s, name, &a, NULL), 0);
        cr_assert_eq(mimo_source_get(d, name, &b, &err), 0, "%s", err.msg);
        cr_assert_eq(memcmp(a.data, b.data, 1024), 0);
    }
    cr_assert(strstr(mimo_source_file_of(d, "t09"), "model-00005-of-00005"));
    mimo_source_free(d);
    mimo_source_free(s);
    mimo_test_rmtree(dir);
    free(dir);
}
