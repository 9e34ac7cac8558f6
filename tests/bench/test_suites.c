/* Suites: the built-in ones, every public loader on its shared file (counts from SOURCES.md),
 * malformed input naming file and line, and prompts built from records. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/tokenizer.h"
#include "suite.h"
#include "support.h"

Test(suites, builtin_suites_parse_with_at_least_30_records)
{
    mimo_chat_format f;
    mimo_chat_format_default(&f);
    for (int s = 0; mimo_builtin_suites[s]; s++) {
        mimo_suite suite;
        mimo_error err = {{0}};
        cr_assert_eq(mimo_suite_load_builtin(mimo_builtin_suites[s], &suite, &err), 0, "%s", err.msg);
        cr_assert_geq(suite.n_records, 30, "%s has %d records", mimo_builtin_suites[s], suite.n_records);
        cr_assert_str_eq(suite.format, "suite");
        for (int r = 0; r < suite.n_records; r++) {
            const mimo_suite_record *rec = &suite.records[r];
            cr_assert_str_eq(rec->category, mimo_builtin_suites[s], "%s record %s", mimo_builtin_suites[s], rec->id);
            cr_assert_str_eq(rec->suite, mimo_builtin_suites[s]);
            cr_assert_gt(rec->n_turns, 0);
            cr_assert_str_eq(rec->turns[0].messages[0].role, "user", "%s: the first turn starts with the user", rec->id);
            for (int k = 0; k < r; k++)
                cr_assert_str_neq(rec->id, suite.records[k].id, "duplicate id %s", rec->id);
            if (!strcmp(mimo_builtin_suites[s], "agent"))
                cr_assert_not_null(rec->tools_json, "agent record %s has no tools", rec->id);
            char *prompt;
            cr_assert_eq(mimo_suite_render_prompt(rec, &f, 1, &prompt, &err), 0, "%s", err.msg);
            cr_assert(strstr(prompt, rec->turns[0].messages[0].content), "prompt of %s lacks its first turn", rec->id);
            const char *tail = "<|im_start|>assistant\n";
            cr_assert_str_eq(prompt + strlen(prompt) - strlen(tail), tail);
            free(prompt);
        }
        mimo_suite_free(&suite);
    }
}

Test(suites, builtin_prompt_lengths_vary_from_short_to_hundreds_of_tokens)
{
    const char *shared = mimo_test_shared_dir();
    if (!shared)
        cr_skip_test("../shared is absent: no tokenizer to count tokens");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/qwen3/tokenizer.json", shared);
    mimo_error err = {{0}};
    mimo_tokenizer *t = mimo_tokenizer_load(path, &err);
    cr_assert_not_null(t, "%s", err.msg);
    mimo_chat_format f;
    mimo_chat_format_default(&f);
    for (int s = 0; mimo_builtin_suites[s]; s++) {
        mimo_suite suite;
        cr_assert_eq(mimo_suite_load_builtin(mimo_builtin_suites[s], &suite, &err), 0, "%s", err.msg);
        /* Shortest: the first user message alone (agent prompts all carry ~150 tokens of tool
         * boilerplate). Longest: the whole rendered conversation. */
        int shortest = 1 << 30, longest = 0;
        for (int r = 0; r < suite.n_records; r++) {
            char *prompt;
            cr_assert_eq(mimo_suite_render_prompt(&suite.records[r], &f, 0, &prompt, &err), 0, "%s", err.msg);
            int32_t *ids;
            int n;
            cr_assert_eq(mimo_tokenizer_encode(t, prompt, strlen(prompt), &ids, &n, &err), 0, "%s", err.msg);
            longest = n > longest ? n : longest;
            free(ids);
            free(prompt);
            const char *first = suite.records[r].turns[0].messages[0].content;
            cr_assert_eq(mimo_tokenizer_encode(t, first, strlen(first), &ids, &n, &err), 0, "%s", err.msg);
            shortest = n < shortest ? n : shortest;
            free(ids);
        }
        cr_assert_lt(shortest, 60, "%s: shortest prompt has %d tokens", mimo_builtin_suites[s], shortest);
        cr_assert_gt(longest, 200, "%s: longest prompt has %d tokens", mimo_builtin_suites[s], longest);
        mimo_suite_free(&suite);
    }
    mimo_tokenizer_free(t);
}

