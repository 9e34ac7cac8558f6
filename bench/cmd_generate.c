/* mimo-bench generate: one prompt through the decode loop (plain or DFlash), printing the tokens and
 * every round's tau (DFLASH.md), or with --json the object HARNESS.md specifies. */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mimo/generate.h"
#include "mimo/tokenizer.h"

static const char usage[] =
    "mimo-bench generate (--model DIR | --preset P) (--prompt-ids 1,2,3 | --prompt TEXT) [--max-new N]\n"
    "                    [--temperature T] [--top-k K] [--top-p P] [--seed N] [--backend cpu|cuda]\n"
    "                    [--dflash on|off] [--drafter DIR] [--block B] [--draft argmax|sample]\n"
    "                    [--accept measured|forced:PROFILE] [--json]\n"
    "  --dflash defaults to on when a drafter exists (MODEL_DIR/drafter, or the preset's synthetic one);\n"
    "  --block 2..16 defaults to the drafter's block_size; --seed seeds sampling and a preset's weights.\n"
    "  --accept forced:PROFILE replays a published acceptance for timing on synthetic weights (the output\n"
    "  is then not the model's): PROFILE = mimo-published[:coding|math|agent] (default coding),\n"
    "  dflash-paper-qwen3-8b[:gsm8k|math500|humaneval|mbpp|mtbench] (default humaneval), mean:TAU,\n"
    "  hist:P1,...,PB";

typedef struct {
    const char *model_dir, *preset, *prompt_text, *prompt_ids, *drafter_dir, *accept;
    int max_new, top_k, block;
    double temperature, top_p;
    uint64_t seed;
    mimo_backend_kind backend;
    bool dflash, dflash_set, json, sampled_drafts;
} generate_args;

/* Everything a generation holds, released together. */
typedef struct {
    mimo_config cfg;
    mimo_tensor_source *src, *dsrc;
    mimo_weights weights;
    bool weights_bound;
    mimo_drafter_config dcfg;
    mimo_drafter_weights dweights;
    bool drafter_bound;
    mimo_engine *engine;
    mimo_tokenizer *tok;
    char *tok_tmpdir;
    int32_t *prompt;
    int n_prompt;
} generate_state;

