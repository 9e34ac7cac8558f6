/* Hugging Face tokenizer.json (byte-level BPE, Qwen/MiMo style): encode and decode. */
#ifndef MIMO_TOKENIZER_H
#define MIMO_TOKENIZER_H

#include "mimo/error.h"

/* Writes a valid byte-level BPE tokenizer.json with exactly vocab_size ids (256 byte tokens,
 * merges, and the chat special tokens at the top), for synthetic presets. */
int mimo_tokenizer_write_synthetic(int vocab_size, const char *path, mimo_error *err);

#endif
