/*
 * spool.c - the local spool: comments Redis could not take, kept on disk
 * until a drainer thread has handed them to Redis.  Contract in
 * modfilterd.h; the operator's view in README.md ("Spool").
 *
 * Files in spool.path (mode 0700, created if missing):
 *
 *   seg-<seq, 16 hex digits>.spool   a segment: header, then records
 *   drained                          the checkpoint (seq, offset)
 *   lock                             flock'd while a daemon uses the spool
 *
 * Segment header, 16 bytes: "MFSPOOL1", u32 version (1), u32 0.
 * Record: a 16-byte frame, then the payload:
 *
 *   u8[4] magic F5 'S' 'R' 00   (0xF5 never occurs in UTF-8 JSON text)
 *   u32   payload length
 *   u64   XXH3-64 of the payload, seeded with its length
 *   payload: u8 version (1), u8 0, u16 id length, u32 JSON length,
 *            i64 received_ms, u64 urgency (IEEE 754 bits), id, JSON
 *
 * Integers are little-endian.  The checkpoint file is 32 bytes: "MFSPCKP1",
 * u64 seq, u64 offset, u64 XXH3-64 of the first 24 bytes; every record
 * before (seq, offset) is in Redis.
 *
 * Crash safety.  A record is written with one pwrite at the end of the
 * active segment and fdatasync'd before its append is answered (a new
 * segment's directory entry is fsync'd first), so an acknowledged record
 * is complete on disk.  A crash during a group commit leaves any part of
 * the batch's records (none acknowledged) at the tail: whole ones are
 * drained like any other, a torn one the reader finds by its frame
 * (bad magic, a length past the end, a checksum that does not match),
 * logs it and skips it; a damaged record in the middle is skipped by
 * looking for the next offset where a whole record checks out, so nothing
 * after it is lost.  A restarted spool never appends to an old segment:
 * appends go to a new segment whose seq is above every seq seen (files
 * and checkpoint), so a checkpoint never points into new data.  The
 * checkpoint is written after Redis acknowledged every record before it
 * (temporary file, fsync, rename, fsync of the directory), then drained
 * segments are deleted.  Losing the checkpoint (or any crash between a
 * submit and its checkpoint) only re-sends records, and queue_submit is
 * idempotent per id: Redis answers "exists", and nothing is queued twice.
 *
 * Threads: appends come from every worker (spool_client_append) and from
 * spool_append; they queue under s->qmu for one writer thread.  Group
 * commit: the writer takes everything queued, pwrites each record, calls
 * fdatasync once, publishes the new size, and only then answers each
 * request (a client's callback runs on its worker's loop, woken by an
 * event); what arrives during an fdatasync waits for the next one, so the
 * busier the spool, the more records one fdatasync covers.  Workers never
 * wait for the disk, only for s->qmu (a list append).  The writer holds
 * s->mu while it writes and syncs; one reader, the drainer thread, reads
 * with its own file descriptors up to the size published under s->mu, so
 * it never sees a record that is not yet durable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <xxhash.h>

#include "modfilterd.h"
#include "queue.h"

_Static_assert(SPOOL_ID_MAX == QUEUE_ID_MAX, "spool ids are queue ids");

#define SPOOL_SEG_MAGIC "MFSPOOL1"
#define SPOOL_SEG_HDR 16
#define SPOOL_FRAME 16
#define SPOOL_PAYLOAD_HDR 24
#define SPOOL_CKPT_MAGIC "MFSPCKP1"
#define SPOOL_CKPT_LEN 32
#define SPOOL_SEGMENT_MAX (8u << 20) /* then a new segment */
#define SPOOL_SCAN_CHUNK 65536
#define SPOOL_DRAIN_TICK_MS 100
#define SPOOL_DRAIN_RETRY_MS 1000
#define SPOOL_BATCH_RECORDS 256
#define SPOOL_BATCH_BYTES (4u << 20)

static const unsigned char spool_rec_magic[4] = {0xF5, 'S', 'R', 0x00};

struct spool_drain;

/* One append, from spool_append (on the caller's stack; done is set under
 * s->qmu) or spool_client_append (malloc'd; delivered to its client). */
struct spool_req {
    struct spool_req *next;
    unsigned char *buf; /* the encoded record (owned) */
    size_t len;
    int written; /* pwritten, waiting for its group's fdatasync */
    int err;     /* 0: durable; else an errno */
    int done;    /* spool_append: the writer is finished with it */
    struct spool_client *client; /* NULL for spool_append */
    spool_done_cb *cb;
    void *arg;
};

struct spool {
    /* The writer's queue: appends from any thread, taken by the writer
     * thread a whole batch at a time (one fdatasync for the batch). */
    pthread_mutex_t qmu;
    pthread_cond_t work_cv, done_cv;
    struct spool_req *q_head, **q_tail;
    pthread_t writer;
    int writer_started, writer_stopping;
    unsigned long long syncs; /* atomic: fdatasyncs of appended records */
    pthread_mutex_t mu;
    char *dir;
    int dirfd;
    int lockfd; /* flock'd: one daemon per spool */
    unsigned long long max_bytes;
    /* Under mu: the segment appends go to (fd -1: none yet). */
    int active_fd;
    unsigned long long active_seq, active_size, next_seq;
    int full_logged;
    int io_failed; /* atomic: the last append failed with an I/O error */
    /* The checkpoint (drainer thread only, after open). */
    unsigned long long ck_seq, ck_off;
    /* Atomics: backlog (not yet in Redis), bytes on disk, counters. */
    unsigned long long records, bytes, disk_bytes;
    unsigned long long appended, drained, skipped, failed;
    struct spool_drain *drain;
    /* The ids of the backlog (spool_holds): a multiset of 64-bit hashes
     * (0: an empty slot), open addressing, under imu.  Added when an
     * append is durable (before it is answered) and for each record found
     * at open; taken out once Redis has the record (the drainer's batch
     * committed).  lost: an entry could not be added (no memory). */
    pthread_mutex_t imu;
    struct spool_slot {
        uint64_t h;
        unsigned long long n;
    } * index;
    size_t index_cap, index_used;
    int index_lost;
};

/* ---- encoding --------------------------------------------------------- */

