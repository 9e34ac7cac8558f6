/* `mimo-bench run` (see runner.h). One engine per configuration; every configuration replays the
 * same tokenized requests; configurations that cannot run are recorded as available:false with the
 * reason. Timed and traced passes are separate (tracing has overhead). */
#include "runner.h"
#include "cli.h"
#include "environment.h"
#include "metrics.h"
#include "results_json.h"
#include "roofline.h"
#include "suite.h"
#include "trace.h"
#include "trace_phases.h"
#include "mimo/chat.h"
#include "mimo/generate.h"
#include "mimo/hash.h"
#include "mimo/synth.h"
#include "mimo/tensor_source.h"
#include "mimo/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHAT_SUITE_FALLBACK "agent"

void mimo_run_options_default(mimo_run_options *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 0;
    o->suites = "coding,math,agent,chat";
    o->backend = MIMO_BACKEND_CPU;
    o->fp4 = true;
    o->dflash = true;
    o->exec = MIMO_EXEC_EAGER;
    o->shard_count = 1;
    o->max_new = 64;
    o->top_p = 1.0;
    o->repeats = 1;
    o->device = 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- requests: one tokenized prompt per suite record ---- */
typedef struct {
    const char *suite;      /* points into the loaded suite */
    const char *category;
    const char *id;
    int32_t *ids;
    int n_ids;
    int index_in_suite, suite_size;   /* for the progress line */
} prompt;

/* ---- what one configuration produced ---- */
typedef struct {
    mimo_request_record rec;
    mimo_round_record *rounds;
    int repeat;
} request_result;

typedef struct {
    bool fp4, dflash;
    mimo_exec_mode exec;
} config_point;

/* Shared state of one run. */
typedef struct {
    const mimo_run_options *o;
    mimo_config cfg;
    bool synthetic;
    prompt *prompts;
    int n_prompts;
    int32_t stop_ids[8];
    int n_stop;
    /* checkpoint runs: weights bound once, shared by every configuration */
    mimo_tensor_source *src;
    mimo_weights weights;
    bool weights_bound;
    /* drafter */
    mimo_drafter_config dcfg;
    bool have_drafter_cfg;
    mimo_tensor_source *dsrc;
    mimo_drafter_weights dweights;
    bool drafter_bound;
    char drafter_missing[4200];
    /* calibration (once per run) */
    bool calibrated;
    double calibration_gbps;
    char calibration_method[256], calibration_why[256];
    volatile int *interrupt;
    bool interrupted;
    bool any_error;
    int max_context;
} run_state;

static void free_results(request_result *r, int n)
{
    for (int i = 0; i < n; i++)
        free(r[i].rounds);
    free(r);
}

/* Median of the round times (t_total) of every request in r; NAN without rounds. */
static double median_round_us(const request_result *r, int n)
{
    long total = 0;
    for (int i = 0; i < n; i++)
        total += r[i].rec.n_rounds;
    if (total == 0)
        return NAN;
    double *v = mimo_xmalloc((size_t)total * sizeof *v);
    long m = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < r[i].rec.n_rounds; k++)
            v[m++] = r[i].rounds[k].t_total_us;
    mimo_stats st;
    mimo_stats_compute(v, (int)m, &st);
    free(v);
    return st.median;
}

/* ---- loading ---- */

static int load_prompts(run_state *st, mimo_suite *suite, mimo_error *err)
{
    const mimo_run_options *o = st->o;
    mimo_tokenizer *tok = NULL;
    mimo_chat_format fmt;
    mimo_chat_format_default(&fmt);
    char path[4096], tmpdir[64] = "";

    if (o->model_dir) {
        snprintf(path, sizeof path, "%s/tokenizer.json", o->model_dir);
        tok = mimo_tokenizer_load(path, err);
        if (!tok)
            return -1;
        char tc[4096];
        struct stat sb;
        snprintf(tc, sizeof tc, "%s/tokenizer_config.json", o->model_dir);
        if (stat(tc, &sb) == 0 && mimo_chat_format_load(tc, &fmt, err)) {
            mimo_tokenizer_free(tok);
            return -1;
        }
    } else {
        /* presets: a synthetic tokenizer of exactly the preset's vocabulary, written to a temp dir */
        snprintf(tmpdir, sizeof tmpdir, "/tmp/mimo-run-tok-XXXXXX");
        if (!mkdtemp(tmpdir))
            return mimo_fail(err, "cannot create a temporary directory for the synthetic tokenizer");
        snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
        if (mimo_tokenizer_write_synthetic(st->cfg.vocab_size, path, err) == 0)
            tok = mimo_tokenizer_load(path, err);
        unlink(path);
        rmdir(tmpdir);
        if (!tok)
            return mimo_fail_prefix(err, "synthetic tokenizer for preset %s", o->preset);
    }
    if (st->synthetic)
        st->n_stop = 0;   /* synthetic weights: every request decodes exactly --max-new tokens */
    else
        st->n_stop = mimo_chat_stop_ids(&fmt, tok, st->stop_ids, 8);

    /* --requests N: at most N records of each suite, in file order */
    st->prompts = mimo_xcalloc((size_t)(suite->n_records > 0 ? suite->n_records : 1), sizeof *st->prompts);
    int rc = 0;
    for (int i = 0; i < suite->n_records; i++) {
        const mimo_suite_record *r = &suite->records[i];
        if (o->requests > 0) {
            int seen = 0;
            for (int j = 0; j < st->n_prompts; j++)
                if (!strcmp(st->prompts[j].suite, r->suite))
                    seen++;
            if (seen >= o->requests)
                continue;
        }
        char *text = NULL;
        if (mimo_suite_render_prompt(r, &fmt, 1, &text, err)) {
            rc = mimo_fail_prefix(err, "suite %s record %s", r->suite, r->id);
            break;
        }
        prompt *p = &st->prompts[st->n_prompts];
        if (mimo_tokenizer_encode(tok, text, strlen(text), &p->ids, &p->n_ids, err)) {
            free(text);
            rc = mimo_fail_prefix(err, "tokenizing suite %s record %s", r->suite, r->id);
            break;
        }
        free(text);
        if (p->n_ids == 0) {
            free(p->ids);
            continue;
        }
        p->suite = r->suite;
        p->category = r->category;
        p->id = r->id;
        st->n_prompts++;
    }
    mimo_tokenizer_free(tok);
    for (int i = 0; i < st->n_prompts; i++)
        for (int j = 0; j < st->n_prompts; j++)
            if (!strcmp(st->prompts[i].suite, st->prompts[j].suite)) {
                st->prompts[i].suite_size++;
                if (j < i)
                    st->prompts[i].index_in_suite++;
            }
    if (rc == 0 && st->n_prompts == 0)
        rc = mimo_fail(err, "the suites hold no requests");
    return rc;
}