static void state_free(generate_state *s)
{
    mimo_engine_destroy(s->engine);
    if (s->drafter_bound)
        mimo_drafter_free(&s->dweights);
    mimo_source_free(s->dsrc);
    if (s->weights_bound)
        mimo_weights_free(&s->weights);
    mimo_source_free(s->src);
    mimo_tokenizer_free(s->tok);
    if (s->tok_tmpdir) {
        char path[4200];
        snprintf(path, sizeof path, "%s/tokenizer.json", s->tok_tmpdir);
        remove(path);
        rmdir(s->tok_tmpdir);
        free(s->tok_tmpdir);
    }
    free(s->prompt);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int parse_args(int argc, char **argv, generate_args *a)
{
    memset(a, 0, sizeof *a);
    a->max_new = 64;
    a->top_p = 1.0;
    a->backend = MIMO_BACKEND_CPU;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("usage: %s\n", usage);
            return -2;
        }
        if (!strcmp(f, "--json")) {
            a->json = true;
            continue;
        }
        static const char *const valued[] = {"--model", "--preset", "--prompt", "--prompt-ids", "--drafter",
                                             "--accept", "--max-new", "--top-k", "--block", "--temperature",
                                             "--top-p", "--seed", "--backend", "--dflash", "--draft", NULL};
        bool known = false;
        for (int k = 0; valued[k]; k++)
            known |= !strcmp(f, valued[k]);
        if (!known)
            return mimo_usage_error("generate", usage, "unknown argument '%s'", f), -1;
        if (i + 1 >= argc)
            return mimo_usage_error("generate", usage, "%s needs a value", f), -1;
        const char *v = argv[++i];
        long n;
        if (!strcmp(f, "--model"))
            a->model_dir = v;
        else if (!strcmp(f, "--preset"))
            a->preset = v;
        else if (!strcmp(f, "--prompt"))
            a->prompt_text = v;
        else if (!strcmp(f, "--prompt-ids"))
            a->prompt_ids = v;
        else if (!strcmp(f, "--drafter"))
            a->drafter_dir = v;
        else if (!strcmp(f, "--accept"))
            a->accept = v;
        else if (!strcmp(f, "--max-new")) {
            if (!mimo_parse_int(v, 1, 1 << 20, &n))
                return mimo_usage_error("generate", usage, "--max-new: '%s' is not an integer in [1, 1048576]", v), -1;
            a->max_new = (int)n;
        } else if (!strcmp(f, "--top-k")) {
            if (!mimo_parse_int(v, 0, 1 << 24, &n))
                return mimo_usage_error("generate", usage, "--top-k: '%s' is not an integer >= 0", v), -1;
            a->top_k = (int)n;
        } else if (!strcmp(f, "--block")) {
            if (!mimo_parse_int(v, 2, MIMO_DFLASH_MAX_BLOCK, &n))
                return mimo_usage_error("generate", usage, "--block: '%s' is not an integer in [2, %d]", v, MIMO_DFLASH_MAX_BLOCK), -1;
            a->block = (int)n;
        } else if (!strcmp(f, "--temperature")) {
            if (!mimo_parse_double(v, 0, 100, &a->temperature))
                return mimo_usage_error("generate", usage, "--temperature: '%s' is not a number in [0, 100]", v), -1;
        } else if (!strcmp(f, "--top-p")) {
            if (!mimo_parse_double(v, 1e-9, 1, &a->top_p))
                return mimo_usage_error("generate", usage, "--top-p: '%s' is not a number in (0, 1]", v), -1;
        } else if (!strcmp(f, "--seed")) {
            if (!mimo_parse_u64(v, &a->seed))
                return mimo_usage_error("generate", usage, "--seed: '%s' is not a non-negative integer", v), -1;
        } else if (!strcmp(f, "--backend")) {
            if (!strcmp(v, "cpu"))
                a->backend = MIMO_BACKEND_CPU;
            else if (!strcmp(v, "cuda"))
                a->backend = MIMO_BACKEND_CUDA;
            else
                return mimo_usage_error("generate", usage, "--backend: '%s' is not cpu or cuda", v), -1;
        } else if (!strcmp(f, "--dflash")) {
            if (!mimo_parse_on_off(v, &a->dflash))
                return mimo_usage_error("generate", usage, "--dflash: '%s' is not on or off", v), -1;
            a->dflash_set = true;
        } else if (!strcmp(f, "--draft")) {
            if (!strcmp(v, "argmax") || !strcmp(v, "sample"))
                a->sampled_drafts = !strcmp(v, "sample");
            else
                return mimo_usage_error("generate", usage, "--draft: '%s' is not argmax or sample", v), -1;
        } else {
            return mimo_usage_error("generate", usage, "unknown argument '%s'", f), -1;
        }
    }
    if (!a->model_dir == !a->preset)
        return mimo_usage_error("generate", usage, "give exactly one of --model DIR and --preset P"), -1;
    if (!a->prompt_text == !a->prompt_ids)
        return mimo_usage_error("generate", usage, "give exactly one of --prompt TEXT and --prompt-ids LIST"), -1;
    if (a->accept && strcmp(a->accept, "measured") && strncmp(a->accept, "forced:", 7))
        return mimo_usage_error("generate", usage, "--accept: '%s' is not measured or forced:PROFILE", a->accept), -1;
    if (a->dflash_set && !a->dflash && (a->block || a->drafter_dir || (a->accept && strcmp(a->accept, "measured"))))
        return mimo_usage_error("generate", usage, "--block, --drafter and --accept forced need --dflash on"), -1;
    return 0;
}

/* The target: a checkpoint directory or a preset built in memory. */
static int load_target(const generate_args *a, generate_state *s, mimo_error *err)
{
    if (a->preset)
        return mimo_config_preset(a->preset, &s->cfg, err);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", a->model_dir);
    if (mimo_config_load(path, &s->cfg, err) || mimo_source_open_dir(a->model_dir, &s->src, err))
        return -1;
    if (mimo_weights_bind(&s->cfg, s->src, &s->weights, NULL, NULL, err))
        return -1;
    s->weights_bound = true;
    return 0;
}

