/* Suite files: JSONL or a JSON array, format detected from the first record's fields, every
 * record mapped to turns of chat messages (workloads/README.md lists the mappings). */
#include "suite.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { FORMAT_SUITE, FORMAT_HUMANEVAL, FORMAT_MBPP, FORMAT_GSM8K, FORMAT_MATH, FORMAT_BFCL } suite_format;

static const char *const format_names[] = {"suite", "humaneval", "mbpp", "gsm8k", "math", "bfcl"};

static bool detect_format(const json_t *rec, suite_format *f)
{
    if (json_is_array(json_object_get(rec, "turns")))
        *f = FORMAT_SUITE;
    else if (json_is_string(json_object_get(rec, "task_id")) && json_is_string(json_object_get(rec, "prompt")))
        *f = FORMAT_HUMANEVAL;
    else if (json_is_string(json_object_get(rec, "question")) && json_object_get(rec, "answer"))
        *f = FORMAT_GSM8K;
    else if (json_is_array(json_object_get(rec, "question")) && json_is_array(json_object_get(rec, "function")))
        *f = FORMAT_BFCL;
    else if (json_is_string(json_object_get(rec, "problem")))
        *f = FORMAT_MATH;
    else if (json_is_string(json_object_get(rec, "text")))
        *f = FORMAT_MBPP;
    else
        return false;
    return true;
}

/* ---- building records ---- */

static void add_message(mimo_suite_turn *t, const char *role, const char *content)
{
    t->messages = mimo_xrealloc(t->messages, (size_t)(t->n_messages + 1) * sizeof *t->messages);
    t->messages[t->n_messages].role = mimo_xstrdup(role);
    t->messages[t->n_messages].content = mimo_xstrdup(content);
    t->n_messages++;
}

static mimo_suite_turn *add_turn(mimo_suite_record *r)
{
    r->turns = mimo_xrealloc(r->turns, (size_t)(r->n_turns + 1) * sizeof *r->turns);
    mimo_suite_turn *t = &r->turns[r->n_turns++];
    memset(t, 0, sizeof *t);
    return t;
}

static void free_record(mimo_suite_record *r)
{
    for (int t = 0; t < r->n_turns; t++) {
        for (int m = 0; m < r->turns[t].n_messages; m++) {
            free(r->turns[t].messages[m].role);
            free(r->turns[t].messages[m].content);
        }
        free(r->turns[t].messages);
    }
    free(r->turns);
    free(r->suite);
    free(r->id);
    free(r->category);
    free(r->subcategory);
    free(r->tools_json);
    memset(r, 0, sizeof *r);
}

void mimo_suite_free(mimo_suite *s)
{
    for (int i = 0; i < s->n_records; i++)
        free_record(&s->records[i]);
    free(s->records);
    free(s->name);
    free(s->path);
    free(s->format);
    memset(s, 0, sizeof *s);
}

/* An id field that may be a string or an integer; NULL when absent. */
static char *id_string(const json_t *v)
{
    char buf[64];
    if (json_is_string(v))
        return mimo_xstrdup(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return mimo_xstrdup(buf);
    }
    return NULL;
}

static bool valid_role(const char *role)
{
    return role && (!strcmp(role, "system") || !strcmp(role, "user") || !strcmp(role, "assistant") ||
                    !strcmp(role, "tool"));
}

/* One message object {role, content}. */
static int parse_message(mimo_suite_turn *t, const json_t *m, const char *where, mimo_error *err)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    const json_t *content = json_object_get(m, "content");
    if (!valid_role(role))
        return mimo_fail(err, "%s: message role is missing or not system/user/assistant/tool", where);
    if (json_is_string(content)) {
        add_message(t, role, json_string_value(content));
        return 0;
    }
    if (json_is_object(content) || json_is_array(content)) {   /* structured tool results: kept as JSON text */
        char *s = json_dumps(content, JSON_PRESERVE_ORDER | JSON_COMPACT);
        add_message(t, role, s);
        free(s);
        return 0;
    }
    return mimo_fail(err, "%s: message content is not a string", where);
}