Test(suites, builtin_list_and_unknown_name)
{
    mimo_suite both, coding, math;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_suite_load_builtin("coding", &coding, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_suite_load_builtin("math", &math, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_suite_load_builtin_list("coding, math", &both, &err), 0, "%s", err.msg);
    cr_assert_eq(both.n_records, coding.n_records + math.n_records);
    cr_assert_str_eq(both.records[coding.n_records].category, "math");
    mimo_suite_free(&both);
    mimo_suite_free(&coding);
    mimo_suite_free(&math);
    cr_assert_eq(mimo_suite_load_builtin("poetry", &both, &err), -1);
    cr_assert(strstr(err.msg, "poetry") && strstr(err.msg, "coding"), "%s", err.msg);
    cr_assert_eq(mimo_suite_load_builtin_list("coding,nope", &both, &err), -1);
    cr_assert(strstr(err.msg, "nope"), "%s", err.msg);
}

Test(suites, workloads_dir_env_overrides_the_source_dir)
{
    char *dir = mimo_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/chat.jsonl", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"question_id\": 7, \"category\": \"chat\", \"turns\": [\"only one\"]}\n");
    fclose(f);
    setenv("MIMO_WORKLOADS_DIR", dir, 1);
    cr_assert_str_eq(mimo_suite_workloads_dir(), dir);
    mimo_suite s;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_suite_load_builtin("chat", &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.n_records, 1);
    cr_assert_str_eq(s.records[0].id, "7");
    mimo_suite_free(&s);
    unsetenv("MIMO_WORKLOADS_DIR");
    mimo_test_rmtree(dir);
    free(dir);
}

/* ---- public formats on the shared copies ---- */

static void load_shared(const char *rel, mimo_suite *s)
{
    const char *shared = mimo_test_shared_dir();
    if (!shared)
        cr_skip_test("../shared is absent");
    char path[4096];
    snprintf(path, sizeof path, "%s/workloads/%s", shared, rel);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_suite_load_file(path, s, &err), 0, "%s", err.msg);
}

Test(suites, humaneval_164_coding_records)
{
    mimo_suite s;
    load_shared("humaneval/HumanEval.jsonl", &s);
    cr_assert_str_eq(s.format, "humaneval");
    cr_assert_eq(s.n_records, 164);
    cr_assert_str_eq(s.records[0].id, "HumanEval/0");
    cr_assert_str_eq(s.records[163].id, "HumanEval/163");
    cr_assert_str_eq(s.records[0].category, "coding");
    cr_assert(strstr(s.records[0].turns[0].messages[0].content, "def has_close_elements"));
    mimo_suite_free(&s);
}

Test(suites, gsm8k_1319_math_records)
{
    mimo_suite s;
    load_shared("gsm8k/test.jsonl", &s);
    cr_assert_str_eq(s.format, "gsm8k");
    cr_assert_eq(s.n_records, 1319);
    cr_assert_str_eq(s.records[0].category, "math");
    cr_assert_str_eq(s.records[0].id, "test.jsonl:1", "no id field: file:line stands in");
    cr_assert_str_eq(s.records[1318].id, "test.jsonl:1319");
    mimo_suite_free(&s);
}

Test(suites, mt_bench_80_two_turn_records_with_mapped_categories)
{
    mimo_suite s;
    load_shared("mt_bench/question.jsonl", &s);
    cr_assert_str_eq(s.format, "suite");
    cr_assert_eq(s.n_records, 80);
    int coding = 0, math = 0, chat = 0;
    for (int i = 0; i < s.n_records; i++) {
        cr_assert_eq(s.records[i].n_turns, 2);
        coding += !strcmp(s.records[i].category, "coding");
        math += !strcmp(s.records[i].category, "math");
        chat += !strcmp(s.records[i].category, "chat");
    }
    cr_assert_eq(coding, 10);
    cr_assert_eq(math, 10);
    cr_assert_eq(chat, 60);
    cr_assert_str_eq(s.records[0].id, "81");
    cr_assert_str_eq(s.records[0].subcategory, "writing");
    /* Turn 2 after the model's reply: user, assistant (the reply), user. */
    mimo_chat_message *m;
    int n;
    const char *replies[] = {"(model reply)"};
    mimo_suite_messages(&s.records[0], 2, replies, &m, &n);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(m[1].role, "assistant");
    cr_assert_str_eq(m[1].content, "(model reply)");
    free(m);
    mimo_suite_messages(&s.records[0], 1, NULL, &m, &n);
    cr_assert_eq(n, 1);
    free(m);
    mimo_suite_free(&s);
}

