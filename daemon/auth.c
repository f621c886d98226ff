/*
 * auth.c - bearer tokens as name:token pairs, two roles, and the Akismet
 * keys as blog-url:key pairs (a third role).  A lookup compares the
 * presented token with every configured one without an early exit, so its
 * time does not depend on how much of a token matched.
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
    char name[AUTH_BLOG_MAX + 1]; /* token name, or an Akismet key's blog */
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

/* An Akismet key can travel as a host name label. */
static int
auth_key_char(int c)
{
    return isalnum(c) || c == '_' || c == '-';
}

/* 0 when name:token is well-formed. */
static int
auth_token_check(const char *s, size_t name_len, const char *tok,
                 size_t tok_len, char *err, size_t errlen)
{
    size_t i;

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
        if (!auth_token_char((unsigned char)tok[i])) {
            snprintf(err, errlen,
                     "token \"%.*s\" holds a blank, comma or non-ASCII "
                     "character",
                     (int)name_len, s);
            return -1;
        }
    return 0;
}

/* 0 when blog-url:key (split at the last colon) is well-formed. */
static int
auth_akismet_check(const char *s, size_t blog_len, const char *key,
                   size_t key_len, char *err, size_t errlen)
{
    int shown = (int)(blog_len > 80 ? 80 : blog_len);
    size_t i;

    if (blog_len == 0 || blog_len > AUTH_BLOG_MAX) {
        snprintf(err, errlen, "a blog URL must be 1-%d bytes", AUTH_BLOG_MAX);
        return -1;
    }
    for (i = 0; i < blog_len; i++)
        if (!auth_token_char((unsigned char)s[i])) {
            snprintf(err, errlen,
                     "blog URL \"%.*s\" holds a blank, comma or non-ASCII "
                     "character",
                     shown, s);
            return -1;
        }
    if (key_len < AUTH_MIN_TOKEN || key_len > AUTH_KEY_MAX) {
        snprintf(err, errlen, "the key of %.*s must be %d-%d characters", shown,
                 s, AUTH_MIN_TOKEN, AUTH_KEY_MAX);
        return -1;
    }
    for (i = 0; i < key_len; i++)
        if (!auth_key_char((unsigned char)key[i])) {
            snprintf(err, errlen,
                     "the key of %.*s may hold only A-Za-z0-9_- (it can "
                     "travel as a host name label)",
                     shown, s);
            return -1;
        }
    return 0;
}

/* Add one "name:token" (len bytes, surrounding blanks allowed); an
 * Akismet "blog-url:key" is split at its last colon. */
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
    colon = role == AUTH_AKISMET ? memrchr(s, ':', len) : memchr(s, ':', len);
    if (colon == NULL) {
        snprintf(err, errlen,
                 role == AUTH_AKISMET
                     ? "an Akismet key entry must be blog-url:key"
                     : "a token entry must be name:token");
        return -1;
    }
    name_len = (size_t)(colon - s);
    tok_len = len - name_len - 1;
    if ((role == AUTH_AKISMET ? auth_akismet_check : auth_token_check)(
            s, name_len, colon + 1, tok_len, err, errlen) < 0)
        return -1;
    for (i = 0; i < a->n; i++)
        if (a->entries[i].token_len == tok_len &&
            memcmp(a->entries[i].token, colon + 1, tok_len) == 0) {
            snprintf(err, errlen,
                     role == AUTH_AKISMET
                         ? "the key of %.*s is configured "
                           "twice"
                         : "token \"%.*s\" is configured twice",
                     (int)(name_len > 80 ? 80 : name_len), s);
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

struct auth_file {
    struct auth *a;
    enum auth_role role;
};

static int
auth_add_line(void *arg, const char *line, size_t len, char *err, size_t errlen)
{
    struct auth_file *f = arg;

    return auth_add_pair(f->a, f->role, line, len, err, errlen);
}

int
auth_add_file(struct auth *a, enum auth_role role, const char *path, char *err,
              size_t errlen)
{
    struct auth_file f = {a, role};

    return util_each_line(path, 1 << 20, auth_add_line, &f, err, errlen);
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

const char *
auth_first_token(const struct auth *a, enum auth_role role)
{
    unsigned i;

    for (i = 0; a != NULL && i < a->n; i++)
        if (a->entries[i].role == role)
            return a->entries[i].token;
    return NULL;
}

/* The entry holding token (len bytes), any role; NULL when none. */
static const struct auth_entry *
auth_lookup(const struct auth *a, const char *tok, size_t len)
{
    const struct auth_entry *found = NULL;
    unsigned i;

    if (a == NULL || tok == NULL || len == 0 || len > AUTH_TOKEN_MAX)
        return NULL;
    for (i = 0; i < a->n; i++) /* no early exit: constant time */
        if (util_ct_equal(a->entries[i].token, a->entries[i].token_len, tok,
                          len))
            found = &a->entries[i];
    return found;
}

const char *
auth_bearer(const char *header, size_t *len)
{
    const char *tok;

    /* "Bearer" alone: an empty token (a client's trailing space may have
     * been trimmed as the header's white space). */
    if (header == NULL || strncasecmp(header, "Bearer", 6) ||
        (header[6] != ' ' && header[6] != '\0'))
        return NULL;
    tok = header + 6;
    while (*tok == ' ')
        tok++;
    *len = strlen(tok);
    while (*len > 0 && (tok[*len - 1] == ' ' || tok[*len - 1] == '\t'))
        (*len)--;
    return tok;
}

enum auth_role
auth_check(const struct auth *a, const char *header, const char **name)
{
    const struct auth_entry *e;
    const char *tok;
    size_t len;

    if (name != NULL)
        *name = NULL;
    if (a == NULL || (tok = auth_bearer(header, &len)) == NULL)
        return AUTH_NONE;
    e = auth_lookup(a, tok, len);
    if (e == NULL || e->role == AUTH_AKISMET)
        return AUTH_NONE; /* an Akismet key is no bearer token: 401 */
    if (name != NULL)
        *name = e->name;
    return e->role;
}

const char *
auth_find(const struct auth *a, enum auth_role role, const char *token,
          size_t len)
{
    const struct auth_entry *e = auth_lookup(a, token, len);

    return e != NULL && e->role == role ? e->name : NULL;
}
