/*
 * httpparse.h - HTTP/1.1 request parsing without sockets or allocation:
 * the request head (RFC 9112 section 2-5: request line, header fields,
 * framing), chunked bodies (section 7.1, decoded in place) and query
 * strings (evhttp_parse_query_str's rules).  Pure functions over
 * caller-owned memory; any thread.  httpd.c drives them per connection;
 * tests/unit/test_httpparse.c and fuzz/fuzz_http.c run them on bytes.
 */
#ifndef HTTPPARSE_H
#define HTTPPARSE_H

#include <stddef.h>

/* Methods, as bits (a route's allowed set is a mask). */
enum httpparse_method {
    HTTP_METHOD_GET = 1 << 0,
    HTTP_METHOD_POST = 1 << 1,
    HTTP_METHOD_HEAD = 1 << 2,
    HTTP_METHOD_PUT = 1 << 3,
    HTTP_METHOD_DELETE = 1 << 4,
    HTTP_METHOD_OPTIONS = 1 << 5,
    HTTP_METHOD_PATCH = 1 << 6,
    HTTP_METHOD_TRACE = 1 << 7,   /* known, answered 501 */
    HTTP_METHOD_CONNECT = 1 << 8, /* known, answered 501 */
};

/* The methods the daemon serves (what evhttp was allowed). */
#define HTTP_METHODS_SERVED                                                    \
    (HTTP_METHOD_GET | HTTP_METHOD_POST | HTTP_METHOD_HEAD | HTTP_METHOD_PUT | \
     HTTP_METHOD_DELETE | HTTP_METHOD_OPTIONS | HTTP_METHOD_PATCH)

#define HTTPPARSE_MAX_FIELDS 100 /* header fields of one request */
#define HTTPPARSE_MAX_LINE 1024  /* bytes of a chunk-size line */

/* One header field: offsets into the head (not NUL-terminated). */
struct httpparse_field {
    size_t name, name_len;
    size_t value, value_len; /* without leading and trailing whitespace */
};

struct httpparse_request {
    int method;            /* one HTTP_METHOD_* */
    size_t target;         /* offset of the request target */
    size_t target_len;     /* bytes; the byte after it is the SP */
    int minor;             /* HTTP/1.minor: 0 or 1 */
    size_t head_len;       /* bytes up to and including the empty line */
    unsigned n_fields;     /* in the order received, repeats kept */
    int chunked;           /* Transfer-Encoding: chunked */
    int has_length;        /* a Content-Length field */
    size_t content_length; /* its value (<= max_body unless too_large) */
    int too_large;         /* Content-Length over the caller's max_body */
    int keep_alive;        /* per version and Connection; never for
                              HTTP/1.0 with Transfer-Encoding */
    int expect_continue;   /* Expect: 100-continue (HTTP/1.1) */
    struct httpparse_field fields[HTTPPARSE_MAX_FIELDS];
};

/* Parse the request head at buf (len bytes received so far).  Empty lines
 * before the request line are skipped (counted in head_len).  Returns the
 * head's length (> 0) with *r filled; 0 when the head is not complete yet
 * (and len <= max_head); or a negative HTTP status: -400 malformed
 * (including obs-fold, a bad Content-Length, Content-Length with
 * Transfer-Encoding), -431 a head over max_head bytes or with more than
 * HTTPPARSE_MAX_FIELDS fields, -501 an unknown method, TRACE, CONNECT or
 * a transfer coding other than chunked, -505 a version other than
 * HTTP/1.0 and HTTP/1.1.  A Content-Length over max_body is not an error
 * here: r->too_large says so. */
long httpparse_head(const char *buf, size_t len, size_t max_head,
                    size_t max_body, struct httpparse_request *r);

/* The first field called name (case-insensitive) of r, or NULL; *len gets
 * its value's length.  The value points into buf. */
const char *httpparse_field(const struct httpparse_request *r, const char *buf,
                            const char *name, size_t *len);

/* A chunked body being decoded in place: data bytes are moved down so that
 * the body ends up contiguous at the offset where it began. */
struct httpparse_chunked {
    size_t in;      /* offset of the next byte to decode */
    size_t out;     /* offset of the end of the decoded body */
    size_t start;   /* offset where the body began */
    size_t left;    /* data bytes left in the current chunk */
    size_t trailer; /* bytes of trailer fields so far */
    int state;      /* httpparse.c's */
};

/* Start decoding a body at offset start of the buffer. */
void httpparse_chunked_init(struct httpparse_chunked *c, size_t start);
/* Decode buf[c->in, len).  1 when the body is complete: it is
 * buf[c->start, c->out) and the request's bytes end at c->in; 0 when more
 * is needed; -400 malformed (a bad chunk size or line end, a chunk-size
 * line over HTTPPARSE_MAX_LINE); -413 the body passes max_body; -431 the
 * trailer fields pass max_trailer bytes.  Bytes between c->out and c->in
 * are garbage: the caller may remove them (httpparse_chunked_squeeze). */
int httpparse_chunked(char *buf, size_t len, size_t max_body,
                      size_t max_trailer, struct httpparse_chunked *c);
/* Remove the decoded-away gap of buf (*len bytes): what follows c->in
 * moves down to c->out.  Returns the bytes freed. */
size_t httpparse_chunked_squeeze(char *buf, size_t *len,
                                 struct httpparse_chunked *c);

/* Look up name in a query string (without '?'), by evhttp_parse_query_str's
 * rules: '&'-separated key=value pairs, the key taken as is, the value
 * %XX- and '+'-decoded (a '%' without two hex digits stays literal); a
 * pair without '=' or with an empty key makes the whole query malformed.
 * The first pair called name is decoded into out (out_len bytes,
 * NUL-terminated, truncated when short).  Returns the decoded value's full
 * length, -1 when name is absent, -2 when the query is malformed. */
long httpparse_query_get(const char *query, const char *name, char *out,
                         size_t out_len);

/* The decoded form of %XX (and '+' when plus) text (in, len bytes) into
 * out (at least len bytes; not NUL-terminated); returns the decoded
 * length (<= len).  The same rules as httpparse_query_get; form.c's. */
size_t httpparse_decode(const char *in, size_t len, char *out, int plus);

#endif
