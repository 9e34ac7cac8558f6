/* Offline expert re-encoding (convert.h): decode each expert matrix to f32, encode it in the
 * requested format, copy everything else unchanged. */
#include "mimo/convert.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mimo/formats.h"
#include "mimo/weights.h"

/* ---- one matrix ---- */

static int source_matrix(mimo_tensor_source *src, const char *name, int64_t rows, int64_t cols, mimo_matrix *m,
                         mimo_error *err)
{
    mimo_tensor_view v, s;
    char sname[512];
    if (mimo_source_get(src, name, &v, err))
        return -1;
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    m->data = v.data;
    int64_t want_cols = cols;
    switch (v.dtype) {
    case MIMO_DTYPE_F32:  m->format = MIMO_WFMT_F32; break;
    case MIMO_DTYPE_BF16: m->format = MIMO_WFMT_BF16; break;
    case MIMO_DTYPE_F8_E4M3:
        m->format = MIMO_WFMT_FP8;
        snprintf(sname, sizeof sname, "%s_scale_inv", name);
        if (mimo_source_get(src, sname, &s, err))
            return -1;
        if (s.dtype != MIMO_DTYPE_F32 || s.ndim != 2 || s.shape[0] != (rows + 127) / 128 || s.shape[1] != (cols + 127) / 128)
            return mimo_fail(err, "tensor '%s': expected F32 [%lld, %lld]", sname, (long long)((rows + 127) / 128),
                             (long long)((cols + 127) / 128));
        m->scales = s.data;
        break;
    case MIMO_DTYPE_U8:
        m->format = MIMO_WFMT_MXFP4;
        want_cols = cols / 2;
        snprintf(sname, sizeof sname, "%s_scale", name);
        if (mimo_source_get(src, sname, &s, err))
            return -1;
        if (cols % 32 || s.dtype != MIMO_DTYPE_U8 || s.ndim != 2 || s.shape[0] != rows || s.shape[1] != cols / 32)
            return mimo_fail(err, "tensor '%s': expected U8 [%lld, %lld]", sname, (long long)rows, (long long)(cols / 32));
        m->scales = s.data;
        break;
    default:
        return mimo_fail(err, "tensor '%s' has dtype %s: cannot convert", name, mimo_dtype_name(v.dtype));
    }
    if (v.ndim != 2 || v.shape[0] != rows || v.shape[1] != want_cols)
        return mimo_fail(err, "tensor '%s' has the wrong shape for [%lld, %lld] in %s", name, (long long)rows,
                         (long long)cols, mimo_weight_format_name(m->format));
    return 0;
}

/* 2^ceil(log2(x)) for x > 0, exactly. */
static float pow2_ceil(float x)
{
    int e;
    float m = frexpf(x, &e);   /* x = m * 2^e, m in [0.5, 1) */
    return ldexpf(1.0f, m == 0.5f ? e - 1 : e);
}

static bool same_value(float a, float b)
{
    return a == b || (isnan(a) && isnan(b));
}

