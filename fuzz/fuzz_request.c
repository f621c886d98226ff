/* libFuzzer target: request bodies (daemon/request.c: both paths, and the
 * fast one never takes what jansson reads otherwise) and stored records
 * read back (daemon/result.c). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "modfilterd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && !strcmp(a, b));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request_comment rc;
    struct request_error err;
    json_t *reply;

    if (request_parse_comment((const char *)data, size, &rc, &err) == 0) {
        if (rc.id != NULL && !request_id_valid(rc.id, strlen(rc.id)))
            __builtin_trap();
        if (rc.text == NULL || rc.text_len == 0)
            __builtin_trap();
        request_comment_release(&rc);
    } else if (err.status != 400 || err.code == NULL) {
        __builtin_trap();
    }
    /* What the fast path takes, jansson takes with the same strings. */
    if (request_parse_fast((const char *)data, size, &rc) == 0) {
        struct request_comment j;

        if (request_parse_jansson((const char *)data, size, &j, &err) != 0)
            __builtin_trap();
        if (rc.text_len != j.text_len ||
            memcmp(rc.text, j.text, rc.text_len) != 0 ||
            !fuzz_same(rc.id, j.id) || !fuzz_same(rc.post, j.post) ||
            !fuzz_same(rc.lang, j.lang) ||
            !fuzz_same(rc.author_name, j.author_name) ||
            !fuzz_same(rc.author_email, j.author_email) ||
            !fuzz_same(rc.author_url, j.author_url) ||
            !fuzz_same(rc.author_ip, j.author_ip))
            __builtin_trap();
        request_comment_release(&j);
        request_comment_release(&rc);
    }
    reply = result_reply_from_stored((const char *)data, size);
    json_decref(reply);
    return 0;
}
