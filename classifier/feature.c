/*
 * feature.c - the feature set of an analysed comment.
 *
 * Keys are XXH3 hashes of the feature text seeded with its family, so the
 * same word is a different feature as a word, a pair member or a URL.  Pair
 * and meta keys are hashes of small binary records (cheaper than building
 * their text); feat_name() rebuilds the text when a reason needs it.
 */
#include "feature.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* short keys: the call costs more than the hash */
#include <xxhash.h>

enum meta_prop {
    META_LINKS = 0, /* number of URLs, 0..3 (3 = three or more) */
    META_CAPS,      /* share of capitals: 0 low, 1 some, 2 most */
    META_LEN,       /* length bucket */
    META_PUNCT,     /* a run of 3+ identical punctuation marks */
    META_EMOJI,     /* mostly emoji */
    META_OBFUSCATED,
    META_INVALID, /* invalid UTF-8 was replaced */
};

static const char *const meta_names[] = {
    "links", "caps", "len", "punct", "emoji", "obfuscated", "invalid_utf8",
};
#define N_META (sizeof meta_names / sizeof meta_names[0])
static const char *const caps_names[] = {"low", "some", "most"};
static const unsigned len_bounds[] = {20, 50, 100, 200, 400};
#define N_LEN_BOUNDS (sizeof len_bounds / sizeof len_bounds[0])

#define CHARGRAM_WORD_MAX 48 /* longer words give n-grams of a prefix */

void
feat_set_init(struct feat_set *fs)
{
    memset(fs, 0, sizeof *fs);
}

void
feat_set_release(struct feat_set *fs)
{
    if (!fs)
        return;
    free(fs->v);
    free(fs->slots);
    memset(fs, 0, sizeof *fs);
}

/* Room for `most` features, with the dedup slots at most a quarter full
 * (half full, a long comment's adds went on probing often enough to cost
 * 2-3% of its time), in 8-byte slots (16 KiB for a long comment: with the
 * key in the slot, 64 KiB at an eighth full, feat_extract missed the L1
 * cache 24% more often in callgrind's model): the largest a comment can
 * have is known before it is read, so add() checks nothing.  Empties the
 * set. */
static int
reserve(struct feat_set *fs, size_t most)
{
    fs->n = 0;
    if (most > fs->cap) {
        size_t cap = fs->cap ? fs->cap : 256;
        while (cap < most)
            cap *= 2;
        struct feat *v = realloc(fs->v, cap * sizeof *v);
        if (!v)
            return -1;
        fs->v = v;
        fs->cap = cap;
    }
    if (4 * most > fs->n_slots) {
        size_t n_slots = fs->n_slots ? fs->n_slots : 1024;
        while (n_slots < 4 * most)
            n_slots *= 2;
        struct feat_slot *slots = calloc(n_slots, sizeof *slots);
        if (!slots)
            return -1;
        free(fs->slots);
        fs->slots = slots;
        fs->n_slots = n_slots;
        fs->gen = 0;
    }
    /* A new generation empties every slot. */
    if (++fs->gen == 0) { /* wrapped: old stamps could look current */
        memset(fs->slots, 0, fs->n_slots * sizeof *fs->slots);
        fs->gen = 1;
    }
    return 0;
}

/* Add a feature unless its key is already in the set (which has room). */
static inline void
add(struct feat_set *fs, uint64_t key, unsigned family, unsigned arg,
    unsigned off, uint32_t tok)
{
    key = feat_key_with_family(key, family);
    size_t mask = fs->n_slots - 1, j = key & mask;
    for (; fs->slots[j].gen == fs->gen; j = (j + 1) & mask)
        if (fs->v[fs->slots[j].i].key == key)
            return;
    fs->slots[j] = (struct feat_slot){fs->gen, (uint32_t)fs->n};
    fs->v[fs->n++] = (struct feat){.key = key,
                                   .family = (uint8_t)family,
                                   .arg = (uint8_t)arg,
                                   .off = (uint16_t)off,
                                   .tok = tok};
}

static unsigned
token_family(unsigned kind)
{
    switch (kind) {
    case TEXT_URL:
    case TEXT_HOST:
        return FEAT_URL;
    case TEXT_EMAIL:
        return FEAT_EMAIL;
    case TEXT_MENTION:
        return FEAT_MENTION;
    case TEXT_EMOJI:
        return FEAT_EMOJI;
    default:
        return FEAT_WORD;
    }
}

/* The records hashed into meta and pair keys are little-endian, as the
 * model file is: a model trained on one host matches on any (on x86 this
 * is no change at all). */
static uint64_t
meta_key(unsigned prop, uint32_t value)
{
    uint32_t rec[2] = {htole32(prop), htole32(value)};
    return XXH3_64bits_withSeed(rec, sizeof rec, FEAT_META);
}

static uint64_t
pair_key(uint64_t a, uint64_t b)
{
    uint64_t rec[2] = {htole64(a), htole64(b)};
    return XXH3_64bits_withSeed(rec, sizeof rec, FEAT_PAIR);
}

