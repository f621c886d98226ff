/*
 * jsonl.c - JSON Lines records for train, forget, score and eval.
 *
 * A line is an object: "text" (string, required), "id" (string), "lang"
 * (string), "labels" (object of label -> 0/1 or false/true); other fields
 * are ignored (datasets carry extra ones).  Duplicate keys are refused.
 * A UTF-8 byte order mark at the start of the file is skipped; \u0000 in a
 * string is taken (texts are passed on with their length).
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct jsonl {
    FILE *f;
    const char *path;
    char *line;
    size_t cap;
    unsigned long lineno;
    json_t *cur;
};

struct jsonl *
jsonl_open(const char *path)
{
    struct jsonl *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->path = path;
    j->f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!j->f) {
        free(j);
        return NULL;
    }
    return j;
}

void
jsonl_close(struct jsonl *j)
{
    if (!j)
        return;
    if (j->f && j->f != stdin)
        fclose(j->f);
    json_decref(j->cur);
    free(j->line);
    free(j);
}

int
jsonl_error(const struct jsonl *j, char *err, size_t len, const char *why)
{
    snprintf(err, len, "%s:%lu: %s", j->path, j->lineno, why);
    return -1;
}

static int
read_labels(struct jsonl *j, json_t *labels, struct record *rec, char *err,
            size_t len)
{
    const char *name;
    size_t name_len;
    json_t *v;
    json_object_keylen_foreach(labels, name, name_len, v)
    {
        int val;
        if (strlen(name) != name_len)
            return jsonl_error(j, err, len, "a label name with \\u0000");
        if (json_is_integer(v) &&
            (json_integer_value(v) == 0 || json_integer_value(v) == 1))
            val = (int)json_integer_value(v);
        else if (json_is_boolean(v))
            val = json_is_true(v);
        else
            return jsonl_error(j, err, len, "a label value must be 0 or 1");
        if (strlen(name) >= CLF_LABEL_MAX)
            return jsonl_error(j, err, len, "label name too long");
        if (rec->n_labels == CLF_MAX_LABELS)
            return jsonl_error(j, err, len, "too many labels");
        snprintf(rec->labels[rec->n_labels], CLF_LABEL_MAX, "%s", name);
        rec->values[rec->n_labels++] = val;
    }
    return 0;
}

int
jsonl_next(struct jsonl *j, struct record *rec, char *err, size_t len)
{
    json_error_t je;
    ssize_t n;
    char *p;
    memset(rec, 0, sizeof *rec);
    json_decref(j->cur);
    j->cur = NULL;
    do {
        errno = 0;
        n = getline(&j->line, &j->cap, j->f);
        if (n < 0) {
            if (errno == 0)
                return 0;
            snprintf(err, len, "%s: %s", j->path, strerror(errno));
            return -2;
        }
        p = j->line;
        if (++j->lineno == 1 && n >= 3 && !memcmp(p, "\xef\xbb\xbf", 3)) {
            p += 3; /* a byte order mark */
            n -= 3;
        }
        while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
            n--;
    } while (n == 0);
    j->cur =
        json_loadb(p, (size_t)n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!j->cur) {
        char why[200];
        snprintf(why, sizeof why, "invalid JSON: %s (column %d)", je.text,
                 je.column);
        return jsonl_error(j, err, len, why);
    }
    if (!json_is_object(j->cur))
        return jsonl_error(j, err, len, "not a JSON object");
    json_t *text = json_object_get(j->cur, "text");
    json_t *id = json_object_get(j->cur, "id");
    json_t *lang = json_object_get(j->cur, "lang");
    json_t *labels = json_object_get(j->cur, "labels");
    if (!json_is_string(text))
        return jsonl_error(j, err, len, "\"text\" missing or not a string");
    if (id && !json_is_string(id))
        return jsonl_error(j, err, len, "\"id\" is not a string");
    if (lang && !json_is_string(lang) && !json_is_null(lang))
        return jsonl_error(j, err, len, "\"lang\" is not a string");
    if ((id && strlen(json_string_value(id)) != json_string_length(id)) ||
        (json_is_string(lang) &&
         strlen(json_string_value(lang)) != json_string_length(lang)))
        return jsonl_error(j, err, len, "\\u0000 in \"id\" or \"lang\"");
    if (labels && !json_is_object(labels))
        return jsonl_error(j, err, len, "\"labels\" is not an object");
    rec->text = (char *)json_string_value(text);
    rec->text_len = json_string_length(text);
    rec->id = id ? (char *)json_string_value(id) : NULL;
    rec->lang = json_is_string(lang) ? (char *)json_string_value(lang) : NULL;
    if (labels && read_labels(j, labels, rec, err, len) < 0)
        return -1;
    return 1;
}
