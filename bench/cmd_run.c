/* mimo-bench run: flag parsing, signals, and the hand-off to runner.c. */
#include "cli.h"
#include "runner.h"
#include "suite.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "mimo-bench run (--model DIR | --preset P) [--suite coding,math,agent,chat | --suite-file F]\n"
    "                  [--backend cpu|cuda] [--fp4 on|off] [--dflash on|off] [--exec eager|graph|persistent]\n"
    "                  [--rounds device|host] [--matrix] [--accept measured|forced:PROFILE] [--shard R/N]\n"
    "                  [--layers K] [--requests N]\n"
    "                  [--max-new N] [--temperature T] [--top-k K] [--top-p P] [--seed N] [--warmup N]\n"
    "                  [--repeats N] [--threads N]\n"
    "                  [--trace] [--out FILE.json]\n"
    "       mimo-bench run --probe-gpu      (exit 0 when the cuda backend can run here, else 4)";

static volatile int interrupted = 0;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;   /* a second Ctrl-C ends the process at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int probe_gpu(void)
{
    char why[512] = "";
    if (mimo_backend_available(MIMO_BACKEND_CUDA, why, sizeof why)) {
        printf("cuda: available\n");
        return MIMO_EXIT_OK;
    }
    printf("cuda: unavailable: %s\n", why);
    return MIMO_EXIT_UNAVAILABLE;
}

/* The first element of "coding,math" that is not a built-in suite ("" for an empty one), or NULL.
 * Checked before the run starts so that a typo is a usage error, not bad input. */
static const char *unknown_suite(const char *list, char *buf, size_t n)
{
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        while (len > 0 && *p == ' ')
            p++, len--;
        while (len > 0 && p[len - 1] == ' ')
            len--;
        snprintf(buf, n, "%.*s", (int)len, p);
        bool known = false;
        for (int i = 0; mimo_builtin_suites[i]; i++)
            known |= !strcmp(buf, mimo_builtin_suites[i]);
        if (!known)
            return buf;
        p = strchr(p, ',');
        if (!p)
            return NULL;
    }
}

