/* Workload suites: the built-in ones in <source>/workloads/NAME.jsonl and public sets detected from
 * their fields (workloads/README.md documents every shape).
 *
 * A record is a conversation script: turns[] in order, each turn a list of messages. A plain string
 * turn is one user message. Agent records carry tool schemas (tools_json) and may script
 * assistant tool calls and tool results inside their turns. */
#ifndef MIMO_BENCH_SUITE_H
#define MIMO_BENCH_SUITE_H

#include <stdbool.h>

#include "mimo/chat.h"
#include "mimo/error.h"

typedef struct {
    char *role;        /* "system", "user", "assistant" or "tool" */
    char *content;
} mimo_suite_message;

typedef struct {
    mimo_suite_message *messages;
    int n_messages;
} mimo_suite_turn;

typedef struct {
    char *suite;       /* suite name: built-in name, or the file's format ("humaneval", "gsm8k", ...) */
    char *id;          /* question_id / task_id / id, or "<file>:<line>" when the format has none */
    char *category;    /* coding | math | agent | chat (public sets' own categories are mapped) */
    char *subcategory; /* the record's own category when it differs (MT-Bench "roleplay"), or NULL */
    mimo_suite_turn *turns;
    int n_turns;
    char *tools_json;  /* JSON array of tool schemas, or NULL */
} mimo_suite_record;

typedef struct {
    char *name;        /* built-in suite name or the detected format */
    char *path;        /* the file it was read from */
    char *format;      /* "suite" (MT-Bench/Spec-Bench shape), "humaneval", "mbpp", "gsm8k",
                          "math" (MATH-500/AIME), "bfcl" */
    mimo_suite_record *records;
    int n_records;
} mimo_suite;

/* The built-in suite names, NULL-terminated: coding, math, agent, chat. */
extern const char *const mimo_builtin_suites[];

/* $MIMO_WORKLOADS_DIR if set, else <source dir>/workloads. */
const char *mimo_suite_workloads_dir(void);

/* Loads <workloads dir>/<name>.jsonl. An unknown name is an error that lists the known ones. */
int mimo_suite_load_builtin(const char *name, mimo_suite *out, mimo_error *err);

/* Loads a JSONL file or a JSON array file, detecting the format from the first record's fields.
 * A malformed line or record is an error naming the file and line. */
int mimo_suite_load_file(const char *path, mimo_suite *out, mimo_error *err);

/* mimo_suite_load_file with the records' suite name set to suite_name (NULL: the format). */
int mimo_suite_load_named(const char *path, const char *suite_name, mimo_suite *out, mimo_error *err);

/* "coding,math" -> the built-in suites concatenated into one (name = the list). */
int mimo_suite_load_builtin_list(const char *names, mimo_suite *out, mimo_error *err);

void mimo_suite_free(mimo_suite *s);

/* The chat messages of the first n_turns turns of a record (n_turns <= 0 or > n_turns: all).
 * For benchmarking, the prompt is the first turn (n_turns = 1). Between scripted turns, when a
 * turn ends with a user/tool message and the next one starts with a user message, replies[k]
 * (the model's reply after turn k, may be NULL or contain NULLs) is inserted as the assistant
 * message; without a reply none is inserted. The array points into the record (and replies) and
 * is malloc'd; free only the array. */
int mimo_suite_messages(const mimo_suite_record *r, int n_turns, const char *const *replies,
                        mimo_chat_message **messages, int *n_messages);

/* mimo_suite_messages + mimo_chat_render with the record's tools and the assistant turn opened. */
int mimo_suite_render_prompt(const mimo_suite_record *r, const mimo_chat_format *f, int n_turns,
                             char **prompt, mimo_error *err);

#endif