static int load_drafter(run_state *st, mimo_error *err)
{
    const mimo_run_options *o = st->o;
    if (st->have_drafter_cfg || st->drafter_missing[0])
        return 0;
    if (o->model_dir) {
        char dir[4096], path[4200];
        struct stat sb;
        snprintf(dir, sizeof dir, "%s/drafter", o->model_dir);
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (stat(path, &sb) != 0) {
            snprintf(st->drafter_missing, sizeof st->drafter_missing, "no DFlash drafter at %s", dir);
            return 0;
        }
        if (mimo_drafter_config_load(path, &st->dcfg, err))
            return -1;
        if (mimo_source_open_dir(dir, &st->dsrc, err))
            return -1;
    } else {
        mimo_drafter_config_for_target(&st->cfg, &st->dcfg);
        if (mimo_drafter_synth(&st->dcfg, o->seed, &st->dsrc, err))
            return -1;
    }
    /* said now, as bad input, not per configuration when the engine attaches it */
    if (st->dcfg.hidden_size != st->cfg.hidden_size)
        return mimo_fail(err, "drafter hidden_size %d != target hidden_size %d", st->dcfg.hidden_size,
                         st->cfg.hidden_size);
    if (st->dcfg.mask_token_id >= st->cfg.vocab_size)
        return mimo_fail(err, "drafter mask_token_id %d is outside the target vocabulary [0, %d)",
                         st->dcfg.mask_token_id, st->cfg.vocab_size);
    for (int i = 0; i < st->dcfg.n_target_layers; i++)
        if (st->dcfg.target_layer_ids[i] >= st->cfg.num_layers)
            return mimo_fail(err, "drafter target_layer_ids[%d] = %d, the target has %d layers", i,
                             st->dcfg.target_layer_ids[i], st->cfg.num_layers);
    if (mimo_drafter_bind(&st->dcfg, st->dsrc, &st->dweights, err))
        return -1;
    st->have_drafter_cfg = true;
    st->drafter_bound = true;
    return 0;
}

/* ---- availability and engines ---- */

static bool config_available(run_state *st, const config_point *c, char *why, size_t n)
{
    const mimo_run_options *o = st->o;
    if (o->backend == MIMO_BACKEND_CPU && c->exec != MIMO_EXEC_EAGER) {
        snprintf(why, n, "exec %s: the cpu backend runs eager only", mimo_exec_name(c->exec));
        return false;
    }
    if (o->backend == MIMO_BACKEND_CPU && o->shard_count > 1) {
        snprintf(why, n, "--shard replay needs the cuda backend");
        return false;
    }
    if (!mimo_backend_available(o->backend, why, n))
        return false;
    if (c->dflash && st->drafter_missing[0]) {
        snprintf(why, n, "%.400s", st->drafter_missing);
        return false;
    }
    return true;
}