/* The drafter: --drafter DIR, MODEL_DIR/drafter, or the preset's synthetic one. *found = false
 * (no error) when a checkpoint simply has none. */
static int load_drafter(const generate_args *a, generate_state *s, bool *found, mimo_error *err)
{
    *found = false;
    if (a->drafter_dir || a->model_dir) {
        char dir[4200], path[4300];
        if (a->drafter_dir)
            snprintf(dir, sizeof dir, "%s", a->drafter_dir);
        else
            snprintf(dir, sizeof dir, "%s/drafter", a->model_dir);
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (!file_exists(path)) {
            if (a->drafter_dir)
                return mimo_fail(err, "%s: no drafter config.json", dir);
            return 0;
        }
        if (mimo_drafter_config_load(path, &s->dcfg, err) || mimo_source_open_dir(dir, &s->dsrc, err))
            return -1;
    } else {
        mimo_drafter_config_for_target(&s->cfg, &s->dcfg);
        if (mimo_drafter_synth(&s->dcfg, a->seed, &s->dsrc, err))
            return -1;
    }
    if (s->dcfg.hidden_size != s->cfg.hidden_size)
        return mimo_fail(err, "drafter hidden_size %d != target hidden_size %d", s->dcfg.hidden_size, s->cfg.hidden_size);
    for (int i = 0; i < s->dcfg.n_target_layers; i++)
        if (s->dcfg.target_layer_ids[i] >= s->cfg.num_layers)
            return mimo_fail(err, "drafter target_layer_ids[%d] = %d, the target has %d layers", i,
                             s->dcfg.target_layer_ids[i], s->cfg.num_layers);
    if (s->dcfg.mask_token_id >= s->cfg.vocab_size)
        return mimo_fail(err, "drafter mask_token_id %d is outside the target vocabulary [0, %d)", s->dcfg.mask_token_id,
                         s->cfg.vocab_size);
    if (s->dcfg.n_target_layers > MIMO_MAX_HIDDEN_OUTPUTS)
        return mimo_fail(err, "drafter reads %d target layers; the engine outputs at most %d", s->dcfg.n_target_layers,
                         MIMO_MAX_HIDDEN_OUTPUTS);
    if (mimo_drafter_bind(&s->dcfg, s->dsrc, &s->dweights, err))
        return -1;
    s->drafter_bound = true;
    *found = true;
    return 0;
}

/* A tokenizer: MODEL_DIR/tokenizer.json, or for a preset a synthetic one of its vocabulary (only
 * when --prompt TEXT needs one). NULL without error when there is none to use. */
static int load_tokenizer(const generate_args *a, generate_state *s, mimo_error *err)
{
    char path[4200];
    if (a->model_dir) {
        snprintf(path, sizeof path, "%s/tokenizer.json", a->model_dir);
        if (!file_exists(path)) {
            if (a->prompt_text)
                return mimo_fail(err, "--prompt TEXT needs a tokenizer: %s is missing (use --prompt-ids)", path);
            return 0;
        }
    } else {
        if (!a->prompt_text)
            return 0;
        char tmpl[] = "/tmp/mimo-generate-XXXXXX";
        if (!mkdtemp(tmpl))
            return mimo_fail(err, "cannot create a temporary directory for the synthetic tokenizer");
        s->tok_tmpdir = strdup(tmpl);
        snprintf(path, sizeof path, "%s/tokenizer.json", tmpl);
        if (mimo_tokenizer_write_synthetic(s->cfg.vocab_size, path, err))
            return mimo_fail_prefix(err, "synthetic tokenizer for preset %s", a->preset);
    }
    s->tok = mimo_tokenizer_load(path, err);
    return s->tok ? 0 : -1;
}

static int parse_accept(const generate_args *a, int block, mimo_generate_options *o, mimo_error *err)
{
    if (!a->accept || !strcmp(a->accept, "measured")) {
        o->accept = MIMO_ACCEPT_MEASURED;
        return 0;
    }
    const char *spec = a->accept + 7;
    const char *suite = NULL;
    if (!strcmp(spec, "mimo-published"))
        suite = "coding";
    else if (!strcmp(spec, "dflash-paper-qwen3-8b"))
        suite = "humaneval";
    o->accept = MIMO_ACCEPT_FORCED;
    return mimo_accept_profile_parse(spec, suite, block, &o->profile, err);
}

