/*
 * modelfile.c - the model file: load and atomic save.
 *
 * Layout (all integers little-endian, doubles as their IEEE-754 bits):
 *   header   "MODFILTR", u32 version, u32 reserved (0), u64 body length
 *   body     settings, event id, heads (with calibration and reservoir),
 *            feature counts (every feature any head counted: u64 key, then
 *            a count per class per head, LEB128 varints since version 2,
 *            u32 in version 1, which left out features below min_df),
 *            known examples (u64 key, u32 EX_VAL: since version 2 with
 *            the language learned in and the teachings; 0/1 in version 1)
 *   trailer  u64 XXH3-64 of header and body
 * The loader checks the magic, the version and the length against the
 * file size first; it reads the body through a small window, hashing as it
 * goes, and bounds-checks every count against the bytes left, so a
 * truncated, corrupted or foreign file is refused with a message and never
 * read out of bounds.  A model is handed out only when the checksum
 * matches; a body that fails to parse is hashed to its end, so corruption
 * is called corruption.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "model.h"
#include "text.h"

#define MAGIC "MODFILTR"
#define VERSION 2u /* 2: varint counts; examples keep language, teachings */
#define HEADER_LEN 24u
#define MAX_FILE (1ull << 32)
#define LOAD_AHEAD 16 /* features read ahead of the one stored */

/* ---- writing ---------------------------------------------------------- */

struct wbuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
};

static void
put(struct wbuf *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void
put_u64(struct wbuf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, 8);
}

static void
put_u32(struct wbuf *b, uint32_t v)
{
    unsigned char x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, 4);
}

/* LEB128: seven bits a byte, low first, the high bit set on all but the
 * last.  A feature's counts are mostly 0, 1 or 2: one byte each. */
static void
put_varint(struct wbuf *b, uint32_t v)
{
    unsigned char x[5];
    size_t n = 0;
    for (; v >= 0x80; v >>= 7)
        x[n++] = (unsigned char)(v | 0x80);
    x[n++] = (unsigned char)v;
    put(b, x, n);
}

static void
put_f64(struct wbuf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    put_u64(b, v);
}

static void
put_str(struct wbuf *b, const char *s, size_t field)
{
    char tmp[64] = {0};
    snprintf(tmp, field < sizeof tmp ? field : sizeof tmp, "%s", s);
    put(b, tmp, field);
}

/* A feature some head has counted (unlearning can leave one at zero). */
static int
worth_keeping(const struct clf_model *m, const uint32_t *slot)
{
    if (!ftable_slot_key(slot))
        return 0;
    for (unsigned c = 0; c < 2 * m->n_labels; c++)
        if (slot[2 + c])
            return 1;
    return 0;
}