static int create_engine(run_state *st, const config_point *c, mimo_engine **out, mimo_error *err)
{
    const mimo_run_options *o = st->o;
    mimo_engine_options eo;
    mimo_engine_options_default(&eo);
    eo.backend = o->backend;
    eo.exec = c->exec;
    eo.max_context = st->max_context;
    eo.shard_rank = o->shard_rank;
    eo.shard_count = o->shard_count;
    eo.layers_limit = o->layers;
    eo.device = o->device;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    eo.n_threads = o->threads > 0 ? o->threads : (cores > 0 ? (int)cores : 1);
    if (c->dflash) {
        eo.n_hidden_layers = st->dcfg.n_target_layers;
        for (int i = 0; i < st->dcfg.n_target_layers; i++)
            eo.hidden_layers[i] = st->dcfg.target_layer_ids[i];
    }
    mimo_weight_format experts = c->fp4 ? MIMO_WFMT_MXFP4 : MIMO_WFMT_FP8;
    if (st->synthetic) {
        mimo_config cfg = st->cfg;
        cfg.storage.experts = experts;   /* synthetic experts hold the same values in every format */
        if (mimo_engine_create_synthetic(&cfg, o->seed, &eo, out, err))
            return -1;
    } else {
        if (!st->weights_bound) {
            if (mimo_source_open_dir(o->model_dir, &st->src, err))
                return -1;
            if (mimo_weights_bind(&st->cfg, st->src, &st->weights, NULL, NULL, err))
                return -1;
            st->weights_bound = true;
        }
        eo.override_experts = st->weights.storage.experts != experts;
        eo.expert_format = experts;
        if (mimo_engine_create(&st->weights, &eo, out, err))
            return -1;
    }
    if (c->dflash && mimo_engine_attach_drafter(*out, &st->dweights, err)) {
        mimo_engine_destroy(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* The forced profile of one suite: by the suite's name, then its category; mimo-published has no
 * chat figure, so chat (and other conversational suites) use agent's, which the JSON says. */
static int profile_for(const char *spec, const prompt *p, int block, mimo_accept_profile *prof, char *note,
                       size_t note_n, mimo_error *err)
{
    note[0] = '\0';
    mimo_error e1;
    if (mimo_accept_profile_parse(spec, p->suite, block, prof, &e1) == 0)
        return 0;
    if (p->category && mimo_accept_profile_parse(spec, p->category, block, prof, err) == 0) {
        snprintf(note, note_n, "suite %s uses the %s figure (its category)", p->suite, p->category);
        return 0;
    }
    if (!strncmp(spec, "mimo-published", 14) && strchr(spec, ':') == NULL &&
        mimo_accept_profile_parse(spec, CHAT_SUITE_FALLBACK, block, prof, err) == 0) {
        snprintf(note, note_n, "suite %s has no published figure: agent's mean tau is used", p->suite);
        return 0;
    }
    return mimo_fail(err, "--accept forced:%s: no figure for suite '%s': %s", spec, p->suite, e1.msg);
}

/* ---- one pass over the requests ---- */

static int run_requests(run_state *st, mimo_engine *e, const config_point *c, int block, int n_requests,
                        bool record, request_result **out, int *n_out, double *wall_ms, mimo_error *err,
                        int config_index, int n_configs, const char *pass)
{
    const mimo_run_options *o = st->o;
    int cap = 16;   /* grows: --repeats may ask for far more requests than will run */
    request_result *res = record ? mimo_xcalloc((size_t)cap, sizeof *res) : NULL;
    int n = 0, rc = 0;
    double t0 = now_ms();
    for (int k = 0; k < n_requests; k++) {
        if (*st->interrupt) {
            st->interrupted = true;
            break;
        }
        int pi = k % st->n_prompts;
        const prompt *p = &st->prompts[pi];
        mimo_generate_options g;
        mimo_generate_options_default(&g);
        g.max_new_tokens = o->max_new;
        g.sampling.temperature = (float)o->temperature;
        g.sampling.top_k = o->top_k;
        g.sampling.top_p = (float)o->top_p;
        g.seed = o->seed + (uint64_t)pi;
        g.stop_tokens = st->stop_ids;
        g.n_stop_tokens = st->n_stop;
        g.dflash = c->dflash;
        g.block = c->dflash ? block : 0;
        g.host_rounds = o->host_rounds;
        if (c->dflash && o->accept_forced) {
            char note[256];
            g.accept = MIMO_ACCEPT_FORCED;
            if (profile_for(o->accept_profile, p, block, &g.profile, note, sizeof note, err)) {
                rc = -1;
                break;
            }
        }
        if (record) {
            int rep = k / st->n_prompts, reps = (n_requests + st->n_prompts - 1) / st->n_prompts;
            fprintf(stderr, "[config %d/%d] %s %d/%d", config_index + 1, n_configs, p->suite, p->index_in_suite + 1,
                    p->suite_size);
            if (reps > 1)
                fprintf(stderr, " repeat %d/%d", rep + 1, reps);
            fprintf(stderr, " (%s pass) id %s\n", pass, p->id);
        }
        mimo_generation gen;
        memset(&gen, 0, sizeof gen);
        if (mimo_engine_truncate(e, 0, err) ||
            mimo_generate(e, p->ids, p->n_ids, &g, &gen, st->interrupt, err)) {
            mimo_generation_free(&gen);
            rc = mimo_fail_prefix(err, "suite %s request %s", p->suite, p->id);
            break;
        }
        if (record) {
            if (n == cap) {
                res = mimo_xrealloc(res, (size_t)(cap *= 2) * sizeof *res);
                memset(res + n, 0, (size_t)(cap - n) * sizeof *res);
            }
            request_result *r = &res[n++];
            r->repeat = k / st->n_prompts;
            r->rounds = mimo_xmalloc((size_t)(gen.n_rounds > 0 ? gen.n_rounds : 1) * sizeof *r->rounds);
            if (gen.n_rounds > 0)
                memcpy(r->rounds, gen.rounds, (size_t)gen.n_rounds * sizeof *r->rounds);
            r->rec = (mimo_request_record){
                .suite = p->suite, .id = p->id, .prompt_tokens = p->n_ids, .output_tokens = gen.n_tokens,
                .ttft_ms = gen.ttft_ms, .decode_ms = gen.decode_ms, .e2e_ms = gen.e2e_ms,
                .rounds = r->rounds, .n_rounds = gen.n_rounds,
                /* a static name: a pointer into res[] would dangle when res grows */
                .stop_reason = mimo_stop_reason_name(gen.stop_reason)};
        }
        if (gen.stop_reason == MIMO_STOP_INTERRUPTED)
            st->interrupted = true;
        mimo_generation_free(&gen);
    }
    *wall_ms = now_ms() - t0;
    if (record) {
        *out = res;
        *n_out = n;
    }
    return rc;
}

/* ---- JSON of one configuration ---- */

static json_t *config_json(run_state *st, const config_point *c, int block)
{
    const mimo_run_options *o = st->o;
    json_t *cj = json_object();
    json_object_set_new(cj, "backend", json_string(mimo_backend_name(o->backend)));
    json_object_set_new(cj, "fp4", json_boolean(c->fp4));
    json_object_set_new(cj, "dflash", json_boolean(c->dflash));
    json_object_set_new(cj, "exec", json_string(mimo_exec_name(c->exec)));
    json_object_set_new(cj, "block", json_integer(c->dflash ? block : 1));
    json_object_set_new(cj, "expert_format", json_string(c->fp4 ? "mxfp4" : "fp8"));
    json_object_set_new(cj, "temperature", json_real(o->temperature));
    json_object_set_new(cj, "top_k", json_integer(o->top_k));
    json_object_set_new(cj, "top_p", json_real(o->top_p));
    json_object_set_new(cj, "seed", json_integer((json_int_t)(o->seed & 0x7fffffffffffffffull)));
    json_object_set_new(cj, "max_new_tokens", json_integer(o->max_new));
    json_t *acc = json_object();
    if (c->dflash) {
        json_object_set_new(acc, "mode", json_string(o->accept_forced ? "forced" : "measured"));
        if (o->accept_forced)
            json_object_set_new(acc, "profile", json_string(o->accept_profile));
        else
            json_object_set_new(acc, "profile", json_null());
        if (o->accept_forced)
            json_object_set_new(acc, "note", json_string("forced acceptance: timing replay; the accepted count of each "
                                                          "round is drawn from the profile, not measured; the output is "
                                                          "not the target's lossless output"));
        else if (st->synthetic)
            json_object_set_new(acc, "warning", json_string("measured acceptance on random (synthetic) weights is meaningless"));
    } else {
        json_object_set_new(acc, "mode", json_string("measured"));
        json_object_set_new(acc, "profile", json_null());
        json_object_set_new(acc, "note", json_string("DFlash off: every round drafts nothing and emits one token"));
    }
    json_object_set_new(cj, "acceptance", acc);
    return cj;
}

static json_t *suites_json(request_result *res, int n, int block, mimo_error *err, bool *ok)
{
    json_t *suites = json_object();
    mimo_request_record *recs = mimo_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *recs);
    bool *done = mimo_xcalloc((size_t)(n > 0 ? n : 1), sizeof *done);
    *ok = true;
    for (int i = 0; i < n; i++) {
        if (done[i])
            continue;
        int m = 0;
        for (int j = i; j < n; j++)
            if (!done[j] && !strcmp(res[j].rec.suite, res[i].rec.suite)) {
                recs[m++] = res[j].rec;
                done[j] = true;
            }
        mimo_suite_metrics sm;
        if (mimo_suite_metrics_compute(recs, m, block, &sm, err)) {
            *ok = false;
            continue;
        }
        json_object_set_new(suites, res[i].rec.suite, mimo_results_suite(&sm));
    }
    free(recs);
    free(done);
    return suites;
}

static void print_summary_row(const char *label, const char *suite, json_t *sj)
{
    json_t *tau = json_object_get(sj, "tau");
    json_t *tps = json_object_get(sj, "decode_tps");
    json_t *ttft = json_object_get(sj, "ttft_ms");
    double tau_mean = json_number_value(json_object_get(tau, "mean"));
    printf("%-34s %-10s %5lld %7.2f %12.1f %12.1f %12.2f\n", label, suite,
           (long long)json_integer_value(json_object_get(sj, "requests")), tau_mean,
           json_number_value(json_object_get(tps, "median")), json_number_value(json_object_get(tps, "ratio_of_sums")),
           json_number_value(json_object_get(ttft, "median")));
}

/* Runs one configuration into entry; returns 0, or -1 on a run-time error (recorded in entry). */
static int run_config(run_state *st, const config_point *c, int ci, int nc, json_t *entry, const char *out_path)
{
    const mimo_run_options *o = st->o;
    mimo_error err = {""};
    mimo_engine *e = NULL;
    int block = c->dflash ? st->dcfg.block_size : 1;
    if (create_engine(st, c, &e, &err)) {
        json_object_set_new(entry, "available", json_false());
        json_object_set_new(entry, "reason", json_string(err.msg));
        fprintf(stderr, "[config %d/%d] unavailable: %s\n", ci + 1, nc, err.msg);
        return 0;
    }
    json_object_set_new(entry, "available", json_true());
    /* where the rounds' verification ran: on the device (one synchronisation per round) or the host */
    mimo_sampling_params sp = {(float)o->temperature, o->top_k, (float)o->top_p};
    json_object_set_new(json_object_get(entry, "config"), "rounds",
                        json_string(!o->host_rounds && mimo_engine_has_device_round(e, &sp) ? "device" : "host"));

    int n_requests = st->n_prompts * (o->repeats > 0 ? o->repeats : 1);
    double wall = 0;
    int rc = 0;
    /* warm-up: the first N requests, not recorded */
    if (o->warmup > 0) {
        int nw = o->warmup < st->n_prompts ? o->warmup : st->n_prompts;
        rc = run_requests(st, e, c, block, nw, false, NULL, NULL, &wall, &err, ci, nc, "warm-up");
        fprintf(stderr, "[config %d/%d] warm-up: %d request(s)\n", ci + 1, nc, nw);
    }
    request_result *res = NULL;
    int n = 0;
    if (rc == 0)
        rc = run_requests(st, e, c, block, n_requests, true, &res, &n, &wall, &err, ci, nc, "timed");

    json_t *reqs = json_array();
    double engine_ms = 0, e2e_ms = 0, step_us = 0;
    long rounds = 0;
    double ctx_sum = 0;
    for (int i = 0; i < n; i++) {
        json_t *rj = mimo_results_request(&res[i].rec);
        json_object_set_new(rj, "repeat", json_integer(res[i].repeat));
        json_array_append_new(reqs, rj);
        engine_ms += res[i].rec.ttft_ms;
        e2e_ms += res[i].rec.e2e_ms;
        for (int k = 0; k < res[i].rec.n_rounds; k++) {
            engine_ms += res[i].rounds[k].t_total_us / 1000.0;
            step_us += res[i].rounds[k].t_total_us;
        }
        rounds += res[i].rec.n_rounds;
        ctx_sum += res[i].rec.prompt_tokens + res[i].rec.output_tokens / 2.0;
    }
    json_object_set_new(entry, "requests", reqs);
    if (st->interrupted)
        json_object_set_new(entry, "incomplete", json_true());   /* cut short by SIGINT/SIGTERM */
    bool ok = true;
    mimo_error merr = {""};
    json_object_set_new(entry, "suites", suites_json(res, n, block, &merr, &ok));
    if (!ok) {
        json_object_set_new(entry, "metrics_error", json_string(merr.msg));
        st->any_error = true;
    }
    if (c->dflash && o->accept_forced) {
        /* which figure each suite's forced acceptance was drawn from */
        json_t *suites = json_object_get(entry, "suites");
        for (int i = 0; i < st->n_prompts; i++) {
            json_t *sj = json_object_get(suites, st->prompts[i].suite);
            if (!sj || json_object_get(sj, "acceptance_profile"))
                continue;
            mimo_accept_profile prof;
            char note[256];
            mimo_error perr;
            if (profile_for(o->accept_profile, &st->prompts[i], block, &prof, note, sizeof note, &perr))
                continue;
            json_t *pj = json_object();
            json_object_set_new(pj, "name", json_string(prof.name));
            json_object_set_new(pj, "expected_tau", json_real(prof.mean_tau));
            if (!prof.has_histogram)
                json_object_set_new(pj, "alpha", json_real(prof.alpha));
            if (note[0])
                json_object_set_new(pj, "note", json_string(note));
            json_object_set_new(sj, "acceptance_profile", pj);
        }
    }

    /* Overheads of the timed pass. Harness: wall time outside mimo_generate (progress lines, KV reset,
     * copying the records). Decode loop: time inside mimo_generate that is neither the prefill nor a
     * timed round (bookkeeping between rounds). Clamped at 0: separately timed intervals can sum past
     * the wall time by clock rounding. */
    double harness_ms = wall - e2e_ms, loop_ms = e2e_ms - engine_ms;
    harness_ms = harness_ms > 0 ? harness_ms : 0;
    loop_ms = loop_ms > 0 ? loop_ms : 0;
    mimo_json_set_number(entry, "harness_overhead_fraction", wall > 0 && n > 0 ? harness_ms / wall : NAN,
                         "no request completed");
    mimo_json_set_number(entry, "harness_overhead_us_per_round", rounds > 0 ? harness_ms * 1000.0 / rounds : NAN,
                         "no rounds");
    mimo_json_set_number(entry, "decode_loop_overhead_fraction", wall > 0 && n > 0 ? loop_ms / wall : NAN,
                         "no request completed");
    mimo_json_set_number(entry, "mean_round_us", rounds > 0 ? step_us / rounds : NAN, "no rounds");
    json_object_set_new(entry, "overhead_definition",
                        json_string("harness = (timed-pass wall time - sum of request e2e) / wall; decode loop = "
                                    "(sum of e2e - sum of ttft - sum of round t_total) / wall"));

    /* roofline */
    double context_len = n > 0 ? ctx_sum / n : 0;
    int kv_elem = o->backend == MIMO_BACKEND_CPU ? 4 : 2;
    mimo_step_bytes sb;
    mimo_config step_cfg = st->cfg;   /* the bytes this configuration streams: its expert format */
    step_cfg.storage.experts = c->fp4 ? MIMO_WFMT_MXFP4 : MIMO_WFMT_FP8;
    mimo_roofline_step_bytes(&step_cfg, o->layers, c->dflash ? block : 1, context_len, kv_elem, o->shard_count,
                             c->dflash ? &st->dcfg : NULL, &sb);
    double gbps = NAN;
    const char *why = "no GPU calibration on the cpu backend";
    if (o->backend == MIMO_BACKEND_CUDA) {
        gbps = st->calibration_gbps;
        why = st->calibration_why[0] ? st->calibration_why : "calibration failed";
    }
    json_object_set_new(entry, "roofline",
                        mimo_roofline_json(&sb, c->dflash ? block : 1, context_len, kv_elem, gbps,
                                           o->backend == MIMO_BACKEND_CUDA ? st->calibration_method : "none", why,
                                           rounds > 0 ? step_us / rounds / 1000.0 : NAN));

    /* --shard: the node's decode rate projected from this rank's measured round (HARNESS.md) */
    if (o->shard_count > 1 && rounds > 0) {
        double draft_ms = 0, verify_ms = 0, emitted = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < res[i].rec.n_rounds; k++) {
                draft_ms += res[i].rounds[k].t_draft_us / 1000.0;
                verify_ms += res[i].rounds[k].t_verify_us / 1000.0;
                emitted += res[i].rounds[k].emitted;
            }
        int layers_run = o->layers > 0 ? o->layers : st->cfg.num_layers;
        const double allreduce_us = 10.0;   /* stated model: NCCL small-message all-reduce, 6-20 us */
        double comm_ms = 2.0 * layers_run * allreduce_us / 1000.0;
        double tau = emitted / rounds;
        double step_ms = verify_ms / rounds + draft_ms / rounds + comm_ms;
        json_t *pj = json_object();
        json_object_set_new(pj, "label", json_string("projection, not a measurement"));
        mimo_json_set_number(pj, "projected_node_tps", step_ms > 0 ? tau / step_ms * 1000.0 : NAN, "no step time");
        json_object_set_new(pj, "tau", json_real(tau));
        json_object_set_new(pj, "rank_step_ms", json_real(verify_ms / rounds));
        json_object_set_new(pj, "draft_ms", json_real(draft_ms / rounds));
        json_object_set_new(pj, "comm_ms", json_real(comm_ms));
        json_object_set_new(pj, "comm_model", json_string("no measured NCCL run: 2 all-reduces per layer x 10 us each"));
        json_object_set_new(pj, "shard_count", json_integer(o->shard_count));
        json_object_set_new(entry, "projection", pj);
    }

    /* kernels: from a separate traced pass */
    json_t *timing = json_object();
    json_object_set_new(timing, "pass", json_string("timed"));
    json_object_set_new(timing, "wall_ms", json_real(wall));
    json_object_set_new(timing, "warmup_requests", json_integer(o->warmup));
    json_object_set_new(timing, "repeats", json_integer(o->repeats));
    json_t *kernels = json_object();
    char twhy[512] = "";
    if (!o->trace) {
        json_object_set_new(kernels, "available", json_false());
        json_object_set_new(kernels, "reason", json_string("run without --trace"));
    } else if (o->backend == MIMO_BACKEND_CPU) {
        json_object_set_new(kernels, "available", json_false());
        json_object_set_new(kernels, "reason", json_string("the cpu backend launches no GPU kernels to trace"));
    } else if (!mimo_trace_available(twhy, sizeof twhy)) {
        json_object_set_new(kernels, "available", json_false());
        json_object_set_new(kernels, "reason", json_string(twhy));
    } else if (rc == 0 && !st->interrupted) {
        mimo_trace *t = NULL;
        mimo_error terr = {""};
        double twall = 0;
        int trc = mimo_trace_start(&t, &terr);
        /* a persistent step is one CUPTI record: the engine stamps its phases for the traced pass only */
        const bool phases = c->exec == MIMO_EXEC_PERSISTENT;
        if (trc == 0) {
            fprintf(stderr, "[config %d/%d] traced pass (CUPTI): %d request(s)\n", ci + 1, nc, st->n_prompts);
            request_result *tres = NULL;
            int tn = 0;
            if (phases)
                trc = mimo_engine_set_phase_stamps(e, true, &terr);
            if (trc == 0)
                trc = run_requests(st, e, c, block, st->n_prompts, true, &tres, &tn, &twall, &terr, ci, nc, "traced");
            long trounds = 0;
            double tstep_us = 0;
            for (int i = 0; i < tn; i++) {
                trounds += tres[i].rec.n_rounds;
                for (int k = 0; k < tres[i].rec.n_rounds; k++)
                    tstep_us += tres[i].rounds[k].t_total_us;
            }
            const double traced_median_us = median_round_us(tres, tn);
            free_results(tres, tn);
            if (mimo_trace_stop(t, trc ? NULL : &terr))
                trc = -1;
            if (trc == 0) {
                json_t *phase_info = phases ? mimo_trace_add_engine_phases(t, e, "persistent_step_kernel") : NULL;
                json_decref(kernels);
                kernels = mimo_trace_summary(mimo_trace_get_records(t), trounds);
                if (phase_info)
                    json_object_set_new(kernels, "persistent_phases", phase_info);
                size_t plen = strlen(out_path) + 64;
                char *tpath = mimo_xmalloc(plen);
                snprintf(tpath, plen, "%.*s.config%d.trace.json",
                         (int)(strlen(out_path) > 5 && !strcmp(out_path + strlen(out_path) - 5, ".json")
                                   ? strlen(out_path) - 5 : strlen(out_path)), out_path, ci + 1);
                if (mimo_trace_write_chrome(mimo_trace_get_records(t), tpath, &terr) == 0)
                    json_object_set_new(kernels, "trace_file", json_string(tpath));
                else
                    json_object_set_new(kernels, "trace_file_error", json_string(terr.msg));
                free(tpath);
                json_object_set_new(kernels, "pass", json_string("traced"));
                /* CUPTI's cost, measured on the same requests: the median round time of the traced
                 * pass over the timed pass's (the median: a few rounds that absorb a CUPTI buffer
                 * hand-off must not stand for all of them), and the means beside it. */
                json_t *ov = json_object();
                double timed_round = rounds > 0 ? step_us / rounds : NAN;
                double traced_round = trounds > 0 ? tstep_us / trounds : NAN;
                double timed_median = median_round_us(res, n), traced_median = traced_median_us;
                mimo_json_set_number(ov, "timed_median_round_us", timed_median, "no timed rounds");
                mimo_json_set_number(ov, "traced_median_round_us", traced_median, "no traced rounds");
                mimo_json_set_number(ov, "overhead_fraction", traced_median / timed_median - 1.0,
                                     "no rounds to compare");
                mimo_json_set_number(ov, "timed_mean_round_us", timed_round, "no timed rounds");
                mimo_json_set_number(ov, "traced_mean_round_us", traced_round, "no traced rounds");
                mimo_json_set_number(ov, "overhead_fraction_of_means", traced_round / timed_round - 1.0,
                                     "no rounds to compare");
                json_object_set_new(ov, "timed_wall_ms", json_real(wall));
                json_object_set_new(ov, "traced_wall_ms", json_real(twall));
                json_object_set_new(ov, "definition",
                                    json_string("traced median round time / timed median round time - 1, same "
                                                "requests (overhead_fraction_of_means: the same with means)"));
                json_object_set_new(kernels, "tracing_overhead", ov);
                fprintf(stderr, "[config %d/%d] tracing overhead: %.1f%% per round (median; means: %.1f%%)\n", ci + 1,
                        nc, 100.0 * (traced_median / timed_median - 1.0), 100.0 * (traced_round / timed_round - 1.0));
                json_object_set_new(timing, "kernels_pass", json_string("traced (separate pass; its times are not the timed numbers)"));
            }
            mimo_trace_free(t);
        }
        if (phases) {   /* timed passes run without the stamps */
            mimo_error perr = {""};
            if (mimo_engine_set_phase_stamps(e, false, &perr) && trc == 0) {
                trc = -1;
                terr = perr;
            }
        }
        if (trc != 0 && !json_object_get(kernels, "categories")) {
            json_object_set_new(kernels, "available", json_false());
            json_object_set_new(kernels, "reason", json_string(terr.msg));
        }
    }
    json_object_set_new(entry, "kernels", kernels);
    json_object_set_new(entry, "timing", timing);

    if (rc != 0) {
        json_object_set_new(entry, "error", json_string(err.msg));
        fprintf(stderr, "[config %d/%d] error: %s\n", ci + 1, nc, err.msg);
        st->any_error = true;
    }
    free_results(res, n);
    mimo_engine_destroy(e);
    return rc;
}

static json_t *model_json(run_state *st)
{
    const mimo_run_options *o = st->o;
    json_t *m = json_object();
    json_object_set_new(m, "source", json_string(st->synthetic ? "preset" : "checkpoint"));
    if (st->synthetic) {
        json_object_set_new(m, "preset", json_string(o->preset));
        json_object_set_new(m, "seed", json_integer((json_int_t)(o->seed & 0x7fffffffffffffffull)));
    } else {
        json_object_set_new(m, "path", json_string(o->model_dir));
        json_object_set_new(m, "seed", json_null());
        json_object_set_new(m, "seed_null_reason", json_string("weights come from a checkpoint"));
    }
    char *cj = mimo_config_to_json(&st->cfg);
    char digest[40];
    snprintf(digest, sizeof digest, "fnv1a64:%016llx", (unsigned long long)mimo_fnv1a64(cj ? cj : ""));
    free(cj);
    json_object_set_new(m, "config_digest", json_string(digest));
    json_object_set_new(m, "model_type", json_string(st->cfg.model_type));
    json_object_set_new(m, "layers", json_integer(st->cfg.num_layers));
    json_object_set_new(m, "layers_run", json_integer(o->layers > 0 ? o->layers : st->cfg.num_layers));
    mimo_param_counts pc;
    mimo_config_count(&st->cfg, &pc);
    json_t *p = json_object();
    json_object_set_new(p, "total", json_integer((json_int_t)pc.total));
    json_object_set_new(p, "active", json_integer((json_int_t)pc.active));
    json_object_set_new(p, "embed", json_integer((json_int_t)pc.embed));
    json_object_set_new(p, "lm_head", json_integer((json_int_t)pc.lm_head));
    json_object_set_new(p, "attention", json_integer((json_int_t)pc.attention));
    json_object_set_new(p, "dense_mlp", json_integer((json_int_t)pc.dense_mlp));
    json_object_set_new(p, "router", json_integer((json_int_t)pc.router));
    json_object_set_new(p, "experts", json_integer((json_int_t)pc.experts));
    json_object_set_new(p, "norms", json_integer((json_int_t)pc.norms));
    json_object_set_new(m, "params", p);
    json_t *b = json_object();
    for (int f = 0; f < MIMO_WFMT_COUNT; f++)
        json_object_set_new(b, mimo_weight_format_name((mimo_weight_format)f), json_integer((json_int_t)pc.bytes_by_format[f]));
    json_object_set_new(m, "bytes_by_format", b);
    json_object_set_new(m, "bytes_total", json_integer((json_int_t)pc.bytes_total));
    json_object_set_new(m, "bytes_active", json_integer((json_int_t)pc.bytes_active));
    json_object_set_new(m, "expert_format_stored", json_string(mimo_weight_format_name(st->cfg.storage.experts)));
    json_t *sh = json_object();
    json_object_set_new(sh, "rank", json_integer(o->shard_rank));
    json_object_set_new(sh, "count", json_integer(o->shard_count > 0 ? o->shard_count : 1));
    json_object_set_new(m, "shard", sh);
    if (st->have_drafter_cfg) {
        char *dj = mimo_drafter_config_to_json(&st->dcfg);
        json_t *d = dj ? json_loads(dj, 0, NULL) : NULL;
        free(dj);
        if (d)
            json_object_set_new(m, "drafter", d);
    }
    return m;
}

/* Checks that the output directory takes a file now, before minutes of benchmarking. */
static int check_writable(const char *path, mimo_error *err)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return mimo_fail(err, "%s: is a directory (--out names the results file)", path);
    size_t n = strlen(path) + 32;
    char *probe = mimo_xmalloc(n);
    snprintf(probe, n, "%s.probe.XXXXXX", path);
    int fd = mkstemp(probe);
    if (fd < 0) {
        mimo_fail(err, "%s: the output directory is not writable", path);
        free(probe);
        return -1;
    }
    close(fd);
    unlink(probe);
    free(probe);
    return 0;
}

