/* Loading tokenizer.json: checks that every stage is one this library implements (and says
 * which one is not), then builds the vocab, merge table and added-token index. */
#include "tokenizer_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

/* The pattern of ByteLevel(use_regex=true): GPT-2's. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char *type_of(const json_t *stage)
{
    const char *type = json_string_value(json_object_get(stage, "type"));
    return type ? type : "(no type)";
}

static bool is_false_or_absent(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return !v || json_is_null(v) || json_is_false(v);
}

static bool is_empty_string_or_absent(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return !v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0);
}

static int check_normalizer(mimo_tokenizer *t, const json_t *n, const char *path, mimo_error *err)
{
    if (!n || json_is_null(n)) {
        t->normalizer = NORMALIZER_NONE;
        return 0;
    }
    const char *type = type_of(n);
    if (!strcmp(type, "NFC")) {
        t->normalizer = NORMALIZER_NFC;
        return 0;
    }
    if (!strcmp(type, "Sequence")) {
        const json_t *list = json_object_get(n, "normalizers");
        size_t i;
        const json_t *item;
        if (!json_is_array(list))
            return mimo_fail(err, "%s: normalizer.normalizers is not an array", path);
        if (json_array_size(list) > 1)
            return mimo_fail(err, "%s: normalizer Sequence of %zu normalizers is not supported (only one NFC)",
                             path, json_array_size(list));
        json_array_foreach(list, i, item)
            if (check_normalizer(t, item, path, err))
                return -1;
        return 0;
    }
    return mimo_fail(err, "%s: normalizer type '%s' is not supported (supported: NFC or none)", path, type);
}

static int check_byte_level(const json_t *b, const char *what, const char *path, mimo_error *err)
{
    if (!is_false_or_absent(b, "add_prefix_space"))
        return mimo_fail(err, "%s: %s ByteLevel add_prefix_space=true is not supported", path, what);
    return 0;
}

/* Regex of a Split stage; malloc'd. */
static char *split_pattern(const json_t *split, const char *path, mimo_error *err)
{
    const char *behavior = json_string_value(json_object_get(split, "behavior"));
    if (!behavior || strcmp(behavior, "Isolated")) {
        mimo_fail(err, "%s: pre_tokenizer Split behavior '%s' is not supported (only Isolated)", path,
                  behavior ? behavior : "(missing)");
        return NULL;
    }
    if (!is_false_or_absent(split, "invert")) {
        mimo_fail(err, "%s: pre_tokenizer Split invert=true is not supported", path);
        return NULL;
    }
    const json_t *pattern = json_object_get(split, "pattern");
    const char *regex = json_string_value(json_object_get(pattern, "Regex"));
    if (regex)
        return mimo_xstrdup(regex);
    const char *literal = json_string_value(json_object_get(pattern, "String"));
    if (literal && !strstr(literal, "\\E")) {
        char *quoted = mimo_xmalloc(strlen(literal) + 5);
        strcpy(quoted, "\\Q");
        strcat(quoted, literal);
        strcat(quoted, "\\E");
        return quoted;
    }
    mimo_fail(err, "%s: pre_tokenizer Split pattern is neither {\"Regex\": ...} nor {\"String\": ...}", path);
    return NULL;
}

