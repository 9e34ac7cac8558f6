/* Chat format: hand-made cases checked against the Qwen3 template's output, written out by hand. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/chat.h"
#include "support.h"

Test(chat, system_user_and_open_assistant_turn)
{
    mimo_chat_format f;
    mimo_chat_format_default(&f);
    mimo_chat_message m[] = {{"system", "You are terse."}, {"user", "Hi!"}, {"assistant", "Hello."}, {"user", "2+2?"}};
    char *out;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_chat_render(&f, m, 4, NULL, true, &out, &err), 0, "%s", err.msg);
    cr_assert_str_eq(out, "<|im_start|>system\nYou are terse.<|im_end|>\n"
                          "<|im_start|>user\nHi!<|im_end|>\n"
                          "<|im_start|>assistant\nHello.<|im_end|>\n"
                          "<|im_start|>user\n2+2?<|im_end|>\n"
                          "<|im_start|>assistant\n");
    free(out);
    cr_assert_eq(mimo_chat_render(&f, m + 1, 1, NULL, false, &out, &err), 0, "%s", err.msg);
    cr_assert_str_eq(out, "<|im_start|>user\nHi!<|im_end|>\n");
    free(out);
}

Test(chat, tools_go_in_the_system_turn_and_results_in_a_user_turn)
{
    mimo_chat_format f;
    mimo_chat_format_default(&f);
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{}}}]";
    mimo_chat_message m[] = {{"user", "Weather in Oslo?"},
                             {"assistant", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>"},
                             {"tool", "{\"temp\": 3}"},
                             {"tool", "{\"wind\": 10}"}};
    char *out;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_chat_render(&f, m, 4, tools, true, &out, &err), 0, "%s", err.msg);
    cr_assert_str_eq(out,
        "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {}}}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within <tool_call></tool_call> "
        "XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
        "<|im_start|>user\nWeather in Oslo?<|im_end|>\n"
        "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n{\"temp\": 3}\n</tool_response>\n<tool_response>\n{\"wind\": 10}\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n");
    free(out);
    cr_assert_eq(mimo_chat_render(&f, m, 1, "{not json", true, &out, &err), -1);
    cr_assert(strstr(err.msg, "tools"), "%s", err.msg);
    mimo_chat_message bad = {"narrator", "x"};
    cr_assert_eq(mimo_chat_render(&f, &bad, 1, NULL, true, &out, &err), -1);
    cr_assert(strstr(err.msg, "narrator"), "%s", err.msg);
}

Test(chat, markers_from_tokenizer_config_and_stop_ids)
{
    const char *shared = mimo_test_shared_dir();
    if (!shared)
        cr_skip_test("../shared is absent");
    char cfg[4096], tok[4096];
    snprintf(cfg, sizeof cfg, "%s/tokenizers/qwen3/tokenizer_config.json", shared);
    snprintf(tok, sizeof tok, "%s/tokenizers/qwen3/tokenizer.json", shared);
    mimo_chat_format f;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_chat_format_load(cfg, &f, &err), 0, "%s", err.msg);
    cr_assert_str_eq(f.eos, "<|im_end|>");
    cr_assert_str_eq(f.bos, "");
    cr_assert_str_eq(f.pad, "<|endoftext|>");
    mimo_tokenizer *t = mimo_tokenizer_load(tok, &err);
    cr_assert_not_null(t, "%s", err.msg);
    int32_t ids[8];
    int n = mimo_chat_stop_ids(&f, t, ids, 8);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], 151645);
    cr_assert_eq(ids[1], 151643);
    mimo_tokenizer_free(t);
}

Test(chat, config_overrides_bos_and_eos)
{
    char *dir = mimo_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"</s>\", \"chat_template\": \"<|im_start|>...\"}");
    fclose(f);
    mimo_chat_format fmt;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_chat_format_load(path, &fmt, &err), 0, "%s", err.msg);
    cr_assert_str_eq(fmt.bos, "<s>");
    cr_assert_str_eq(fmt.eos, "</s>");
    mimo_chat_message m = {"user", "x"};
    char *out;
    cr_assert_eq(mimo_chat_render(&fmt, &m, 1, NULL, true, &out, &err), 0, "%s", err.msg);
    cr_assert_str_eq(out, "<s><|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    f = fopen(path, "w");
    fprintf(f, "{\"chat_template\": \"[INST] {{ message }} [/INST]\"}");
    fclose(f);
    cr_assert_eq(mimo_chat_format_load(path, &fmt, &err), -1);
    cr_assert(strstr(err.msg, "chat_template"), "%s", err.msg);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(chat, model_dir_without_config_gets_defaults)
{
    char *dir = mimo_test_tmpdir();
    mimo_chat_format f;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_chat_format_for_model_dir(dir, &f, &err), 0, "%s", err.msg);
    cr_assert_str_eq(f.im_start, "<|im_start|>");
    cr_assert_str_eq(f.eos, "<|im_end|>");
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *fp = fopen(path, "w");
    fputs("{\"eos_token\": 5}", fp);
    fclose(fp);
    cr_assert_eq(mimo_chat_format_for_model_dir(dir, &f, &err), -1);
    cr_assert(strstr(err.msg, "eos_token") && strstr(err.msg, path), "%s", err.msg);
    mimo_test_rmtree(dir);
    free(dir);
}
