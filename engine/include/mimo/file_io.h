/* Reading small text files (configs, JSON) whole, with one error style. */
#ifndef MIMO_FILE_IO_H
#define MIMO_FILE_IO_H

#include <stddef.h>
#include "mimo/error.h"

/* Reads path into a NUL-terminated malloc'd buffer (*len bytes, not counting the NUL). Refuses a file
 * over max_bytes, a directory, or an unreadable one, with a message naming path and the reason. */
int mimo_read_text_file(const char *path, size_t max_bytes, char **text, size_t *len, mimo_error *err);

#endif
