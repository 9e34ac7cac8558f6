/* Chat format (ChatML as used by Qwen and MiMo): every message becomes
 *   <|im_start|>ROLE\nCONTENT<|im_end|>\n
 * and the prompt ends with the assistant turn opened: "<|im_start|>assistant\n".
 * With tools, the system turn carries their JSON schemas (one per line inside <tools></tools>,
 * the Qwen template's wording); consecutive "tool" messages become one user turn of
 * <tool_response> blocks, as in the Qwen template. */
#ifndef MIMO_CHAT_H
#define MIMO_CHAT_H

#include <stdbool.h>
#include <stdint.h>

#include "mimo/error.h"
#include "mimo/tokenizer.h"

#define MIMO_CHAT_TOKEN_MAX 64

typedef struct {
    char im_start[MIMO_CHAT_TOKEN_MAX];   /* "<|im_start|>" */
    char im_end[MIMO_CHAT_TOKEN_MAX];     /* "<|im_end|>" */
    char bos[MIMO_CHAT_TOKEN_MAX];        /* "" when the model has none (Qwen/MiMo) */
    char eos[MIMO_CHAT_TOKEN_MAX];        /* "<|im_end|>" */
    char pad[MIMO_CHAT_TOKEN_MAX];        /* "<|endoftext|>" */
    char default_system[512];             /* system prompt used when tools are given and the
                                             messages have none; "" = none */
} mimo_chat_format;

typedef struct {
    const char *role;      /* "system", "user", "assistant" or "tool" */
    const char *content;
} mimo_chat_message;

/* The Qwen/MiMo defaults above. */
void mimo_chat_format_default(mimo_chat_format *f);

/* Defaults, then overridden by the special tokens a tokenizer_config.json names: bos_token,
 * eos_token, pad_token (string or {"content": ...}), and the chat markers when its chat_template
 * or added_tokens_decoder use "<|im_start|>"/"<|im_end|>"-style tokens. A missing file is an
 * error; missing keys keep the defaults. */
int mimo_chat_format_load(const char *tokenizer_config_path, mimo_chat_format *f, mimo_error *err);

/* For a checkpoint directory: DIR/tokenizer_config.json when it exists (see above), else the
 * defaults. */
int mimo_chat_format_for_model_dir(const char *dir, mimo_chat_format *f, mimo_error *err);

/* Renders messages (and tools_json: a JSON array of tool schemas, or NULL) into one prompt string
 * (malloc'd, caller frees). add_generation_prompt opens the assistant turn at the end. */
int mimo_chat_render(const mimo_chat_format *f, const mimo_chat_message *messages, int n_messages,
                     const char *tools_json, bool add_generation_prompt, char **out, mimo_error *err);

/* The ids that end an assistant turn: eos, im_end and pad/<|endoftext|> where the tokenizer has
 * them, deduplicated (at most max_ids). Returns how many were written. */
int mimo_chat_stop_ids(const mimo_chat_format *f, const mimo_tokenizer *t, int32_t *ids, int max_ids);

#endif