static void
spool_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void
spool_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
spool_get32(const unsigned char *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t
spool_get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t
spool_sum(const unsigned char *payload, uint32_t len)
{
    return XXH3_64bits_withSeed(payload, len, len);
}

size_t
spool_encode(const struct spool_record *r, unsigned char **out)
{
    size_t id_len = r->id != NULL ? strlen(r->id) : 0;
    size_t len = SPOOL_PAYLOAD_HDR + id_len + r->json_len;
    unsigned char *b, *p;
    uint64_t bits;
    double u = isnan(r->urgency) ? 0 : r->urgency;

    *out = NULL;
    if (id_len == 0 || id_len > QUEUE_ID_MAX || memchr(r->id, 0, id_len) ||
        r->json_len > SPOOL_RECORD_MAX || (r->json == NULL && r->json_len))
        return 0;
    b = malloc(SPOOL_FRAME + len);
    if (b == NULL)
        return 0;
    p = b + SPOOL_FRAME;
    p[0] = 1;
    p[1] = 0;
    p[2] = (unsigned char)id_len;
    p[3] = (unsigned char)(id_len >> 8);
    spool_put32(p + 4, (uint32_t)r->json_len);
    spool_put64(p + 8, (uint64_t)r->received_ms);
    memcpy(&bits, &u, sizeof(bits));
    spool_put64(p + 16, bits);
    memcpy(p + SPOOL_PAYLOAD_HDR, r->id, id_len);
    if (r->json_len)
        memcpy(p + SPOOL_PAYLOAD_HDR + id_len, r->json, r->json_len);
    memcpy(b, spool_rec_magic, 4);
    spool_put32(b + 4, (uint32_t)len);
    spool_put64(b + 8, spool_sum(p, (uint32_t)len));
    *out = b;
    return SPOOL_FRAME + len;
}

/* The payload's fields (p: len bytes that passed the checksum) into out;
 * id is copied to idbuf.  -1 when the fields do not add up. */
static int
spool_payload(const unsigned char *p, size_t len, char *idbuf,
              struct spool_record *out)
{
    size_t id_len, json_len;
    uint64_t bits;

    if (len < SPOOL_PAYLOAD_HDR || p[0] != 1)
        return -1;
    id_len = (size_t)p[2] | (size_t)p[3] << 8;
    json_len = spool_get32(p + 4);
    if (id_len == 0 || id_len > QUEUE_ID_MAX ||
        SPOOL_PAYLOAD_HDR + id_len + json_len != len ||
        memchr(p + SPOOL_PAYLOAD_HDR, 0, id_len))
        return -1;
    memcpy(idbuf, p + SPOOL_PAYLOAD_HDR, id_len);
    idbuf[id_len] = '\0';
    out->id = idbuf;
    out->json = (const char *)p + SPOOL_PAYLOAD_HDR + id_len;
    out->json_len = json_len;
    out->received_ms = (long long)spool_get64(p + 8);
    bits = spool_get64(p + 16);
    memcpy(&out->urgency, &bits, sizeof(bits));
    return 0;
}

/* ---- the backlog's ids ------------------------------------------------ */

uint64_t
spool_id_hash(const char *id, size_t len)
{
    uint64_t h = XXH3_64bits(id, len);

    return h ? h : 1;
}

/* The slot of h, or the empty one where it goes.  cap > used. */
static struct spool_slot *
spool_slot(struct spool_slot *t, size_t cap, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);

    while (t[i].h != 0 && t[i].h != h)
        i = (i + 1) & (cap - 1);
    return &t[i];
}

/* One more record of id (len bytes) in the backlog.  Under imu. */
static void
spool_index_add(struct spool *s, const char *id, size_t len)
{
    uint64_t h = spool_id_hash(id, len);
    struct spool_slot *e;
    size_t i;

    if (2 * (s->index_used + 1) > s->index_cap) {
        size_t cap = s->index_cap ? 2 * s->index_cap : 1024;
        struct spool_slot *t = calloc(cap, sizeof(*t));

        if (t == NULL) {
            if (!s->index_lost)
                log_warnx("spool %s: out of memory for the backlog's ids; "
                          "a resubmitted id may not be found there",
                          s->dir);
            s->index_lost = 1;
            return;
        }
        for (i = 0; i < s->index_cap; i++)
            if (s->index[i].h != 0)
                *spool_slot(t, cap, s->index[i].h) = s->index[i];
        free(s->index);
        s->index = t;
        s->index_cap = cap;
    }
    e = spool_slot(s->index, s->index_cap, h);
    if (e->h == 0) {
        e->h = h;
        s->index_used++;
    }
    e->n++;
}

/* One record of hash h left the backlog.  Under imu. */
static void
spool_index_remove(struct spool *s, uint64_t h)
{
    struct spool_slot *e;
    size_t i, j, k, mask = s->index_cap - 1;

    if (s->index_cap == 0)
        return;
    e = spool_slot(s->index, s->index_cap, h);
    if (e->h == 0 || --e->n > 0)
        return;
    /* Backward-shift deletion keeps every probe chain whole. */
    i = (size_t)(e - s->index);
    for (j = (i + 1) & mask; s->index[j].h != 0; j = (j + 1) & mask) {
        k = (size_t)s->index[j].h & mask; /* where j's entry wants to be */
        if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
            s->index[i] = s->index[j];
            i = j;
        }
    }
    s->index[i].h = 0;
    s->index[i].n = 0;
    s->index_used--;
}

/* The id of an encoded record (buf as spool_encode makes it). */
static void
spool_index_add_encoded(struct spool *s, const unsigned char *buf)
{
    const unsigned char *p = buf + SPOOL_FRAME;

    spool_index_add(s, (const char *)p + SPOOL_PAYLOAD_HDR,
                    (size_t)p[2] | (size_t)p[3] << 8);
}

int
spool_holds(struct spool *s, const char *id)
{
    uint64_t h;
    int found;

    if (s == NULL)
        return 0;
    h = spool_id_hash(id, strlen(id));
    pthread_mutex_lock(&s->imu);
    found = s->index_cap > 0 && spool_slot(s->index, s->index_cap, h)->h == h;
    pthread_mutex_unlock(&s->imu);
    return found;
}

/* ---- files ------------------------------------------------------------ */