static int load_pre_tokenizer(mimo_tokenizer *t, const json_t *p, const char *path, mimo_error *err)
{
    if (!p || json_is_null(p))
        return mimo_fail(err, "%s: pre_tokenizer is missing (a ByteLevel pre-tokenizer is required)", path);
    char *pattern = NULL;
    bool byte_level = false;
    const json_t *stages = p;
    json_t *single = NULL;
    if (strcmp(type_of(p), "Sequence")) {
        single = json_array();
        json_array_append(single, (json_t *)p);
        stages = single;
    } else {
        stages = json_object_get(p, "pretokenizers");
        if (!json_is_array(stages))
            return mimo_fail(err, "%s: pre_tokenizer.pretokenizers is not an array", path);
    }
    size_t i;
    const json_t *stage;
    int rc = 0;
    json_array_foreach(stages, i, stage) {
        const char *type = type_of(stage);
        if (!strcmp(type, "Split")) {
            if (pattern || byte_level) {
                rc = mimo_fail(err, "%s: pre_tokenizer with a Split after another split stage is not supported", path);
                break;
            }
            if (!(pattern = split_pattern(stage, path, err))) {
                rc = -1;
                break;
            }
        } else if (!strcmp(type, "ByteLevel")) {
            if (byte_level || check_byte_level(stage, "pre_tokenizer", path, err)) {
                rc = byte_level ? mimo_fail(err, "%s: pre_tokenizer has two ByteLevel stages", path) : -1;
                break;
            }
            byte_level = true;
            const json_t *use_regex = json_object_get(stage, "use_regex");
            if (!use_regex || json_is_true(use_regex)) {   /* HF's default is true */
                if (pattern) {
                    rc = mimo_fail(err, "%s: pre_tokenizer Split followed by ByteLevel(use_regex=true) is not supported",
                                   path);
                    break;
                }
                pattern = mimo_xstrdup(gpt2_pattern);
            }
        } else {
            rc = mimo_fail(err, "%s: pre_tokenizer type '%s' is not supported (supported: Split, ByteLevel)", path,
                           type);
            break;
        }
    }
    json_decref(single);
    if (!rc && !byte_level)
        rc = mimo_fail(err, "%s: pre_tokenizer has no ByteLevel stage (only byte-level BPE is supported)", path);
    if (!rc && !pattern)
        rc = mimo_fail(err, "%s: pre_tokenizer has no splitting regex (Split or ByteLevel use_regex)", path);
    if (!rc && pretokenizer_init(&t->pre, pattern, err))
        rc = mimo_fail_prefix(err, "%s", path);
    free(pattern);
    return rc;
}

static int check_decoder(const json_t *d, const char *path, mimo_error *err)
{
    if (!d || json_is_null(d))
        return mimo_fail(err, "%s: decoder is missing (a ByteLevel decoder is required)", path);
    if (strcmp(type_of(d), "ByteLevel"))
        return mimo_fail(err, "%s: decoder type '%s' is not supported (only ByteLevel)", path, type_of(d));
    return 0;
}

static int check_model(const json_t *m, const char *path, mimo_error *err)
{
    if (!json_is_object(m))
        return mimo_fail(err, "%s: model is missing", path);
    const char *type = json_string_value(json_object_get(m, "type"));
    if (type && strcmp(type, "BPE"))
        return mimo_fail(err, "%s: model type '%s' is not supported (only BPE)", path, type);
    if (!type && !json_object_get(m, "merges"))
        return mimo_fail(err, "%s: model has no type and no merges (only BPE is supported)", path);
    const json_t *dropout = json_object_get(m, "dropout");
    if (dropout && !json_is_null(dropout) && json_number_value(dropout) != 0.0)
        return mimo_fail(err, "%s: model.dropout is not supported", path);
    if (!is_empty_string_or_absent(m, "continuing_subword_prefix"))
        return mimo_fail(err, "%s: model.continuing_subword_prefix is not supported", path);
    if (!is_empty_string_or_absent(m, "end_of_word_suffix"))
        return mimo_fail(err, "%s: model.end_of_word_suffix is not supported", path);
    if (!is_false_or_absent(m, "byte_fallback"))
        return mimo_fail(err, "%s: model.byte_fallback=true is not supported", path);
    if (!is_false_or_absent(m, "ignore_merges"))
        return mimo_fail(err, "%s: model.ignore_merges=true is not supported", path);
    if (!json_is_object(json_object_get(m, "vocab")))
        return mimo_fail(err, "%s: model.vocab is missing or not an object", path);
    if (!json_is_array(json_object_get(m, "merges")))
        return mimo_fail(err, "%s: model.merges is missing or not an array", path);
    return 0;
}

/* Raw bytes of a byte-level string (buffer malloc'd by the caller, >= len). */
static long raw_bytes(const char *s, size_t len, char *buf)
{
    return byte_level_to_bytes(s, len, buf);
}

