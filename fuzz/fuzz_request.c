/* libFuzzer target: request bodies (daemon/request.c) and stored records
 * read back (daemon/result.c). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "modfilterd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    reply = result_reply_from_stored((const char *)data, size);
    json_decref(reply);
    return 0;
}