static int
spool_seg_name(const char *name, unsigned long long *seq)
{
    unsigned long long v = 0;
    int i;

    if (strncmp(name, "seg-", 4) || strlen(name) != 4 + 16 + 6 ||
        strcmp(name + 20, ".spool"))
        return 0;
    for (i = 4; i < 20; i++) {
        char ch = name[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                         : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (unsigned)d;
    }
    *seq = v;
    return 1;
}

static void
spool_seg_path(char *buf, size_t len, unsigned long long seq)
{
    snprintf(buf, len, "seg-%016llx.spool", seq);
}

static DIR *
spool_opendir(struct spool *s)
{
    int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

    if (d == NULL && fd >= 0)
        close(fd);
    return d;
}

/* 1 with the smallest published segment seq > after in *seq, 0 when there
 * is none (*seq untouched), -1 when the directory cannot be read. */
static int
spool_next_seg(struct spool *s, unsigned long long after,
               unsigned long long *seq)
{
    DIR *d = spool_opendir(s);
    struct dirent *e;
    unsigned long long best = 0, v;
    int found = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (spool_seg_name(e->d_name, &v) && v > after &&
            (!found || v < best)) {
            best = v;
            found = 1;
        }
    closedir(d);
    if (found) {
        /* A segment still being created is not there yet. */
        pthread_mutex_lock(&s->mu);
        if (best >= s->next_seq)
            found = 0;
        pthread_mutex_unlock(&s->mu);
    }
    if (found)
        *seq = best;
    return found;
}

/* Remove every segment with seq < below, never the active one or one
 * being created; returns the bytes freed. */
static unsigned long long
spool_remove_below(struct spool *s, unsigned long long below)
{
    DIR *d = spool_opendir(s);
    struct dirent *e;
    unsigned long long freed = 0, active = ~0ULL, v;

    if (d == NULL)
        return 0;
    pthread_mutex_lock(&s->mu);
    if (below > s->next_seq)
        below = s->next_seq;
    if (s->active_fd >= 0)
        active = s->active_seq;
    pthread_mutex_unlock(&s->mu);
    while ((e = readdir(d)) != NULL) {
        struct stat sb;

        if (!spool_seg_name(e->d_name, &v) || v >= below || v == active)
            continue;
        if (fstatat(s->dirfd, e->d_name, &sb, 0) == 0 &&
            unlinkat(s->dirfd, e->d_name, 0) == 0)
            freed += (unsigned long long)sb.st_size;
        else
            log_warn("spool %s/%s: cannot remove", s->dir, e->d_name);
    }
    closedir(d);
    return freed;
}

static int
spool_write_all(int fd, const unsigned char *p, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* 1 when all len bytes were read, 0 at a short file, -1 on error. */
static int
spool_read_all(int fd, unsigned char *p, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pread(fd, p, len, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 1;
}

static int
spool_ckpt_read(struct spool *s)
{
    unsigned char b[SPOOL_CKPT_LEN];
    int fd = openat(s->dirfd, "drained", O_RDONLY | O_CLOEXEC);
    int r;

    s->ck_seq = s->ck_off = 0;
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    r = spool_read_all(fd, b, sizeof(b), 0);
    close(fd);
    if (r < 0)
        return -1;
    if (r == 0 || memcmp(b, SPOOL_CKPT_MAGIC, 8) ||
        XXH3_64bits(b, 24) != spool_get64(b + 24)) {
        /* Re-sending is harmless (idempotent submits); losing is not. */
        log_warnx("spool %s/drained: unreadable checkpoint; every record "
                  "in the spool will be sent again",
                  s->dir);
        return 0;
    }
    s->ck_seq = spool_get64(b + 8);
    s->ck_off = spool_get64(b + 16);
    return 0;
}

static int
spool_ckpt_write(struct spool *s, unsigned long long seq,
                 unsigned long long off)
{
    unsigned char b[SPOOL_CKPT_LEN];
    int fd;

    memcpy(b, SPOOL_CKPT_MAGIC, 8);
    spool_put64(b + 8, seq);
    spool_put64(b + 16, off);
    spool_put64(b + 24, XXH3_64bits(b, 24));
    fd = openat(s->dirfd, "drained.tmp",
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    if (spool_write_all(fd, b, sizeof(b), 0) < 0 || fsync(fd) < 0) {
        close(fd);
        goto fail;
    }
    if (close(fd) < 0 ||
        renameat(s->dirfd, "drained.tmp", s->dirfd, "drained") < 0 ||
        fsync(s->dirfd) < 0)
        goto fail;
    s->ck_seq = seq;
    s->ck_off = off;
    return 0;
fail:
    log_warn("spool %s/drained: cannot write the checkpoint", s->dir);
    return -1;
}

/* ---- reading ---------------------------------------------------------- */

void
spool_cursor_init(struct spool *s, struct spool_cursor *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->seq = s->ck_seq;
    c->off = s->ck_off;
}

void
spool_cursor_release(struct spool_cursor *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
}

/* Where reading segment seq must stop: the published size of the active
 * segment, the file's size for the others.  *active: appends may follow. */
static unsigned long long
spool_limit(struct spool *s, int fd, unsigned long long seq, int *active)
{
    unsigned long long lim;
    struct stat sb;

    pthread_mutex_lock(&s->mu);
    *active = s->active_fd >= 0 && s->active_seq == seq;
    lim = s->active_size;
    pthread_mutex_unlock(&s->mu);
    if (*active)
        return lim;
    return fstat(fd, &sb) == 0 ? (unsigned long long)sb.st_size : 0;
}

static int
spool_reserve(struct spool_cursor *c, size_t len)
{
    unsigned char *b;

    if (c->cap >= len)
        return 0;
    b = realloc(c->buf, len);
    if (b == NULL)
        return -1;
    c->buf = b;
    c->cap = len;
    return 0;
}

/* 1 when a whole record starts at off (before lim), 0 when not, -1 on an
 * I/O error.  *len gets its length; its payload is left in c->buf. */
static int
spool_check_at(struct spool_cursor *c, unsigned long long off,
               unsigned long long lim, size_t *len)
{
    unsigned char fr[SPOOL_FRAME];
    uint32_t plen;
    int r;

    if (lim < off || lim - off < SPOOL_FRAME)
        return 0;
    r = spool_read_all(c->fd, fr, SPOOL_FRAME, (off_t)off);
    if (r <= 0)
        return r;
    plen = spool_get32(fr + 4);
    if (memcmp(fr, spool_rec_magic, 4) || plen < SPOOL_PAYLOAD_HDR + 1 ||
        plen > SPOOL_PAYLOAD_HDR + QUEUE_ID_MAX + SPOOL_RECORD_MAX ||
        lim - off - SPOOL_FRAME < plen)
        return 0;
    if (spool_reserve(c, plen) < 0)
        return -1;
    r = spool_read_all(c->fd, c->buf, plen, (off_t)(off + SPOOL_FRAME));
    if (r <= 0)
        return r;
    if (spool_sum(c->buf, plen) != spool_get64(fr + 8))
        return 0;
    *len = SPOOL_FRAME + plen;
    return 1;
}

/* The next offset after off (before lim) where a whole record starts, or
 * lim when none; -1 on an I/O error. */
static long long
spool_resync(struct spool_cursor *c, unsigned long long off,
             unsigned long long lim)
{
    unsigned char chunk[SPOOL_SCAN_CHUNK];
    unsigned long long pos = off + 1;

    while (pos + SPOOL_FRAME <= lim) {
        size_t n =
            lim - pos < sizeof(chunk) ? (size_t)(lim - pos) : sizeof(chunk);
        size_t i;

        if (spool_read_all(c->fd, chunk, n, (off_t)pos) <= 0)
            return -1;
        for (i = 0; i + 4 <= n; i++) {
            size_t len;
            int r;

            if (chunk[i] != spool_rec_magic[0] ||
                memcmp(chunk + i, spool_rec_magic, 4))
                continue;
            r = spool_check_at(c, pos + i, lim, &len);
            if (r < 0)
                return -1;
            if (r == 1)
                return (long long)(pos + i);
        }
        if (n < 4)
            break;
        pos += n - 3; /* a magic may straddle two chunks */
    }
    return (long long)lim;
}

/* Open segment c->seq, or the next one after it; 1 when one is open, 0
 * when there is none (yet), -1 on an error. */
static int
spool_open_seg(struct spool *s, struct spool_cursor *c)
{
    unsigned char h[SPOOL_SEG_HDR];
    char name[40];

    for (;;) {
        unsigned long long next;
        int r;

        spool_seg_path(name, sizeof(name), c->seq);
        c->fd = c->seq ? openat(s->dirfd, name, O_RDONLY | O_CLOEXEC) : -1;
        if (c->fd >= 0) {
            if (c->off >= SPOOL_SEG_HDR)
                return 1;
            r = spool_read_all(c->fd, h, sizeof(h), 0);
            if (r == 1 && !memcmp(h, SPOOL_SEG_MAGIC, 8) &&
                spool_get32(h + 8) == 1) {
                c->off = SPOOL_SEG_HDR;
                return 1;
            }
            if (r < 0)
                return -1;
            /* A torn header: the segment was being created; nothing in it
             * was ever acknowledged. */
            log_warnx("spool %s/%s: not a spool segment (bad header); "
                      "skipped",
                      s->dir, name);
            close(c->fd);
            c->fd = -1;
        } else if (c->seq && errno != ENOENT) {
            log_warn("spool %s/%s", s->dir, name);
            return -1;
        }
        r = spool_next_seg(s, c->seq, &next);
        if (r <= 0)
            return r;
        c->seq = next;
        c->off = 0;
        c->at_end = 0;
    }
}

int
spool_read(struct spool *s, struct spool_cursor *c, struct spool_record *out)
{
    for (;;) {
        unsigned long long lim;
        size_t len;
        long long next;
        int active, r;

        if (c->fd < 0) {
            r = spool_open_seg(s, c);
            if (r <= 0)
                return r;
        }
        lim = spool_limit(s, c->fd, c->seq, &active);
        if (c->off >= lim) {
            if (active)
                return 0;
            /* Done with this one: on to the next segment, if any. */
            close(c->fd);
            c->fd = -1;
            r = spool_next_seg(s, c->seq, &c->seq);
            if (r <= 0) {
                if (r == 0) {
                    c->off = lim;
                    c->at_end = 1;
                }
                return r;
            }
            c->off = 0;
            c->at_end = 0;
            continue;
        }
        r = spool_check_at(c, c->off, lim, &len);
        if (r < 0)
            goto io;
        if (r == 1 &&
            spool_payload(c->buf, len - SPOOL_FRAME, c->id, out) == 0) {
            c->off += len;
            c->records++;
            c->bytes += len;
            return 1;
        }
        next = spool_resync(c, c->off, lim);
        if (next < 0)
            goto io;
        log_warnx("spool %s/seg-%016llx.spool: %s at offset %llu; skipped "
                  "%llu bytes%s",
                  s->dir, c->seq,
                  (unsigned long long)next == lim ? "torn or damaged tail"
                                                  : "damaged record",
                  c->off, (unsigned long long)next - c->off,
                  (unsigned long long)next == lim ? ""
                                                  : " to the next good record");
        c->skipped++;
        c->off = (unsigned long long)next;
    }
io:
    log_warn("spool %s: reading seg-%016llx.spool", s->dir, c->seq);
    return -1;
}

int
spool_commit(struct spool *s, struct spool_cursor *c, const uint64_t *ids,
             size_t n)
{
    unsigned long long freed, lost = 0;
    int empty = 0;
    size_t i;

    if (c->seq != s->ck_seq || c->off != s->ck_off)
        if (spool_ckpt_write(s, c->seq, c->off) < 0)
            return -1;
    __atomic_sub_fetch(&s->records, c->records, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&s->bytes, c->bytes, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->drained, c->records, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->skipped, c->skipped, __ATOMIC_RELAXED);
    c->records = c->bytes = c->skipped = 0;
    /* A finished segment with nothing after it goes too. */
    freed = spool_remove_below(s, c->seq + (c->at_end ? 1 : 0));
    pthread_mutex_lock(&s->mu);
    /* All of the active segment is in Redis: retire it (the next append
     * starts a new one, above the checkpoint's seq). */
    if (s->active_fd >= 0 && s->active_seq == c->seq &&
        s->active_size == c->off) {
        char name[40];

        spool_seg_path(name, sizeof(name), s->active_seq);
        close(s->active_fd);
        s->active_fd = -1;
        if (unlinkat(s->dirfd, name, 0) == 0)
            freed += s->active_size;
        else
            log_warn("spool %s/%s: cannot remove", s->dir, name);
        /* Every published record has been read and is in Redis, and none
         * is published while mu is held: the backlog is empty. */
        empty = 1;
        lost = __atomic_exchange_n(&s->records, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->bytes, 0, __ATOMIC_RELAXED);
    }
    __atomic_sub_fetch(&s->disk_bytes, freed, __ATOMIC_RELAXED);
    pthread_mutex_lock(&s->imu);
    for (i = 0; i < n; i++)
        spool_index_remove(s, ids[i]);
    if (empty && s->index_cap > 0) { /* what is left: damaged records */
        memset(s->index, 0, s->index_cap * sizeof(*s->index));
        s->index_used = 0;
    }
    pthread_mutex_unlock(&s->imu);
    pthread_mutex_unlock(&s->mu);
    if (lost > 0)
        log_warnx("spool %s: %llu acknowledged record(s) were damaged on "
                  "disk and could not be sent to Redis (see the damage "
                  "logged above)",
                  s->dir, lost);
    return 0;
}

/* ---- open, append, close ---------------------------------------------- */

static struct spool *
spool_alloc(const char *dir, unsigned long long max_bytes)
{
    struct spool *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_mutex_init(&s->imu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    s->q_tail = &s->q_head;
    s->dirfd = s->active_fd = s->lockfd = -1;
    s->max_bytes = max_bytes;
    s->dir = strdup(dir);
    if (s->dir == NULL) {
        spool_close(s);
        return NULL;
    }
    return s;
}

/* From the checkpoint (read already): the segments' bytes on disk, the
 * next segment's seq, and the backlog (damaged records are logged and
 * counted in skipped).  -1 with a reason in err. */
static int
spool_scan(struct spool *s, unsigned long long *skipped, char *err,
           size_t errlen)
{
    struct spool_cursor c;
    struct spool_record r;
    unsigned long long seq = 0, last = s->ck_seq;
    struct stat sb;
    int n;

    s->next_seq = ~0ULL; /* every segment is there; set below */
    while ((n = spool_next_seg(s, seq, &seq)) == 1) {
        char name[40];

        spool_seg_path(name, sizeof(name), seq);
        if (fstatat(s->dirfd, name, &sb, 0) == 0)
            s->disk_bytes += (unsigned long long)sb.st_size;
        last = seq;
    }
    if (n < 0) {
        snprintf(err, errlen, "spool.path %s: %s", s->dir, strerror(errno));
        return -1;
    }
    s->next_seq = last + 1;
    spool_cursor_init(s, &c);
    while ((n = spool_read(s, &c, &r)) == 1) {
        pthread_mutex_lock(&s->imu);
        spool_index_add(s, r.id, strlen(r.id));
        pthread_mutex_unlock(&s->imu);
    }
    s->records = c.records;
    s->bytes = c.bytes;
    *skipped = c.skipped;
    spool_cursor_release(&c);
    if (n < 0) {
        snprintf(err, errlen, "spool.path %s: cannot read the spool", s->dir);
        return -1;
    }
    return 0;
}

struct spool *
spool_open(const char *dir, unsigned long long max_bytes, char *err,
           size_t errlen)
{
    struct spool *s = spool_alloc(dir, max_bytes);
    unsigned long long skipped;
    int n;

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "spool.path %s: cannot create: %s", dir,
                 strerror(errno));
        goto fail;
    }
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        snprintf(err, errlen, "spool.path %s: %s", dir, strerror(errno));
        goto fail;
    }
    /* Can we create files here?  (Root ignores modes: try.) */
    n = openat(s->dirfd, "drained.tmp",
               O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (n < 0) {
        snprintf(err, errlen, "spool.path %s: cannot write: %s", dir,
                 strerror(errno));
        goto fail;
    }
    close(n);
    unlinkat(s->dirfd, "drained.tmp", 0);
    /* Two daemons on one spool would send each other's records and
     * delete each other's segments. */
    s->lockfd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lockfd < 0 || flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "spool.path %s: %s", dir,
                 errno == EWOULDBLOCK ? "in use by another modfilterd"
                                      : strerror(errno));
        goto fail;
    }
    if (spool_ckpt_read(s) < 0) {
        snprintf(err, errlen, "spool.path %s/drained: %s", dir,
                 strerror(errno));
        goto fail;
    }
    s->next_seq = ~0ULL; /* every segment is there */
    spool_remove_below(s, s->ck_seq);
    if (spool_scan(s, &skipped, err, errlen) < 0)
        goto fail;
    return s;
fail:
    spool_close(s);
    return NULL;
}

int
spool_check(const char *dir, struct spool_stats *out, char *err, size_t errlen)
{
    struct spool *s = spool_alloc(dir, 0);
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        snprintf(err, errlen, "spool.path %s: %s", dir, strerror(errno));
        goto out;
    }
    if (spool_ckpt_read(s) < 0) {
        snprintf(err, errlen, "spool.path %s/drained: %s", dir,
                 strerror(errno));
        goto out;
    }
    if (spool_scan(s, &out->skipped, err, errlen) < 0)
        goto out;
    out->records = s->records;
    out->bytes = s->bytes;
    out->disk_bytes = s->disk_bytes;
    ret = 0;
out:
    spool_close(s);
    return ret;
}