/* Byte length of the UTF-8 sequence starting with c (text is valid UTF-8
 * after analysis). */
static unsigned
u8len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* What n-gram bundles are keyed with (xor) and n-grams seeded with: the
 * comment's language under CLF_FEAT_LANGCHARS, else nothing. */
static inline uint64_t
lang_salt(const struct clf_settings *s, const struct text_doc *doc)
{
    return (s->features & CLF_FEAT_LANGCHARS) ? doc->lang_hash : 0;
}

/* "_word_" into buf (the underscores mark word edges), at most
 * CHARGRAM_WORD_MAX bytes of the word, cut at a character boundary. */
static size_t
pad_word(const struct text_doc *doc, const struct text_token *t,
         char buf[CHARGRAM_WORD_MAX + 3])
{
    const char *surface = text_surface(doc, t);
    size_t len = t->surface_len;
    if (len > CHARGRAM_WORD_MAX) {
        len = CHARGRAM_WORD_MAX;
        while (len && ((unsigned char)surface[len] & 0xc0) == 0x80)
            len--;
    }
    buf[0] = '_';
    memcpy(buf + 1, surface, len);
    buf[len + 1] = '_';
    buf[len + 2] = '\0';
    return len + 2;
}

unsigned
feat_word_grams(const struct clf_settings *s, const struct text_doc *doc,
                const struct feat *bundle, struct feat *out)
{
    const struct text_token *t = &doc->tokens[bundle->tok];
    char buf[CHARGRAM_WORD_MAX + 3];
    unsigned starts[CHARGRAM_WORD_MAX + 3], n_chars = 0, k = 0;
    size_t blen = pad_word(doc, t, buf);
    for (size_t i = 0; i < blen; i += u8len((unsigned char)buf[i]))
        starts[n_chars++] = (unsigned)i;
    starts[n_chars] = (unsigned)blen;
    uint64_t seed = FEAT_CHARS ^ lang_salt(s, doc);
    for (unsigned n = s->chargram_min; n <= s->chargram_max; n++) {
        if (n > n_chars)
            break;
        for (unsigned i = 0; i + n <= n_chars && k < FEAT_GRAMS_MAX; i++) {
            unsigned off = starts[i], glen = starts[i + n] - off;
            uint64_t h = XXH3_64bits_withSeed(buf + off, glen, seed);
            out[k++] = (struct feat){.key = feat_key_with_family(h, FEAT_CHARS),
                                     .family = FEAT_CHARS,
                                     .arg = (uint8_t)glen,
                                     .off = (uint16_t)off,
                                     .tok = bundle->tok};
        }
    }
    return k;
}

static void
add_meta(struct feat_set *fs, const struct text_doc *doc, int obfuscated)
{
    const struct text_stats *st = &doc->stats;
    uint32_t links = st->n_urls > 3 ? 3 : st->n_urls;
    uint32_t caps = 0, len = 0;
    if (st->n_letters >= 6) {
        double share = (double)st->n_upper / st->n_letters;
        caps = share >= 0.5 ? 2 : share >= 0.15 ? 1 : 0;
    }
    while (len < N_LEN_BOUNDS && st->n_chars >= len_bounds[len])
        len++;
    add(fs, meta_key(META_LINKS, links), FEAT_META, META_LINKS, 0, links);
    add(fs, meta_key(META_CAPS, caps), FEAT_META, META_CAPS, 0, caps);
    add(fs, meta_key(META_LEN, len), FEAT_META, META_LEN, 0, len);
    if (st->max_punct_run >= 3)
        add(fs, meta_key(META_PUNCT, 3), FEAT_META, META_PUNCT, 0, 3);
    if (st->n_emoji && st->n_emoji * 2 >= doc->n_tokens)
        add(fs, meta_key(META_EMOJI, 1), FEAT_META, META_EMOJI, 0, 1);
    if (obfuscated)
        add(fs, meta_key(META_OBFUSCATED, 1), FEAT_META, META_OBFUSCATED, 0, 1);
    if (st->n_invalid)
        add(fs, meta_key(META_INVALID, 1), FEAT_META, META_INVALID, 0, 1);
}

