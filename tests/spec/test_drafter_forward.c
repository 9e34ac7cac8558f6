/* The CPU drafter's forward pass against a plain double-precision transcription of DFLASH.md:
 * context features -> fc -> hidden_norm -> per-layer k_proj/v_proj (k_norm, RoPE) as cached K/V;
 * block [t0, MASK...] -> pre-norm attention (q_norm/k_norm, RoPE at absolute positions, GQA,
 * non-causal over the block, window over the context, sink) + pre-norm SwiGLU, residuals; final
 * norm and the target's lm_head. The context is longer than tiny's drafter window. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/generate.h"
#include "mimo/synth.h"
#include "spec_rig.h"

typedef struct {
    const mimo_weights *t;
    const mimo_drafter_weights *d;
    const mimo_drafter_config *c;
} ref_model;

static void matvec(const mimo_matrix *m, const double *x, double *y)
{
    float *row = malloc((size_t)m->cols * sizeof *row);
    for (int64_t r = 0; r < m->rows; r++) {
        mimo_matrix_row_f32(m, r, row);
        double s = 0;
        for (int64_t k = 0; k < m->cols; k++)
            s += (double)row[k] * x[k];
        y[r] = s;
    }
    free(row);
}

static void rmsnorm(double *x, const float *w, int n, double eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++)
        x[i] = x[i] * inv * w[i];
}

/* per-head norm + NeoX RoPE at pos over n_heads heads */
static void head_norm_rope(const mimo_drafter_config *c, double *x, int n_heads, const float *w, int pos)
{
    int D = c->head_dim, half = c->rope_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        double *v = x + (size_t)h * D;
        rmsnorm(v, w, D, c->rms_eps);
        for (int i = 0; i < half; i++) {
            double ang = pos * pow(c->rope_theta, -2.0 * i / c->rope_dim);
            double a = v[i], b = v[i + half];
            v[i] = a * cos(ang) - b * sin(ang);
            v[i + half] = b * cos(ang) + a * sin(ang);
        }
    }
}