static double decode_tps(const mimo_generation *g)
{
    return g->decode_ms > 0 && g->n_tokens > 1 ? (g->n_tokens - 1) / (g->decode_ms * 1e-3) : NAN;
}

static char *decode_text(generate_state *s, const int32_t *ids, int n)
{
    if (!s->tok)
        return NULL;
    char *text = NULL;
    mimo_error err = {{0}};
    if (mimo_tokenizer_decode(s->tok, ids, n, &text, NULL, &err))
        return NULL;
    return text;
}

static json_t *ids_json(const int32_t *ids, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    return arr;
}

static void print_json(const generate_args *a, generate_state *s, const mimo_generate_options *o, int block,
                       const mimo_generation *g)
{
    json_t *root = json_object();
    json_object_set_new(root, "prompt_ids", ids_json(s->prompt, s->n_prompt));
    json_object_set_new(root, "output_ids", ids_json(g->tokens, g->n_tokens));
    char *pt = decode_text(s, s->prompt, s->n_prompt), *ot = decode_text(s, g->tokens, g->n_tokens);
    if (pt)
        json_object_set_new(root, "prompt_text", json_string(pt));
    if (ot)
        json_object_set_new(root, "output_text", json_string(ot));
    free(pt);
    free(ot);
    json_t *rounds = json_array();
    long drafted = 0, accepted = 0, emitted = 0;
    for (int r = 0; r < g->n_rounds; r++) {
        const mimo_round_record *rr = &g->rounds[r];
        json_array_append_new(rounds, json_pack("{s:i, s:i, s:i, s:i, s:f, s:f, s:f}", "drafted", rr->drafted, "accepted",
                                                rr->accepted, "emitted", rr->emitted, "tau", rr->accepted + 1,
                                                "t_draft_us", rr->t_draft_us, "t_verify_us", rr->t_verify_us,
                                                "t_total_us", rr->t_total_us));
        drafted += rr->drafted;
        accepted += rr->accepted;
        emitted += rr->emitted;
    }
    json_object_set_new(root, "rounds", rounds);
    json_t *acc = json_object();
    bool forced = o->dflash && o->accept == MIMO_ACCEPT_FORCED;
    json_object_set_new(acc, "mode", json_string(forced ? "forced" : "measured"));
    json_object_set_new(acc, "profile", forced ? json_string(o->profile.name) : json_null());
    json_object_set_new(acc, "lossless", json_boolean(!forced));
    if (forced)
        json_object_set_new(acc, "note", json_string("acceptance: forced — accepted counts replay the profile; the "
                                                     "output is not the model's and is not lossless"));
    else if (o->dflash && a->preset)
        json_object_set_new(acc, "warning", json_string("measured acceptance on random (synthetic) weights is meaningless"));
    json_object_set_new(root, "acceptance", acc);
    json_object_set_new(root, "dflash", json_boolean(o->dflash));
    json_object_set_new(root, "block", o->dflash ? json_integer(block) : json_null());
    json_object_set_new(root, "mean_tau", g->n_rounds ? json_real((double)emitted / g->n_rounds) : json_null());
    json_object_set_new(root, "draft_acceptance_rate", drafted ? json_real((double)accepted / drafted) : json_null());
    json_object_set_new(root, "ttft_ms", json_real(g->ttft_ms));
    double tps = decode_tps(g);
    json_object_set_new(root, "decode_tps", isfinite(tps) ? json_real(tps) : json_null());
    if (!isfinite(tps))
        json_object_set_new(root, "decode_tps_reason", json_string("fewer than two output tokens: no decode phase"));
    json_object_set_new(root, "decode_ms", json_real(g->decode_ms));
    json_object_set_new(root, "e2e_ms", json_real(g->e2e_ms));
    json_object_set_new(root, "stop_reason", json_string(mimo_stop_reason_name(g->stop_reason)));
    json_object_set_new(root, "backend", json_string(mimo_backend_name(a->backend)));
    json_object_set_new(root, "model", json_string(a->preset ? a->preset : a->model_dir));
    json_object_set_new(root, "seed", json_integer((json_int_t)a->seed));
    json_object_set_new(root, "temperature", json_real(a->temperature));
    json_object_set_new(root, "top_k", json_integer(a->top_k));
    json_object_set_new(root, "top_p", json_real(a->top_p));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    printf("%s\n", text);
    free(text);
    json_decref(root);
}

