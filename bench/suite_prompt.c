/* From a suite record to the prompt text: its turns as chat messages, then the chat format. */
#include "suite.h"

#include <stdlib.h>
#include <string.h>

int mimo_suite_messages(const mimo_suite_record *r, int n_turns, const char *const *replies,
                        mimo_chat_message **messages, int *n_messages)
{
    if (n_turns <= 0 || n_turns > r->n_turns)
        n_turns = r->n_turns;
    int cap = n_turns;   /* one possible reply between turns */
    for (int t = 0; t < n_turns; t++)
        cap += r->turns[t].n_messages;
    mimo_chat_message *m = mimo_xmalloc((size_t)(cap + 1) * sizeof *m);
    int n = 0;
    for (int t = 0; t < n_turns; t++) {
        const mimo_suite_turn *turn = &r->turns[t];
        if (t > 0 && n > 0 && strcmp(m[n - 1].role, "assistant") && turn->n_messages > 0 &&
            !strcmp(turn->messages[0].role, "user") && replies && replies[t - 1])
            m[n++] = (mimo_chat_message){"assistant", replies[t - 1]};
        for (int k = 0; k < turn->n_messages; k++)
            m[n++] = (mimo_chat_message){turn->messages[k].role, turn->messages[k].content};
    }
    *messages = m;
    *n_messages = n;
    return 0;
}

int mimo_suite_render_prompt(const mimo_suite_record *r, const mimo_chat_format *f, int n_turns, char **prompt,
                             mimo_error *err)
{
    mimo_chat_message *m;
    int n;
    mimo_suite_messages(r, n_turns, NULL, &m, &n);
    int rc = mimo_chat_render(f, m, n, r->tools_json, true, prompt, err);
    free(m);
    if (rc)
        return mimo_fail_prefix(err, "suite %s record %s", r->suite, r->id);
    return 0;
}