void
spool_close(struct spool *s)
{
    if (s == NULL)
        return;
    spool_drain_stop(s);
    if (s->writer_started) { /* it finishes what is queued first */
        pthread_mutex_lock(&s->qmu);
        s->writer_stopping = 1;
        pthread_cond_signal(&s->work_cv);
        pthread_mutex_unlock(&s->qmu);
        pthread_join(s->writer, NULL);
    }
    if (s->active_fd >= 0)
        close(s->active_fd);
    if (s->dirfd >= 0)
        close(s->dirfd);
    if (s->lockfd >= 0)
        close(s->lockfd); /* and the lock with it */
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->qmu);
    pthread_mutex_destroy(&s->imu);
    free(s->index);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    free(s->dir);
    free(s);
}

/* A new active segment (under mu): its header written, its directory
 * entry durable. */
static int
spool_new_segment(struct spool *s)
{
    unsigned char h[SPOOL_SEG_HDR];
    char name[40];
    int fd;

    spool_seg_path(name, sizeof(name), s->next_seq);
    fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    memcpy(h, SPOOL_SEG_MAGIC, 8);
    spool_put32(h + 8, 1);
    spool_put32(h + 12, 0);
    if (spool_write_all(fd, h, sizeof(h), 0) < 0 || fsync(s->dirfd) < 0) {
        close(fd);
        unlinkat(s->dirfd, name, 0);
        goto fail;
    }
    s->active_fd = fd;
    s->active_seq = s->next_seq++;
    s->active_size = SPOOL_SEG_HDR;
    __atomic_add_fetch(&s->disk_bytes, SPOOL_SEG_HDR, __ATOMIC_RELAXED);
    return 0;
fail:
    log_warn("spool %s/%s: cannot create", s->dir, name);
    return -1;
}