static int load_vocab(mimo_tokenizer *t, const json_t *vocab, const char *path, mimo_error *err, int32_t *max_id)
{
    bytes_map_init(&t->bpe.vocab, json_object_size(vocab));
    const char *key;
    const json_t *value;
    char *buf = NULL;
    size_t buf_cap = 0;
    json_object_foreach((json_t *)vocab, key, value) {
        json_int_t id = json_integer_value(value);
        if (!json_is_integer(value) || id < 0 || id >= (1 << 24)) {
            free(buf);
            return mimo_fail(err, "%s: model.vocab[\"%s\"] is not an id in [0, 16777216)", path, key);
        }
        size_t len = strlen(key);
        if (len + 1 > buf_cap)
            buf = mimo_xrealloc(buf, buf_cap = len * 2 + 16);
        long n = raw_bytes(key, len, buf);
        if (n < 0) {
            free(buf);
            return mimo_fail(err, "%s: model.vocab[\"%s\"] is not byte-level text (only byte-level BPE is supported)",
                             path, key);
        }
        bytes_map_put(&t->bpe.vocab, buf, (size_t)n, (int32_t)id);
        if ((int32_t)id > *max_id)
            *max_id = (int32_t)id;
    }
    free(buf);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->bpe.byte_ids[b] = bytes_map_get(&t->bpe.vocab, &c, 1);
        if (t->bpe.byte_ids[b] < 0)
            return mimo_fail(err, "%s: model.vocab has no token for byte 0x%02X (every byte needs one)", path, b);
    }
    return 0;
}

static int load_merges(mimo_tokenizer *t, const json_t *merges, const char *path, mimo_error *err)
{
    merge_table_init(&t->bpe.merges, json_array_size(merges));
    size_t i;
    const json_t *merge;
    char *buf = NULL;
    size_t buf_cap = 0;
    int rc = 0;
    json_array_foreach(merges, i, merge) {
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(merge)) {   /* "a b" */
            a = json_string_value(merge);
            const char *space = strchr(a, ' ');
            if (!space || strchr(space + 1, ' ')) {
                rc = mimo_fail(err, "%s: model.merges[%zu] is not \"left right\"", path, i);
                break;
            }
            la = (size_t)(space - a);
            b = space + 1;
            lb = strlen(b);
        } else if (json_is_array(merge) && json_array_size(merge) == 2 &&
                   json_is_string(json_array_get(merge, 0)) && json_is_string(json_array_get(merge, 1))) {
            a = json_string_value(json_array_get(merge, 0));
            b = json_string_value(json_array_get(merge, 1));
            la = json_string_length(json_array_get(merge, 0));
            lb = json_string_length(json_array_get(merge, 1));
        } else {
            rc = mimo_fail(err, "%s: model.merges[%zu] is neither \"left right\" nor [left, right]", path, i);
            break;
        }
        if (la + lb + 1 > buf_cap)
            buf = mimo_xrealloc(buf, buf_cap = (la + lb) * 2 + 16);
        long na = raw_bytes(a, la, buf), nb = na < 0 ? -1 : raw_bytes(b, lb, buf + na);
        int32_t left = na < 0 ? -1 : bytes_map_get(&t->bpe.vocab, buf, (size_t)na);
        int32_t right = nb < 0 ? -1 : bytes_map_get(&t->bpe.vocab, buf + na, (size_t)nb);
        int32_t merged = left < 0 || right < 0 ? -1 : bytes_map_get(&t->bpe.vocab, buf, (size_t)(na + nb));
        if (merged < 0) {
            rc = mimo_fail(err, "%s: model.merges[%zu] (\"%.*s\" + \"%.*s\") uses or makes a token not in model.vocab",
                           path, i, (int)la, a, (int)lb, b);
            break;
        }
        merge_table_put(&t->bpe.merges, left, right, (int32_t)i, merged);
    }
    free(buf);
    return rc;
}

