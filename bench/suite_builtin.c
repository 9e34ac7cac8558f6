/* The built-in suites: <workloads dir>/NAME.jsonl, written for this project. */
#include "suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MIMO_SOURCE_DIR
#define MIMO_SOURCE_DIR "."
#endif

const char *const mimo_builtin_suites[] = {"coding", "math", "agent", "chat", NULL};

const char *mimo_suite_workloads_dir(void)
{
    const char *env = getenv("MIMO_WORKLOADS_DIR");
    return env && *env ? env : MIMO_SOURCE_DIR "/workloads";
}

int mimo_suite_load_builtin(const char *name, mimo_suite *out, mimo_error *err)
{
    memset(out, 0, sizeof *out);
    bool known = false;
    for (int i = 0; mimo_builtin_suites[i]; i++)
        known |= !strcmp(name, mimo_builtin_suites[i]);
    if (!known)
        return mimo_fail(err, "unknown suite '%s' (built-in suites: coding, math, agent, chat; use --suite-file for "
                              "others)",
                         name);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.jsonl", mimo_suite_workloads_dir(), name);
    return mimo_suite_load_named(path, name, out, err);
}

int mimo_suite_load_builtin_list(const char *names, mimo_suite *out, mimo_error *err)
{
    memset(out, 0, sizeof *out);
    char *list = mimo_xstrdup(names), *save = NULL;
    int rc = 0;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        while (*name == ' ')
            name++;
        for (size_t n = strlen(name); n > 0 && name[n - 1] == ' '; n--)
            name[n - 1] = '\0';
        mimo_suite one;
        if (mimo_suite_load_builtin(name, &one, err)) {
            rc = -1;
            break;
        }
        out->records = mimo_xrealloc(out->records, (size_t)(out->n_records + one.n_records) * sizeof *out->records);
        memcpy(out->records + out->n_records, one.records, (size_t)one.n_records * sizeof *one.records);
        out->n_records += one.n_records;
        free(one.records);   /* the records themselves moved into out */
        one.records = NULL;
        one.n_records = 0;
        if (!out->path) {
            out->path = mimo_xstrdup(one.path);
            out->format = mimo_xstrdup(one.format);
        }
        mimo_suite_free(&one);
    }
    free(list);
    if (!rc && out->n_records == 0)
        rc = mimo_fail(err, "no suite named in '%s'", names);
    if (rc) {
        mimo_suite_free(out);
        return -1;
    }
    out->name = mimo_xstrdup(names);
    return 0;
}