int mimo_convert_matrix(mimo_tensor_source *src, const char *weight_name, int64_t rows, int64_t cols,
                        mimo_weight_format to, mimo_tensor_source *dst, uint64_t *inexact, mimo_error *err)
{
    mimo_matrix m;
    if (source_matrix(src, weight_name, rows, cols, &m, err))
        return -1;
    const size_t n = (size_t)rows * (size_t)cols;
    float *w = mimo_xmalloc(n * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        mimo_matrix_row_f32(&m, r, w + (size_t)r * (size_t)cols);
    uint64_t changed = 0;
    char sname[512];
    int64_t shape[2] = {rows, cols};

    switch (to) {
    case MIMO_WFMT_F32:
        mimo_source_add(dst, weight_name, MIMO_DTYPE_F32, 2, shape, w, n * 4);
        w = NULL;
        break;
    case MIMO_WFMT_BF16: {
        uint16_t *b = mimo_xmalloc(n * 2);
        for (size_t i = 0; i < n; i++) {
            b[i] = mimo_f32_to_bf16(w[i]);
            changed += !same_value(mimo_bf16_to_f32(b[i]), w[i]);
        }
        mimo_source_add(dst, weight_name, MIMO_DTYPE_BF16, 2, shape, b, n * 2);
        break;
    }
    case MIMO_WFMT_FP8: {
        const int64_t sr = (rows + 127) / 128, sc = (cols + 127) / 128;
        uint8_t *q = mimo_xmalloc(n);
        float *scale = mimo_xmalloc((size_t)(sr * sc) * sizeof(float));
        for (int64_t br = 0; br < sr; br++)
            for (int64_t bc = 0; bc < sc; bc++) {
                int64_t r1 = br * 128 + 128 < rows ? br * 128 + 128 : rows;
                int64_t c1 = bc * 128 + 128 < cols ? bc * 128 + 128 : cols;
                float amax = 0;
                for (int64_t r = br * 128; r < r1; r++)
                    for (int64_t c = bc * 128; c < c1; c++)
                        if (fabsf(w[r * cols + c]) > amax)
                            amax = fabsf(w[r * cols + c]);
                float s = (amax > 0 && isfinite(amax)) ? pow2_ceil(amax / 448.0f) : 1.0f;
                scale[br * sc + bc] = s;
                for (int64_t r = br * 128; r < r1; r++)
                    for (int64_t c = bc * 128; c < c1; c++) {
                        float v = w[r * cols + c];
                        q[r * cols + c] = mimo_f32_to_fp8_e4m3(v / s);
                        changed += !same_value(mimo_fp8_e4m3_to_f32(q[r * cols + c]) * s, v);
                    }
            }
        mimo_source_add(dst, weight_name, MIMO_DTYPE_F8_E4M3, 2, shape, q, n);
        snprintf(sname, sizeof sname, "%s_scale_inv", weight_name);
        mimo_source_add(dst, sname, MIMO_DTYPE_F32, 2, (int64_t[2]){sr, sc}, scale, (size_t)(sr * sc) * sizeof(float));
        break;
    }
    case MIMO_WFMT_MXFP4: {
        if (cols % 32) {
            free(w);
            return mimo_fail(err, "tensor '%s': MXFP4 needs an input dim multiple of 32 (got %lld)", weight_name,
                             (long long)cols);
        }
        uint8_t *packed = mimo_xmalloc(n / 2), *scales = mimo_xmalloc(n / 32);
        mimo_mxfp4_quantize(w, rows, cols, packed, scales);
        float *back = mimo_xmalloc(n * sizeof(float));
        mimo_mxfp4_dequantize(packed, scales, rows, cols, back);
        for (size_t i = 0; i < n; i++)
            changed += !same_value(back[i], w[i]);
        free(back);
        mimo_source_add(dst, weight_name, MIMO_DTYPE_U8, 2, (int64_t[2]){rows, cols / 2}, packed, n / 2);
        snprintf(sname, sizeof sname, "%s_scale", weight_name);
        mimo_source_add(dst, sname, MIMO_DTYPE_U8, 2, (int64_t[2]){rows, cols / 32}, scales, n / 32);
        break;
    }
    default:
        free(w);
        return mimo_fail(err, "tensor '%s': unknown target format", weight_name);
    }
    free(w);
    if (inexact)
        *inexact += changed;
    return 0;
}

/* ---- whole checkpoint ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static bool is_expert_tensor(const char *name)
{
    return strstr(name, ".mlp.experts.") || strstr(name, ".mlp.shared_experts.");
}

/* Layer index of "...layers.N...." (-1 when none). */
static int layer_of(const char *name)
{
    const char *p = strstr(name, "layers.");
    if (!p)
        return -1;
    char *end;
    long l = strtol(p + 7, &end, 10);
    return (end != p + 7 && *end == '.') ? (int)l : -1;
}

/* Copies a regular file through a temp file + rename. */
static int copy_file(const char *from, const char *to, mimo_error *err)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return mimo_fail(err, "%s: cannot open: %s", from, strerror(errno));
    size_t tlen = strlen(to) + 32;
    char *tmp = mimo_xmalloc(tlen);
    snprintf(tmp, tlen, "%s.tmp%ld", to, (long)getpid());
    FILE *out = fopen(tmp, "wb");
    if (!out) {
        fclose(in);
        free(tmp);
        return mimo_fail(err, "%s: cannot write: %s", to, strerror(errno));
    }
    char *buf = mimo_xmalloc(1 << 20);
    size_t got;
    bool ok = true;
    while (ok && (got = fread(buf, 1, 1 << 20, in)) > 0)
        ok = fwrite(buf, 1, got, out) == got;
    ok &= !ferror(in);
    ok &= fflush(out) == 0 && fsync(fileno(out)) == 0;
    ok &= fclose(out) == 0;
    fclose(in);
    free(buf);
    int rc = 0;
    if (!ok || rename(tmp, to) != 0) {
        unlink(tmp);
        rc = mimo_fail(err, "%s: copy failed", to);
    }
    free(tmp);
    return rc;
}