int mimo_cmd_run(int argc, char **argv)
{
    mimo_run_options o;
    mimo_run_options_default(&o);
    const char *dflash_flag = NULL;
    bool suite_set = false;
    char default_out[64];
    long v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: %s\n", usage);
            return MIMO_EXIT_OK;
        }
        if (!strcmp(a, "--probe-gpu"))
            return probe_gpu();
        if (!strcmp(a, "--matrix")) { o.matrix = true; continue; }
        if (!strcmp(a, "--trace")) { o.trace = true; continue; }
        static const char *const valued[] = {"--model", "--preset", "--suite", "--suite-file", "--out", "--backend",
                                             "--fp4", "--dflash", "--exec", "--rounds", "--accept", "--shard", "--layers",
                                             "--requests", "--max-new", "--temperature", "--top-k", "--top-p", "--seed", "--warmup",
                                             "--repeats", "--threads", NULL};
        bool known = false;
        for (int k = 0; valued[k]; k++)
            known |= !strcmp(a, valued[k]);
        if (!known)
            return mimo_usage_error("run", usage, "unknown flag '%s'", a);
        if (i + 1 >= argc)
            return mimo_usage_error("run", usage, "%s needs a value", a);
        const char *val = argv[++i];
        if (!strcmp(a, "--model")) o.model_dir = val;
        else if (!strcmp(a, "--preset")) o.preset = val;
        else if (!strcmp(a, "--suite")) { o.suites = val; suite_set = true; }
        else if (!strcmp(a, "--suite-file")) o.suite_file = val;
        else if (!strcmp(a, "--out")) o.out_path = val;
        else if (!strcmp(a, "--backend")) {
            if (!strcmp(val, "cpu")) o.backend = MIMO_BACKEND_CPU;
            else if (!strcmp(val, "cuda")) o.backend = MIMO_BACKEND_CUDA;
            else return mimo_usage_error("run", usage, "--backend must be cpu or cuda (got '%s')", val);
        } else if (!strcmp(a, "--fp4")) {
            if (!mimo_parse_on_off(val, &o.fp4))
                return mimo_usage_error("run", usage, "--fp4 must be on or off (got '%s')", val);
        } else if (!strcmp(a, "--dflash")) {
            if (!mimo_parse_on_off(val, &o.dflash))
                return mimo_usage_error("run", usage, "--dflash must be on or off (got '%s')", val);
            dflash_flag = val;
        } else if (!strcmp(a, "--exec")) {
            if (!strcmp(val, "eager")) o.exec = MIMO_EXEC_EAGER;
            else if (!strcmp(val, "graph")) o.exec = MIMO_EXEC_GRAPH;
            else if (!strcmp(val, "persistent")) o.exec = MIMO_EXEC_PERSISTENT;
            else return mimo_usage_error("run", usage, "--exec must be eager, graph or persistent (got '%s')", val);
        } else if (!strcmp(a, "--rounds")) {
            if (!strcmp(val, "device")) o.host_rounds = false;
            else if (!strcmp(val, "host")) o.host_rounds = true;
            else return mimo_usage_error("run", usage, "--rounds must be device or host (got '%s')", val);
        } else if (!strcmp(a, "--accept")) {
            o.accept_set = true;
            if (!strcmp(val, "measured")) {
                o.accept_forced = false;
            } else if (!strncmp(val, "forced:", 7) && val[7]) {
                o.accept_forced = true;
                o.accept_profile = val + 7;
            } else {
                return mimo_usage_error("run", usage, "--accept must be measured or forced:PROFILE (got '%s')", val);
            }
        } else if (!strcmp(a, "--shard")) {
            if (!mimo_parse_shard(val, &o.shard_rank, &o.shard_count))
                return mimo_usage_error("run", usage, "--shard must be R/N with 0 <= R < N (got '%s')", val);
        } else if (!strcmp(a, "--layers")) {
            if (!mimo_parse_int(val, 1, 100000, &v)) return mimo_usage_error("run", usage, "bad --layers '%s'", val);
            o.layers = (int)v;
        } else if (!strcmp(a, "--requests")) {
            if (!mimo_parse_int(val, 1, 1000000, &v)) return mimo_usage_error("run", usage, "bad --requests '%s'", val);
            o.requests = (int)v;
        } else if (!strcmp(a, "--max-new")) {
            if (!mimo_parse_int(val, 1, 1000000, &v)) return mimo_usage_error("run", usage, "bad --max-new '%s'", val);
            o.max_new = (int)v;
        } else if (!strcmp(a, "--temperature")) {
            if (!mimo_parse_double(val, 0, 100, &o.temperature))
                return mimo_usage_error("run", usage, "bad --temperature '%s' (0..100)", val);
        } else if (!strcmp(a, "--top-k")) {
            if (!mimo_parse_int(val, 0, 100000000, &v))
                return mimo_usage_error("run", usage, "bad --top-k '%s' (an integer >= 0; 0 = off)", val);
            o.top_k = (int)v;
        } else if (!strcmp(a, "--top-p")) {
            if (!mimo_parse_double(val, 1e-9, 1, &o.top_p))
                return mimo_usage_error("run", usage, "bad --top-p '%s' (a number in (0, 1]; 1 = off)", val);
        } else if (!strcmp(a, "--seed")) {
            if (!mimo_parse_u64(val, &o.seed)) return mimo_usage_error("run", usage, "bad --seed '%s'", val);
        } else if (!strcmp(a, "--warmup")) {
            if (!mimo_parse_int(val, 0, 1000000, &v)) return mimo_usage_error("run", usage, "bad --warmup '%s'", val);
            o.warmup = (int)v;
        } else if (!strcmp(a, "--repeats")) {
            if (!mimo_parse_int(val, 1, 1000000, &v)) return mimo_usage_error("run", usage, "bad --repeats '%s'", val);
            o.repeats = (int)v;
        } else if (!strcmp(a, "--threads")) {
            if (!mimo_parse_int(val, 1, 1024, &v)) return mimo_usage_error("run", usage, "bad --threads '%s'", val);
            o.threads = (int)v;
        } else {
            return mimo_usage_error("run", usage, "unknown flag '%s'", a);
        }
    }
    o.dflash_set = dflash_flag != NULL;
    if (!o.model_dir == !o.preset)
        return mimo_usage_error("run", usage, "give exactly one of --model DIR or --preset P");
    if (o.suite_file && suite_set)
        return mimo_usage_error("run", usage, "give --suite or --suite-file, not both");
    char bad[64];
    if (suite_set && unknown_suite(o.suites, bad, sizeof bad))
        return mimo_usage_error("run", usage, "--suite: '%s' is not a built-in suite (coding, math, agent, chat; "
                                "--suite-file F for others)", bad);
    if (o.out_path && !*o.out_path)
        return mimo_usage_error("run", usage, "--out needs a file name");
    if (!o.accept_set) {
        /* synthetic weights: measured acceptance would be meaningless, so timing replays use the
         * published per-suite means by default */
        o.accept_forced = o.preset != NULL;
        o.accept_profile = "mimo-published";
    }
    if (!o.out_path) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(default_out, sizeof default_out, "mimo-run-%Y%m%dT%H%M%SZ.json", &tm);
        o.out_path = default_out;
    }
    if ((o.dflash || o.matrix) && o.preset && o.accept_set && !o.accept_forced)
        fprintf(stderr, "mimo-bench run: warning: --accept measured on synthetic weights: acceptance on random "
                        "weights is meaningless (use forced:mimo-published for timing replays)\n");

    install_signals();
    mimo_error err = {""};
    int rc = mimo_run_execute(&o, argc, argv, &interrupted, &err);
    if (rc == MIMO_EXIT_INTERRUPTED)
        fprintf(stderr, "mimo-bench run: interrupted: partial results written to %s (marked incomplete)\n", o.out_path);
    else if (rc == MIMO_EXIT_USAGE)   /* a flag value only the run could judge (--preset, --layers, --accept) */
        mimo_usage_error("run", usage, "%s", err.msg);
    else if (rc != MIMO_EXIT_OK && err.msg[0])
        fprintf(stderr, "mimo-bench run: %s\n", err.msg);
    return rc;
}