/* The active segment failed a write: stop appending to it (the reader
 * skips its tail), so the next append starts clean. */
static void
spool_abandon(struct spool *s)
{
    if (ftruncate(s->active_fd, (off_t)s->active_size) == 0 &&
        fdatasync(s->active_fd) == 0)
        return;
    close(s->active_fd);
    s->active_fd = -1;
}

/* The records of [from, to) that were written are durable once
 * fdatasync returns (err 0): publish them up to size.  Otherwise they fail
 * with the error and the segment is abandoned (its unsynced tail cut).
 * Under mu. */
static void
spool_sync_group(struct spool *s, struct spool_req *from, struct spool_req *to,
                 unsigned long long size, int err)
{
    unsigned long long n = 0, bytes = 0;
    struct spool_req *r;

    for (r = from; r != to; r = r->next)
        n += r->written;
    if (n == 0)
        return;
    if (err == 0 && fdatasync(s->active_fd) < 0)
        err = errno;
    __atomic_add_fetch(&s->syncs, 1, __ATOMIC_RELAXED);
    if (err != 0) {
        errno = err;
        log_warn("spool %s/seg-%016llx.spool: cannot append", s->dir,
                 s->active_seq);
        spool_abandon(s);
    }
    /* Before the appends are answered: a client that resubmits one of
     * these ids finds it (spool_holds). */
    pthread_mutex_lock(&s->imu);
    for (r = from; r != to; r = r->next)
        if (r->written) {
            r->err = err;
            r->written = 0;
            bytes += r->len;
            if (err == 0)
                spool_index_add_encoded(s, r->buf);
        }
    pthread_mutex_unlock(&s->imu);
    if (err != 0) {
        __atomic_store_n(&s->io_failed, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&s->failed, n, __ATOMIC_RELAXED);
        return;
    }
    s->active_size = size;
    __atomic_store_n(&s->io_failed, 0, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->disk_bytes, bytes, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->records, n, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->bytes, bytes, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->appended, n, __ATOMIC_RELAXED);
    if (s->full_logged)
        log_info("spool %s has room again", s->dir);
    s->full_logged = 0;
    if (s->active_size >= SPOOL_SEGMENT_MAX) {
        close(s->active_fd);
        s->active_fd = -1;
    }
}

