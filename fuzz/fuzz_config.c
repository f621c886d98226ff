/* libFuzzer target: the config file parser and checks (daemon/config.c,
 * daemon/auth.c).  The *_file keys are cleared before the checks so an
 * input cannot make the target read arbitrary files. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "modfilterd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const files[][2] = {
        {"redis", "password_file"},
        {"auth", "submit_tokens_file"},
        {"auth", "moderator_tokens_file"},
        {"akismet", "keys_file"},
    };
    struct config_error err;
    struct config *c = config_new();
    size_t i;

    if (c == NULL)
        return 0;
    if (config_load_buffer(c, "fuzz", (const char *)data, size, &err) == 0) {
        for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            config_set(c, files[i][0], files[i][1], "", "fuzz", 0, &err);
        if (config_check(c, &err) == 0 && c->review > c->reject)
            __builtin_trap();
    } else if (strncmp(err.msg, "fuzz", 4) != 0) {
        __builtin_trap(); /* every message names its origin */
    }
    config_free(c);
    return 0;
}
