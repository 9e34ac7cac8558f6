/* Typed reads of config.json keys (target and drafter configs) that name the file and the key at fault. */
#ifndef MIMO_JSON_CONFIG_H
#define MIMO_JSON_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "mimo/error.h"

typedef struct {
    const char *path;   /* the file, for messages */
    mimo_error *err;
} mimo_json_ctx;

/* A key present with a non-null value, else NULL (obj may be NULL). */
json_t *mimo_json_get(json_t *obj, const char *key);
int mimo_json_fail_missing(const mimo_json_ctx *c, const char *key);
int mimo_json_fail_type(const mimo_json_ctx *c, const char *key, const char *want);

/* Integers accept integral reals (2.0); booleans accept 0/1. opt_* leave def where the key is absent. */
int mimo_json_read_int(const mimo_json_ctx *c, json_t *v, const char *key, int *out);
int mimo_json_need_int(const mimo_json_ctx *c, json_t *obj, const char *key, int *out);
int mimo_json_opt_int(const mimo_json_ctx *c, json_t *obj, const char *key, int def, int *out);
int mimo_json_read_num(const mimo_json_ctx *c, json_t *v, const char *key, double *out);
int mimo_json_opt_num(const mimo_json_ctx *c, json_t *obj, const char *key, double def, double *out);
int mimo_json_opt_bool(const mimo_json_ctx *c, json_t *obj, const char *key, bool def, bool *out);
int mimo_json_opt_str(const mimo_json_ctx *c, json_t *obj, const char *key, const char *def, char *out, size_t n);

#endif