/* Append a batch: every record written, then one fdatasync for all of
 * them (one per segment when the batch crosses into a new one).  Sets
 * each req->err.  Under mu, so the drainer sees only published (durable)
 * records and never a segment being rotated. */
static void
spool_write_batch(struct spool *s, struct spool_req *batch)
{
    struct spool_req *r, *from = batch;
    unsigned long long size = s->active_size, need;

    for (r = batch; r != NULL; r = r->next) {
        need =
            r->len + (s->active_fd < 0 ? SPOOL_SEG_HDR : size - s->active_size);
        if (__atomic_load_n(&s->disk_bytes, __ATOMIC_RELAXED) + need >
            s->max_bytes) {
            if (!s->full_logged)
                log_warnx("spool %s is full (spool.max_bytes %llu): "
                          "comments Redis cannot take get 503",
                          s->dir, s->max_bytes);
            s->full_logged = 1;
            r->err = ENOSPC;
            __atomic_add_fetch(&s->failed, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (s->active_fd < 0) {
            if (spool_new_segment(s) < 0) {
                r->err = errno;
                __atomic_store_n(&s->io_failed, 1, __ATOMIC_RELAXED);
                __atomic_add_fetch(&s->failed, 1, __ATOMIC_RELAXED);
                continue;
            }
            from = r;
            size = s->active_size;
        }
        r->written = 1;
        if (spool_write_all(s->active_fd, r->buf, r->len, (off_t)size) < 0) {
            spool_sync_group(s, from, r->next, size, errno);
        } else {
            size += r->len;
            if (size < SPOOL_SEGMENT_MAX)
                continue;
            spool_sync_group(s, from, r->next, size, 0);
        }
        from = r->next;
        size = s->active_size;
    }
    spool_sync_group(s, from, NULL, size, 0);
}

static void spool_client_deliver(struct spool_req *r);

/* The writer thread: takes everything queued, appends it with one
 * fdatasync, hands each request back; meanwhile new requests queue up
 * for the next round.  Ends when stopping and the queue is empty. */
static void *
spool_writer_main(void *arg)
{
    struct spool *s = arg;
    struct spool_req *batch, *r, *next;

    pthread_setname_np(pthread_self(), "mf-spool-write");
    pthread_mutex_lock(&s->qmu);
    for (;;) {
        while (s->q_head == NULL && !s->writer_stopping)
            pthread_cond_wait(&s->work_cv, &s->qmu);
        if (s->q_head == NULL)
            break;
        batch = s->q_head;
        s->q_head = NULL;
        s->q_tail = &s->q_head;
        pthread_mutex_unlock(&s->qmu);

        pthread_mutex_lock(&s->mu);
        spool_write_batch(s, batch);
        pthread_mutex_unlock(&s->mu);

        for (r = batch; r != NULL; r = next) {
            next = r->next; /* r is not ours once handed back */
            if (r->client != NULL) {
                spool_client_deliver(r);
                continue;
            }
            pthread_mutex_lock(&s->qmu);
            r->done = 1;
            pthread_cond_broadcast(&s->done_cv);
            pthread_mutex_unlock(&s->qmu);
        }
        pthread_mutex_lock(&s->qmu);
    }
    pthread_mutex_unlock(&s->qmu);
    return NULL;
}

/* Queue req for the writer (started on first use: after daemon()).  -1
 * with errno when the thread cannot be started or the spool is closing. */
static int
spool_enqueue(struct spool *s, struct spool_req *req)
{
    int ret = 0;

    pthread_mutex_lock(&s->qmu);
    if (s->writer_stopping) {
        errno = ESHUTDOWN;
        ret = -1;
    } else if (!s->writer_started) {
        ret = pthread_create(&s->writer, NULL, spool_writer_main, s);
        if (ret != 0) {
            errno = ret;
            ret = -1;
            log_warn("spool %s: cannot start the writer thread", s->dir);
        } else {
            s->writer_started = 1;
        }
    }
    if (ret == 0) {
        req->next = NULL;
        *s->q_tail = req;
        s->q_tail = &req->next;
        pthread_cond_signal(&s->work_cv);
    }
    pthread_mutex_unlock(&s->qmu);
    return ret;
}

int
spool_append(struct spool *s, const struct spool_record *r)
{
    struct spool_req req;

    memset(&req, 0, sizeof(req));
    req.len = spool_encode(r, &req.buf);
    if (req.len == 0) {
        errno = EINVAL;
        return -1;
    }
    if (spool_enqueue(s, &req) < 0) {
        free(req.buf);
        return -1;
    }
    pthread_mutex_lock(&s->qmu);
    while (!req.done)
        pthread_cond_wait(&s->done_cv, &s->qmu);
    pthread_mutex_unlock(&s->qmu);
    free(req.buf);
    errno = req.err;
    return req.err == 0 ? 0 : -1;
}

/* ---- clients: appends answered on an event loop -------------------------- */

struct spool_client {
    struct spool *s;
    struct event *ev; /* on the client's base: done requests to run */
    pthread_mutex_t mu;
    pthread_cond_t cv;             /* outstanding fell */
    struct spool_req *done, *last; /* handed back by the writer */
    unsigned long outstanding;     /* queued, not yet handed back */
};

/* The writer thread hands r back to its client. */
static void
spool_client_deliver(struct spool_req *r)
{
    struct spool_client *c = r->client;

    pthread_mutex_lock(&c->mu);
    r->next = NULL;
    if (c->done == NULL) {
        c->done = r;
        event_active(c->ev, EV_READ, 1);
    } else {
        c->last->next = r;
    }
    c->last = r;
    c->outstanding--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Run the callbacks of what the writer handed back (the client's thread). */
static void
spool_client_run(struct spool_client *c)
{
    struct spool_req *r, *next;

    pthread_mutex_lock(&c->mu);
    r = c->done;
    c->done = c->last = NULL;
    pthread_mutex_unlock(&c->mu);
    for (; r != NULL; r = next) {
        next = r->next;
        r->cb(r->err, r->arg);
        free(r->buf);
        free(r);
    }
}

static void
spool_client_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    spool_client_run(arg);
}

struct spool_client *
spool_client_new(struct spool *s, struct event_base *base)
{
    struct spool_client *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->s = s;
    c->ev = event_new(base, -1, 0, spool_client_ready, c);
    if (c->ev == NULL) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

int
spool_client_append(struct spool_client *c, const struct spool_record *r,
                    spool_done_cb *cb, void *arg)
{
    struct spool_req *req = calloc(1, sizeof(*req));

    if (req == NULL)
        return -1;
    req->len = spool_encode(r, &req->buf);
    if (req->len == 0) {
        free(req);
        errno = EINVAL;
        return -1;
    }
    req->client = c;
    req->cb = cb;
    req->arg = arg;
    pthread_mutex_lock(&c->mu);
    c->outstanding++;
    pthread_mutex_unlock(&c->mu);
    if (spool_enqueue(c->s, req) < 0) {
        int saved = errno;

        pthread_mutex_lock(&c->mu);
        c->outstanding--;
        pthread_mutex_unlock(&c->mu);
        free(req->buf);
        free(req);
        errno = saved;
        return -1;
    }
    return 0;
}

void
spool_client_free(struct spool_client *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    while (c->outstanding > 0)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    event_free(c->ev); /* the writer is done with it */
    spool_client_run(c);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

int
spool_can_take(const struct spool *s)
{
    unsigned long long room = SPOOL_SEG_HDR + SPOOL_FRAME + SPOOL_PAYLOAD_HDR +
                              1024; /* a small comment */

    return s != NULL && !__atomic_load_n(&s->io_failed, __ATOMIC_RELAXED) &&
           __atomic_load_n(&s->disk_bytes, __ATOMIC_RELAXED) + room <=
               s->max_bytes;
}

void
spool_stats(const struct spool *s, struct spool_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return;
    out->records = __atomic_load_n(&s->records, __ATOMIC_RELAXED);
    out->bytes = __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
    out->disk_bytes = __atomic_load_n(&s->disk_bytes, __ATOMIC_RELAXED);
    out->appended = __atomic_load_n(&s->appended, __ATOMIC_RELAXED);
    out->drained = __atomic_load_n(&s->drained, __ATOMIC_RELAXED);
    out->skipped = __atomic_load_n(&s->skipped, __ATOMIC_RELAXED);
    out->failed = __atomic_load_n(&s->failed, __ATOMIC_RELAXED);
    out->syncs = __atomic_load_n(&s->syncs, __ATOMIC_RELAXED);
}

void
spool_metrics_render(struct evbuffer *out, const struct spool *s)
{
    struct spool_stats st;

    spool_stats(s, &st);
    evbuffer_add_printf(
        out,
        "# HELP modfilter_spool_records Spooled comments not yet in Redis.\n"
        "# TYPE modfilter_spool_records gauge\n"
        "modfilter_spool_records %llu\n"
        "# HELP modfilter_spool_bytes Bytes of spooled comments not yet in "
        "Redis.\n"
        "# TYPE modfilter_spool_bytes gauge\n"
        "modfilter_spool_bytes %llu\n"
        "# HELP modfilter_spool_disk_bytes Spool files on disk (counted "
        "against spool.max_bytes).\n"
        "# TYPE modfilter_spool_disk_bytes gauge\n"
        "modfilter_spool_disk_bytes %llu\n"
        "# HELP modfilter_spool_appended_total Comments acknowledged from the "
        "spool.\n"
        "# TYPE modfilter_spool_appended_total counter\n"
        "modfilter_spool_appended_total %llu\n"
        "# HELP modfilter_spool_drained_total Spooled comments handed to "
        "Redis.\n"
        "# TYPE modfilter_spool_drained_total counter\n"
        "modfilter_spool_drained_total %llu\n"
        "# HELP modfilter_spool_append_failures_total Comments the spool "
        "could not take (full, I/O error).\n"
        "# TYPE modfilter_spool_append_failures_total counter\n"
        "modfilter_spool_append_failures_total %llu\n"
        "# HELP modfilter_spool_skipped_total Damaged spool regions skipped "
        "while draining.\n"
        "# TYPE modfilter_spool_skipped_total counter\n"
        "modfilter_spool_skipped_total %llu\n"
        "# HELP modfilter_spool_syncs_total fdatasync calls that made "
        "appended comments durable (group commit: one for many).\n"
        "# TYPE modfilter_spool_syncs_total counter\n"
        "modfilter_spool_syncs_total %llu\n",
        st.records, st.bytes, st.disk_bytes, st.appended, st.drained, st.failed,
        st.skipped, st.syncs);
}

/* ---- the drainer thread ------------------------------------------------ */

struct spool_drain {
    struct spool *s;
    struct event_base *base;
    struct queue *queue;
    struct event *tick, *stop_ev;
    pthread_t thread;
    int started, stopping, failed, fail_logged;
    struct spool_cursor cur;
    unsigned inflight;
    /* The ids (spool_id_hash) read since the last commit: they leave the
     * backlog's index when it is made. */
    uint64_t *sent;
    size_t n_sent, sent_cap;
    unsigned long long batch_ok, batch_existed, total, existed;
    long long retry_at_ms;
};

static void spool_drain_batch(struct spool_drain *d);

/* Mark what the batch read as in Redis; 0 when done, -1 when the batch
 * failed and the cursor went back to the checkpoint: it is sent again
 * (queue_submit is idempotent) after a pause. */
static int
spool_drain_commit(struct spool_drain *d)
{
    if (!d->failed && spool_commit(d->s, &d->cur, d->sent, d->n_sent) == 0) {
        d->n_sent = 0;
        return 0;
    }
    d->n_sent = 0;
    spool_cursor_release(&d->cur);
    spool_cursor_init(d->s, &d->cur);
    d->failed = 0;
    d->batch_ok = d->batch_existed = 0;
    d->retry_at_ms = util_now_ms() + SPOOL_DRAIN_RETRY_MS;
    return -1;
}

/* Every callback of a batch has run. */
static void
spool_drain_done(struct spool_drain *d)
{
    struct spool *s = d->s;

    if (spool_drain_commit(d) < 0 || d->stopping) {
        if (d->stopping && d->base != NULL)
            event_base_loopbreak(d->base);
        return;
    }
    d->fail_logged = 0;
    d->total += d->batch_ok + d->batch_existed;
    d->existed += d->batch_existed;
    if (d->batch_ok + d->batch_existed > 0)
        log_debug("spool: %llu record(s) to Redis, %llu already there",
                  d->batch_ok, d->batch_existed);
    d->batch_ok = d->batch_existed = 0;
    if (__atomic_load_n(&s->records, __ATOMIC_RELAXED) == 0) {
        if (d->total > 0)
            log_info("spool %s: drained, %llu record(s) handed to Redis "
                     "(%llu of them it had already)",
                     s->dir, d->total, d->existed);
        d->total = d->existed = 0;
        return;
    }
    spool_drain_batch(d);
}

static void
spool_drained(enum queue_status st, const char *stored, size_t stored_len,
              void *arg)
{
    struct spool_drain *d = arg;

    (void)stored;
    (void)stored_len;
    if (st == QUEUE_OK)
        d->batch_ok++;
    else if (st == QUEUE_EXISTS)
        d->batch_existed++;
    else if (!d->failed) {
        d->failed = 1;
        if (!d->stopping && !d->fail_logged++) /* once until it works */
            log_warnx("spool: Redis did not take a spooled record (%s); "
                      "the spool keeps it and tries again every second",
                      st == QUEUE_TIMEOUT ? "timed out"
                                          : queue_last_error(d->queue));
    }
    if (--d->inflight == 0)
        spool_drain_done(d);
}

static void
spool_drain_batch(struct spool_drain *d)
{
    struct spool_record r;
    size_t bytes = 0;
    unsigned n = 0;
    int got = 0;

    if (d->inflight > 0 || d->stopping || util_now_ms() < d->retry_at_ms ||
        !queue_connected(d->queue))
        return;
    while (n < SPOOL_BATCH_RECORDS && bytes < SPOOL_BATCH_BYTES) {
        got = spool_read(d->s, &d->cur, &r);
        if (got <= 0)
            break;
        if (d->n_sent == d->sent_cap) {
            size_t cap = d->sent_cap ? 2 * d->sent_cap : SPOOL_BATCH_RECORDS;
            uint64_t *t = realloc(d->sent, cap * sizeof(*t));

            if (t == NULL) {
                d->failed = 1;
                break;
            }
            d->sent = t;
            d->sent_cap = cap;
        }
        if (queue_submit(d->queue, r.id, r.json, r.json_len, r.received_ms,
                         r.urgency, spool_drained, d) < 0) {
            d->failed = 1;
            break;
        }
        d->sent[d->n_sent++] = spool_id_hash(r.id, strlen(r.id));
        d->inflight++;
        n++;
        bytes += r.json_len;
    }
    if (got < 0)
        d->failed = 1;
    if (d->inflight == 0) /* nothing sent: roll back, or pass damage */
        spool_drain_commit(d);
}

static void
spool_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct spool_drain *d = arg;

    (void)fd;
    (void)what;
    /* Records to send, or files to clean up (damage, drained segments). */
    if (__atomic_load_n(&d->s->records, __ATOMIC_RELAXED) > 0 ||
        __atomic_load_n(&d->s->disk_bytes, __ATOMIC_RELAXED) > 0)
        spool_drain_batch(d);
}

static void
spool_drain_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct spool_drain *d = arg;

    (void)fd;
    (void)what;
    d->stopping = 1;
    if (d->inflight == 0)
        event_base_loopbreak(d->base);
}

static void *
spool_drain_main(void *arg)
{
    struct spool_drain *d = arg;

    pthread_setname_np(pthread_self(), "mf-spool-drain");
    event_base_dispatch(d->base);
    return NULL;
}

static void
spool_drain_free(struct spool_drain *d)
{
    if (d == NULL)
        return;
    d->stopping = 1;
    queue_free(d->queue); /* runs what is in flight with QUEUE_ERROR */
    d->queue = NULL;
    if (d->tick != NULL)
        event_free(d->tick);
    if (d->stop_ev != NULL)
        event_free(d->stop_ev);
    if (d->base != NULL)
        event_base_free(d->base);
    spool_cursor_release(&d->cur);
    free(d->sent);
    free(d);
}

int
spool_drain_start(struct spool *s, const struct config *cfg)
{
    struct spool_drain *d;
    struct timeval tv = {0, SPOOL_DRAIN_TICK_MS * 1000};
    unsigned long long records;

    if (s == NULL || s->drain != NULL)
        return 0;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        goto fail;
    d->s = s;
    spool_cursor_init(s, &d->cur);
    d->base = event_base_new();
    if (d->base == NULL)
        goto fail;
    d->queue = worker_queue_new(d->base, cfg);
    d->tick = event_new(d->base, -1, EV_PERSIST, spool_drain_tick, d);
    d->stop_ev = event_new(d->base, -1, 0, spool_drain_stop_cb, d);
    if (d->queue == NULL || d->tick == NULL || d->stop_ev == NULL ||
        event_add(d->tick, &tv) < 0)
        goto fail;
    if (pthread_create(&d->thread, NULL, spool_drain_main, d) != 0)
        goto fail;
    d->started = 1;
    s->drain = d;
    /* atomics: the workers may be appending already */
    records = __atomic_load_n(&s->records, __ATOMIC_RELAXED);
    if (records > 0)
        log_info("spool %s: %llu record(s), %llu bytes to hand to Redis",
                 s->dir, records, __atomic_load_n(&s->bytes, __ATOMIC_RELAXED));
    return 0;
fail:
    log_errx("spool %s: cannot start the drainer", s->dir);
    spool_drain_free(d);
    return -1;
}

void
spool_drain_stop(struct spool *s)
{
    struct spool_drain *d = s != NULL ? s->drain : NULL;

    if (d == NULL)
        return;
    if (d->started) {
        event_active(d->stop_ev, EV_READ, 1);
        pthread_join(d->thread, NULL);
    }
    s->drain = NULL;
    spool_drain_free(d);
}