/* logits [B, V] of the drafter over context features feat [n_ctx, nf*H] and block tokens. */
static void reference_draft(const ref_model *m, const float *feat, int n_ctx, const int32_t *block, int B, double *logits)
{
    const mimo_drafter_config *c = m->c;
    const int H = c->hidden_size, D = c->head_dim, QH = c->n_heads, KH = c->n_kv_heads, NF = c->n_target_layers;
    const int V = m->t->cfg.vocab_size, T = n_ctx + B;
    double *ctx = malloc((size_t)n_ctx * H * sizeof *ctx);
    double *in = malloc((size_t)NF * H * sizeof *in);
    for (int p = 0; p < n_ctx; p++) {
        for (int j = 0; j < NF * H; j++)
            in[j] = feat[(size_t)p * NF * H + j];
        matvec(&m->d->fc, in, ctx + (size_t)p * H);
        rmsnorm(ctx + (size_t)p * H, m->d->hidden_norm, H, c->rms_eps);
    }
    double *x = malloc((size_t)B * H * sizeof *x), *h = malloc((size_t)H * sizeof *h);
    float *row = malloc((size_t)H * sizeof *row);
    for (int i = 0; i < B; i++) {
        const float *src = row;
        if (i > 0 && block[i] == c->mask_token_id && m->d->mask_embedding)
            src = m->d->mask_embedding;
        else
            mimo_matrix_row_f32(&m->t->embed, block[i], row);
        for (int j = 0; j < H; j++)
            x[(size_t)i * H + j] = src[j];
    }
    double *K = malloc((size_t)T * KH * D * sizeof *K), *Vv = malloc((size_t)T * KH * D * sizeof *Vv);
    double *Q = malloc((size_t)B * QH * D * sizeof *Q), *att = malloc((size_t)QH * D * sizeof *att);
    double *o = malloc((size_t)H * sizeof *o), *g = malloc((size_t)c->intermediate_size * sizeof *g);
    double *u = malloc((size_t)c->intermediate_size * sizeof *u), *sc = malloc((size_t)T * sizeof *sc);
    double *newx = malloc((size_t)B * H * sizeof *newx);
    for (int l = 0; l < c->num_layers; l++) {
        const mimo_drafter_layer *L = &m->d->layers[l];
        for (int p = 0; p < n_ctx; p++) {   /* context K/V from the features, not through the layers */
            matvec(&L->k_proj, ctx + (size_t)p * H, K + (size_t)p * KH * D);
            head_norm_rope(c, K + (size_t)p * KH * D, KH, L->k_norm, p);
            matvec(&L->v_proj, ctx + (size_t)p * H, Vv + (size_t)p * KH * D);
        }
        for (int i = 0; i < B; i++) {
            int pos = n_ctx + i;
            memcpy(h, x + (size_t)i * H, (size_t)H * sizeof *h);
            rmsnorm(h, L->input_norm, H, c->rms_eps);
            matvec(&L->q_proj, h, Q + (size_t)i * QH * D);
            head_norm_rope(c, Q + (size_t)i * QH * D, QH, L->q_norm, pos);
            matvec(&L->k_proj, h, K + (size_t)pos * KH * D);
            head_norm_rope(c, K + (size_t)pos * KH * D, KH, L->k_norm, pos);
            matvec(&L->v_proj, h, Vv + (size_t)pos * KH * D);
        }
        for (int j = 0; j < T * KH * D; j++)
            Vv[j] *= c->attention_value_scale;
        for (int i = 0; i < B; i++) {
            int pq = n_ctx + i;
            for (int hq = 0; hq < QH; hq++) {
                int kvh = hq / (QH / KH);
                double mx = L->sink ? L->sink[hq] : -INFINITY;
                for (int k = 0; k < T; k++) {
                    bool hidden = c->layer_is_swa[l] && pq - k >= c->window;   /* block keys: never hidden */
                    double s = 0;
                    for (int j = 0; j < D; j++)
                        s += Q[((size_t)i * QH + hq) * D + j] * K[((size_t)k * KH + kvh) * D + j];
                    sc[k] = hidden ? -INFINITY : s / sqrt((double)D);
                    if (sc[k] > mx)
                        mx = sc[k];
                }
                double den = L->sink ? exp(L->sink[hq] - mx) : 0;
                for (int k = 0; k < T; k++)
                    den += (sc[k] = exp(sc[k] - mx));
                for (int j = 0; j < D; j++) {
                    double s = 0;
                    for (int k = 0; k < T; k++)
                        s += sc[k] / den * Vv[((size_t)k * KH + kvh) * D + j];
                    att[(size_t)hq * D + j] = s;
                }
            }
            matvec(&L->o_proj, att, o);
            for (int j = 0; j < H; j++)
                newx[(size_t)i * H + j] = x[(size_t)i * H + j] + o[j];
        }
        for (int i = 0; i < B; i++) {
            double *xi = newx + (size_t)i * H;
            memcpy(h, xi, (size_t)H * sizeof *h);
            rmsnorm(h, L->post_attn_norm, H, c->rms_eps);
            matvec(&L->gate, h, g);
            matvec(&L->up, h, u);
            for (int j = 0; j < c->intermediate_size; j++)
                g[j] = g[j] / (1 + exp(-g[j])) * u[j];
            matvec(&L->down, g, o);
            for (int j = 0; j < H; j++)
                x[(size_t)i * H + j] = xi[j] + o[j];
        }
    }
    for (int i = 0; i < B; i++) {
        memcpy(h, x + (size_t)i * H, (size_t)H * sizeof *h);
        rmsnorm(h, m->d->final_norm, H, c->rms_eps);
        matvec(&m->t->lm_head, h, logits + (size_t)i * V);
    }
    free(ctx); free(in); free(x); free(h); free(row); free(K); free(Vv); free(Q); free(att);
    free(o); free(g); free(u); free(sc); free(newx);
}