static void
write_body(struct wbuf *b, const struct clf_model *m)
{
    const struct clf_settings *s = &m->settings;
    put_u32(b, s->n_languages);
    for (unsigned i = 0; i < s->n_languages; i++)
        put_str(b, s->languages[i], CLF_LANG_MAX);
    put_str(b, s->default_language, CLF_LANG_MAX);
    put_u32(b, s->features);
    put_u32(b, s->max_bytes);
    put_u32(b, s->max_tokens);
    put_u32(b, s->chargram_min);
    put_u32(b, s->chargram_max);
    put_f64(b, s->alpha);
    for (unsigned i = 0; i < 8; i++)
        put_f64(b, s->weights[i]);
    put_u32(b, s->min_df);
    put_u32(b, s->min_examples);
    put_u32(b, s->min_known);
    put_str(b, m->event_id, sizeof m->event_id);

    put_u32(b, m->n_labels);
    for (unsigned h = 0; h < m->n_labels; h++) {
        const struct head *hd = &m->heads[h];
        put_str(b, hd->name, CLF_LABEL_MAX);
        put_f64(b, hd->prior);
        put_u64(b, hd->vocab);
        put_f64(b, hd->ece);
        for (unsigned li = 0; li <= s->n_languages; li++) {
            const struct head_part *p = li ? &hd->lang[li - 1] : &hd->all;
            put_u64(b, p->docs[0]);
            put_u64(b, p->docs[1]);
            put_u64(b, p->total[0]);
            put_u64(b, p->total[1]);
            put_f64(b, p->cal_a);
            put_f64(b, p->cal_b);
            put_f64(b, p->cal_rate);
            put_u32(b, (uint32_t)p->calibrated);
        }
        put_u64(b, hd->seen);
        put_u32(b, hd->n_res);
        for (uint32_t i = 0; i < hd->n_res; i++) {
            const struct res_example *e = &hd->res[i];
            put_u64(b, e->ex_key);
            put_u32(b, e->value | (uint32_t)e->lang << 8);
            put_u32(b, e->n);
            for (uint32_t k = 0; k < e->n; k++)
                put_u64(b, e->keys[k]);
        }
    }

    /* Every counted feature, those below min_df too: they never count when
     * scoring, but a model loaded from the file must learn on and unlearn
     * exactly as m would (a feature seen once before and once after counts
     * 2, and forgetting an example takes back every count it added). */
    uint64_t n = 0;
    unsigned ncounts = 2 * m->n_labels;
    for (size_t i = 0; i < m->ft.cap; i++)
        n += worth_keeping(m, m->ft.slots + i * m->ft.stride);
    put_u64(b, n);
    for (size_t i = 0; i < m->ft.cap; i++) {
        const uint32_t *slot = m->ft.slots + i * m->ft.stride;
        if (!worth_keeping(m, slot))
            continue;
        put_u64(b, ftable_slot_key(slot));
        for (unsigned c = 0; c < ncounts; c++)
            put_varint(b, slot[2 + c]);
    }

    put_u64(b, m->ex.n);
    for (size_t i = 0; i < m->ex.cap; i++) {
        if (!m->ex.keys[i])
            continue;
        put_u64(b, m->ex.keys[i]);
        put_u32(b, m->ex.vals[i]);
    }
}

static void
set_id(struct clf_model *m, uint64_t sum)
{
    snprintf(m->id, sizeof m->id, "%016llx", (unsigned long long)sum);
}

