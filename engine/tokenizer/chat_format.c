/* ChatML prompts (Qwen/MiMo): the parts of the Qwen3 chat template a benchmark prompt uses —
 * system turn (with the tool schemas when tools are given), user/assistant turns, tool results as
 * <tool_response> blocks in a user turn, and the assistant turn opened at the end. */
#include "mimo/chat.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void mimo_chat_format_default(mimo_chat_format *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->im_start, sizeof f->im_start, "<|im_start|>");
    snprintf(f->im_end, sizeof f->im_end, "<|im_end|>");
    snprintf(f->eos, sizeof f->eos, "<|im_end|>");
    snprintf(f->pad, sizeof f->pad, "<|endoftext|>");
}

/* A special-token entry: "text", {"content": "text"} or null (= none). 1 if set, 0 if absent, -1 bad. */
static int token_field(const json_t *root, const char *key, char *out, const char *path, mimo_error *err)
{
    const json_t *v = json_object_get(root, key);
    if (!v)
        return 0;
    if (json_is_null(v)) {
        out[0] = '\0';
        return 1;
    }
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (!json_is_string(v))
        return mimo_fail(err, "%s: %s is neither a string, {\"content\": ...} nor null", path, key);
    if (json_string_length(v) >= MIMO_CHAT_TOKEN_MAX)
        return mimo_fail(err, "%s: %s is longer than %d bytes", path, key, MIMO_CHAT_TOKEN_MAX - 1);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 1;
}

int mimo_chat_format_load(const char *path, mimo_chat_format *f, mimo_error *err)
{
    mimo_chat_format_default(f);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return mimo_fail(err, "%s: line %d: %s", path, jerr.line, jerr.text);
    int rc = json_is_object(root) ? 0 : mimo_fail(err, "%s: not a JSON object", path);
    if (!rc && (token_field(root, "bos_token", f->bos, path, err) < 0 ||
                token_field(root, "eos_token", f->eos, path, err) < 0 ||
                token_field(root, "pad_token", f->pad, path, err) < 0))
        rc = -1;
    /* Chat markers: the added tokens named like ChatML's "<|im_start|>"/"<|im_end|>". A template that
     * does not use ChatML markers at all is a different chat format, which this does not render. */
    const char *template = json_string_value(json_object_get(root, "chat_template"));
    if (!rc && template && !strstr(template, f->im_start))
        rc = mimo_fail(err, "%s: chat_template does not use %s markers (only ChatML chat formats are supported)", path,
                       f->im_start);
    json_decref(root);
    return rc;
}

int mimo_chat_format_for_model_dir(const char *dir, mimo_chat_format *f, mimo_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        mimo_chat_format_default(f);
        return 0;
    }
    return mimo_chat_format_load(path, f, err);
}

typedef struct {
    char  *data;
    size_t len, cap;
} text_buffer;

static void put(text_buffer *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2 + 256;
        b->data = mimo_xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
}

static int render_tools_system(text_buffer *b, const mimo_chat_format *f, const char *system, const char *tools_json,
                               mimo_error *err)
{
    json_error_t jerr;
    json_t *tools = json_loads(tools_json, 0, &jerr);
    if (!json_is_array(tools)) {
        json_decref(tools);
        return mimo_fail(err, "chat: tools are not a JSON array of tool schemas%s%s", tools ? "" : ": ",
                         tools ? "" : jerr.text);
    }
    put(b, f->im_start);
    put(b, "system\n");
    if (system && *system) {
        put(b, system);
        put(b, "\n\n");
    }
    put(b, "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
           "You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool) {
        /* Like the template's tojson (Python json.dumps defaults): ", " and ": " separators. */
        char *s = json_dumps(tool, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        put(b, "\n");
        put(b, s);
        free(s);
    }
    json_decref(tools);
    put(b, "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
           "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
           "<args-json-object>}\n</tool_call>");
    put(b, f->im_end);
    put(b, "\n");
    return 0;
}

static void render_turn(text_buffer *b, const mimo_chat_format *f, const char *role, const char *content)
{
    put(b, f->im_start);
    put(b, role);
    put(b, "\n");
    put(b, content);
    put(b, f->im_end);
    put(b, "\n");
}

int mimo_chat_render(const mimo_chat_format *f, const mimo_chat_message *messages, int n_messages,
                     const char *tools_json, bool add_generation_prompt, char **out, mimo_error *err)
{
    *out = NULL;
    text_buffer b = {0};
    put(&b, f->bos);
    int first = 0;
    bool leading_system = n_messages > 0 && !strcmp(messages[0].role, "system");
    const char *system = leading_system ? messages[0].content : f->default_system;
    if (tools_json) {
        if (render_tools_system(&b, f, system, tools_json, err)) {
            free(b.data);
            return -1;
        }
        first = leading_system ? 1 : 0;
    } else if (leading_system) {
        render_turn(&b, f, "system", messages[0].content);
        first = 1;
    } else if (*f->default_system) {
        render_turn(&b, f, "system", f->default_system);
    }
    for (int i = first; i < n_messages; i++) {
        const mimo_chat_message *m = &messages[i];
        if (!m->role || !m->content) {
            free(b.data);
            return mimo_fail(err, "chat: message %d has no role or no content", i);
        }
        if (!strcmp(m->role, "tool")) {
            /* A run of tool results is one user turn of <tool_response> blocks. */
            if (i == first || strcmp(messages[i - 1].role, "tool")) {
                put(&b, f->im_start);
                put(&b, "user");
            }
            put(&b, "\n<tool_response>\n");
            put(&b, m->content);
            put(&b, "\n</tool_response>");
            if (i + 1 == n_messages || strcmp(messages[i + 1].role, "tool")) {
                put(&b, f->im_end);
                put(&b, "\n");
            }
        } else if (!strcmp(m->role, "user") || !strcmp(m->role, "assistant") || !strcmp(m->role, "system")) {
            render_turn(&b, f, m->role, m->content);
        } else {
            free(b.data);
            return mimo_fail(err, "chat: message %d has role '%s' (expected system, user, assistant or tool)", i,
                             m->role);
        }
    }
    if (add_generation_prompt) {
        put(&b, f->im_start);
        put(&b, "assistant\n");
    }
    *out = b.data;
    return 0;
}

int mimo_chat_stop_ids(const mimo_chat_format *f, const mimo_tokenizer *t, int32_t *ids, int max_ids)
{
    const char *names[] = {f->eos, f->im_end, "<|endoftext|>"};
    int n = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (!*names[k])
            continue;
        int32_t id = mimo_tokenizer_token_id(t, names[k]);
        bool seen = false;
        for (int j = 0; j < n; j++)
            seen |= ids[j] == id;
        if (id >= 0 && !seen && n < max_ids)
            ids[n++] = id;
    }
    return n;
}
