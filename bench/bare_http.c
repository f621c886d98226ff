/*
 * bare_http.c - the yardstick for `make bench`: an evhttp server on N
 * threads that answers every request with a fixed JSON reply, so the
 * daemon's throughput can be read as a ratio to "HTTP alone" measured in
 * the same run on the same machine.
 *
 * usage: bare_http PORT_FILE THREADS   (binds 127.0.0.1:0, writes the port)
 * Runs until SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static const char reply[] =
    "{\"id\":\"x\",\"scores\":{\"spam\":0.1,\"abuse\":0.1},\"unsure\":[],"
    "\"verdict\":\"allow\",\"queued\":false,\"lang\":\"english\"}";

static void
answer(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, reply, sizeof reply - 1);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void *
loop(void *arg)
{
    event_base_dispatch(arg);
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bare_http PORT_FILE THREADS\n");
        return 2;
    }
    int n = atoi(argv[2]);
    if (n < 1 || n > 64)
        return 2;
    evthread_use_pthreads();
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        perror("bind");
        return 1;
    }
    evutil_make_socket_nonblocking(fd);
    pthread_t th[64];
    for (int i = 0; i < n; i++) {
        struct event_base *base = event_base_new();
        struct evhttp *http = evhttp_new(base);
        evhttp_set_gencb(http, answer, NULL);
        evhttp_accept_socket(http, i ? dup(fd) : fd);
        pthread_create(&th[i], NULL, loop, base);
    }
    FILE *f = fopen(argv[1], "w");
    if (!f)
        return 1;
    fprintf(f, "%d\n", ntohs(sa.sin_port));
    fclose(f);
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sigwait(&set, &sig);
    return 0;
}