/* A turn: "text" (one user message), {role, content}, or [{role, content}, ...]. */
static int parse_turn(mimo_suite_record *r, const json_t *turn, const char *where, mimo_error *err)
{
    mimo_suite_turn *t = add_turn(r);
    if (json_is_string(turn)) {
        add_message(t, "user", json_string_value(turn));
        return 0;
    }
    if (json_is_object(turn))
        return parse_message(t, turn, where, err);
    if (json_is_array(turn) && json_array_size(turn) > 0) {
        size_t i;
        const json_t *m;
        json_array_foreach(turn, i, m)
            if (parse_message(t, m, where, err))
                return -1;
        return 0;
    }
    return mimo_fail(err, "%s: a turn is neither a string, a message object nor a non-empty list of messages", where);
}

static int parse_turns(mimo_suite_record *r, const json_t *turns, const char *where, mimo_error *err)
{
    if (!json_is_array(turns) || json_array_size(turns) == 0)
        return mimo_fail(err, "%s: 'turns' is missing or empty", where);
    size_t i;
    const json_t *turn;
    json_array_foreach(turns, i, turn)
        if (parse_turn(r, turn, where, err))
            return -1;
    return 0;
}

/* Public categories -> the four the harness aggregates by. */
static const char *map_category(const char *c)
{
    if (!c)
        return "chat";
    if (!strcmp(c, "coding") || !strcmp(c, "code"))
        return "coding";
    if (!strncmp(c, "math", 4))
        return "math";
    if (!strcmp(c, "agent") || !strcmp(c, "tool_use") || !strcmp(c, "function_calling"))
        return "agent";
    return "chat";
}

/* Tools: a list of schemas. Bare function schemas ({name, description, parameters}) are wrapped
 * as {"type": "function", "function": schema}, the form chat templates are given. */
