/* libFuzzer target: form bodies (daemon/form.c) and what akismet.c derives
 * from them (test triggers, kept fields).  The first byte
 * picks the charset hint. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "modfilterd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every name and value must be NUL-free UTF-8 of the length stated. */
static void
check_utf8(const char *s, size_t len)
{
    json_t *j;

    if (strlen(s) != len)
        __builtin_trap();
    j = json_stringn(s, len); /* jansson refuses invalid UTF-8 */
    if (j == NULL)
        __builtin_trap();
    json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const hints[] = {NULL, "utf-8", "iso-8859-1",
                                        "windows-1252", "koi8-r"};
    struct form f;
    char err[120];
    const char *hint;
    json_t *o;
    unsigned i;

    if (size == 0)
        return 0;
    hint = hints[data[0] % (sizeof(hints) / sizeof(hints[0]))];
    if (form_parse((const char *)data + 1, size - 1, hint, &f, err,
                   sizeof(err)) < 0) {
        if (strstr(err, "more than") == NULL || f.fields != NULL)
            __builtin_trap();
        return 0;
    }
    if (f.n > FORM_MAX_FIELDS)
        __builtin_trap();
    for (i = 0; i < f.n; i++) {
        check_utf8(f.fields[i].name, f.fields[i].name_len);
        check_utf8(f.fields[i].value, f.fields[i].value_len);
        if (form_get(&f, f.fields[i].name, NULL) == NULL)
            __builtin_trap();
    }
    (void)akismet_trigger(&f);
    o = akismet_fields_json(&f);
    if (o == NULL)
        __builtin_trap();
    json_decref(o);
    form_release(&f);
    return 0;
}