static void print_ids(const char *label, const int32_t *ids, int n)
{
    printf("%s (%d):", label, n);
    for (int i = 0; i < n; i++)
        printf("%s%d", i ? "," : " ", ids[i]);
    printf("\n");
}

static void print_text(const generate_args *a, generate_state *s, const mimo_generate_options *o, int block,
                       const mimo_generation *g)
{
    printf("model: %s%s, backend %s, seed %llu\n", a->preset ? "preset " : "", a->preset ? a->preset : a->model_dir,
           mimo_backend_name(a->backend), (unsigned long long)a->seed);
    if (o->dflash) {
        bool forced = o->accept == MIMO_ACCEPT_FORCED;
        printf("dflash: on, block %d, %s drafting; acceptance: %s%s%s\n", block,
               o->draft_mode == MIMO_DRAFT_SAMPLED ? "sampled" : "argmax", forced ? "forced (profile " : "measured",
               forced ? o->profile.name : "", forced ? ") — timing replay: the output is not the model's, not lossless" : "");
        if (!forced && a->preset)
            printf("note: measured acceptance on random (synthetic) weights is meaningless\n");
    } else {
        printf("dflash: off\n");
    }
    print_ids("prompt ids", s->prompt, s->n_prompt);
    print_ids("output ids", g->tokens, g->n_tokens);
    char *ot = decode_text(s, g->tokens, g->n_tokens);
    if (ot)
        printf("output text: %s\n", ot);
    free(ot);
    long emitted = 0, drafted = 0, accepted = 0;
    if (o->dflash && g->n_rounds) {
        printf("round  drafted  accepted  emitted  tau  draft_ms  verify_ms  total_ms\n");
        for (int r = 0; r < g->n_rounds; r++) {
            const mimo_round_record *rr = &g->rounds[r];
            printf("%5d  %7d  %8d  %7d  %3d  %8.3f  %9.3f  %8.3f\n", r + 1, rr->drafted, rr->accepted, rr->emitted,
                   rr->accepted + 1, rr->t_draft_us * 1e-3, rr->t_verify_us * 1e-3, rr->t_total_us * 1e-3);
        }
    }
    for (int r = 0; r < g->n_rounds; r++) {
        emitted += g->rounds[r].emitted;
        drafted += g->rounds[r].drafted;
        accepted += g->rounds[r].accepted;
    }
    if (g->n_rounds) {
        printf("rounds %d, mean tau %.3f (emitted / rounds)", g->n_rounds, (double)emitted / g->n_rounds);
        if (drafted)
            printf(", draft acceptance rate %.3f", (double)accepted / drafted);
        printf("%s\n", o->dflash && o->accept == MIMO_ACCEPT_FORCED ? " [acceptance: forced]" : "");
    }
    double tps = decode_tps(g);
    printf("ttft_ms %.3f, decode_tps ", g->ttft_ms);
    if (isfinite(tps))
        printf("%.2f", tps);
    else
        printf("n/a (no decode phase)");
    printf(", stop: %s\n", mimo_stop_reason_name(g->stop_reason));
}