static int copy_dir_files(const char *from, const char *to, mimo_error *err)
{
    DIR *d = opendir(from);
    if (!d)
        return mimo_fail(err, "%s: cannot list: %s", from, strerror(errno));
    if (mimo_make_dirs(to, err)) {
        closedir(d);
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        size_t na = strlen(from) + strlen(de->d_name) + 2, nb = strlen(to) + strlen(de->d_name) + 2;
        char *a = mimo_xmalloc(na), *b = mimo_xmalloc(nb);
        snprintf(a, na, "%s/%s", from, de->d_name);
        snprintf(b, nb, "%s/%s", to, de->d_name);
        struct stat st;
        if (stat(a, &st) == 0 && S_ISREG(st.st_mode))
            rc = copy_file(a, b, err);
        free(a);
        free(b);
    }
    closedir(d);
    return rc;
}

static bool path_exists(const char *p, bool want_dir)
{
    struct stat st;
    return stat(p, &st) == 0 && (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
}

int mimo_convert_checkpoint(const char *in_dir, const char *out_dir, mimo_weight_format experts, uint64_t *inexact,
                            mimo_error *err)
{
    char path[PATH_MAX], rin[PATH_MAX], rout[PATH_MAX];
    if (realpath(in_dir, rin) && realpath(out_dir, rout) && !strcmp(rin, rout))
        return mimo_fail(err, "%s: output directory must differ from the input", out_dir);
    mimo_config cfg;
    snprintf(path, sizeof path, "%s/config.json", in_dir);
    if (mimo_config_load(path, &cfg, err))
        return -1;
    cfg.storage.experts = experts;
    if (mimo_config_validate(&cfg, err))
        return mimo_fail_prefix(err, "%s with %s experts", path, mimo_weight_format_name(experts));
    mimo_tensor_source *src;
    if (mimo_source_open_dir(in_dir, &src, err))
        return -1;
    /* a layout named only by the index metadata goes into the new config.json */
    if (mimo_config_apply_source_layout(&cfg, src, err) || mimo_make_dirs(out_dir, err)) {
        mimo_source_free(src);
        return -1;
    }

    const int n = mimo_source_count(src), n_shards = cfg.num_layers + 1;
    int *shard_of = mimo_xmalloc((size_t)(n ? n : 1) * sizeof *shard_of);
    for (int i = 0; i < n; i++) {
        int l = layer_of(mimo_source_name_at(src, i));
        shard_of[i] = (l >= 0 && l < cfg.num_layers) ? l + 1 : 0;
    }
    mimo_shard_writer *sw = mimo_shard_writer_new(out_dir, n_shards);
    int rc = 0;
    const int64_t H = cfg.hidden_size, I = cfg.moe_intermediate_size;
    for (int sh = 0; sh < n_shards && rc == 0; sh++) {
        mimo_tensor_source *dst = mimo_source_new_memory();
        for (int i = 0; i < n && rc == 0; i++) {
            if (shard_of[i] != sh)
                continue;
            const char *name = mimo_source_name_at(src, i);
            if (is_expert_tensor(name) && (ends_with(name, ".weight_scale") || ends_with(name, ".weight_scale_inv")))
                continue;   /* regenerated with its weight */
            bool gate_up = strstr(name, "gate_proj.weight") || strstr(name, "up_proj.weight");
            bool down = strstr(name, "down_proj.weight") != NULL;
            if (is_expert_tensor(name) && ends_with(name, ".weight") && (gate_up || down)) {
                rc = mimo_convert_matrix(src, name, down ? H : I, down ? I : H, experts, dst, inexact, err);
                continue;
            }
            mimo_tensor_view v;
            rc = mimo_source_get(src, name, &v, err);
            if (rc)
                break;
            void *copy = mimo_xmalloc(v.nbytes ? v.nbytes : 1);
            memcpy(copy, v.data, v.nbytes);
            mimo_source_add(dst, name, v.dtype, v.ndim, v.shape, copy, v.nbytes);
        }
        if (rc == 0)
            rc = mimo_shard_writer_add(sw, dst, err);
        mimo_source_free(dst);
    }
    if (rc == 0)
        rc = mimo_shard_writer_finish(sw, err);
    mimo_shard_writer_free(sw);
    free(shard_of);
    mimo_source_free(src);

    if (rc == 0) {
        char *js = mimo_config_to_json(&cfg);
        snprintf(path, sizeof path, "%s/config.json", out_dir);
        rc = js ? mimo_write_text_file_atomic(path, js, err) : mimo_fail(err, "%s: cannot encode config", path);
        free(js);
    }
    snprintf(path, sizeof path, "%s/drafter", in_dir);
    if (rc == 0 && path_exists(path, true)) {
        char to[PATH_MAX];
        snprintf(to, sizeof to, "%s/drafter", out_dir);
        rc = copy_dir_files(path, to, err);
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", in_dir);
    if (rc == 0 && path_exists(path, false)) {
        char to[PATH_MAX];
        snprintf(to, sizeof to, "%s/tokenizer.json", out_dir);
        rc = copy_file(path, to, err);
    }
    return rc;
}