static void compare_with_reference(bool all_swa, bool drop_mask_embedding)
{
    mimo_config cfg;
    mimo_drafter_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset("tiny", &cfg, &err), 0, "%s", err.msg);
    mimo_drafter_config_for_target(&cfg, &c);
    if (all_swa)
        for (int l = 0; l < c.num_layers; l++)
            c.layer_is_swa[l] = true;
    c.attention_value_scale = 0.75f;   /* exercised, not just 1 */
    mimo_tensor_source *tsrc = NULL, *dsrc = NULL;
    cr_assert_eq(mimo_synth_target(&cfg, 3, &tsrc, &err), 0, "%s", err.msg);
    mimo_weights tw;
    cr_assert_eq(mimo_weights_bind(&cfg, tsrc, &tw, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_drafter_synth(&c, 4, &dsrc, &err), 0, "%s", err.msg);
    mimo_drafter_weights dw;
    cr_assert_eq(mimo_drafter_bind(&c, dsrc, &dw, &err), 0, "%s", err.msg);
    if (drop_mask_embedding)
        dw.mask_embedding = NULL;
    mimo_engine_options o;
    mimo_engine_options_default(&o);
    o.max_context = 64;
    mimo_engine *e = NULL;
    cr_assert_eq(mimo_engine_create(&tw, &o, &e, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_attach_drafter(e, &dw, &err), 0, "%s", err.msg);

    const int NCTX = 20, B = 5, NF = c.n_target_layers, H = c.hidden_size, V = cfg.vocab_size;
    cr_assert_gt(NCTX, c.window, "the context must reach past the window");
    float *feat = malloc((size_t)NCTX * NF * H * sizeof *feat);
    mimo_rng rng;
    mimo_rng_init(&rng, 17);
    for (int i = 0; i < NCTX * NF * H; i++)
        feat[i] = (float)(2 * mimo_rng_uniform(&rng) - 1);
    /* appended in two pieces: the cache must not care */
    cr_assert_eq(mimo_engine_drafter_append(e, feat, 12, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_drafter_append(e, feat + (size_t)12 * NF * H, NCTX - 12, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_drafter_length(e), NCTX);
    int32_t block[5] = {77, c.mask_token_id, c.mask_token_id, c.mask_token_id, c.mask_token_id};
    float *got = malloc((size_t)B * V * sizeof *got);
    int32_t argmax[5];
    mimo_forward_out fo = {got, argmax, NULL};
    cr_assert_eq(mimo_engine_draft(e, block, B, &fo, &err), 0, "%s", err.msg);
    double *want = malloc((size_t)B * V * sizeof *want);
    ref_model m = {&tw, &dw, &c};
    reference_draft(&m, feat, NCTX, block, B, want);
    double num = 0, den = 0;
    for (int i = 0; i < B * V; i++) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    cr_expect_lt(sqrt(num / den), 1e-5, "drafter logits vs reference: rel err %.3g", sqrt(num / den));
    for (int i = 0; i < B; i++)
        cr_expect_eq(argmax[i], mimo_argmax(got + (size_t)i * V, V));
    /* drafting does not change the context; a truncation does */
    cr_expect_eq(mimo_engine_drafter_length(e), NCTX);
    cr_assert_eq(mimo_engine_drafter_truncate(e, 15, &err), 0);
    cr_expect_eq(mimo_engine_drafter_length(e), 15);
    cr_expect_eq(mimo_engine_drafter_truncate(e, 16, &err), -1, "cannot grow by truncation");
    free(feat);
    free(got);
    free(want);
    mimo_engine_destroy(e);
    mimo_drafter_free(&dw);
    mimo_source_free(dsrc);
    mimo_weights_free(&tw);
    mimo_source_free(tsrc);
}

Test(drafter_forward, matches_the_reference_sliding_and_full_layers)
{
    compare_with_reference(false, false);
}

Test(drafter_forward, matches_the_reference_all_sliding_without_mask_embedding)
{
    compare_with_reference(true, true);
}

Test(drafter_forward, the_block_is_non_causal)
{
    spec_rig rig;
    spec_rig_open(&rig, 6, true, 64);
    mimo_error err = {{0}};
    const int B = 4, V = rig.cfg.vocab_size;
    int32_t prompt[16];
    spec_random_prompt(prompt, 16, V, 8);
    mimo_generate_options o;
    mimo_generate_options_default(&o);
    o.max_new_tokens = 1;
    o.dflash = true;
    mimo_generation g;
    cr_assert_eq(mimo_generate(rig.e, prompt, 16, &o, &g, NULL, &err), 0, "%s", err.msg);   /* fills the context */
    mimo_generation_free(&g);
    int32_t a[4] = {5, rig.dcfg.mask_token_id, rig.dcfg.mask_token_id, rig.dcfg.mask_token_id};
    int32_t b[4] = {5, rig.dcfg.mask_token_id, rig.dcfg.mask_token_id, 9};   /* the last position differs */
    float *la = malloc((size_t)B * V * sizeof *la), *lb = malloc((size_t)B * V * sizeof *lb);
    mimo_forward_out fa = {la, NULL, NULL}, fb = {lb, NULL, NULL};
    cr_assert_eq(mimo_engine_draft(rig.e, a, B, &fa, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_draft(rig.e, b, B, &fb, &err), 0, "%s", err.msg);
    cr_expect(memcmp(la, lb, (size_t)V * sizeof(float)) != 0, "position 0 sees a later block position (non-causal)");
    free(la);
    free(lb);
    spec_rig_close(&rig);
}