int mimo_run_execute(const mimo_run_options *o, int argc, char **argv, volatile int *interrupt, mimo_error *err)
{
    run_state st;
    memset(&st, 0, sizeof st);
    st.o = o;
    st.interrupt = interrupt;
    st.synthetic = o->model_dir == NULL;
    int exit_code = MIMO_EXIT_OK;

    if (check_writable(o->out_path, err))
        return MIMO_EXIT_FAILURE;
    if (st.synthetic) {
        if (mimo_config_preset(o->preset, &st.cfg, err))
            return MIMO_EXIT_USAGE;
    } else {
        char path[4200];
        snprintf(path, sizeof path, "%s/config.json", o->model_dir);
        if (mimo_config_load(path, &st.cfg, err))
            return MIMO_EXIT_BAD_INPUT;
    }
    if (o->layers > st.cfg.num_layers) {
        mimo_fail(err, "--layers %d: the model has %d layers", o->layers, st.cfg.num_layers);
        return MIMO_EXIT_USAGE;
    }

    mimo_suite suite;
    memset(&suite, 0, sizeof suite);
    int lrc = o->suite_file ? mimo_suite_load_file(o->suite_file, &suite, err)
                            : mimo_suite_load_builtin_list(o->suites, &suite, err);
    if (lrc)
        return MIMO_EXIT_BAD_INPUT;
    /* every tensor's header and shape checked now: a truncated or mis-shaped checkpoint is bad
     * input, not an "unavailable" configuration */
    if (!st.synthetic) {
        if (mimo_source_open_dir(o->model_dir, &st.src, err) ||
            mimo_weights_bind(&st.cfg, st.src, &st.weights, NULL, NULL, err)) {
            exit_code = MIMO_EXIT_BAD_INPUT;
            goto cleanup;
        }
        st.weights_bound = true;
    }
    if (load_prompts(&st, &suite, err)) {
        exit_code = MIMO_EXIT_BAD_INPUT;
        goto cleanup;
    }
    int max_prompt = 0;
    for (int i = 0; i < st.n_prompts; i++)
        if (st.prompts[i].n_ids > max_prompt)
            max_prompt = st.prompts[i].n_ids;
    st.max_context = max_prompt + o->max_new + 2 * MIMO_DFLASH_MAX_BLOCK + 16;

    /* configurations */
    config_point points[12];
    int nc = 0;
    if (o->matrix) {
        for (int f = 0; f < 2; f++)
            for (int d = 0; d < 2; d++)
                for (int x = 0; x < 3; x++)
                    points[nc++] = (config_point){.fp4 = f == 0, .dflash = d == 1, .exec = (mimo_exec_mode)x};
    } else {
        points[nc++] = (config_point){.fp4 = o->fp4, .dflash = o->dflash, .exec = o->exec};
    }
    bool need_drafter = false;
    for (int i = 0; i < nc; i++)
        need_drafter |= points[i].dflash;
    if (need_drafter && load_drafter(&st, err)) {
        exit_code = MIMO_EXIT_BAD_INPUT;
        goto cleanup;
    }
    if (!o->matrix && !o->dflash_set && st.drafter_missing[0]) {
        fprintf(stderr, "mimo-bench run: %s: running without DFlash\n", st.drafter_missing);
        points[0].dflash = false;
    }
    /* a forced profile must have a figure for every suite: said now, not after minutes of running */
    if (need_drafter && st.have_drafter_cfg && o->accept_forced) {
        for (int k = 0; k < st.n_prompts; k++) {
            mimo_accept_profile prof;
            char note[256];
            if (profile_for(o->accept_profile, &st.prompts[k], st.dcfg.block_size, &prof, note, sizeof note, err)) {
                exit_code = MIMO_EXIT_USAGE;
                goto cleanup;
            }
        }
    }

    json_t *root = mimo_results_new(argc, argv);
    int device = o->backend == MIMO_BACKEND_CUDA ? o->device : -1;
    char why[512] = "";
    if (device >= 0 && !mimo_backend_available(MIMO_BACKEND_CUDA, why, sizeof why))
        device = -1;
    json_object_set_new(root, "environment", mimo_environment_collect(device));
    /* the streaming bandwidth is measured in this run, before any engine holds device memory */
    st.calibration_gbps = NAN;
    snprintf(st.calibration_why, sizeof st.calibration_why, "%s", why[0] ? why : "cuda backend unavailable");
    if (device >= 0) {
        st.calibration_why[0] = '\0';
        st.calibrated = mimo_roofline_calibrate(device, &st.calibration_gbps, st.calibration_method,
                                                sizeof st.calibration_method, st.calibration_why,
                                                sizeof st.calibration_why);
        if (st.calibrated)
            fprintf(stderr, "mimo-bench run: calibration %.0f GB/s (%s)\n", st.calibration_gbps, st.calibration_method);
        else
            fprintf(stderr, "mimo-bench run: calibration failed: %s\n", st.calibration_why);
    }
    json_object_set_new(root, "model", model_json(&st));
    json_t *configs = json_object_get(root, "configs");

    int ran = 0;
    for (int ci = 0; ci < nc; ci++) {
        json_t *entry = json_object();
        const config_point *c = &points[ci];
        json_object_set_new(entry, "config", config_json(&st, c, st.have_drafter_cfg ? st.dcfg.block_size : 1));
        json_array_append_new(configs, entry);
        fprintf(stderr, "[config %d/%d] backend=%s fp4=%s dflash=%s exec=%s\n", ci + 1, nc,
                mimo_backend_name(o->backend), c->fp4 ? "on" : "off", c->dflash ? "on" : "off", mimo_exec_name(c->exec));
        if (st.interrupted || *interrupt) {
            st.interrupted = true;
            json_object_set_new(entry, "available", json_false());
            json_object_set_new(entry, "reason", json_string("not run: the run was interrupted"));
            continue;
        }
        if (!config_available(&st, c, why, sizeof why)) {
            json_object_set_new(entry, "available", json_false());
            json_object_set_new(entry, "reason", json_string(why));
            fprintf(stderr, "[config %d/%d] unavailable: %s\n", ci + 1, nc, why);
            continue;
        }
        run_config(&st, c, ci, nc, entry, o->out_path);
        if (json_is_true(json_object_get(entry, "available")))
            ran++;
    }
    mimo_environment_finish(json_object_get(root, "environment"), device);
    json_object_set_new(root, "incomplete", json_boolean(st.interrupted));

    if (mimo_results_write_atomic(root, o->out_path, err)) {
        json_decref(root);
        exit_code = MIMO_EXIT_FAILURE;
        goto cleanup;
    }

    /* summary table */
    printf("%-34s %-10s %5s %7s %12s %12s %12s\n", "configuration", "suite", "reqs", "tau", "tps median",
           "tps sum/sum", "ttft ms med");
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        json_t *cj = json_object_get(entry, "config");
        char label[128];
        snprintf(label, sizeof label, "%s fp4=%s dflash=%s %s", json_string_value(json_object_get(cj, "backend")),
                 json_is_true(json_object_get(cj, "fp4")) ? "on" : "off",
                 json_is_true(json_object_get(cj, "dflash")) ? "on" : "off",
                 json_string_value(json_object_get(cj, "exec")));
        if (!json_is_true(json_object_get(entry, "available"))) {
            printf("%-34s unavailable: %s\n", label, json_string_value(json_object_get(entry, "reason")));
            continue;
        }
        const char *sname;
        json_t *sj;
        json_object_foreach(json_object_get(entry, "suites"), sname, sj)
            print_summary_row(label, sname, sj);
    }
    printf("results: %s%s\n", o->out_path, st.interrupted ? " (incomplete: interrupted)" : "");
    json_decref(root);

    if (st.interrupted)
        exit_code = MIMO_EXIT_INTERRUPTED;
    else if (st.any_error)
        exit_code = MIMO_EXIT_FAILURE;
    else if (ran == 0)
        exit_code = MIMO_EXIT_UNAVAILABLE;
    if (exit_code == MIMO_EXIT_FAILURE)
        mimo_fail(err, "some configurations failed (see \"error\" in %s)", o->out_path);
    else if (exit_code == MIMO_EXIT_UNAVAILABLE)
        mimo_fail(err, "no configuration could run on this build/machine (reasons recorded in %s)", o->out_path);

cleanup:
    for (int k = 0; k < st.n_prompts; k++)
        free(st.prompts[k].ids);
    free(st.prompts);
    mimo_suite_free(&suite);
    if (st.drafter_bound)
        mimo_drafter_free(&st.dweights);
    if (st.dsrc)
        mimo_source_free(st.dsrc);
    if (st.weights_bound)
        mimo_weights_free(&st.weights);
    if (st.src)
        mimo_source_free(st.src);
    return exit_code;
}
