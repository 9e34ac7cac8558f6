#include "results_read.h"
#include "results_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(MIMO_RFILE_SCHEMA_VERSION == MIMO_RESULTS_SCHEMA_VERSION,
               "the reader and the writer of results files must agree on the schema version");

int mimo_rfile_load(const char *path, json_t **out, mimo_error *err)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return mimo_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return mimo_fail(err, "%s: is a directory, not a results file", path);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return mimo_fail(err, "%s: not a readable JSON file (line %d: %s)", path, jerr.line, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return mimo_fail(err, "%s: the top level is not an object", path);
    }
    json_t *version = json_object_get(root, "schema_version");
    if (!json_is_integer(version)) {
        json_decref(root);
        return mimo_fail(err, "%s: no integer \"schema_version\" (not a mimo-bench results file?)", path);
    }
    if (json_integer_value(version) != MIMO_RFILE_SCHEMA_VERSION) {
        long long v = json_integer_value(version);
        json_decref(root);
        return mimo_fail(err, "%s: schema_version %lld, this build reads %d", path, v, MIMO_RFILE_SCHEMA_VERSION);
    }
    json_t *configs = json_object_get(root, "configs");
    if (!json_is_array(configs)) {
        json_decref(root);
        return mimo_fail(err, "%s: \"configs\" is missing or not an array", path);
    }
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        if (!json_is_object(entry) || !json_is_object(json_object_get(entry, "config"))) {
            json_decref(root);
            return mimo_fail(err, "%s: configs[%zu] is not an object with a \"config\" object", path, i);
        }
        json_t *suites = json_object_get(entry, "suites");
        if (suites && !json_is_object(suites) && !json_is_null(suites)) {
            json_decref(root);
            return mimo_fail(err, "%s: configs[%zu].suites is not an object", path, i);
        }
    }
    *out = root;
    return 0;
}

void mimo_rfile_field_text(const json_t *v, char *buf, size_t size)
{
    if (!v || json_is_null(v))
        snprintf(buf, size, "-");
    else if (json_is_true(v))
        snprintf(buf, size, "on");
    else if (json_is_false(v))
        snprintf(buf, size, "off");
    else if (json_is_string(v))
        snprintf(buf, size, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, size, "%g", json_real_value(v));
    else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        snprintf(buf, size, "%s", s ? s : "?");
        free(s);
    }
}

static const json_t *config_of(const json_t *entry)
{
    return json_object_get(entry, "config");
}

bool mimo_rfile_is_forced(const json_t *entry, const char **profile)
{
    const json_t *acc = json_object_get(config_of(entry), "acceptance");
    const char *mode = json_string_value(json_object_get(acc, "mode"));
    const char *prof = json_string_value(json_object_get(acc, "profile"));
    if (profile)
        *profile = prof ? prof : "?";
    return mode && !strcmp(mode, "forced");
}

bool mimo_rfile_dflash(const json_t *entry)
{
    const json_t *v = json_object_get(config_of(entry), "dflash");
    if (json_is_boolean(v))
        return json_is_true(v);
    const char *s = json_string_value(v);
    return s && !strcmp(s, "on");
}

bool mimo_rfile_available(const json_t *entry, const char **reason)
{
    const json_t *v = json_object_get(entry, "available");
    if (reason)
        *reason = json_string_value(json_object_get(entry, "reason"));
    if (reason && !*reason)
        *reason = "no reason given";
    return !json_is_false(v);
}

static const char *const key_fields[] = {"backend", "fp4", "dflash", "exec", "block"};

char *mimo_rfile_config_key(const json_t *entry)
{
    const json_t *c = config_of(entry);
    char buf[1024];
    size_t len = 0;
    for (size_t i = 0; i < sizeof key_fields / sizeof key_fields[0]; i++) {
        char v[128];
        mimo_rfile_field_text(json_object_get(c, key_fields[i]), v, sizeof v);
        if (!strcmp(key_fields[i], "block") && !mimo_rfile_dflash(entry))
            snprintf(v, sizeof v, "-");   /* a block size means nothing without DFlash */
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s=%s;", key_fields[i], v);
        if (len >= sizeof buf)
            len = sizeof buf - 1;
    }
    const json_t *acc = json_object_get(c, "acceptance");
    char mode[128], prof[256];
    mimo_rfile_field_text(json_object_get(acc, "mode"), mode, sizeof mode);
    mimo_rfile_field_text(json_object_get(acc, "profile"), prof, sizeof prof);
    if (strcmp(mode, "forced") != 0)   /* a measured run has no profile to match on */
        snprintf(prof, sizeof prof, "-");
    snprintf(buf + len, sizeof buf - len, "acceptance=%s:%s", mode, prof);
    return mimo_xstrdup(buf);
}

char *mimo_rfile_config_label(const json_t *entry)
{
    const json_t *c = config_of(entry);
    char backend[64], fp4[32], dflash[32], exec[64], block[32];
    mimo_rfile_field_text(json_object_get(c, "backend"), backend, sizeof backend);
    mimo_rfile_field_text(json_object_get(c, "fp4"), fp4, sizeof fp4);
    mimo_rfile_field_text(json_object_get(c, "dflash"), dflash, sizeof dflash);
    mimo_rfile_field_text(json_object_get(c, "exec"), exec, sizeof exec);
    mimo_rfile_field_text(json_object_get(c, "block"), block, sizeof block);
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s fp4=%s dflash=%s exec=%s", backend, fp4, dflash, exec);
    if (mimo_rfile_dflash(entry) && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, " B=%s", block);
    const char *profile;
    if (mimo_rfile_is_forced(entry, &profile) && n > 0 && (size_t)n < sizeof buf)
        snprintf(buf + n, sizeof buf - (size_t)n, " acc=forced:%s", profile);
    return mimo_xstrdup(buf);
}

double mimo_rfile_num(const json_t *obj, const char *dotted)
{
    char part[128];
    const char *p = dotted;
    const json_t *cur = obj;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len >= sizeof part)
            return NAN;
        memcpy(part, p, len);
        part[len] = '\0';
        cur = json_is_object(cur) ? json_object_get(cur, part) : NULL;
        p = dot ? dot + 1 : p + len;
    }
    if (!cur || !json_is_number(cur))
        return NAN;
    double v = json_number_value(cur);
    return isfinite(v) ? v : NAN;
}