static int load_added_tokens(mimo_tokenizer *t, const json_t *list, const char *path, mimo_error *err,
                             int32_t *max_id)
{
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return mimo_fail(err, "%s: added_tokens is not an array", path);
    t->added.tokens = mimo_xcalloc(json_array_size(list) + 1, sizeof *t->added.tokens);
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item) {
        const json_t *content = json_object_get(item, "content"), *id = json_object_get(item, "id");
        if (!json_is_string(content) || !json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= (1 << 24))
            return mimo_fail(err, "%s: added_tokens[%zu] lacks a string content or an id in [0, 16777216)", path, i);
        if (json_is_true(json_object_get(item, "single_word")))
            return mimo_fail(err, "%s: added_tokens[%zu] single_word=true is not supported", path, i);
        if (json_string_length(content) == 0)
            return mimo_fail(err, "%s: added_tokens[%zu] has empty content", path, i);
        added_token *a = &t->added.tokens[t->added.n++];
        a->len = json_string_length(content);
        a->content = mimo_xmalloc(a->len + 1);
        memcpy(a->content, json_string_value(content), a->len + 1);
        a->id = (int32_t)json_integer_value(id);
        a->special = json_is_true(json_object_get(item, "special"));
        a->lstrip = json_is_true(json_object_get(item, "lstrip"));
        a->rstrip = json_is_true(json_object_get(item, "rstrip"));
        /* HF's default for "normalized" is !special. */
        const json_t *normalized = json_object_get(item, "normalized");
        a->normalized = normalized ? json_is_true(normalized) : !a->special;
        if (a->id > *max_id)
            *max_id = a->id;
    }
    added_vocab_index(&t->added);
    return 0;
}

/* The bytes every id decodes to. BPE tokens: their raw bytes. Added tokens: the ByteLevel
 * decoder's rule: if every character is a byte-level character, the bytes they stand for,
 * otherwise the content's own UTF-8. */
static void build_id_table(mimo_tokenizer *t)
{
    t->id_bytes = mimo_xcalloc((size_t)t->vocab_size, sizeof *t->id_bytes);
    t->id_len = mimo_xcalloc((size_t)t->vocab_size, sizeof *t->id_len);
    t->id_special = mimo_xcalloc((size_t)t->vocab_size, 1);
    const bytes_map *v = &t->bpe.vocab;
    for (size_t i = 0; i < v->cap; i++) {
        if (!v->keys[i])
            continue;
        int32_t id = v->values[i];
        free(t->id_bytes[id]);
        t->id_bytes[id] = mimo_xmalloc(v->key_lens[i] + 1);
        memcpy(t->id_bytes[id], v->keys[i], v->key_lens[i] + 1);
        t->id_len[id] = v->key_lens[i];
    }
    for (int i = 0; i < t->added.n; i++) {
        const added_token *a = &t->added.tokens[i];
        char *bytes = mimo_xmalloc(a->len + 1);
        long n = byte_level_to_bytes(a->content, a->len, bytes);
        if (n < 0) {
            memcpy(bytes, a->content, a->len);
            n = (long)a->len;
        }
        bytes[n] = '\0';
        free(t->id_bytes[a->id]);
        t->id_bytes[a->id] = bytes;
        t->id_len[a->id] = (uint32_t)n;
        t->id_special[a->id] = a->special;
    }
}

mimo_tokenizer *mimo_tokenizer_load(const char *path_or_dir, mimo_error *err)
{
    struct stat st;
    char dir_path[4096];
    const char *path = path_or_dir;
    if (stat(path_or_dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(dir_path, sizeof dir_path, "%s/tokenizer.json", path_or_dir);
        path = dir_path;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        if (jerr.line < 0)   /* not opened: jansson's text names the file and the reason */
            mimo_fail(err, "%s", jerr.text);
        else
            mimo_fail(err, "%s: line %d: %s", path, jerr.line, jerr.text);
        return NULL;
    }
    mimo_tokenizer *t = mimo_xcalloc(1, sizeof *t);
    t->path = mimo_xstrdup(path);
    int32_t max_id = -1;
    const json_t *model = json_object_get(root, "model");
    int rc = json_is_object(root) ? 0 : mimo_fail(err, "%s: not a JSON object", path);
    if (!rc)
        rc = check_model(model, path, err);
    if (!rc)
        rc = check_normalizer(t, json_object_get(root, "normalizer"), path, err);
    if (!rc)
        rc = check_decoder(json_object_get(root, "decoder"), path, err);
    if (!rc)
        rc = load_pre_tokenizer(t, json_object_get(root, "pre_tokenizer"), path, err);
    if (!rc)
        rc = load_vocab(t, json_object_get(model, "vocab"), path, err, &max_id);
    if (!rc)
        rc = load_merges(t, json_object_get(model, "merges"), path, err);
    if (!rc)
        rc = load_added_tokens(t, json_object_get(root, "added_tokens"), path, err, &max_id);
    json_decref(root);
    if (rc) {
        mimo_tokenizer_free(t);
        return NULL;
    }
    t->vocab_size = max_id + 1;
    build_id_table(t);
    return t;
}