Test(suites, bfcl_jsonl_with_json_suffix_agent_records)
{
    mimo_suite s;
    load_shared("bfcl/BFCL_v4_simple_python.json", &s);
    cr_assert_str_eq(s.format, "bfcl");
    cr_assert_eq(s.n_records, 400);
    cr_assert_str_eq(s.records[0].category, "agent");
    cr_assert_not_null(s.records[0].tools_json);
    cr_assert(strstr(s.records[0].tools_json, "\"type\":\"function\""), "%s", s.records[0].tools_json);
    cr_assert_str_eq(s.records[0].turns[0].messages[0].role, "user");
    mimo_chat_format f;
    mimo_chat_format_default(&f);
    char *prompt;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_suite_render_prompt(&s.records[0], &f, 1, &prompt, &err), 0, "%s", err.msg);
    cr_assert(strstr(prompt, "<tools>"));
    free(prompt);
    mimo_suite_free(&s);
    load_shared("bfcl/BFCL_v4_multiple.json", &s);
    cr_assert_eq(s.n_records, 200);
    mimo_suite_free(&s);
}

Test(suites, answer_files_are_not_a_workload_format)
{
    const char *shared = mimo_test_shared_dir();
    if (!shared)
        cr_skip_test("../shared is absent");
    char path[4096];
    snprintf(path, sizeof path, "%s/workloads/bfcl/possible_answer/BFCL_v4_multiple.json", shared);
    mimo_suite s;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_suite_load_file(path, &s, &err), -1);
    char where[4200];
    snprintf(where, sizeof where, "%s:1:", path);
    cr_assert(strstr(err.msg, where) && strstr(err.msg, "unknown record format"), "%s", err.msg);
}

/* ---- files written here: other formats, malformed lines, JSON arrays ---- */

static char *write_temp(const char *dir, const char *name, const char *content)
{
    char *path = malloc(4200);
    snprintf(path, 4200, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(content, f);
    fclose(f);
    return path;
}

static void expect_error_at(const char *path, const char *where_suffix, const char *also)
{
    mimo_suite s;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_suite_load_file(path, &s, &err), -1, "%s loaded but should not", path);
    char where[4300];
    snprintf(where, sizeof where, "%s:%s", path, where_suffix);
    cr_assert(strstr(err.msg, where), "message '%s' does not name '%s'", err.msg, where);
    if (also)
        cr_assert(strstr(err.msg, also), "message '%s' does not say '%s'", err.msg, also);
}