int mimo_cmd_generate(int argc, char **argv)
{
    generate_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc == -2)
        return MIMO_EXIT_OK;
    if (rc)
        return MIMO_EXIT_USAGE;

    char reason[512] = "";
    if (!mimo_backend_available(a.backend, reason, sizeof reason)) {
        fprintf(stderr, "mimo-bench generate: backend %s unavailable: %s\n", mimo_backend_name(a.backend), reason);
        return MIMO_EXIT_UNAVAILABLE;
    }

    generate_state s;
    memset(&s, 0, sizeof s);
    mimo_error err = {{0}};
    int exit_code = MIMO_EXIT_BAD_INPUT;
    if (load_target(&a, &s, &err)) {
        if (a.preset) {
            exit_code = mimo_usage_error("generate", usage, "%s", err.msg);
            goto done;
        }
        goto fail;
    }
    bool have_drafter = false;
    if ((!a.dflash_set || a.dflash) && load_drafter(&a, &s, &have_drafter, &err))
        goto fail;
    if (!a.dflash_set)
        a.dflash = have_drafter;
    if (a.dflash && !have_drafter) {
        mimo_fail(&err, "--dflash on: no DFlash drafter at %s/drafter (give --drafter DIR)", a.model_dir);
        goto fail;
    }
    if (load_tokenizer(&a, &s, &err))
        goto fail;

    if (a.prompt_ids) {
        if (!mimo_parse_int_list(a.prompt_ids, 0, s.cfg.vocab_size - 1, &s.prompt, &s.n_prompt)) {
            exit_code = mimo_usage_error("generate", usage, "--prompt-ids: '%s' is not a list of ids in [0, %d)",
                                         a.prompt_ids, s.cfg.vocab_size);
            goto done;
        }
    } else if (mimo_tokenizer_encode(s.tok, a.prompt_text, strlen(a.prompt_text), &s.prompt, &s.n_prompt, &err)) {
        goto fail;
    }
    if (s.n_prompt < 1) {
        exit_code = mimo_usage_error("generate", usage, "the prompt is empty");
        goto done;
    }

    mimo_engine_options eo;
    mimo_engine_options_default(&eo);
    eo.backend = a.backend;
    eo.max_context = s.n_prompt + a.max_new + MIMO_DFLASH_MAX_BLOCK;
    if (a.dflash) {
        eo.n_hidden_layers = s.dcfg.n_target_layers;
        memcpy(eo.hidden_layers, s.dcfg.target_layer_ids, (size_t)s.dcfg.n_target_layers * sizeof(int));
    }
    /* a preset's synthetic weights cannot be malformed: failing to build them means this machine
     * cannot hold them (a full-scale preset on the cpu backend) */
    exit_code = a.preset ? MIMO_EXIT_UNAVAILABLE : MIMO_EXIT_FAILURE;
    if (a.preset ? mimo_engine_create_synthetic(&s.cfg, a.seed, &eo, &s.engine, &err)
                 : mimo_engine_create(&s.weights, &eo, &s.engine, &err))
        goto fail;
    exit_code = MIMO_EXIT_FAILURE;
    if (a.dflash && mimo_engine_attach_drafter(s.engine, &s.dweights, &err))
        goto fail;

    mimo_generate_options o;
    mimo_generate_options_default(&o);
    o.max_new_tokens = a.max_new;
    o.sampling.temperature = (float)a.temperature;
    o.sampling.top_k = a.top_k;
    o.sampling.top_p = (float)a.top_p;
    o.seed = a.seed;
    o.dflash = a.dflash;
    o.block = a.block;
    o.draft_mode = a.sampled_drafts ? MIMO_DRAFT_SAMPLED : MIMO_DRAFT_ARGMAX;
    int block = a.block ? a.block : a.dflash ? s.dcfg.block_size : 0;
    int32_t stops[2];
    if (s.tok) {
        const char *names[2] = {"<|im_end|>", "<|endoftext|>"};
        for (int i = 0; i < 2; i++) {
            int32_t id = mimo_tokenizer_token_id(s.tok, names[i]);
            if (id >= 0)
                stops[o.n_stop_tokens++] = id;
        }
        o.stop_tokens = stops;
    }
    if (a.dflash && parse_accept(&a, block, &o, &err)) {
        exit_code = mimo_usage_error("generate", usage, "--accept: %s", err.msg);
        goto done;
    }

    mimo_generation g;
    if (mimo_generate(s.engine, s.prompt, s.n_prompt, &o, &g, NULL, &err))
        goto fail;
    if (a.json)
        print_json(&a, &s, &o, block, &g);
    else
        print_text(&a, &s, &o, block, &g);
    mimo_generation_free(&g);
    exit_code = MIMO_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "mimo-bench generate: %s\n", err.msg);
done:
    state_free(&s);
    return exit_code;
}
