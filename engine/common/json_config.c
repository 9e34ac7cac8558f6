#include "mimo/json_config.h"

#include <math.h>
#include <string.h>

/* A key present with a non-null value, else NULL. */
json_t *mimo_json_get(json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return (v && !json_is_null(v)) ? v : NULL;
}

int mimo_json_fail_missing(const mimo_json_ctx *p, const char *key)
{
    return mimo_fail(p->err, "%s: missing key '%s'", p->path, key);
}

int mimo_json_fail_type(const mimo_json_ctx *p, const char *key, const char *want)
{
    return mimo_fail(p->err, "%s: key '%s' must be %s", p->path, key, want);
}

int mimo_json_read_int(const mimo_json_ctx *p, json_t *v, const char *key, int *out)
{
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v))
        d = json_real_value(v);
    else
        return mimo_json_fail_type(p, key, "an integer");
    if (d < -2147483647.0 || d > 2147483647.0)
        return mimo_fail(p->err, "%s: key '%s' is out of range", p->path, key);
    *out = (int)d;
    return 0;
}

int mimo_json_need_int(const mimo_json_ctx *p, json_t *obj, const char *key, int *out)
{
    json_t *v = mimo_json_get(obj, key);
    if (!v)
        return mimo_json_fail_missing(p, key);
    return mimo_json_read_int(p, v, key, out);
}

int mimo_json_opt_int(const mimo_json_ctx *p, json_t *obj, const char *key, int def, int *out)
{
    json_t *v = mimo_json_get(obj, key);
    if (!v) {
        *out = def;
        return 0;
    }
    return mimo_json_read_int(p, v, key, out);
}

int mimo_json_read_num(const mimo_json_ctx *p, json_t *v, const char *key, double *out)
{
    if (!json_is_number(v))
        return mimo_json_fail_type(p, key, "a number");
    *out = json_number_value(v);
    if (!isfinite(*out))
        return mimo_json_fail_type(p, key, "a finite number");
    return 0;
}

int mimo_json_opt_num(const mimo_json_ctx *p, json_t *obj, const char *key, double def, double *out)
{
    json_t *v = mimo_json_get(obj, key);
    if (!v) {
        *out = def;
        return 0;
    }
    return mimo_json_read_num(p, v, key, out);
}

int mimo_json_opt_bool(const mimo_json_ctx *p, json_t *obj, const char *key, bool def, bool *out)
{
    json_t *v = mimo_json_get(obj, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (json_is_boolean(v))
        *out = json_is_true(v);
    else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
        *out = json_integer_value(v) == 1;
    else
        return mimo_json_fail_type(p, key, "a boolean");
    return 0;
}

int mimo_json_opt_str(const mimo_json_ctx *p, json_t *obj, const char *key, const char *def, char *out, size_t n)
{
    json_t *v = mimo_json_get(obj, key);
    const char *s = def;
    if (v) {
        if (!json_is_string(v))
            return mimo_json_fail_type(p, key, "a string");
        s = json_string_value(v);
    }
    if (strlen(s) >= n)
        return mimo_fail(p->err, "%s: key '%s' is too long", p->path, key);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