Test(suites, malformed_lines_name_file_and_line)
{
    char *dir = mimo_test_tmpdir();
    char *p = write_temp(dir, "bad_json.jsonl",
                         "{\"question\": \"a?\", \"answer\": \"1\"}\n\n{\"question\": \"b?\", \"answer\": \"2\"\n");
    expect_error_at(p, "3:", "not valid JSON");
    free(p);
    p = write_temp(dir, "bad_field.jsonl",
                   "{\"question_id\": 1, \"category\": \"chat\", \"turns\": [\"hi\"]}\n"
                   "{\"question_id\": 2, \"category\": \"chat\", \"turns\": []}\n");
    expect_error_at(p, "2:", "turns");
    free(p);
    p = write_temp(dir, "mixed.jsonl", "{\"problem\": \"x\"}\n{\"foo\": 1}\n");
    expect_error_at(p, "2:", "problem");
    free(p);
    p = write_temp(dir, "not_object.jsonl", "{\"text\": \"write a function\"}\n[1, 2]\n");
    expect_error_at(p, "2:", "not a JSON object");
    free(p);
    p = write_temp(dir, "bad_role.jsonl", "{\"question_id\": 1, \"turns\": [[{\"role\": \"bot\", \"content\": \"x\"}]]}\n");
    expect_error_at(p, "1:", "role");
    free(p);
    p = write_temp(dir, "array_bad.json", "[{\"task_id\": \"T/0\", \"prompt\": \"def f():\"},\n {\"task_id\": \"T/1\"}]\n");
    expect_error_at(p, "record 2:", "prompt");
    free(p);
    p = write_temp(dir, "array_syntax.json", "[{\"problem\": \"x\"},\n\n {\"problem\": }]\n");
    expect_error_at(p, "3:", "not valid JSON");
    free(p);
    p = write_temp(dir, "empty.jsonl", "\n\n");
    mimo_suite s;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_suite_load_file(p, &s, &err), -1);
    cr_assert(strstr(err.msg, "no records"), "%s", err.msg);
    free(p);
    cr_assert_eq(mimo_suite_load_file("/nonexistent/suite.jsonl", &s, &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent/suite.jsonl"), "%s", err.msg);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(suites, json_array_files_and_the_small_formats)
{
    char *dir = mimo_test_tmpdir();
    char *p = write_temp(dir, "math500.json",
                         "[{\"problem\": \"What is 1+1?\", \"unique_id\": \"test/algebra/1.json\"},"
                         " {\"problem\": \"Find x.\", \"answer\": \"3\"}]");
    mimo_suite s;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_suite_load_file(p, &s, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s.format, "math");
    cr_assert_eq(s.n_records, 2);
    cr_assert_str_eq(s.records[0].id, "test/algebra/1.json");
    cr_assert_str_eq(s.records[1].id, "math500.json:record 2");
    cr_assert_str_eq(s.records[1].category, "math");
    mimo_suite_free(&s);
    free(p);
    p = write_temp(dir, "mbpp.jsonl",
                   "{\"task_id\": 11, \"text\": \"Write a function to remove a character.\", "
                   "\"test_list\": [\"assert f('a') == ''\"]}\n");
    cr_assert_eq(mimo_suite_load_file(p, &s, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s.format, "mbpp");
    cr_assert_str_eq(s.records[0].id, "11");
    cr_assert_str_eq(s.records[0].category, "coding");
    cr_assert(strstr(s.records[0].turns[0].messages[0].content, "assert f('a') == ''"));
    mimo_suite_free(&s);
    free(p);
    /* Spec-Bench style categories map onto the four. */
    p = write_temp(dir, "spec.jsonl",
                   "{\"question_id\": \"q1\", \"category\": \"math_reasoning\", \"turns\": [\"2+2?\"]}\n"
                   "{\"question_id\": \"q2\", \"category\": \"translation\", \"turns\": [\"Hola\"]}\n");
    cr_assert_eq(mimo_suite_load_file(p, &s, &err), 0, "%s", err.msg);
    cr_assert_str_eq(s.records[0].category, "math");
    cr_assert_str_eq(s.records[1].category, "chat");
    cr_assert_str_eq(s.records[1].subcategory, "translation");
    mimo_suite_free(&s);
    free(p);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(suites, agent_records_script_tool_calls_and_results)
{
    mimo_suite s;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_suite_load_builtin("agent", &s, &err), 0, "%s", err.msg);
    const mimo_suite_record *r = NULL;
    for (int i = 0; i < s.n_records && !r; i++)
        if (s.records[i].n_turns >= 2)
            r = &s.records[i];
    cr_assert_not_null(r, "no multi-turn agent record");
    cr_assert_str_eq(r->turns[1].messages[0].role, "assistant");
    cr_assert(strstr(r->turns[1].messages[0].content, "<tool_call>"));
    cr_assert_str_eq(r->turns[1].messages[r->turns[1].n_messages - 1].role, "tool");
    mimo_chat_format f;
    mimo_chat_format_default(&f);
    char *prompt;
    cr_assert_eq(mimo_suite_render_prompt(r, &f, 2, &prompt, &err), 0, "%s", err.msg);
    cr_assert(strstr(prompt, "<tool_response>\n"), "%s", prompt);
    cr_assert(strstr(prompt, "<tools>\n{\"type\": \"function\""), "%s", prompt);
    free(prompt);
    mimo_suite_free(&s);
}