static char *tools_text(const json_t *tools)
{
    json_t *wrapped = json_array();
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool) {
        if (json_object_get(tool, "type") && json_object_get(tool, "function"))
            json_array_append(wrapped, tool);
        else
            json_array_append_new(wrapped, json_pack("{s:s, s:O}", "type", "function", "function", tool));
    }
    char *s = json_dumps(wrapped, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(wrapped);
    return s;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Records are located as "file:LINE" in JSONL and "file:record N" in a JSON array file. */
static int map_record(mimo_suite_record *r, suite_format f, const json_t *rec, const char *path, const char *unit,
                      int line, const char *suite_name, mimo_error *err)
{
    char where[4200], fallback_id[4200];
    snprintf(where, sizeof where, "%s:%s%d", path, unit, line);
    snprintf(fallback_id, sizeof fallback_id, "%s:%s%d", base_name(path), unit, line);
    memset(r, 0, sizeof *r);
    r->suite = mimo_xstrdup(suite_name);
    char buf[8192];
    switch (f) {
    case FORMAT_SUITE: {
        r->id = id_string(json_object_get(rec, "question_id"));
        if (!r->id)
            r->id = id_string(json_object_get(rec, "id"));
        const char *category = json_string_value(json_object_get(rec, "category"));
        r->category = mimo_xstrdup(map_category(category));
        if (category && strcmp(category, r->category))
            r->subcategory = mimo_xstrdup(category);
        if (parse_turns(r, json_object_get(rec, "turns"), where, err))
            return -1;
        const json_t *tools = json_object_get(rec, "tools");
        if (tools && !json_is_array(tools))
            return mimo_fail(err, "%s: 'tools' is not an array of tool schemas", where);
        if (tools && json_array_size(tools))
            r->tools_json = tools_text(tools);
        break;
    }
    case FORMAT_HUMANEVAL: {
        const char *prompt = json_string_value(json_object_get(rec, "prompt"));
        if (!prompt || !json_is_string(json_object_get(rec, "task_id")))
            return mimo_fail(err, "%s: HumanEval record lacks string 'task_id' and 'prompt'", where);
        r->id = id_string(json_object_get(rec, "task_id"));
        r->category = mimo_xstrdup("coding");
        size_t n = strlen(prompt) + 128;
        char *content = mimo_xmalloc(n);
        snprintf(content, n, "Complete the following Python function.\n\n```python\n%s```", prompt);
        add_message(add_turn(r), "user", content);
        free(content);
        break;
    }
    case FORMAT_MBPP: {
        const char *text = json_string_value(json_object_get(rec, "text"));
        if (!text)
            return mimo_fail(err, "%s: MBPP record lacks a string 'text'", where);
        r->id = id_string(json_object_get(rec, "task_id"));
        r->category = mimo_xstrdup("coding");
        /* The usual MBPP prompt: the task, then the tests the code must pass. */
        const json_t *tests = json_object_get(rec, "test_list");
        size_t k;
        const json_t *test;
        snprintf(buf, sizeof buf, "%s", text);
        if (json_is_array(tests) && json_array_size(tests)) {
            strncat(buf, " Your code should pass these tests:\n", sizeof buf - strlen(buf) - 1);
            json_array_foreach(tests, k, test) {
                if (json_is_string(test)) {
                    strncat(buf, "\n", sizeof buf - strlen(buf) - 1);
                    strncat(buf, json_string_value(test), sizeof buf - strlen(buf) - 1);
                }
            }
        }
        add_message(add_turn(r), "user", buf);
        break;
    }
    case FORMAT_GSM8K: {
        const char *q = json_string_value(json_object_get(rec, "question"));
        if (!q)
            return mimo_fail(err, "%s: GSM8K record lacks a string 'question'", where);
        r->category = mimo_xstrdup("math");
        add_message(add_turn(r), "user", q);
        break;
    }
    case FORMAT_MATH: {
        const char *p = json_string_value(json_object_get(rec, "problem"));
        if (!p)
            return mimo_fail(err, "%s: MATH/AIME record lacks a string 'problem'", where);
        r->id = id_string(json_object_get(rec, "unique_id"));
        if (!r->id)
            r->id = id_string(json_object_get(rec, "id"));
        r->category = mimo_xstrdup("math");
        add_message(add_turn(r), "user", p);
        break;
    }
    case FORMAT_BFCL: {
        const json_t *question = json_object_get(rec, "question"), *functions = json_object_get(rec, "function");
        if (!json_is_array(question) || !json_is_array(functions))
            return mimo_fail(err, "%s: BFCL record lacks 'question' (list of turns) and 'function' (list)", where);
        r->id = id_string(json_object_get(rec, "id"));
        r->category = mimo_xstrdup("agent");
        if (parse_turns(r, question, where, err))
            return -1;
        r->tools_json = tools_text(functions);
        break;
    }
    }
    if (!r->id)
        r->id = mimo_xstrdup(fallback_id);
    return 0;
}

/* ---- reading ---- */

static void append_record(mimo_suite *s, size_t *cap, const mimo_suite_record *r)
{
    if ((size_t)s->n_records == *cap)
        s->records = mimo_xrealloc(s->records, (*cap = *cap ? *cap * 2 : 64) * sizeof *s->records);
    s->records[s->n_records++] = *r;
}

static bool blank(const char *line)
{
    for (; *line; line++)
        if (!isspace((unsigned char)*line))
            return false;
    return true;
}

/* One parsed record at (path, line): detect the format on the first, map it. */
static int take_record(mimo_suite *s, size_t *cap, bool *detected, suite_format *format, const json_t *rec,
                       const char *path, const char *unit, int line, const char *suite_name, mimo_error *err)
{
    if (!json_is_object(rec))
        return mimo_fail(err, "%s:%s%d: a record is not a JSON object", path, unit, line);
    suite_format f;
    if (!detect_format(rec, &f)) {
        if (!*detected)
            return mimo_fail(err, "%s:%s%d: unknown record format (expected the fields of a suite {question_id, category, "
                                  "turns}, HumanEval {task_id, prompt}, MBPP {text}, GSM8K {question, answer}, "
                                  "MATH {problem} or BFCL {id, question, function})",
                             path, unit, line);
        f = *format;   /* mapping below names what is missing */
    }
    if (!*detected) {
        *format = f;
        *detected = true;
        s->format = mimo_xstrdup(format_names[f]);
    }
    mimo_suite_record r;
    if (map_record(&r, *format, rec, path, unit, line, suite_name ? suite_name : format_names[*format], err)) {
        free_record(&r);
        return -1;
    }
    append_record(s, cap, &r);
    return 0;
}

static int load_json_array(const char *path, FILE *f, mimo_suite *s, const char *suite_name, mimo_error *err)
{
    json_error_t jerr;
    json_t *arr = json_loadf(f, 0, &jerr);
    if (!arr)
        return mimo_fail(err, "%s:%d: not valid JSON: %s", path, jerr.line, jerr.text);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return mimo_fail(err, "%s:1: a file starting with '[' must be a JSON array of records", path);
    }
    size_t cap = 0, i;
    bool detected = false;
    suite_format format = FORMAT_SUITE;
    json_t *rec;
    int rc = 0;
    json_array_foreach(arr, i, rec) {
        /* No line numbers inside one JSON document: errors name the element as "record N". */
        if (take_record(s, &cap, &detected, &format, rec, path, "record ", (int)i + 1, suite_name, err)) {
            rc = -1;
            break;
        }
    }
    json_decref(arr);
    return rc;
}

