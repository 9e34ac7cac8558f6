/* Reading results files back (compare, report): load + shape checks against HARNESS.md's skeleton,
 * configuration keys and labels, and number look-ups that treat null / absent as "no value". */
#ifndef MIMO_BENCH_RESULTS_READ_H
#define MIMO_BENCH_RESULTS_READ_H

#include "mimo/error.h"

#include <jansson.h>
#include <stdbool.h>

/* The results schema version this reader understands. */
#define MIMO_RFILE_SCHEMA_VERSION 1

/* Loads path and checks the skeleton: an object with schema_version == 1 and a configs array whose
 * entries are objects with a "config" object. On failure: -1, err names the file and what is wrong. */
int mimo_rfile_load(const char *path, json_t **out, mimo_error *err);

/* Matching key of a configuration: backend/fp4/dflash/exec/block/acceptance (mode + profile).
 * malloc'd. */
char *mimo_rfile_config_key(const json_t *config_entry);
/* Short human label, e.g. "cuda fp4=on dflash=on exec=graph B=8 acc=forced:mimo-published". malloc'd. */
char *mimo_rfile_config_label(const json_t *config_entry);
/* True when the entry's acceptance mode is "forced"; *profile gets the profile name ("?" when absent). */
bool mimo_rfile_is_forced(const json_t *config_entry, const char **profile);
/* DFlash on in this configuration. */
bool mimo_rfile_dflash(const json_t *config_entry);
/* available != false */
bool mimo_rfile_available(const json_t *config_entry, const char **reason);

/* Number at a dotted path under obj ("decode_tps.median"); NAN when absent, null or not a number. */
double mimo_rfile_num(const json_t *obj, const char *dotted);
/* Value of a config field as text ("on"/"off" for booleans, numbers printed, "-" when absent). */
void mimo_rfile_field_text(const json_t *v, char *buf, size_t size);

#endif
