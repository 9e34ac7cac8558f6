/* The JSON Schema subset validator (see schema_check.h). */
#include "schema_check.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef MIMO_SOURCE_DIR
#define MIMO_SOURCE_DIR "."
#endif

typedef struct {
    const json_t *root;
    mimo_schema_report *report;
    int depth;
} validator;

static void add_error(validator *v, const char *pointer, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add_error(validator *v, const char *pointer, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mimo_schema_report *r = v->report;
    char line[1100];
    snprintf(line, sizeof line, "%s: %s", *pointer ? pointer : "(root)", msg);
    if (r->n_errors == 0) {
        size_t len = strnlen(line, sizeof r->first - 1);
        memcpy(r->first, line, len);
        r->first[len] = '\0';
    }
    size_t used = strlen(r->all);
    if (used + strlen(line) + 2 < sizeof r->all) {
        memcpy(r->all + used, line, strlen(line));
        r->all[used + strlen(line)] = '\n';
        r->all[used + strlen(line) + 1] = '\0';
    }
    r->n_errors++;
}

static const char *json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static bool type_matches(const json_t *inst, const char *type)
{
    if (!strcmp(type, "object")) return json_is_object(inst);
    if (!strcmp(type, "array")) return json_is_array(inst);
    if (!strcmp(type, "string")) return json_is_string(inst);
    if (!strcmp(type, "boolean")) return json_is_boolean(inst);
    if (!strcmp(type, "null")) return json_is_null(inst);
    if (!strcmp(type, "number")) return json_is_number(inst);
    if (!strcmp(type, "integer")) {
        if (json_is_integer(inst))
            return true;
        if (json_is_real(inst)) {
            double d = json_real_value(inst);
            return isfinite(d) && d == floor(d);
        }
    }
    return false;
}

static void validate_node(validator *v, const json_t *schema, const json_t *inst, const char *pointer);

static const json_t *resolve_ref(validator *v, const char *ref, const char *pointer)
{
    const char *prefix = "#/$defs/";
    if (strncmp(ref, prefix, strlen(prefix)) != 0) {
        add_error(v, pointer, "schema: unsupported $ref '%s' (only #/$defs/NAME)", ref);
        return NULL;
    }
    const json_t *target = json_object_get(json_object_get(v->root, "$defs"), ref + strlen(prefix));
    if (!target)
        add_error(v, pointer, "schema: $ref '%s' names no definition", ref);
    return target;
}

static void child_pointer(char *out, size_t n, const char *parent, const char *key)
{
    /* JSON pointer escaping: ~ -> ~0, / -> ~1 */
    size_t len = (size_t)snprintf(out, n, "%s/", parent);
    for (const char *p = key; *p && len + 3 < n; p++) {
        if (*p == '~') { out[len++] = '~'; out[len++] = '0'; }
        else if (*p == '/') { out[len++] = '~'; out[len++] = '1'; }
        else out[len++] = *p;
    }
    out[len < n ? len : n - 1] = '\0';
}

static void validate_node(validator *v, const json_t *schema, const json_t *inst, const char *pointer)
{
    if (json_is_true(schema))
        return;
    if (json_is_false(schema)) {
        add_error(v, pointer, "not allowed here");
        return;
    }
    if (!json_is_object(schema)) {
        add_error(v, pointer, "schema: a schema must be an object or a boolean");
        return;
    }
    if (++v->depth > 64) {
        add_error(v, pointer, "schema: nesting deeper than 64 (a $ref cycle?)");
        v->depth--;
        return;
    }
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)schema, key, value) {
        if (!strcmp(key, "$schema") || !strcmp(key, "$id") || !strcmp(key, "$defs") || !strcmp(key, "$comment") ||
            !strcmp(key, "title") || !strcmp(key, "description"))
            continue;
        if (!strcmp(key, "$ref")) {
            const json_t *target = json_is_string(value) ? resolve_ref(v, json_string_value(value), pointer) : NULL;
            if (!json_is_string(value))
                add_error(v, pointer, "schema: $ref must be a string");
            if (target)
                validate_node(v, target, inst, pointer);
        } else if (!strcmp(key, "type")) {
            bool ok = false;
            if (json_is_string(value)) {
                ok = type_matches(inst, json_string_value(value));
            } else if (json_is_array(value)) {
                size_t i;
                const json_t *t;
                json_array_foreach(value, i, t)
                    if (json_is_string(t) && type_matches(inst, json_string_value(t)))
                        ok = true;
            }
            if (!ok) {
                char *want = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
                add_error(v, pointer, "expected type %s, found %s", want ? want : "?", json_type_name(inst));
                free(want);
            }
        } else if (!strcmp(key, "required")) {
            if (!json_is_object(inst))
                continue;
            size_t i;
            const json_t *name;
            json_array_foreach(value, i, name)
                if (json_is_string(name) && !json_object_get(inst, json_string_value(name)))
                    add_error(v, pointer, "missing required field \"%s\"", json_string_value(name));
        } else if (!strcmp(key, "properties")) {
            if (!json_is_object(inst))
                continue;
            const char *pk;
            const json_t *ps;
            json_object_foreach((json_t *)value, pk, ps) {
                const json_t *child = json_object_get(inst, pk);
                if (child) {
                    char cp[1024];
                    child_pointer(cp, sizeof cp, pointer, pk);
                    validate_node(v, ps, child, cp);
                }
            }
        } else if (!strcmp(key, "additionalProperties")) {
            if (!json_is_object(inst))
                continue;
            const json_t *props = json_object_get(schema, "properties");
            const char *ik;
            const json_t *iv;
            json_object_foreach((json_t *)inst, ik, iv) {
                if (props && json_object_get(props, ik))
                    continue;
                char cp[1024];
                child_pointer(cp, sizeof cp, pointer, ik);
                validate_node(v, value, iv, cp);
            }
        } else if (!strcmp(key, "items")) {
            if (!json_is_array(inst))
                continue;
            size_t i;
            const json_t *item;
            json_array_foreach(inst, i, item) {
                char idx[32], cp[1024];
                snprintf(idx, sizeof idx, "%zu", i);
                child_pointer(cp, sizeof cp, pointer, idx);
                validate_node(v, value, item, cp);
            }
        } else if (!strcmp(key, "enum")) {
            bool found = false;
            size_t i;
            const json_t *e;
            json_array_foreach(value, i, e)
                if (json_equal((json_t *)e, (json_t *)inst))
                    found = true;
            if (!found) {
                char *got = json_dumps(inst, JSON_COMPACT | JSON_ENCODE_ANY);
                char *want = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
                add_error(v, pointer, "value %.200s is not one of %.400s", got ? got : "?", want ? want : "?");
                free(got);
                free(want);
            }
        } else if (!strcmp(key, "const")) {
            /* jansson: integer 1 and real 1.0 differ; JSON Schema says numbers compare by value */
            bool equal = json_equal((json_t *)value, (json_t *)inst) ||
                         (json_is_number(value) && json_is_number(inst) &&
                          json_number_value(value) == json_number_value(inst));
            if (!equal) {
                char *got = json_dumps(inst, JSON_COMPACT | JSON_ENCODE_ANY);
                char *want = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
                add_error(v, pointer, "value %.200s must be %.200s", got ? got : "?", want ? want : "?");
                free(got);
                free(want);
            }
        } else if (!strcmp(key, "minimum")) {
            if (json_is_number(inst) && json_number_value(inst) < json_number_value(value))
                add_error(v, pointer, "%g is below the minimum %g", json_number_value(inst), json_number_value(value));
        } else if (!strcmp(key, "maximum")) {
            if (json_is_number(inst) && json_number_value(inst) > json_number_value(value))
                add_error(v, pointer, "%g is above the maximum %g", json_number_value(inst), json_number_value(value));
        } else {
            add_error(v, pointer, "schema: unsupported keyword \"%s\"", key);
        }
    }
    v->depth--;
}