static int load_jsonl(const char *path, FILE *f, mimo_suite *s, const char *suite_name, mimo_error *err)
{
    char *line = NULL;
    size_t line_cap = 0, cap = 0;
    int line_no = 0, rc = 0;
    bool detected = false;
    suite_format format = FORMAT_SUITE;
    ssize_t got;
    while ((got = getline(&line, &line_cap, f)) > 0) {
        line_no++;
        if (blank(line))
            continue;
        if (memchr(line, '\0', (size_t)got)) {
            rc = mimo_fail(err, "%s:%d: NUL byte in the line", path, line_no);
            break;
        }
        json_error_t jerr;
        json_t *rec = json_loads(line, 0, &jerr);
        if (!rec) {
            rc = mimo_fail(err, "%s:%d: not valid JSON (column %d): %s", path, line_no, jerr.column, jerr.text);
            break;
        }
        rc = take_record(s, &cap, &detected, &format, rec, path, "", line_no, suite_name, err);
        json_decref(rec);
        if (rc)
            break;
    }
    free(line);
    if (!rc && ferror(f))
        rc = mimo_fail(err, "%s: read error", path);
    return rc;
}

int mimo_suite_load_named(const char *path, const char *suite_name, mimo_suite *out, mimo_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return mimo_fail(err, "%s: %s", path, strerror(errno));
    int c;
    while ((c = fgetc(f)) != EOF && isspace(c))
        ;
    if (c != EOF)
        ungetc(c, f);
    int rc = c == '[' ? load_json_array(path, f, out, suite_name, err) : load_jsonl(path, f, out, suite_name, err);
    fclose(f);
    if (!rc && out->n_records == 0)
        rc = mimo_fail(err, "%s: no records", path);
    if (rc) {
        mimo_suite_free(out);
        return -1;
    }
    out->path = mimo_xstrdup(path);
    out->name = mimo_xstrdup(suite_name ? suite_name : out->format);
    return 0;
}

int mimo_suite_load_file(const char *path, mimo_suite *out, mimo_error *err)
{
    return mimo_suite_load_named(path, NULL, out, err);
}
