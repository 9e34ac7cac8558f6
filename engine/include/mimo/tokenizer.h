/* Hugging Face tokenizer.json (byte-level BPE, Qwen/MiMo style): encode and decode.
 *
 * Supported (anything else fails to load with a message naming the unsupported part):
 *   model         BPE (vocab + merges as "a b" strings or [a, b] pairs; no dropout, no
 *                 continuing_subword_prefix / end_of_word_suffix, byte_fallback off)
 *   added_tokens  matched before splitting, leftmost-longest (lstrip/rstrip honoured)
 *   normalizer    null or NFC (also inside a Sequence)
 *   pre_tokenizer Split(Regex, Isolated) + ByteLevel(use_regex=false), or ByteLevel(use_regex=true)
 *   decoder       ByteLevel
 * Encoding follows HF tokenizers with add_special_tokens=False (no post-processor tokens).
 * Input that is not valid UTF-8 is handled, not rejected: each invalid byte becomes its own
 * pre-token (a byte token), the valid runs around it are tokenized as usual. */
#ifndef MIMO_TOKENIZER_H
#define MIMO_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mimo/error.h"

typedef struct mimo_tokenizer mimo_tokenizer;

/* Loads a tokenizer.json; a directory (a checkpoint) means DIR/tokenizer.json. NULL on failure
 * (err names the file and the key at fault). */
mimo_tokenizer *mimo_tokenizer_load(const char *path, mimo_error *err);
void mimo_tokenizer_free(mimo_tokenizer *t);

/* text[0..len) -> *ids (malloc'd, caller frees), *n_ids. A tokenizer keeps a per-word cache, so
 * use one tokenizer from one thread at a time. Returns 0 / -1. */
int mimo_tokenizer_encode(mimo_tokenizer *t, const char *text, size_t len,
                          int32_t **ids, int *n_ids, mimo_error *err);

/* ids -> *text (malloc'd, NUL-terminated, caller frees), *len (may be NULL). Like HF decode with
 * skip_special_tokens=False: special tokens appear as their text, byte sequences that are not
 * valid UTF-8 become U+FFFD (so the result is always valid UTF-8), and ids without a token (the
 * padding rows of a model's vocab, negative ids) add nothing. Check ids with
 * mimo_tokenizer_token_bytes first where that must be an error. */
int mimo_tokenizer_decode(const mimo_tokenizer *t, const int32_t *ids, int n_ids,
                          char **text, size_t *len, mimo_error *err);

/* The raw bytes one id stands for (no U+FFFD replacement; for streaming output, where a character
 * may span tokens). NULL for an id outside the vocabulary. Valid until mimo_tokenizer_free. */
const char *mimo_tokenizer_token_bytes(const mimo_tokenizer *t, int32_t id, size_t *len);

/* One more than the largest id (BPE vocab and added tokens together). */
int mimo_tokenizer_vocab_size(const mimo_tokenizer *t);
/* The id of a token given by its text: an added/special token's content ("<|im_end|>") or a
 * vocab entry's raw bytes. -1 when absent. */
int32_t mimo_tokenizer_token_id(const mimo_tokenizer *t, const char *token);
/* Whether id is an added token marked "special": true in tokenizer.json. */
bool mimo_tokenizer_is_special(const mimo_tokenizer *t, int32_t id);

/* Writes a valid byte-level BPE tokenizer.json with exactly vocab_size ids (256 byte tokens,
 * merges, and the chat special tokens at the top), for synthetic presets.
 * vocab_size must be in [512, 1048576]: ids 0..255 are the bytes, 256..vocab_size-4 come from
 * merges learned deterministically on built-in English/code text, and the last three ids are
 * <|endoftext|>, <|im_start|>, <|im_end|>. Written atomically (temp file + rename). */
int mimo_tokenizer_write_synthetic(int vocab_size, const char *path, mimo_error *err);

#endif
