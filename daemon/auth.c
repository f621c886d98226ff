/*
 * auth.c - bearer tokens as name:token pairs, two roles.  A lookup compares
 * the presented token with every configured one without an early exit, so
 * its time does not depend on how much of a token matched.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modfilterd.h"

#define AUTH_MIN_TOKEN 8

struct auth_entry {
    enum auth_role role;
    char name[AUTH_NAME_MAX];
    char token[AUTH_TOKEN_MAX + 1];
    size_t token_len;
};

struct auth {
    struct auth_entry *entries;
    unsigned n, cap;
};

struct auth *
auth_new(void)
{
    return calloc(1, sizeof(struct auth));
}

void
auth_free(struct auth *a)
{
    if (a == NULL)
        return;
    if (a->entries != NULL)
        explicit_bzero(a->entries, a->cap * sizeof(*a->entries));
    free(a->entries);
    free(a);
}

static int
auth_name_char(int c)
{
    return isalnum(c) || c == '_' || c == '-' || c == '.' || c == '@';
}

static int
auth_token_char(int c)
{
    return c > 0x20 && c < 0x7f && c != ',';
}

/* Add one "name:token" (len bytes, surrounding blanks allowed). */
static int
auth_add_pair(struct auth *a, enum auth_role role, const char *s, size_t len,
              char *err, size_t errlen)
{
    const char *colon;
    size_t name_len, tok_len, i;
    struct auth_entry *e;

    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    colon = memchr(s, ':', len);
    if (colon == NULL) {
        snprintf(err, errlen, "a token entry must be name:token");
        return -1;
    }
    name_len = (size_t)(colon - s);
    tok_len = len - name_len - 1;
    if (name_len == 0 || name_len >= AUTH_NAME_MAX) {
        snprintf(err, errlen, "a token name must be 1-%d characters",
                 AUTH_NAME_MAX - 1);
        return -1;
    }
    for (i = 0; i < name_len; i++)
        if (!auth_name_char((unsigned char)s[i])) {
            snprintf(err, errlen, "a token name may hold only A-Za-z0-9._-@");
            return -1;
        }
    if (tok_len < AUTH_MIN_TOKEN || tok_len > AUTH_TOKEN_MAX) {
        snprintf(err, errlen, "token \"%.*s\" must be %d-%d characters",
                 (int)name_len, s, AUTH_MIN_TOKEN, AUTH_TOKEN_MAX);
        return -1;
    }
    for (i = 0; i < tok_len; i++)
        if (!auth_token_char((unsigned char)colon[1 + i])) {
            snprintf(err, errlen,
                     "token \"%.*s\" holds a blank, comma or non-ASCII "
                     "character",
                     (int)name_len, s);
            return -1;
        }
    for (i = 0; i < a->n; i++)
        if (a->entries[i].token_len == tok_len &&
            memcmp(a->entries[i].token, colon + 1, tok_len) == 0) {
            snprintf(err, errlen, "token \"%.*s\" is configured twice",
                     (int)name_len, s);
            return -1;
        }
    if (a->n == a->cap) {
        unsigned cap = a->cap ? a->cap * 2 : 8;
        struct auth_entry *n = calloc(cap, sizeof(*n));

        if (n == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (a->n > 0) {
            memcpy(n, a->entries, a->n * sizeof(*n));
            explicit_bzero(a->entries, a->cap * sizeof(*n));
        }
        free(a->entries);
        a->entries = n;
        a->cap = cap;
    }
    e = &a->entries[a->n++];
    e->role = role;
    memcpy(e->name, s, name_len);
    e->name[name_len] = '\0';
    memcpy(e->token, colon + 1, tok_len);
    e->token[tok_len] = '\0';
    e->token_len = tok_len;
    return 0;
}

int
auth_add_list(struct auth *a, enum auth_role role, const char *list, char *err,
              size_t errlen)
{
    const char *p = list, *end;

    while (*p != '\0') {
        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        if (end > p && strspn(p, " \t") < (size_t)(end - p) &&
            auth_add_pair(a, role, p, (size_t)(end - p), err, errlen) < 0)
            return -1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

int
auth_add_file(struct auth *a, enum auth_role role, const char *path, char *err,
              size_t errlen)
{
    char *buf = NULL, *line, *save = NULL;
    char reason[200];
    unsigned lineno = 0;
    size_t len;
    int ret = -1;

    buf = util_read_file(path, 1 << 20, &len);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (strlen(buf) != len) {
        snprintf(err, errlen, "%s: holds a NUL byte", path);
        goto fail;
    }
    /* strtok_r would skip empty lines and lose the numbering. */
    line = buf;
    while (line != NULL && *line != '\0') {
        char *nl = strchr(line, '\n');
        size_t n;

        save = nl ? nl + 1 : NULL;
        n = nl ? (size_t)(nl - line) : strlen(line);
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        {
            size_t skip = strspn(line, " \t");

            if (skip < n && line[skip] != '#' &&
                auth_add_pair(a, role, line, n, reason, sizeof(reason)) < 0) {
                snprintf(err, errlen, "%s:%u: %s", path, lineno, reason);
                goto fail;
            }
        }
        line = save;
    }
    ret = 0;
fail:
    if (buf != NULL) {
        explicit_bzero(buf, strlen(buf));
        free(buf);
    }
    return ret;
}

unsigned
auth_count(const struct auth *a, enum auth_role role)
{
    unsigned i, n = 0;

    if (a == NULL)
        return 0;
    for (i = 0; i < a->n; i++)
        n += a->entries[i].role == role;
    return n;
}

enum auth_role
auth_check(const struct auth *a, const char *header, const char **name)
{
    const char *tok;
    size_t len, i, j;
    enum auth_role found = AUTH_NONE;

    if (name != NULL)
        *name = NULL;
    if (a == NULL || header == NULL || strncasecmp(header, "Bearer ", 7))
        return AUTH_NONE;
    tok = header + 7;
    while (*tok == ' ')
        tok++;
    len = strlen(tok);
    while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
        len--;
    if (len == 0 || len > AUTH_TOKEN_MAX)
        return AUTH_NONE;
    for (i = 0; i < a->n; i++) {
        const struct auth_entry *e = &a->entries[i];
        unsigned char diff = (unsigned char)(e->token_len != len);

        /* Walk the stored token's whole length whatever matched; the
         * presented one is read modulo its length so it stays in bounds. */
        for (j = 0; j < e->token_len; j++)
            diff |= (unsigned char)(e->token[j] ^ tok[j % len]);
        if (diff == 0) {
            found = e->role;
            if (name != NULL)
                *name = e->name;
        }
    }
    return found;
}