int
feat_extract(struct feat_set *out, const struct clf_settings *s,
             const struct text_doc *doc)
{
    uint64_t prev = 0;
    uint32_t prev_i = UINT32_MAX;
    int obfuscated = 0;
    /* A word, a pair and a bundle per token at most, and the meta. */
    if (reserve(out, 3 * (size_t)doc->n_tokens + N_META) < 0)
        return -1;
    /* Added to in a copy: the stores into v and the slots may not change
     * it, so its fields stay in registers (with out itself, GCC loaded
     * them again for every feature). */
    struct feat_set set = *out, *fs = &set;
    uint64_t chars_salt = lang_salt(s, doc);
    for (uint32_t i = 0; i < doc->n_tokens; i++) {
        const struct text_token *t = &doc->tokens[i];
        unsigned fam = token_family(t->kind);
        /* seed 0 is XXH3's plain hash, which the token carries */
        uint64_t key = fam == FEAT_WORD ? t->str_hash
                                        : XXH3_64bits_withSeed(text_str(doc, t),
                                                               t->len, fam);
        obfuscated |= t->flags & TEXT_F_OBFUSCATED;
        if (s->features & CLF_FEAT_WORDS)
            add(fs, key, fam, 0, 0, i);
        if (t->kind == TEXT_HOST)
            continue; /* its URL token stands for it in pairs */
        if ((s->features & CLF_FEAT_PAIRS) && prev_i != UINT32_MAX)
            add(fs, pair_key(prev, key), FEAT_PAIR, 0, 0, prev_i);
        if ((s->features & CLF_FEAT_CHARGRAMS) &&
            (t->kind == TEXT_WORD || t->kind == TEXT_URL ||
             t->kind == TEXT_NUMBER))
            add(fs, t->surface_hash ^ chars_salt, FEAT_CHARS, 0, 0, i);
        prev = key;
        prev_i = i;
    }
    if (s->features & CLF_FEAT_META)
        add_meta(fs, doc, obfuscated);
    out->n = fs->n;
    return 0;
}

uint64_t
feat_fold_hash(const struct text_doc *doc)
{
    uint64_t h = 0;
    for (uint32_t i = 0; i < doc->n_tokens; i++) {
        const struct text_token *t = &doc->tokens[i];
        h = XXH3_64bits_withSeed(text_surface(doc, t), t->surface_len,
                                 h ^ t->kind);
    }
    return h;
}

static const char *const family_names[] = {
    "word", "url", "email", "mention", "emoji", "pair", "chars", "meta",
};

/* n bytes of s at buf[at] (len bytes in all, cut to fit before a UTF-8
 * sequence that would not fit whole, NUL-terminated):
 * a name's parts without printf, which cost more than scoring them.
 * Returns the new end. */
static size_t
name_cat(char *buf, size_t len, size_t at, const char *s, size_t n)
{
    if (len == 0)
        return 0;
    if (n > len - 1 - at) { /* at < len: every call leaves it so */
        n = len - 1 - at;
        /* cut before a UTF-8 sequence that would not fit whole */
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(buf + at, s, n);
    buf[at + n] = '\0';
    return at + n;
}

/* v in decimal at buf[at], as name_cat. */
static size_t
name_uint(char *buf, size_t len, size_t at, unsigned v)
{
    char digits[12], *p = digits + sizeof digits;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return name_cat(buf, len, at, p, (size_t)(digits + sizeof digits - p));
}

void
feat_name(const struct feat *f, const struct text_doc *doc, char *buf,
          size_t len)
{
    size_t at;

    const char *fam = family_names[f->family];
    const struct text_token *t = &doc->tokens[f->tok];
    switch (f->family) {
    case FEAT_META:
        at = name_cat(buf, len, 0, "meta:", 5);
        if (f->arg == META_CAPS) {
            at = name_cat(buf, len, at, "caps=", 5);
            name_cat(buf, len, at, caps_names[f->tok],
                     strlen(caps_names[f->tok]));
        } else if (f->arg == META_LEN) {
            int below = f->tok < N_LEN_BOUNDS;

            at = name_cat(buf, len, at,
                          below ? "len=<" : "len=>=", below ? 5 : 6);
            name_uint(buf, len, at,
                      len_bounds[below ? f->tok : N_LEN_BOUNDS - 1]);
        } else if (f->arg == META_LINKS) {
            at = name_cat(buf, len, at, "links=", 6);
            at = name_uint(buf, len, at, f->tok);
            if (f->tok == 3)
                name_cat(buf, len, at, "+", 1);
        } else if (f->arg == META_PUNCT) {
            name_cat(buf, len, at, "punct=3+", 8);
        } else {
            name_cat(buf, len, at, meta_names[f->arg],
                     strlen(meta_names[f->arg]));
        }
        break;
    case FEAT_PAIR: {
        /* The next token that is not a URL's host. */
        uint32_t k = f->tok + 1;
        while (k < doc->n_tokens && doc->tokens[k].kind == TEXT_HOST)
            k++;
        const struct text_token *u =
            &doc->tokens[k < doc->n_tokens ? k : f->tok];
        at = name_cat(buf, len, 0, "pair:", 5);
        at = name_cat(buf, len, at, text_str(doc, t), t->len);
        at = name_cat(buf, len, at, "_", 1);
        name_cat(buf, len, at, text_str(doc, u), u->len);
        break;
    }
    case FEAT_CHARS: {
        char word[CHARGRAM_WORD_MAX + 3];
        pad_word(doc, t, word);
        at = name_cat(buf, len, 0, "chars:", 6);
        if (feat_is_bundle(f)) /* all the n-grams of a word */
            name_cat(buf, len, at, text_surface(doc, t), t->surface_len);
        else
            name_cat(buf, len, at, word + f->off, f->arg);
        break;
    }
    default:
        at = name_cat(buf, len, 0, fam, strlen(fam));
        at = name_cat(buf, len, at, ":", 1);
        name_cat(buf, len, at, text_str(doc, t), t->len);
    }
}
