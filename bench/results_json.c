/* Results JSON builders and the atomic writer (see results_json.h). */
#include "results_json.h"
#include "environment.h"
#include "mimo/build_info.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const percentile_method =
    "linear interpolation between closest ranks (NumPy default, Hyndman-Fan type 7)";

void mimo_json_set_number(json_t *obj, const char *key, double v, const char *reason)
{
    if (isfinite(v)) {
        json_object_set_new(obj, key, json_real(v));
        return;
    }
    char reason_key[256];
    snprintf(reason_key, sizeof reason_key, "%s_null_reason", key);
    json_object_set_new(obj, key, json_null());
    if (!reason)
        reason = isnan(v) ? "undefined (NaN)" : "infinite";
    json_object_set_new(obj, reason_key, json_string(reason));
}

void mimo_json_set_number_array(json_t *obj, const char *key, const double *v, int n, const char *reason)
{
    json_t *a = json_array();
    bool any_null = false;
    for (int i = 0; i < n; i++) {
        if (isfinite(v[i])) {
            json_array_append_new(a, json_real(v[i]));
        } else {
            json_array_append_new(a, json_null());
            any_null = true;
        }
    }
    json_object_set_new(obj, key, a);
    if (any_null) {
        char reason_key[256];
        snprintf(reason_key, sizeof reason_key, "%s_null_reason", key);
        json_object_set_new(obj, reason_key, json_string(reason ? reason : "some elements are undefined (NaN)"));
    }
}

json_t *mimo_json_stats(const mimo_stats *s, const char *reason_if_empty)
{
    json_t *o = json_object();
    const char *why = s->n == 0 ? (reason_if_empty ? reason_if_empty : "no finite values") : NULL;
    json_object_set_new(o, "n", json_integer(s->n));
    mimo_json_set_number(o, "mean", s->mean, why);
    mimo_json_set_number(o, "median", s->median, why);
    mimo_json_set_number(o, "p5", s->p5, why);
    mimo_json_set_number(o, "p95", s->p95, why);
    mimo_json_set_number(o, "min", s->min, why);
    mimo_json_set_number(o, "max", s->max, why);
    json_object_set_new(o, "percentile_method", json_string(percentile_method));
    return o;
}

/* Shell-quotes one argument when it holds anything beyond a safe set. */
static void append_quoted(char **buf, size_t *len, size_t *cap, const char *arg)
{
    bool safe = *arg != '\0';
    for (const char *p = arg; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *p))
            safe = false;
    size_t need = *len + strlen(arg) * 4 + 4;
    if (need > *cap) {
        *cap = need * 2;
        *buf = mimo_xrealloc(*buf, *cap);
    }
    char *o = *buf + *len;
    if (safe) {
        o += sprintf(o, "%s", arg);
    } else {
        *o++ = '\'';
        for (const char *p = arg; *p; p++) {
            if (*p == '\'') {
                memcpy(o, "'\\''", 4);
                o += 4;
            } else {
                *o++ = *p;
            }
        }
        *o++ = '\'';
        *o = '\0';
    }
    *len = (size_t)(o - *buf);
}

json_t *mimo_results_new(int argc, char **argv)
{
    json_t *root = json_object();
    json_object_set_new(root, "schema_version", json_integer(MIMO_RESULTS_SCHEMA_VERSION));

    json_t *tool = json_object();
    char checkout[64];
    json_object_set_new(tool, "name", json_string("mimo-bench"));
    json_object_set_new(tool, "version", json_string(mimo_version()));
    /* the code that ran: stamped into the binary at build time ("-dirty": uncommitted changes) */
    json_object_set_new(tool, "git_commit", json_string(mimo_git_commit()));
    /* the source checkout at run time, when it can be read (it may differ from the binary's) */
    if (mimo_env_git_commit(checkout, sizeof checkout))
        json_object_set_new(tool, "source_checkout_commit", json_string(checkout));
    json_object_set_new(tool, "build_flags", json_string(mimo_build_flags()));
    json_object_set_new(root, "tool", tool);

    size_t len = 0, cap = 256;
    char *cmd = mimo_xmalloc(cap);
    cmd[0] = '\0';
    append_quoted(&cmd, &len, &cap, "mimo-bench");
    for (int i = 0; i < argc; i++) {
        cmd[len++] = ' ';   /* append_quoted always leaves room for one more byte */
        cmd[len] = '\0';
        append_quoted(&cmd, &len, &cap, argv[i]);
    }
    json_object_set_new(root, "command", json_string(cmd));
    free(cmd);
    json_object_set_new(root, "incomplete", json_false());
    json_object_set_new(root, "configs", json_array());
    return root;
}

