/*
 * queue.c - `modfilter queue`: a moderator's commands against a running
 * modfilterd, over its HTTP API (DESIGN.md), with a small blocking
 * HTTP/1.1 client (one request per connection, bounded by a deadline) on
 * TCP or a Unix socket.
 *
 * Output is for people by default, the server's JSON with --json.  Exit
 * codes: 0 done, 1 the daemon refused or could not be reached (its error
 * message on standard error), 2 usage.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "modfilterd.h"

#define QUEUE_CLI_DEFAULT_URL "http://127.0.0.1:8080"
#define QUEUE_CLI_TIMEOUT_MS 10000
#define QUEUE_CLI_REPLY_MAX (64u << 20) /* bytes of a reply */
#define QUEUE_CLI_TEXT_COLS 60          /* comment text shown in a list */

const char cli_usage_queue[] =
    "usage: modfilter queue COMMAND [--url URL] [--token TOKEN] [-c FILE] "
    "[--json]\n"
    "\n"
    "  length              undecided items\n"
    "  list [--limit N] [--cursor C]\n"
    "                      undecided items in the queue's order\n"
    "  show ID             one comment\n"
    "  claim N             claim up to N items for this token\n"
    "  approve ID          approve (every label 0)\n"
    "  reject ID [--label L]...\n"
    "                      reject; without --label, as the labels that "
    "flagged it;\n"
    "                      with --label, as those labels only\n"
    "  undo ID             undo a recent decision\n"
    "  history [--limit N] [--cursor C]\n"
    "                      the audit log, newest first\n"
    "\n"
    "--url (or MODFILTER_URL): http://host:port or unix:/path/to/socket\n"
    "  (default " QUEUE_CLI_DEFAULT_URL ")\n"
    "--token (or MODFILTER_TOKEN): a moderator token\n"
    "-c FILE: the daemon's config file, for the URL (server.socket or\n"
    "  server.listen, server.port_file) and the first moderator token when\n"
    "  neither flags nor the environment give them\n"
    "Exit codes: 0 done; 1 the daemon refused or could not be reached; "
    "2 usage.\n";

