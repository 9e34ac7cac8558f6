/* GPT-2 byte-level mapping: every byte stands for a printable code point, so byte-level BPE
 * vocabularies are written as text. The tokenizer works on raw bytes internally and converts the
 * vocabulary once at load time. */
#include "tokenizer_internal.h"

#include <pthread.h>

static bool byte_is_printable_self(unsigned b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static uint32_t byte_level_char_slow(unsigned b)
{
    if (byte_is_printable_self(b))
        return b;
    /* The others get 256, 257, ... in byte order. */
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!byte_is_printable_self(c))
            n++;
    return 256 + n;
}

/* Both directions as tables, built once (pthread_once: tokenizers may load on several threads). */
static uint32_t byte_to_char[256];
static int16_t char_to_byte[324];   /* code points 0..323 (256 + 68 remapped bytes); -1 = none */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (int i = 0; i < 324; i++)
        char_to_byte[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        byte_to_char[b] = byte_level_char_slow(b);
        char_to_byte[byte_to_char[b]] = (int16_t)b;
    }
}

uint32_t byte_level_char(uint8_t b)
{
    pthread_once(&tables_once, build_tables);
    return byte_to_char[b];
}

long byte_level_to_bytes(const char *s, size_t len, char *out)
{
    pthread_once(&tables_once, build_tables);
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, n = 0;
    while (i < len) {
        uint32_t cp;
        if (p[i] < 0x80) {
            cp = p[i];
            i += 1;
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < len && (p[i + 1] & 0xC0) == 0x80) {
            cp = ((uint32_t)(p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1;   /* byte-level chars are all below U+0800 */
        }
        if (cp >= 324 || char_to_byte[cp] < 0)
            return -1;
        out[n++] = (char)char_to_byte[cp];
    }
    return (long)n;
}

size_t bytes_to_byte_level(const char *bytes, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = byte_level_char((uint8_t)bytes[i]);
        if (cp < 0x80) {
            out[n++] = (char)cp;
        } else {
            out[n++] = (char)(0xC0 | (cp >> 6));
            out[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return n;
}