json_t *mimo_results_request(const mimo_request_record *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "suite", json_string(r->suite ? r->suite : ""));
    json_object_set_new(o, "id", json_string(r->id ? r->id : ""));
    json_object_set_new(o, "prompt_tokens", json_integer(r->prompt_tokens));
    json_object_set_new(o, "output_tokens", json_integer(r->output_tokens));
    mimo_json_set_number(o, "ttft_ms", r->ttft_ms, "no first token");
    mimo_json_set_number(o, "tpot_ms", mimo_request_tpot_ms(r), "fewer than 2 output tokens");
    mimo_json_set_number(o, "decode_tps", mimo_request_decode_tps(r),
                         "fewer than 2 output tokens or no decode time");
    mimo_json_set_number(o, "decode_ms", r->decode_ms, "no decode time");
    mimo_json_set_number(o, "e2e_ms", r->e2e_ms, "no end-to-end time");
    json_object_set_new(o, "stop_reason", json_string(r->stop_reason ? r->stop_reason : "unknown"));
    json_t *rounds = json_array();
    for (int k = 0; k < r->n_rounds; k++) {
        const mimo_round_record *rd = &r->rounds[k];
        json_t *ro = json_object();
        json_object_set_new(ro, "drafted", json_integer(rd->drafted));
        json_object_set_new(ro, "accepted", json_integer(rd->accepted));
        json_object_set_new(ro, "emitted", json_integer(rd->emitted));
        mimo_json_set_number(ro, "t_draft_us", rd->t_draft_us, "not measured");
        mimo_json_set_number(ro, "t_verify_us", rd->t_verify_us, "not measured");
        mimo_json_set_number(ro, "t_total_us", rd->t_total_us, "not measured");
        json_array_append_new(rounds, ro);
    }
    json_object_set_new(o, "rounds", rounds);
    return o;
}

json_t *mimo_results_suite(const mimo_suite_metrics *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "requests", json_integer(m->requests));
    json_object_set_new(o, "rounds", json_integer(m->rounds));
    json_object_set_new(o, "drafted", json_integer(m->drafted));
    json_object_set_new(o, "accepted", json_integer(m->accepted));
    json_object_set_new(o, "emitted", json_integer(m->emitted));

    json_t *tau = json_object();
    mimo_json_set_number(tau, "mean", m->tau_mean, "no rounds");
    mimo_json_set_number(tau, "median", m->tau_median, "no rounds");
    json_t *hist = json_array();
    for (int t = 1; t <= m->block; t++)
        json_array_append_new(hist, json_integer(m->tau_histogram[t - 1]));
    json_object_set_new(tau, "histogram", hist);
    json_object_set_new(tau, "histogram_tau_from", json_integer(1));
    json_object_set_new(tau, "definition", json_string("tau = accepted drafts + 1 per round; mean = emitted / rounds"));
    json_object_set_new(o, "tau", tau);

    mimo_json_set_number(o, "draft_acceptance_rate", m->draft_acceptance_rate, "no drafted tokens (DFlash off)");
    double pos[MIMO_METRICS_MAX_TAU];
    for (int i = 0; i < m->n_positions; i++)
        pos[i] = m->per_position_acceptance[i];
    mimo_json_set_number_array(o, "per_position_acceptance", pos, m->n_positions,
                               "position never reached (its predecessor was never accepted)");

    json_t *tps = mimo_json_stats(&m->decode_tps, "no request with 2+ output tokens");
    mimo_json_set_number(tps, "ratio_of_sums", m->decode_tps_ratio_of_sums, "no decode time");
    json_object_set_new(tps, "aggregate_note",
                        json_string("mean/median/p5/p95/min/max over per-request decode_tps; "
                                    "ratio_of_sums = sum(output_tokens - 1) / sum(decode seconds) (Spec-Bench)"));
    json_object_set_new(o, "decode_tps", tps);
    json_object_set_new(o, "ttft_ms", mimo_json_stats(&m->ttft_ms, "no requests"));
    json_object_set_new(o, "tpot_ms", mimo_json_stats(&m->tpot_ms, "no request with 2+ output tokens"));
    json_t *round = mimo_json_stats(&m->round_ms, "no rounds");
    json_object_set_new(round, "note", json_string("one round = one draft + verify (or one AR step); it emits one "
                                                    "chunk, so these are also the inter-chunk latencies (itl)"));
    json_object_set_new(o, "round_ms", round);
    return o;
}

int mimo_results_write_atomic(const json_t *root, const char *path, mimo_error *err)
{
    char *dup = mimo_xstrdup(path);
    char *dir = dirname(dup);
    size_t tlen = strlen(path) + 32;
    char *tmp = mimo_xmalloc(tlen);
    snprintf(tmp, tlen, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        mimo_fail(err, "%s: cannot create a file in directory %s: %s", path, dir, strerror(errno));
        free(dup);
        free(tmp);
        return -1;
    }
    free(dup);
    /* mkstemp gives 0600; results are ordinary files */
    (void)fchmod(fd, 0644);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
    int rc = -1;
    if (!text) {
        mimo_fail(err, "%s: could not serialise the results JSON", path);
        goto fail;
    }
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            mimo_fail(err, "%s: write failed: %s", tmp, strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1) {
        mimo_fail(err, "%s: write failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fsync(fd) != 0) {
        mimo_fail(err, "%s: fsync failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        mimo_fail(err, "%s: close failed: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        mimo_fail(err, "%s: rename from %s failed: %s", path, tmp, strerror(errno));
        goto fail;
    }
    rc = 0;
fail:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    free(text);
    return rc;
}
