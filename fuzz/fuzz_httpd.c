/* libFuzzer target: the HTTP server's connection handling (daemon/httpd.c)
 * on a real event loop and a Unix socket: the input is written by a client
 * in pieces, with the loop run between them; requests are answered at once
 * or later (from the loop), as the routes do; the client then half-closes
 * or closes.  Afterwards every connection must be closed: nothing may be
 * left waiting once the client is gone.  ASan checks the rest (buffers
 * moved under a request, replies after the client left).
 *
 * Input: byte 0 = mode (bit 0: answer later; bit 1: half-close before the
 * close; bit 2: do not read the replies until the end; bits 3-7: piece
 * size - 1), then the bytes the client sends.  With an odd piece size
 * (bit 3 clear), the connection is placed on a second server, as the
 * daemon hands connections between workers: the first server's place hook
 * takes the descriptor and the loop hands it to the second's httpd_adopt. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "httpd.h"

#define FUZZ_MAX_LATER 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static struct httpd *server, *server2; /* server2: placed connections */
static int place_next;                 /* place the next accepted one */
static int placed_fd = -1;             /* taken, not adopted yet */
static struct sockaddr_storage placed_peer;
static struct sockaddr_un addr;
static socklen_t addr_len;
static long open_conns;
static int answer_later;
static struct http_request *later[FUZZ_MAX_LATER];
static unsigned n_later;
static int hold; /* answer nothing later yet */

static void
answer(struct http_request *req)
{
    const char *v = http_request_header(req, "X-Echo");

    if (v != NULL)
        http_reply_header(req, "X-Echo", v);
    http_reply(req, req->too_large ? 413 : 200, "text/plain", req->body,
               req->body_len);
}

/* The requests answered later, as Redis's answers would come: from
 * outside the connection's callbacks, between loop passes. */
static void
answer_later_ones(void)
{
    unsigned i, n = n_later;
    struct http_request *batch[FUZZ_MAX_LATER];

    memcpy(batch, later, n * sizeof(batch[0]));
    n_later = 0;
    for (i = 0; i < n; i++)
        if (batch[i] != NULL) {
            batch[i]->conn->gone = NULL;
            answer(batch[i]);
        }
}

/* The client went away while its request waited. */
static void
gone(void *arg)
{
    unsigned i;

    for (i = 0; i < n_later; i++)
        if (later[i] == arg)
            later[i] = NULL;
}

static void
on_request(struct http_request *req, void *arg)
{
    (void)arg;
    if (req->uri == NULL || req->path == NULL || req->body == NULL ||
        (req->body_len > 0 && req->too_large))
        __builtin_trap();
    if (!answer_later || n_later == FUZZ_MAX_LATER) {
        answer(req);
        return;
    }
    req->conn->gone = gone;
    req->conn->gone_arg = req;
    later[n_later++] = req;
}

static int
on_accepted(struct http_conn *c, const struct sockaddr *peer, void *arg)
{
    (void)c;
    (void)arg;
    if (peer->sa_family != AF_UNIX)
        __builtin_trap();
    open_conns++;
    return 0;
}

static void
on_closed(struct http_conn *c, void *arg)
{
    (void)c;
    (void)arg;
    open_conns--;
}

/* The daemon's http_place, reduced: take the descriptor and let the loop
 * hand it over, as another worker's adopt event would. */
static int
on_place(int fd, const struct sockaddr *peer, socklen_t peer_len, void *arg)
{
    (void)arg;
    if (!place_next)
        return 0;
    if (placed_fd >= 0 || peer_len > sizeof(placed_peer))
        __builtin_trap(); /* one client at a time */
    place_next = 0;
    placed_fd = fd;
    memcpy(&placed_peer, peer, peer_len);
    return 1;
}

static void
setup(void)
{
    struct httpd_config cfg = {2048, 512, 30, 30};
    struct httpd_hooks hooks;
    int fd;

    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    memset(&hooks, 0, sizeof(hooks));
    hooks.accepted = on_accepted;
    hooks.closed = on_closed;
    hooks.request = on_request;
    server2 = httpd_new(base, &cfg, &hooks);
    hooks.place = on_place;
    server = httpd_new(base, &cfg, &hooks);
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    /* An abstract socket: nothing in the file system. */
    snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1,
             "modfilter-fuzz-httpd-%d", (int)getpid());
    addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                           strlen(addr.sun_path + 1));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (base == NULL || server == NULL || server2 == NULL || fd < 0 ||
        bind(fd, (struct sockaddr *)&addr, addr_len) < 0 ||
        listen(fd, 16) < 0 || httpd_listen(server, fd) < 0)
        abort();
}

static void
drain(int fd)
{
    char buf[8192];

    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void
spin(int fd, int read_replies, int rounds)
{
    int i;

    for (i = 0; i < rounds; i++) {
        /* one pass: a descriptor that is always ready must not spin here */
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (placed_fd >= 0) {
            httpd_adopt(server2, placed_fd, (struct sockaddr *)&placed_peer);
            placed_fd = -1;
        }
        if (!hold)
            answer_later_ones();
        if (read_replies)
            drain(fd);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 1, piece;
    int fd, i, read_replies;

    if (size == 0)
        return 0;
    if (base == NULL)
        setup();
    answer_later = data[0] & 1;
    read_replies = !(data[0] & 4);
    piece = 1 + (data[0] >> 3);
    place_next = !(data[0] & 8);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, addr_len) < 0)
        abort();
    fcntl(fd, F_SETFL, O_NONBLOCK);
    spin(fd, 0, 1); /* accept */
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        ssize_t w = write(fd, data + off, n);

        if (w < 0 && errno != EAGAIN)
            break; /* the server closed: the rest is not sent */
        if (w < 0)
            drain(fd); /* both sides full: read, or nothing moves */
        if (w > 0)
            off += (size_t)w;
        hold = off >= size; /* the last request waits past the close */
        spin(fd, read_replies, 2);
    }
    if (data[0] & 2) {
        shutdown(fd, SHUT_WR);
        spin(fd, 1, 8);
    }
    close(fd);
    hold = 1; /* the server sees the client go while requests wait */
    spin(-1, 0, 3);
    hold = 0;
    for (i = 0; i < 200 && open_conns > 0; i++)
        spin(-1, 0, 1);
    answer_later_ones(); /* forgets those whose client went away */
    if (open_conns != 0 || n_later != 0 || placed_fd >= 0)
        __builtin_trap(); /* a connection outlived its client */
    return 0;
}