/* Where the daemon is. */
struct queue_cli_url {
    int is_unix;
    char host[256];
    char port[8];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* An HTTP reply: status and body (malloc'd, NUL-terminated). */
struct queue_cli_reply {
    int status;
    char *body;
    size_t len;
};

static long long
queue_cli_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "http://host[:port][/]" or "unix:/path" (also "unix:///path"). */
static int
queue_cli_url_parse(const char *s, struct queue_cli_url *u)
{
    const char *p, *colon, *end;
    size_t n;

    memset(u, 0, sizeof(*u));
    if (!strncmp(s, "unix:", 5)) {
        p = s + 5;
        if (!strncmp(p, "//", 2))
            p += 2;
        n = strlen(p);
        if (p[0] != '/' || n >= sizeof(u->path))
            return -1;
        u->is_unix = 1;
        memcpy(u->path, p, n + 1);
        return 0;
    }
    if (strncmp(s, "http://", 7))
        return -1;
    p = s + 7;
    end = p + strcspn(p, "/");
    if (end[0] == '/' && end[1] != '\0')
        return -1;   /* no base path: routes are absolute */
    if (*p == '[') { /* [ipv6]:port */
        colon = strchr(p, ']');
        if (colon == NULL || colon > end)
            return -1;
        n = (size_t)(colon - p - 1);
        if (n == 0 || n >= sizeof(u->host))
            return -1;
        memcpy(u->host, p + 1, n);
        colon = colon[1] == ':' ? colon + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        n = (size_t)((colon ? colon : end) - p);
        if (n == 0 || n >= sizeof(u->host))
            return -1;
        memcpy(u->host, p, n);
    }
    snprintf(u->port, sizeof(u->port), "80");
    if (colon != NULL) {
        n = (size_t)(end - colon - 1);
        if (n == 0 || n >= sizeof(u->port) ||
            strspn(colon + 1, "0123456789") != n)
            return -1;
        memcpy(u->port, colon + 1, n);
        u->port[n] = '\0';
    }
    return 0;
}

/* Waits for fd to be ready for events until deadline; 0 or -1. */
static int
queue_cli_wait(int fd, short events, long long deadline)
{
    struct pollfd pfd = {fd, events, 0};
    long long left;
    int r;

    for (;;) {
        left = deadline - queue_cli_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        r = poll(&pfd, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* A non-blocking connected socket, or -1 with errno set. */
static int
queue_cli_connect(const struct queue_cli_url *u, long long deadline)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, err = 0;
    socklen_t elen = sizeof(err);

    if (u->is_unix) {
        struct sockaddr_un sa;

        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        memcpy(sa.sun_path, u->path, strlen(u->path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(u->host, u->port, &hints, &res) != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS &&
            queue_cli_wait(fd, POLLOUT, deadline) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
            break;
        if (err != 0)
            errno = err;
        err = errno;
        close(fd);
        fd = -1;
        errno = err;
    }
    freeaddrinfo(res);
    return fd;
}

static int
queue_cli_send_all(int fd, const char *buf, size_t len, long long deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (queue_cli_wait(fd, POLLOUT, deadline) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Splits a whole HTTP/1.1 reply in buf (len bytes) into out; the body is
 * moved to the front of buf.  -1 when it is not one. */
static int
queue_cli_parse_reply(char *buf, size_t len, struct queue_cli_reply *out)
{
    char *hend = memmem(buf, len, "\r\n\r\n", 4), *p, *cl;
    size_t hlen, blen;

    if (hend == NULL || len < 12 || strncmp(buf, "HTTP/1.", 7))
        return -1;
    out->status = atoi(buf + 9);
    *hend = '\0';
    hlen = (size_t)(hend - buf) + 4;
    blen = len - hlen;
    for (p = buf; (p = strstr(p, "\r\n")) != NULL;) {
        p += 2;
        if (!strncasecmp(p, "Content-Length:", 15)) {
            cl = p + 15;
            if ((size_t)strtoull(cl, NULL, 10) < blen)
                blen = (size_t)strtoull(cl, NULL, 10);
        }
    }
    memmove(buf, buf + hlen, blen);
    buf[blen] = '\0';
    out->body = buf;
    out->len = blen;
    return 0;
}

/* One request (body may be NULL) and its whole reply.  -1 with a message
 * on standard error when the daemon could not be asked. */
static int
queue_cli_http(const struct queue_cli_url *u, const char *token,
               const char *method, const char *path, const char *body,
               struct queue_cli_reply *out)
{
    long long deadline = queue_cli_now_ms() + QUEUE_CLI_TIMEOUT_MS;
    size_t blen = body ? strlen(body) : 0, cap = 16384, len = 0;
    char *req = NULL, *buf = NULL;
    int fd = -1, n, ret = -1;

    memset(out, 0, sizeof(out[0]));
    fd = queue_cli_connect(u, deadline);
    if (fd < 0) {
        fprintf(stderr, "modfilter: cannot connect to %s%s%s: %s\n",
                u->is_unix ? u->path : u->host, u->is_unix ? "" : ":",
                u->is_unix ? "" : u->port, strerror(errno));
        goto done;
    }
    n = asprintf(&req,
                 "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                 "Accept: application/json\r\n%s%s%s"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 method, path, u->is_unix ? "localhost" : u->host,
                 token ? "Authorization: Bearer " : "", token ? token : "",
                 token ? "\r\n" : "", blen, body ? body : "");
    if (n < 0) {
        req = NULL;
        fprintf(stderr, "modfilter: out of memory\n");
        goto done;
    }
    if (queue_cli_send_all(fd, req, (size_t)n, deadline) < 0) {
        fprintf(stderr, "modfilter: sending the request: %s\n",
                strerror(errno));
        goto done;
    }
    buf = malloc(cap);
    for (;;) {
        ssize_t r;

        if (buf == NULL) {
            fprintf(stderr, "modfilter: out of memory\n");
            goto done;
        }
        if (len + 1 >= cap) {
            char *nb = cap < QUEUE_CLI_REPLY_MAX ? realloc(buf, cap * 2) : NULL;

            if (nb == NULL) {
                fprintf(stderr, "modfilter: the reply is too large\n");
                goto done;
            }
            buf = nb;
            cap *= 2;
        }
        r = recv(fd, buf + len, cap - len - 1, 0);
        if (r > 0) {
            len += (size_t)r;
        } else if (r == 0) {
            break;
        } else if ((errno != EAGAIN && errno != EINTR) ||
                   queue_cli_wait(fd, POLLIN, deadline) < 0) {
            fprintf(stderr, "modfilter: reading the reply: %s\n",
                    strerror(errno));
            goto done;
        }
    }
    if (queue_cli_parse_reply(buf, len, out) < 0) {
        fprintf(stderr, "modfilter: not an HTTP reply\n");
        goto done;
    }
    buf = NULL; /* out->body */
    ret = 0;
done:
    if (fd >= 0)
        close(fd);
    free(req);
    free(buf);
    return ret;
}

/* ---- output for people ------------------------------------------------ */

static const char *
queue_cli_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

/* {"spam": 1, "abuse": 0} as "spam=1 abuse=0". */
static void
queue_cli_print_labels(const json_t *labels)
{
    const char *k;
    json_t *v;
    int first = 1;

    json_object_foreach((json_t *)labels, k, v)
    {
        printf("%s%s=%lld", first ? "" : " ", k,
               (long long)json_integer_value(v));
        first = 0;
    }
    if (first)
        printf("-");
}

/* The first QUEUE_CLI_TEXT_COLS characters of text on one line. */
static void
queue_cli_print_text(const char *text, size_t cols)
{
    size_t chars = 0;
    const unsigned char *p = (const unsigned char *)text;

    for (; *p && chars < cols; p++) {
        if ((*p & 0xc0) != 0x80)
            chars++;
        putchar(*p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p);
    }
    while (*p && (*p & 0xc0) == 0x80) /* finish the last character */
        putchar(*p++);
    if (*p)
        fputs("...", stdout);
}

static void
queue_cli_print_scores(const json_t *item)
{
    const char *k;
    json_t *v;

    json_object_foreach(json_object_get(item, "scores"), k, v)
        printf(" %s=%.3f", k, json_number_value(v));
}

static void
queue_cli_print_item_line(const json_t *item)
{
    printf("%-20s %-7s", queue_cli_str(item, "id"),
           queue_cli_str(item, "verdict"));
    queue_cli_print_scores(item);
    printf("  %s", queue_cli_str(item, "received_at"));
    if (json_object_get(item, "claimed_by") != NULL)
        printf("  claimed by %s", queue_cli_str(item, "claimed_by"));
    printf("\n    ");
    queue_cli_print_text(queue_cli_str(item, "text"), QUEUE_CLI_TEXT_COLS);
    putchar('\n');
}

static void
queue_cli_print_items(const json_t *r, const char *cmd)
{
    const json_t *items = json_object_get(r, "items"), *next;
    size_t i;

    for (i = 0; i < json_array_size(items); i++)
        queue_cli_print_item_line(json_array_get(items, i));
    if (!strcmp(cmd, "claim")) {
        printf("claimed %zu item(s)", json_array_size(items));
        if (json_array_size(items) > 0)
            printf(" until %s",
                   queue_cli_str(json_array_get(items, 0), "claim_expires_at"));
        putchar('\n');
        return;
    }
    printf("%lld undecided",
           (long long)json_integer_value(json_object_get(r, "length")));
    next = json_object_get(r, "next_cursor");
    if (json_is_string(next))
        printf("; more with --cursor %s", json_string_value(next));
    putchar('\n');
}

static void
queue_cli_print_show(const json_t *r)
{
    const json_t *author = json_object_get(r, "author");
    const char *k;
    json_t *v;

    printf("id:          %s\nstate:       %s\nverdict:     %s\nscores:     ",
           queue_cli_str(r, "id"), queue_cli_str(r, "state"),
           queue_cli_str(r, "verdict"));
    queue_cli_print_scores(r);
    printf("\nreceived_at: %s\n", queue_cli_str(r, "received_at"));
    json_object_foreach((json_t *)author, k, v)
        printf("author.%-5s %s\n", k, json_string_value(v));
    if (json_object_get(r, "post") != NULL)
        printf("post:        %s\n", queue_cli_str(r, "post"));
    if (json_object_get(r, "claimed_by") != NULL)
        printf("claimed_by:  %s until %s\n", queue_cli_str(r, "claimed_by"),
               queue_cli_str(r, "claim_expires_at"));
    if (json_object_get(r, "decision") != NULL) {
        printf("decision:    %s by %s at %s (labels ",
               queue_cli_str(r, "decision"), queue_cli_str(r, "decided_by"),
               queue_cli_str(r, "decided_at"));
        queue_cli_print_labels(json_object_get(r, "labels"));
        printf(")\n");
    }
    printf("text:\n%s\n", queue_cli_str(r, "text"));
}

static void
queue_cli_print_history(const json_t *r)
{
    const json_t *items = json_object_get(r, "items"), *next;
    size_t i;

    for (i = 0; i < json_array_size(items); i++) {
        const json_t *e = json_array_get(items, i);

        printf("%s  %-10s %-8s %s", queue_cli_str(e, "at"),
               queue_cli_str(e, "by"), queue_cli_str(e, "action"),
               queue_cli_str(e, "id"));
        if (json_is_object(json_object_get(e, "labels"))) {
            printf("  labels ");
            queue_cli_print_labels(json_object_get(e, "labels"));
        }
        putchar('\n');
    }
    next = json_object_get(r, "next_cursor");
    if (json_is_string(next))
        printf("more with --cursor %s\n", json_string_value(next));
}

/* ---- the command ------------------------------------------------------ */

struct queue_cli_opts {
    const char *url, *token, *cursor;
    const char *config; /* -c: the daemon's config file */
    const char *labels[CLF_MAX_LABELS];
    unsigned n_labels;
    long limit; /* 0: the daemon's default */
    int json;
};

/* A positive number of at most max, or -1. */
static long
queue_cli_number(const char *s, long max)
{
    char *end;
    long n = strtol(s, &end, 10);

    return (s[0] >= '0' && s[0] <= '9' && *end == '\0' && n >= 1 && n <= max)
               ? n
               : -1;
}

/* Options anywhere after the command; the rest into pos (at most 1).
 * 0, or -1 with a message. */
static int
queue_cli_parse(int argc, char **argv, struct queue_cli_opts *o,
                const char **pos, int *n_pos)
{
    int i;

    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;

        if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--url") && has_value) {
            o->url = argv[++i];
        } else if (!strcmp(a, "--token") && has_value) {
            o->token = argv[++i];
        } else if (!strcmp(a, "-c") && has_value) {
            o->config = argv[++i];
        } else if (!strcmp(a, "--cursor") && has_value) {
            o->cursor = argv[++i];
        } else if (!strcmp(a, "--limit") && has_value) {
            o->limit = queue_cli_number(argv[++i], 1000);
            if (o->limit < 0) {
                fprintf(stderr, "modfilter: --limit takes 1 to 1000\n");
                return -1;
            }
        } else if (!strcmp(a, "--label") && has_value) {
            if (o->n_labels == CLF_MAX_LABELS) {
                fprintf(stderr, "modfilter: too many --label\n");
                return -1;
            }
            o->labels[o->n_labels++] = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "modfilter: unknown option or missing value: %s\n",
                    a);
            return -1;
        } else if (*n_pos >= 1) {
            fprintf(stderr, "modfilter: unexpected argument: %s\n", a);
            return -1;
        } else {
            pos[(*n_pos)++] = a;
        }
    }
    return 0;
}

/* URL and token from the daemon's config where flags and the environment
 * gave none: server.socket, else server.listen (its port from
 * server.port_file when it is 0), and the first moderator token.  cfg
 * (the caller frees it) keeps the token alive.  0, or -1 with a message. */
static int
queue_cli_from_config(struct queue_cli_opts *o, struct config **cfg, char *url,
                      size_t len)
{
    struct config_error err;

    if ((*cfg = config_new()) == NULL ||
        config_load_file(*cfg, o->config, &err) < 0 ||
        config_check(*cfg, &err) < 0) {
        fprintf(stderr, "modfilter: %s\n", *cfg ? err.msg : "out of memory");
        return -1;
    }
    if (o->token == NULL || o->token[0] == '\0')
        o->token = auth_first_token((*cfg)->auth, AUTH_MODERATOR);
    if (o->url != NULL && o->url[0] != '\0')
        return 0;
    if ((*cfg)->socket[0]) {
        snprintf(url, len, "unix:%s", (*cfg)->socket);
    } else if ((*cfg)->listen[0]) {
        const char *colon = strrchr((*cfg)->listen, ':');
        char *port = NULL;

        if (colon != NULL && !strcmp(colon, ":0") && (*cfg)->port_file[0])
            port = util_read_file((*cfg)->port_file, 32, NULL);
        if (port != NULL) {
            port[strcspn(port, "\r\n")] = '\0';
            snprintf(url, len, "http://%.*s:%s", (int)(colon - (*cfg)->listen),
                     (*cfg)->listen, port);
        } else {
            snprintf(url, len, "http://%s", (*cfg)->listen);
        }
        free(port);
    } else {
        return 0;
    }
    o->url = url;
    return 0;
}

/* An id, checked as the daemon checks it (it goes into the path). */
static int
queue_cli_id_ok(const char *id)
{
    size_t n = strlen(id);

    return n >= 1 && n <= 128 &&
           strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789._:-") == n;
}

/* The request of a command: method, path (into path) and body (malloc'd
 * or NULL).  -1 on a usage error (reported). */
static int
queue_cli_request(const char *cmd, const char *arg,
                  const struct queue_cli_opts *o, const char **method,
                  char *path, size_t path_len, char **body)
{
    static const char *const with_id[] = {"show", "approve", "reject", "undo"};
    json_t *b = NULL, *labels;
    size_t i;
    int needs_id = 0;
    long n;

    *body = NULL;
    *method = "GET";
    for (i = 0; i < sizeof(with_id) / sizeof(with_id[0]); i++)
        needs_id |= !strcmp(cmd, with_id[i]);
    if ((needs_id || !strcmp(cmd, "claim")) != (arg != NULL)) {
        fprintf(stderr, "modfilter: queue %s %s\n", cmd,
                arg ? "takes no argument" : "needs an argument");
        return -1;
    }
    if (needs_id && !queue_cli_id_ok(arg)) {
        fprintf(stderr, "modfilter: not a comment id: %s\n", arg);
        return -1;
    }
    if (o->n_labels > 0 && strcmp(cmd, "reject")) {
        fprintf(stderr, "modfilter: --label goes with reject\n");
        return -1;
    }
    if ((o->limit || o->cursor) && strcmp(cmd, "list") &&
        strcmp(cmd, "history")) {
        fprintf(stderr, "modfilter: --limit and --cursor go with list and "
                        "history\n");
        return -1;
    }
    if (!strcmp(cmd, "length")) {
        snprintf(path, path_len, "/v1/queue?limit=1");
    } else if (!strcmp(cmd, "list") || !strcmp(cmd, "history")) {
        snprintf(path, path_len, "%s?limit=%ld%s%s",
                 cmd[0] == 'l' ? "/v1/queue" : "/v1/history",
                 o->limit ? o->limit : 50, o->cursor ? "&cursor=" : "",
                 o->cursor ? o->cursor : "");
        if (o->cursor &&
            strspn(o->cursor, "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789._:-") != strlen(o->cursor)) {
            fprintf(stderr, "modfilter: not a cursor: %s\n", o->cursor);
            return -1;
        }
    } else if (!strcmp(cmd, "show")) {
        snprintf(path, path_len, "/v1/queue/%s", arg);
    } else if (!strcmp(cmd, "claim")) {
        n = queue_cli_number(arg, 100);
        if (n < 0) {
            fprintf(stderr, "modfilter: claim takes 1 to 100\n");
            return -1;
        }
        *method = "POST";
        snprintf(path, path_len, "/v1/queue/claim");
        b = json_pack("{s:i}", "limit", (int)n);
    } else if (!strcmp(cmd, "approve") || !strcmp(cmd, "reject")) {
        *method = "POST";
        snprintf(path, path_len, "/v1/queue/%s/decision", arg);
        b = json_pack("{s:s}", "decision", cmd);
        if (b != NULL && o->n_labels > 0) {
            labels = json_object();
            for (i = 0; i < o->n_labels; i++)
                json_object_set_new(labels, o->labels[i], json_integer(1));
            json_object_set_new(b, "labels", labels);
        }
    } else if (!strcmp(cmd, "undo")) {
        *method = "POST";
        snprintf(path, path_len, "/v1/queue/%s/undo", arg);
    } else {
        fprintf(stderr, "modfilter: unknown queue command '%s'\n", cmd);
        return -1;
    }
    if (b != NULL) {
        *body = json_dumps(b, JSON_COMPACT);
        json_decref(b);
    }
    return 0;
}

/* What the command did, for people (length: also with --json). */
static void
queue_cli_print(const char *cmd, const char *arg, const json_t *r, int json)
{
    if (!strcmp(cmd, "length")) {
        long long n = json_integer_value(json_object_get(r, "length"));

        /* --json: the length alone, not the page of items it came with */
        printf(json ? "{\"length\":%lld}\n" : "%lld\n", n);
    } else if (!strcmp(cmd, "list") || !strcmp(cmd, "claim")) {
        queue_cli_print_items(r, cmd);
    } else if (!strcmp(cmd, "show")) {
        queue_cli_print_show(r);
    } else if (!strcmp(cmd, "history")) {
        queue_cli_print_history(r);
    } else if (!strcmp(cmd, "undo")) {
        printf("%s: back in the queue (unlearned ", arg);
        queue_cli_print_labels(json_object_get(r, "unlearned"));
        printf(")\n");
    } else {
        printf("%s: %s (labels ", arg,
               !strcmp(cmd, "approve") ? "approved" : "rejected");
        queue_cli_print_labels(json_object_get(r, "labels"));
        printf(")\n");
    }
}

int
cmd_queue(int argc, char **argv)
{
    struct queue_cli_opts o;
    struct queue_cli_reply reply = {0, NULL, 0};
    struct queue_cli_url url;
    const char *pos[1] = {NULL}, *method, *cmd;
    char path[512], *body = NULL;
    json_t *r = NULL;
    struct config *cfg = NULL;
    char cfg_url[600];
    int n_pos = 0, rc = EXIT_USAGE;

    memset(&o, 0, sizeof(o));
    if (argc < 2) {
        fputs(cli_usage_queue, stderr);
        return EXIT_USAGE;
    }
    cmd = argv[1];
    o.url = getenv("MODFILTER_URL");
    o.token = getenv("MODFILTER_TOKEN");
    if (queue_cli_parse(argc, argv, &o, pos, &n_pos) < 0 ||
        queue_cli_request(cmd, pos[0], &o, &method, path, sizeof(path), &body) <
            0) {
        fputs(cli_usage_queue, stderr);
        goto done;
    }
    if (o.config != NULL &&
        queue_cli_from_config(&o, &cfg, cfg_url, sizeof(cfg_url)) < 0) {
        rc = 1; /* the file, not the arguments */
        goto done;
    }
    if (o.url == NULL || o.url[0] == '\0')
        o.url = QUEUE_CLI_DEFAULT_URL;
    if (queue_cli_url_parse(o.url, &url) < 0) {
        fprintf(stderr,
                "modfilter: bad URL '%s' (http://host:port or unix:/path)\n",
                o.url);
        goto done;
    }
    rc = 1;
    if (o.token != NULL && o.token[0] == '\0')
        o.token = NULL;
    if (queue_cli_http(&url, o.token, method, path, body, &reply) < 0)
        goto done;
    r = json_loadb(reply.body, reply.len, 0, NULL);
    if (reply.status != 200) {
        const json_t *e = json_object_get(r, "error");

        if (o.json && reply.len > 0)
            fprintf(stderr, "%s", reply.body);
        fprintf(stderr, "modfilter: %d %s: %s\n", reply.status,
                e ? queue_cli_str(e, "code") : "error",
                e ? queue_cli_str(e, "message") : "the daemon refused");
        goto done;
    }
    if (!json_is_object(r)) {
        fprintf(stderr, "modfilter: the reply is not JSON\n");
        goto done;
    }
    if (o.json && strcmp(cmd, "length"))
        fwrite(reply.body, 1, reply.len, stdout);
    else
        queue_cli_print(cmd, pos[0], r, o.json);
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    json_decref(r);
    free(reply.body);
    free(body);
    config_free(cfg);
    return rc;
}
