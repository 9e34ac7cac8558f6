/* mimo-bench tokenize: encode text to ids (JSON array), --decode ids to text, --bench encode speed. */
#include "cli.h"
#include "suite.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mimo/build_info.h"
#include "mimo/tokenizer.h"

static const char usage[] =
    "mimo-bench tokenize --tokenizer FILE|DIR (--text TEXT | --text-file F|-) [--decode]\n"
    "       mimo-bench tokenize --tokenizer FILE|DIR --bench [--text-file F] [--min-mb N] [--out FILE.json]\n"
    "  encodes TEXT and prints its ids as a JSON array (no special tokens added);\n"
    "  --decode reads ids (a JSON array or a comma list) and prints their text;\n"
    "  --bench measures encode speed (MB/s) on mixed code and prose (the built-in suites, or F)\n"
    "  and writes it to --out (default results/tokenizer/encode_speed.json)";

/* Reads a whole file ("-" = stdin); NULL + message on failure. */
static char *read_all(const char *path, size_t *len, mimo_error *err)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        mimo_fail(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = mimo_xmalloc(cap + 1);
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = mimo_xrealloc(buf, (cap *= 2) + 1);
    }
    bool failed = ferror(f);
    int read_errno = errno;   /* EISDIR for a directory */
    if (f != stdin)
        fclose(f);
    if (failed) {
        free(buf);
        mimo_fail(err, "%s: read error: %s", path, strerror(read_errno));
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* A directory means DIR/tokenizer.json (a checkpoint): mimo_tokenizer_load does that. */
static mimo_tokenizer *load_tokenizer(const char *arg, mimo_error *err)
{
    return mimo_tokenizer_load(arg, err);
}

/* "[1, 2, 3]" or "1,2,3" (whitespace allowed). */
static int parse_ids(const char *text, int32_t **ids, int *n, mimo_error *err)
{
    const char *p = text;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    if (*p == '[') {
        json_error_t jerr;
        json_t *arr = json_loads(p, JSON_DECODE_ANY, &jerr);
        if (!json_is_array(arr)) {
            json_decref(arr);
            return mimo_fail(err, "ids are not a JSON array of integers: %s", arr ? "not an array" : jerr.text);
        }
        *n = (int)json_array_size(arr);
        *ids = mimo_xmalloc((size_t)(*n + 1) * sizeof **ids);
        for (int i = 0; i < *n; i++) {
            const json_t *v = json_array_get(arr, (size_t)i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
                free(*ids);
                json_decref(arr);
                return mimo_fail(err, "ids[%d] is not a non-negative integer", i);
            }
            (*ids)[i] = (int32_t)json_integer_value(v);
        }
        json_decref(arr);
        return 0;
    }
    char *compact = mimo_xmalloc(strlen(p) + 1);
    size_t k = 0;
    for (; *p; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
            compact[k++] = *p;
    compact[k] = '\0';
    bool ok = mimo_parse_int_list(compact, 0, INT32_MAX, ids, n);
    free(compact);
    return ok ? 0 : mimo_fail(err, "ids are neither a JSON array nor a comma list of integers");
}

static void print_ids(const int32_t *ids, int n)
{
    putchar('[');
    for (int i = 0; i < n; i++)
        printf(i ? ", %d" : "%d", (int)ids[i]);
    printf("]\n");
}

/* ---- --bench ---- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            const char *colon = strchr(line, ':');
            if (colon) {
                snprintf(out, cap, "%s", colon + 2);
                out[strcspn(out, "\n")] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

typedef struct {
    char  **texts;
    size_t *lens;
    int     n;
    size_t  bytes;
} corpus;

static void corpus_add(corpus *c, const char *text, size_t len)
{
    c->texts = mimo_xrealloc(c->texts, (size_t)(c->n + 1) * sizeof *c->texts);
    c->lens = mimo_xrealloc(c->lens, (size_t)(c->n + 1) * sizeof *c->lens);
    c->texts[c->n] = mimo_xmalloc(len + 1);
    memcpy(c->texts[c->n], text, len);
    c->texts[c->n][len] = '\0';
    c->lens[c->n++] = len;
    c->bytes += len;
}

static void corpus_free(corpus *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->texts[i]);
    free(c->texts);
    free(c->lens);
}

/* Every message of every record of the built-in suites: code (coding), prose (chat), math, JSON (agent). */
static int builtin_corpus(corpus *c, mimo_error *err)
{
    for (int s = 0; mimo_builtin_suites[s]; s++) {
        mimo_suite suite;
        if (mimo_suite_load_builtin(mimo_builtin_suites[s], &suite, err))
            return -1;
        for (int r = 0; r < suite.n_records; r++) {
            const mimo_suite_record *rec = &suite.records[r];
            for (int t = 0; t < rec->n_turns; t++)
                for (int m = 0; m < rec->turns[t].n_messages; m++)
                    corpus_add(c, rec->turns[t].messages[m].content, strlen(rec->turns[t].messages[m].content));
            if (rec->tools_json)
                corpus_add(c, rec->tools_json, strlen(rec->tools_json));
        }
        mimo_suite_free(&suite);
    }
    return 0;
}

static int write_json_atomic(const char *path, json_t *doc, mimo_error *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(dir, 0755);
        *slash = '/';
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (json_dump_file(doc, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) {
        unlink(tmp);
        return mimo_fail(err, "%s: cannot write", tmp);
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return mimo_fail(err, "%s: cannot rename into place: %s", path, strerror(errno));
    }
    return 0;
}

static int run_bench(const char *tokenizer_arg, const char *text_file, double min_mb, const char *out_path)
{
    mimo_error err = {{0}};
    corpus c = {0};
    char source[4200];
    if (text_file) {
        size_t len;
        char *text = read_all(text_file, &len, &err);
        if (!text) {
            fprintf(stderr, "mimo-bench tokenize: %s\n", err.msg);
            return MIMO_EXIT_BAD_INPUT;
        }
        corpus_add(&c, text, len);
        free(text);
        snprintf(source, sizeof source, "%s", text_file);
    } else {
        if (builtin_corpus(&c, &err)) {
            fprintf(stderr, "mimo-bench tokenize: %s\n", err.msg);
            corpus_free(&c);
            return MIMO_EXIT_BAD_INPUT;
        }
        snprintf(source, sizeof source, "built-in suites (coding, math, agent, chat): every message, %d texts", c.n);
    }
    if (c.bytes == 0) {
        corpus_free(&c);
        fprintf(stderr, "mimo-bench tokenize: the benchmark text is empty\n");
        return MIMO_EXIT_BAD_INPUT;
    }
    double t0 = now_seconds();
    mimo_tokenizer *t = load_tokenizer(tokenizer_arg, &err);
    double load_s = now_seconds() - t0;
    if (!t) {
        corpus_free(&c);
        fprintf(stderr, "mimo-bench tokenize: %s\n", err.msg);
        return MIMO_EXIT_BAD_INPUT;
    }
    /* First pass on a fresh tokenizer: the per-word cache starts empty (cold). Then passes until
     * min_mb has been encoded (warm cache, the steady state of a long run). */
    size_t cold_tokens = 0, warm_tokens = 0, warm_bytes = 0;
    double cold_s = 0, warm_s = 0;
    int passes = 0;
    for (;;) {
        double start = now_seconds();
        size_t tokens = 0;
        for (int i = 0; i < c.n; i++) {
            int32_t *ids;
            int n;
            if (mimo_tokenizer_encode(t, c.texts[i], c.lens[i], &ids, &n, &err)) {
                fprintf(stderr, "mimo-bench tokenize: %s\n", err.msg);
                mimo_tokenizer_free(t);
                corpus_free(&c);
                return MIMO_EXIT_FAILURE;
            }
            tokens += (size_t)n;
            free(ids);
        }
        double s = now_seconds() - start;
        if (passes++ == 0) {
            cold_s = s;
            cold_tokens = tokens;
            continue;
        }
        warm_s += s;
        warm_tokens += tokens;
        warm_bytes += c.bytes;
        if ((double)warm_bytes >= min_mb * 1e6 && warm_s > 0.2)
            break;
    }
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    double cold_mbps = (double)c.bytes / 1e6 / cold_s, warm_mbps = (double)warm_bytes / 1e6 / warm_s;
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:i, s:s}",
                            "benchmark", "tokenizer_encode_speed", "cpu", cpu, "commit", mimo_git_commit(),
                            "build_flags", mimo_build_flags(), "tokenizer", tokenizer_arg, "corpus", source,
                            "corpus_bytes", (json_int_t)c.bytes, "corpus_tokens", (json_int_t)cold_tokens,
                            "load_s", load_s, "mb_per_s", warm_mbps, "mb_per_s_cold_cache", cold_mbps,
                            "tokens_per_s", (double)warm_tokens / warm_s, "bytes_per_token",
                            (double)c.bytes / (double)(cold_tokens ? cold_tokens : 1), "passes", passes, "note",
                            "MB = 1e6 bytes of UTF-8 input, one thread; mb_per_s is the warm (per-word cache "
                            "filled) rate over all passes after the first; mb_per_s_cold_cache is the first pass");
    printf("tokenizer encode: %.2f MB/s warm, %.2f MB/s cold cache (%zu bytes -> %zu tokens, %.2f bytes/token), "
           "load %.2f s, CPU %s\n",
           warm_mbps, cold_mbps, c.bytes, cold_tokens, (double)c.bytes / (double)(cold_tokens ? cold_tokens : 1),
           load_s, cpu);
    int rc = write_json_atomic(out_path, doc, &err);
    json_decref(doc);
    mimo_tokenizer_free(t);
    corpus_free(&c);
    if (rc) {
        fprintf(stderr, "mimo-bench tokenize: %s\n", err.msg);
        return MIMO_EXIT_FAILURE;
    }
    printf("wrote %s\n", out_path);
    return MIMO_EXIT_OK;
}

int mimo_cmd_tokenize(int argc, char **argv)
{
    const char *tokenizer = NULL, *text = NULL, *text_file = NULL;
    const char *out_path = "results/tokenizer/encode_speed.json";
    bool decode = false, bench = false;
    double min_mb = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: %s\n", usage);
            return MIMO_EXIT_OK;
        } else if (!strcmp(a, "--decode")) {
            decode = true;
        } else if (!strcmp(a, "--bench")) {
            bench = true;
        } else if (!strcmp(a, "--tokenizer") && has_value) {
            tokenizer = argv[++i];
        } else if (!strcmp(a, "--text") && has_value) {
            text = argv[++i];
        } else if (!strcmp(a, "--text-file") && has_value) {
            text_file = argv[++i];
        } else if (!strcmp(a, "--out") && has_value) {
            out_path = argv[++i];
        } else if (!strcmp(a, "--min-mb") && has_value) {
            if (!mimo_parse_double(argv[++i], 0.001, 1e5, &min_mb))
                return mimo_usage_error("tokenize", usage, "--min-mb wants a number in [0.001, 100000], not '%s'",
                                        argv[i]);
        } else if (!strcmp(a, "--tokenizer") || !strcmp(a, "--text") || !strcmp(a, "--text-file") ||
                   !strcmp(a, "--out") || !strcmp(a, "--min-mb")) {
            return mimo_usage_error("tokenize", usage, "%s needs a value", a);
        } else {
            return mimo_usage_error("tokenize", usage, "unknown option '%s'", a);
        }
    }
    if (!tokenizer)
        return mimo_usage_error("tokenize", usage, "--tokenizer is required");
    if (bench) {
        if (text || decode)
            return mimo_usage_error("tokenize", usage, "--bench takes no --text or --decode");
        return run_bench(tokenizer, text_file, min_mb, out_path);
    }
    if (!!text == !!text_file)
        return mimo_usage_error("tokenize", usage, "give exactly one of --text and --text-file");

    mimo_error err = {{0}};
    size_t len = text ? strlen(text) : 0;
    char *owned = NULL;
    if (text_file && !(owned = read_all(text_file, &len, &err))) {
        fprintf(stderr, "mimo-bench tokenize: %s\n", err.msg);
        return MIMO_EXIT_BAD_INPUT;
    }
    const char *input = owned ? owned : text;
    int32_t *ids = NULL;
    int n = 0;
    if (decode && parse_ids(input, &ids, &n, &err)) {
        free(owned);
        if (text)   /* a bad flag value; a bad file is bad input */
            return mimo_usage_error("tokenize", usage, "%s", err.msg);
        fprintf(stderr, "mimo-bench tokenize: %s: %s\n", text_file, err.msg);
        return MIMO_EXIT_BAD_INPUT;
    }
    mimo_tokenizer *t = load_tokenizer(tokenizer, &err);
    if (!t) {
        free(owned);
        free(ids);
        fprintf(stderr, "mimo-bench tokenize: %s\n", err.msg);
        return MIMO_EXIT_BAD_INPUT;
    }
    int rc = MIMO_EXIT_OK;
    for (int i = 0; decode && i < n; i++) {
        if (!mimo_tokenizer_token_bytes(t, ids[i], NULL)) {
            fprintf(stderr, "mimo-bench tokenize: id %d (position %d) is not in the vocabulary of %s (%d ids)\n",
                    (int)ids[i], i, tokenizer, mimo_tokenizer_vocab_size(t));
            free(ids);
            free(owned);
            mimo_tokenizer_free(t);
            return MIMO_EXIT_BAD_INPUT;
        }
    }
    if (decode) {
        char *out;
        size_t out_len;
        if (mimo_tokenizer_decode(t, ids, n, &out, &out_len, &err)) {
            fprintf(stderr, "mimo-bench tokenize: %s\n", err.msg);
            rc = MIMO_EXIT_BAD_INPUT;
        } else {
            fwrite(out, 1, out_len, stdout);
            if (isatty(STDOUT_FILENO))   /* a terminal gets a newline; a pipe gets the exact text */
                putchar('\n');
            free(out);
        }
    } else if (mimo_tokenizer_encode(t, input, len, &ids, &n, &err)) {
        fprintf(stderr, "mimo-bench tokenize: %s\n", err.msg);
        rc = MIMO_EXIT_FAILURE;
    } else {
        print_ids(ids, n);
    }
    free(ids);
    free(owned);
    mimo_tokenizer_free(t);
    return rc;
}