enum clf_status
clf_model_save(struct clf_model *m, const char *path, struct clf_error *err)
{
    struct wbuf b = {0};
    char *tmp = NULL, *dirbuf = NULL;
    int fd = -1;
    enum clf_status st = clf_model_calibrate(m, err);
    if (st)
        return st;
    put(&b, MAGIC, 8);
    put_u32(&b, VERSION);
    put_u32(&b, 0);
    put_u64(&b, 0); /* body length, patched below */
    write_body(&b, m);
    if (b.oom) {
        st = model_fail(err, CLF_ENOMEM, "out of memory writing the model");
        goto out;
    }
    uint64_t body = b.len - HEADER_LEN;
    for (int i = 0; i < 8; i++)
        b.p[16 + i] = (unsigned char)(body >> (8 * i));
    uint64_t sum = XXH3_64bits(b.p, b.len);
    put_u64(&b, sum);
    if (b.oom) {
        st = model_fail(err, CLF_ENOMEM, "out of memory writing the model");
        goto out;
    }

    if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
        tmp = NULL;
        st = model_fail(err, CLF_ENOMEM, "out of memory");
        goto out;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        st = model_fail(err, CLF_EIO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    for (size_t off = 0; off < b.len;) {
        ssize_t w = write(fd, b.p + off, b.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            st = model_fail(err, CLF_EIO, "%s: %s", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        st = model_fail(err, CLF_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        st = model_fail(err, CLF_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        st = model_fail(err, CLF_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    /* Make the rename itself durable. */
    if ((dirbuf = strdup(path))) {
        int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    set_id(m, sum);
out:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(dirbuf);
    free(b.p);
    return st;
}

/* ---- reading ---------------------------------------------------------- */

/* The file's bytes reach the parser through a window: a chunk of the
 * file read with pread (or of a blob in memory: the tests and the fuzzer),
 * refilled as the parser moves on, every byte hashed as it arrives.  So a
 * load touches one small buffer, not a copy of the whole file: in a
 * virtual machine each fresh page costs a fault that the hypervisor sees
 * too (5-10 us here: reading the default model into a fresh 12 MB buffer
 * took 60 of an 84 ms load). */
#define WINDOW_FILE (256u << 10)
#define WINDOW_MEM 256u /* small, so tests and fuzzing cross every edge */
/* the longest single read: an event id, or a record's fast path */
_Static_assert(WINDOW_MEM >= 64 && WINDOW_MEM >= 8 + 10 * CLF_MAX_LABELS,
               "window too small");

struct rsrc {
    int fd;                   /* a file, read with pread, when mem is NULL */
    const unsigned char *mem; /* or the whole file in memory */
    uint64_t size;
};

struct rbuf {
    unsigned char *p; /* the window: cap bytes, len of them read, next at off */
    size_t cap, len, off;
    int bad;
    const struct rsrc *src;
    uint64_t at, end;  /* source offset of p[len]; where reading stops */
    XXH3_state_t *sum; /* hashes each byte fetched, or NULL */
    int io;            /* errno of a failed read, or -1: the file shrank */
};

static int
rbuf_open(struct rbuf *r, const struct rsrc *src, uint64_t at, uint64_t end,
          XXH3_state_t *sum)
{
    memset(r, 0, sizeof *r);
    r->src = src;
    r->cap = src->mem ? WINDOW_MEM : WINDOW_FILE;
    if (!(r->p = malloc(r->cap)))
        return -1;
    r->at = at;
    r->end = end;
    r->sum = sum;
    return 0;
}

/* A second reader from where r stands (with its own window, hashing
 * nothing): a pass that looks ahead without moving r. */
static int
rbuf_fork(const struct rbuf *r, struct rbuf *f)
{
    if (rbuf_open(f, r->src, r->at, r->end, NULL) < 0)
        return -1;
    f->len = r->len - r->off;
    memcpy(f->p, r->p + r->off, f->len);
    f->bad = r->bad;
    return 0;
}

static void
rbuf_close(struct rbuf *r)
{
    free(r->p);
    r->p = NULL;
}

/* Bytes from the source at off into dst: 0, or -1 with r->io set. */
static int
src_read(struct rbuf *r, uint64_t off, unsigned char *dst, size_t n)
{
    const struct rsrc *src = r->src;
    if (!src->mem) {
        for (size_t got = 0; got < n;) {
            ssize_t k = pread(src->fd, dst + got, n - got, (off_t)(off + got));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                r->io = k < 0 ? errno : -1;
                return -1;
            }
            got += (size_t)k;
        }
    } else if (off > src->size || n > src->size - off) {
        r->io = -1;
        return -1;
    } else {
        memcpy(dst, src->mem + off, n);
    }
    return 0;
}

/* At least need bytes in the window, unless the source ends first. */
static void
fill(struct rbuf *r, size_t need)
{
    if (r->bad || r->len - r->off >= need || r->at == r->end)
        return;
    size_t keep = r->len - r->off;
    memmove(r->p, r->p + r->off, keep);
    r->off = 0;
    size_t n = r->cap - keep;
    if (n > r->end - r->at)
        n = (size_t)(r->end - r->at);
    if (src_read(r, r->at, r->p + keep, n) < 0) {
        r->len = keep;
        r->bad = 1;
        return;
    }
    if (r->sum)
        XXH3_64bits_update(r->sum, r->p + keep, n);
    r->at += n;
    r->len = keep + n;
}

/* Bytes left before the end, in the window and behind it. */
static uint64_t
rbuf_left(const struct rbuf *r)
{
    return (r->end - r->at) + (r->len - r->off);
}

static const unsigned char *
take(struct rbuf *r, size_t n)
{
    fill(r, n);
    if (r->bad || n > r->len - r->off) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t
peek_u64(const unsigned char *x)
{
    uint64_t v;
    memcpy(&v, x, sizeof v);
    return le64toh(v);
}

static uint64_t
get_u64(struct rbuf *r)
{
    const unsigned char *x = take(r, 8);
    return x ? peek_u64(x) : 0;
}

static uint32_t
get_u32(struct rbuf *r)
{
    const unsigned char *x = take(r, 4);
    uint32_t v = 0;
    if (x)
        memcpy(&v, x, sizeof v);
    return le32toh(v);
}

static uint32_t
get_varint(struct rbuf *r)
{
    if (r->off < r->len && r->p[r->off] < 0x80) /* nearly every count */
        return r->p[r->off++];
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 35; shift += 7) {
        const unsigned char *x = take(r, 1);
        if (!x)
            return 0;
        v |= (uint64_t)(*x & 0x7f) << shift;
        if (!(*x & 0x80)) {
            if (v > UINT32_MAX)
                break;
            return (uint32_t)v;
        }
    }
    r->bad = 1; /* more than five bytes, or above 32 bits */
    return 0;
}

static double
get_f64(struct rbuf *r)
{
    uint64_t v = get_u64(r);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

/* A fixed-size NUL-padded string field; bad unless NUL-terminated. */
static void
get_str(struct rbuf *r, char *dst, size_t field)
{
    const unsigned char *x = take(r, field);
    if (!x || !memchr(x, '\0', field)) {
        r->bad = 1;
        dst[0] = '\0';
        return;
    }
    memcpy(dst, x, field);
}

static const char *
read_settings(struct rbuf *r, struct clf_settings *s)
{
    memset(s, 0, sizeof *s);
    s->n_languages = get_u32(r);
    if (r->bad || s->n_languages == 0 || s->n_languages > CLF_MAX_LANGUAGES)
        return "bad language count";
    for (unsigned i = 0; i < s->n_languages; i++) {
        get_str(r, s->languages[i], CLF_LANG_MAX);
        if (r->bad || !text_language_name(s->languages[i]))
            return "unknown language";
    }
    get_str(r, s->default_language, CLF_LANG_MAX);
    if (r->bad || !text_language_name(s->default_language))
        return "unknown default language";
    s->features = get_u32(r);
    s->max_bytes = get_u32(r);
    s->max_tokens = get_u32(r);
    s->chargram_min = get_u32(r);
    s->chargram_max = get_u32(r);
    s->alpha = get_f64(r);
    for (unsigned i = 0; i < 8; i++)
        s->weights[i] = get_f64(r);
    s->min_df = get_u32(r);
    s->min_examples = get_u32(r);
    s->min_known = get_u32(r);
    if (r->bad)
        return "truncated settings";
    if (s->features & ~CLF_FEAT_ALL)
        return "unknown feature families (written by a newer modfilter?)";
    if (s->max_bytes < 16 || s->max_bytes > (1u << 24) || s->max_tokens < 1 ||
        s->max_tokens > (1u << 20))
        return "limits out of range";
    if (s->chargram_min < 1 || s->chargram_max > 8 ||
        s->chargram_min > s->chargram_max)
        return "character n-gram lengths out of range";
    if (!(s->alpha > 0 && s->alpha <= 100))
        return "smoothing out of range";
    for (unsigned i = 0; i < 8; i++)
        if (!(s->weights[i] >= 0 && s->weights[i] <= 10))
            return "feature weights out of range";
    return NULL;
}

/* A head after its name; its calibration sample is kept only when keep. */
static const char *
read_head(struct rbuf *r, struct head *hd, unsigned n_languages, int keep)
{
    hd->prior = get_f64(r);
    hd->vocab = get_u64(r);
    hd->ece = get_f64(r);
    for (unsigned li = 0; li <= n_languages; li++) {
        struct head_part *p = li ? &hd->lang[li - 1] : &hd->all;
        p->docs[0] = get_u64(r);
        p->docs[1] = get_u64(r);
        p->total[0] = get_u64(r);
        p->total[1] = get_u64(r);
        p->cal_a = get_f64(r);
        p->cal_b = get_f64(r);
        p->cal_rate = get_f64(r);
        p->calibrated = (int)get_u32(r);
        if (!isfinite(p->cal_a) || !isfinite(p->cal_b) ||
            !(p->cal_rate >= 0 && p->cal_rate <= 1) || p->calibrated < 0 ||
            p->calibrated > 1)
            return "label parameters out of range";
    }
    hd->seen = get_u64(r);
    uint32_t n_res = get_u32(r);
    if (r->bad)
        return "truncated label";
    if (!(hd->prior >= 0 && hd->prior < 1))
        return "label parameters out of range";
    if (n_res > RESERVOIR_MAX)
        return "calibration sample too large";
    /* Every kept example was offered (unlearning removes some); learning
     * more draws a slot from seen, which must leave a full sample full. */
    if (hd->seen < n_res || hd->seen == UINT64_MAX)
        return "calibration sample count out of range";
    for (uint32_t i = 0; i < n_res; i++) {
        struct res_example *e = &hd->res[i];
        e->ex_key = get_u64(r);
        uint32_t value = get_u32(r);
        uint32_t n = get_u32(r);
        if (r->bad || (value & 0xff) > 1 || value >> 8 >= n_languages ||
            n > rbuf_left(r) / 8)
            return "bad calibration sample";
        if (!keep) { /* a scoring copy: read, checked, not kept */
            for (uint32_t k = 0; k < n; k++)
                get_u64(r);
            continue;
        }
        e->value = (uint8_t)(value & 0xff);
        e->lang = (uint8_t)(value >> 8);
        if (!(e->keys = malloc((n ? n : 1) * sizeof *e->keys)))
            return "out of memory";
        hd->n_res++;
        e->n = n;
        for (uint32_t k = 0; k < n; k++)
            e->keys[k] = get_u64(r);
    }
    return NULL;
}

/* One feature record (key, then a count per class per head: varints
 * since version 2, u32 before) into slot, laid out as a table slot: key in
 * words 0-1, counts from 2. */
static void
read_record(struct rbuf *r, unsigned nc, int varint, uint32_t *slot)
{
    /* Nearly every record: one byte a count, and the whole record (and
     * the longest it could be) in the buffer, so the bounds are checked
     * once and the bytes read through a local pointer (through r, each
     * byte waited for the store of the offset before). */
    fill(r, 8 + 5 * (size_t)nc);
    if (varint && !r->bad && r->len - r->off >= 8 + 5 * (size_t)nc) {
        const unsigned char *x = r->p + r->off, *start = x;
        uint64_t key = peek_u64(x);
        memcpy(slot, &key, sizeof key);
        x += 8;
        unsigned c = 0;
        while (c < nc && *x < 0x80)
            slot[2 + c++] = *x++;
        r->off += (size_t)(x - start);
        if (c == nc)
            return;
        for (; c < nc; c++) /* a count of 128 or more: the general way */
            slot[2 + c] = get_varint(r);
        return;
    }
    uint64_t key = get_u64(r);
    memcpy(slot, &key, sizeof key);
    for (unsigned c = 0; c < nc; c++)
        slot[2 + c] = varint ? get_varint(r) : get_u32(r);
}

/* The n feature records: into the scoring index (sized by a first pass:
 * how many some head knows) and, for a whole model, the counting table;
 * a scoring copy keeps no counts.  Either table is larger than the caches
 * and each record lands on a random line of it: a record is read
 * LOAD_AHEAD records before it is stored, and its lines asked for
 * meanwhile. */
static const char *
read_features(struct rbuf *r, struct clf_model *m, uint64_t n, int varint,
              int scoring)
{
    unsigned nc = 2 * m->n_labels;
    uint32_t ring[LOAD_AHEAD][2 + 2 * CLF_MAX_LABELS];
    size_t known = 0;
    struct rbuf peek;
    if (rbuf_fork(r, &peek) < 0)
        return "out of memory";
    for (uint64_t i = 0; i < n; i++) {
        read_record(&peek, nc, varint, ring[0]);
        known += sindex_slot_known(m, ring[0]);
    }
    rbuf_close(&peek);
    r->io = peek.io;
    if (peek.bad)
        return "truncated features";
    struct sindex *six = &m->six;
    if (sindex_alloc(m, six, known) < 0) {
        if (scoring)
            return "out of memory";
        six = NULL; /* a whole model can score from its counts */
    }
    if (!scoring) {
        size_t cap = 1024;
        while (ftable_full(n + 1, cap))
            cap *= 2;
        if (!(m->ft.slots = ftable_slots_alloc(cap * m->ft.stride)))
            return "out of memory";
        m->ft.cap = cap;
    }
    /* ring[i % LOAD_AHEAD]: record i - LOAD_AHEAD is stored, then record
     * i read into its place */
    for (uint64_t i = 0; i < n + LOAD_AHEAD; i++) {
        uint32_t *rec = ring[i % LOAD_AHEAD];
        /* the index takes no more than the first pass counted, even if
         * the file changed in between (its checksum then says so) */
        if (i >= LOAD_AHEAD && six) {
            if (sindex_slot_known(m, rec) && !known--)
                return "features changed while reading";
            sindex_add(m, six, rec);
        }
        if (i >= LOAD_AHEAD && !scoring) {
            uint32_t *slot = ftable_upsert(&m->ft, ftable_slot_key(rec));
            if (!slot)
                return "out of memory";
            memcpy(slot + 2, rec + 2, nc * sizeof *slot);
        }
        if (i >= n)
            continue;
        read_record(r, nc, varint, rec);
        if (six)
            sindex_prefetch(six, ftable_slot_key(rec));
        if (!scoring)
            ftable_prefetch(&m->ft, ftable_slot_key(rec));
    }
    m->scoring_only = scoring;
    if (six)
        six->version = m->version;
    return NULL;
}

static const char *
read_body(struct rbuf *r, uint32_t version, int scoring_only,
          struct clf_model **out)
{
    struct clf_settings s;
    const char *why = read_settings(r, &s);
    if (why)
        return why;
    struct clf_model *m = clf_model_new(&s);
    if (!m)
        return "out of memory";
    *out = m;
    get_str(r, m->event_id, sizeof m->event_id);
    uint32_t n_labels = get_u32(r);
    if (r->bad || n_labels > CLF_MAX_LABELS)
        return "bad label count";
    for (uint32_t h = 0; h < n_labels; h++) {
        char name[CLF_LABEL_MAX];
        get_str(r, name, sizeof name);
        if (r->bad)
            return "truncated label";
        if (!name[0])
            return "empty label name";
        if (clf_model_label_index(m, name) >= 0)
            return "duplicate label";
        if (model_add_label(m, name) < 0)
            return "out of memory";
        if ((why = read_head(r, &m->heads[h], s.n_languages, !scoring_only)))
            return why;
    }
    uint64_t n = get_u64(r);
    int varint = version >= 2;
    if (r->bad || n > rbuf_left(r) / (8 + (varint ? 2 : 8) * (size_t)n_labels))
        return "bad feature count";
    if ((why = read_features(r, m, n, varint, scoring_only)))
        return why;
    uint64_t n_ex = get_u64(r);
    if (r->bad || n_ex > rbuf_left(r) / 12)
        return "bad example count";
    if (exset_reserve(&m->ex, n_ex) < 0)
        return "out of memory";
    for (uint64_t i = 0; i < n_ex; i++) {
        uint64_t key = get_u64(r);
        uint32_t val = get_u32(r);
        if (version == 1 ? val > 1 : EX_LANG1(val) > s.n_languages)
            return "bad example";
        if (exset_put(&m->ex, key, val) < 0)
            return "out of memory";
    }
    if (r->bad)
        return "truncated";
    if (rbuf_left(r))
        return "trailing bytes in body";
    return NULL;
}

/* The body's failure, or the checksum's when the file is corrupted: the
 * rest of the body is hashed and the trailer read (a parse stops at the
 * first bad field, and a flipped byte should be called corruption). */
static const char *
finish(struct rbuf *r, const char *why, uint64_t *sum)
{
    if (why) { /* the parse stopped early: hash the rest */
        r->bad = 0;
        while (!r->io && r->at < r->end) {
            r->off = r->len;
            fill(r, r->cap);
        }
    }
    unsigned char t[8];
    if (r->io || src_read(r, r->end, t, sizeof t) < 0)
        return why; /* r->io says why */
    *sum = peek_u64(t);
    if (XXH3_64bits_digest(r->sum) != *sum)
        return "checksum mismatch (corrupted)";
    return why;
}

static enum clf_status
parse(const struct rsrc *src, const char *path, int scoring_only,
      struct clf_model **out, struct clf_error *err)
{
    *out = NULL;
    unsigned char h[HEADER_LEN];
    if (src->size < HEADER_LEN + 8)
        return model_fail(err, CLF_EFORMAT, "%s: not a modfilter model file",
                          path);
    struct rbuf r = {.src = src};
    if (src_read(&r, 0, h, sizeof h) < 0)
        goto io;
    if (memcmp(h, MAGIC, 8))
        return model_fail(err, CLF_EFORMAT, "%s: not a modfilter model file",
                          path);
    uint32_t version = (uint32_t)peek_u64(h + 8); /* u32, then reserved */
    uint64_t body = peek_u64(h + 16);
    if (version < 1 || version > VERSION)
        return model_fail(err, CLF_EVERSION,
                          "%s: model file version %u, this build reads 1 to %u",
                          path, version, VERSION);
    if (body != src->size - HEADER_LEN - 8)
        return model_fail(
            err, CLF_EFORMAT,
            "%s: truncated or overlong (%llu bytes, header says %llu)", path,
            (unsigned long long)src->size,
            (unsigned long long)(body + HEADER_LEN + 8));
    XXH3_state_t *hash = XXH3_createState();
    if (!hash || XXH3_64bits_reset(hash) == XXH_ERROR ||
        rbuf_open(&r, src, HEADER_LEN, src->size - 8, hash) < 0) {
        XXH3_freeState(hash);
        return model_fail(err, CLF_ENOMEM, "%s: out of memory", path);
    }
    XXH3_64bits_update(hash, h, sizeof h);
    struct clf_model *m = NULL;
    uint64_t sum = 0;
    const char *why =
        finish(&r, read_body(&r, version, scoring_only, &m), &sum);
    rbuf_close(&r); /* frees the window; r.io stays */
    XXH3_freeState(hash);
    if (r.io || why) {
        clf_model_free(m);
        if (r.io)
            goto io;
        if (!strcmp(why, "out of memory"))
            return model_fail(err, CLF_ENOMEM, "%s: out of memory", path);
        return model_fail(err, CLF_EFORMAT, "%s: %s", path, why);
    }
    set_id(m, sum);
    if (scoring_only) /* the sample was parsed (and checked), not kept */
        for (unsigned i = 0; i < m->n_labels; i++)
            head_release(&m->heads[i]);
    *out = m;
    return CLF_OK;
io:
    return model_fail(err, CLF_EIO, "%s: %s", path,
                      r.io > 0 ? strerror(r.io) : "file shrank while reading");
}

static enum clf_status
load(const char *path, int scoring_only, struct clf_model **out,
     struct clf_error *err)
{
    struct stat sb;
    enum clf_status st;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return model_fail(err, CLF_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &sb) < 0)
        st = model_fail(err, CLF_EIO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > MAX_FILE)
        st = model_fail(err, CLF_EFORMAT, "%s: not a regular file of sane size",
                        path);
    else
        st = parse(&(struct rsrc){fd, NULL, (uint64_t)sb.st_size}, path,
                   scoring_only, out, err);
    close(fd);
    return st;
}

enum clf_status
clf_model_load(const char *path, struct clf_model **out, struct clf_error *err)
{
    return load(path, 0, out, err);
}

enum clf_status
clf_model_load_scoring(const char *path, struct clf_model **out,
                       struct clf_error *err)
{
    return load(path, 1, out, err);
}

/* For the fuzzer and tests: parse a model from memory. */
enum clf_status clf_model_parse(const void *p, size_t len, int scoring_only,
                                struct clf_model **out, struct clf_error *err);
enum clf_status
clf_model_parse(const void *p, size_t len, int scoring_only,
                struct clf_model **out, struct clf_error *err)
{
    return parse(&(struct rsrc){-1, p, len}, "(memory)", scoring_only, out,
                 err);
}