int mimo_schema_validate(const json_t *schema, const json_t *instance, mimo_schema_report *report)
{
    memset(report, 0, sizeof *report);
    validator v = {.root = schema, .report = report, .depth = 0};
    validate_node(&v, schema, instance, "");
    return report->n_errors ? -1 : 0;
}

void mimo_schema_path(char *buf, size_t n)
{
    const char *env = getenv("MIMO_SCHEMA");
    if (env && *env) {
        snprintf(buf, n, "%s", env);
        return;
    }
    const char *src = getenv("MIMO_SOURCE_DIR");
    snprintf(buf, n, "%s/results/schema.json", src && *src ? src : MIMO_SOURCE_DIR);
}

json_t *mimo_schema_load(mimo_error *err)
{
    char path[4096];
    mimo_schema_path(path, sizeof path);
    json_error_t je;
    json_t *schema = json_load_file(path, 0, &je);
    if (!schema) {
        mimo_fail(err, "%s: cannot load the results schema (line %d: %s); set MIMO_SCHEMA to its path",
                  path, je.line, je.text);
        return NULL;
    }
    if (!json_is_object(schema)) {
        json_decref(schema);
        mimo_fail(err, "%s: the schema is not a JSON object", path);
        return NULL;
    }
    return schema;
}

int mimo_results_validate_json(const json_t *doc, mimo_schema_report *report, mimo_error *err)
{
    memset(report, 0, sizeof *report);
    json_t *schema = mimo_schema_load(err);
    if (!schema)
        return MIMO_EXIT_FAILURE;
    const json_t *want = json_object_get(json_object_get(json_object_get(schema, "properties"), "schema_version"), "const");
    const json_t *have = json_is_object(doc) ? json_object_get(doc, "schema_version") : NULL;
    int rc = 0;
    if (!have) {
        mimo_fail(err, "no \"schema_version\" field: not a mimo-bench results file");
        rc = MIMO_EXIT_BAD_INPUT;
    } else if (want && !(json_is_number(have) && json_number_value(have) == json_number_value(want))) {
        char *got = json_dumps(have, JSON_COMPACT | JSON_ENCODE_ANY);
        mimo_fail(err, "schema_version %s is not the version this mimo-bench reads (%lld); "
                  "use the mimo-bench that wrote it, or convert the file",
                  got ? got : "?", (long long)json_number_value(want));
        free(got);
        rc = MIMO_EXIT_BAD_INPUT;
    } else if (mimo_schema_validate(schema, doc, report) != 0) {
        mimo_fail(err, "%d schema error(s); first: %s", report->n_errors, report->first);
        rc = MIMO_EXIT_BAD_INPUT;
    }
    json_decref(schema);
    return rc;
}

int mimo_results_validate_file(const char *path, mimo_schema_report *report, mimo_error *err)
{
    memset(report, 0, sizeof *report);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        mimo_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return MIMO_EXIT_BAD_INPUT;
    }
    if (S_ISDIR(sb.st_mode)) {
        mimo_fail(err, "%s: is a directory, not a results file", path);
        return MIMO_EXIT_BAD_INPUT;
    }
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc) {
        mimo_fail(err, "%s: not valid JSON (line %d, column %d: %s)", path, je.line, je.column, je.text);
        return MIMO_EXIT_BAD_INPUT;
    }
    int rc = mimo_results_validate_json(doc, report, err);
    if (rc == MIMO_EXIT_BAD_INPUT)   /* the file is at fault; a schema that cannot load names itself */
        mimo_fail_prefix(err, "%s", path);
    json_decref(doc);
    return rc;
}
