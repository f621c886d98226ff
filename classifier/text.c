/*
 * text.c - raw comment bytes to typed, folded, stemmed tokens (see text.h).
 *
 * The per-comment path has three passes over bounded buffers:
 *
 *  1. clean (text_clean): decode UTF-8 (invalid sequences -> U+FFFD,
 *     counted), decode HTML entities, drop invisible characters (counted;
 *     they never split a word), NFKC case folding, and classify each code
 *     point (letter, digit, mark, space, punctuation, emoji).  ASCII bytes go
 *     through a table (16 at a time with SSE2) and never reach utf8proc;
 *     other code points are folded one at a time with utf8proc_decompose_char
 *     and recomposed with their combining marks.
 *  2. tokenise (text_tokenize): URLs (+ their host), e-mail addresses,
 *     @mentions, emoji, numbers and words; words are de-obfuscated
 *     (text_word_build) on the way, except plain ones (text_word_plain:
 *     Latin-1 letters with nothing to fold), which are copied as they are.
 *  3. detect the language from the words, then stem the words with that
 *     language's cached Snowball stemmer.
 *
 * Choices worth knowing (the golden files in tests/golden/text/ show them):
 *
 *  - HTML entities (&amp; &lt; &gt; &quot; &apos; &nbsp; a few quotes and
 *    dashes, and every numeric &#NNN; / &#xHH;) are decoded, once more when
 *    doubly escaped (&amp;#8220;), so "&amp;" is the punctuation "&" and
 *    never the word "amp", and "&#128514;" is the emoji it names.
 *  - Apostrophes inside words are dropped: "don't" -> "dont", "it's" ->
 *    "its", so the spellings with and without one meet.
 *  - Emoji: one token per emoji; skin-tone modifiers, variation selectors
 *    and tag characters are dropped (👍🏽 == 👍), ZWJ sequences stay one
 *    token, two regional indicators make one flag, a keycap is one token.
 *  - Obfuscation (TEXT_F_OBFUSCATED): see text_word_build() for the exact
 *    rules: leet digits, symbols as letters, masked letters ("f*ck"),
 *    stretched letters, s p a c e d letters, Cyrillic/Greek look-alikes,
 *    invisible characters and stray combining marks inside a word.
 *  - Words are capped at TEXT_WORD_CP code points and URLs at TEXT_URL_LEN
 *    bytes (the rest of such a token is consumed and dropped).
 */
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define XXH_INLINE_ALL /* hashing a short word is cheaper inlined */
#include <xxhash.h>

#include "lang.h"
#include "stem.h"

#define TEXT_DEFAULT_MAX_BYTES 8192u
#define TEXT_DEFAULT_MAX_TOKENS 1024u
#define TEXT_WORD_CP 64       /* code points kept of one word */
#define TEXT_URL_LEN 256      /* bytes kept of one URL */
#define TEXT_HOST_CP 255      /* host names are never longer (bounds rescans) */
#define TEXT_NAME_CP 64       /* mention and e-mail local-part length */
#define TEXT_DETECT_WORDS 200 /* words looked at for language detection */
#define TEXT_STEM_MIN 3       /* shorter words are kept as they are */
#define TEXT_STEM_AHEAD 8     /* tokens whose stem is prefetched (stem.h) */

/* Code point classes after cleaning. */
enum {
    TEXT_C_SPACE = 0,
    TEXT_C_PUNCT, /* punctuation, symbols, U+FFFD: never part of a word */
    TEXT_C_LETTER,
    TEXT_C_DIGIT,
    TEXT_C_MARK, /* combining mark that did not compose (non-Latin scripts) */
    TEXT_C_EMOJI,
    TEXT_C_EXT,  /* ZWJ / keycap inside an emoji sequence */
    TEXT_C_MASK, /* word builder only: '*' standing for hidden letters */
};

/* Per code point flags. */
#define TEXT_FL_UP 0x01u    /* upper case in the original text */
#define TEXT_FL_INV 0x02u   /* an invisible character was removed just before */
#define TEXT_FL_ZALGO 0x04u /* stray combining marks were dropped after it */
#define TEXT_FL_SYM                                                            \
    0x08u /* word builder: a letter made from a digit/symbol                   \
           */

/* ASCII classes: a table instead of utf8proc for the common case. */
static const uint8_t text_ascii_class[128] = {
    [0 ... 0x20] = TEXT_C_SPACE,     [0x21 ... 0x2f] = TEXT_C_PUNCT,
    [0x30 ... 0x39] = TEXT_C_DIGIT,  [0x3a ... 0x40] = TEXT_C_PUNCT,
    [0x41 ... 0x5a] = TEXT_C_LETTER, [0x5b ... 0x60] = TEXT_C_PUNCT,
    [0x61 ... 0x7a] = TEXT_C_LETTER, [0x7b ... 0x7e] = TEXT_C_PUNCT,
    [0x7f] = TEXT_C_SPACE,
};

struct text_wch { /* one code point of the word being built */
    uint32_t c;
    uint8_t cls, fl;
};

struct text_stemmer {
    const char *name; /* libstemmer's static name */
    struct stem *st;  /* NULL until first used, or if it failed */
    int failed;
};

/* The settings' languages resolved once (settings rarely change). */
struct text_config {
    int valid;
    unsigned n; /* configured languages, as given */
    char given[CLF_MAX_LANGUAGES][CLF_LANG_MAX];
    char given_def[CLF_LANG_MAX];
    const char *name[CLF_MAX_LANGUAGES]; /* libstemmer's name, or NULL */
    const char *code[CLF_MAX_LANGUAGES];
    int id[CLF_MAX_LANGUAGES]; /* enum lang_id or -1 */
    unsigned mask;             /* 1 << id of every configured language */
    const char *def;           /* default language, resolved */
    int cyrillic_ok, greek_ok; /* a configured language writes them */
};

struct text_analyzer {
    /* cleaned code points, classes and flags (parallel arrays) */
    uint32_t *cp;
    uint8_t *cls, *fl;
    size_t n, cap;

    char *arena; /* token strings, NUL-terminated */
    size_t arena_len, arena_cap;

    struct text_token *toks; /* what text_analyze hands out */
    uint32_t *words_at;      /* the tokens to stem, by index */
    struct stem *last_stem;  /* the previous comment's stemmer */
    size_t n_toks, toks_cap;

    struct text_wch wbuf[TEXT_WORD_CP];
    unsigned wn;

    struct lang_table *words;
    struct text_stemmer stemmers[CLF_MAX_LANGUAGES];
    struct text_config cfg;

    /* per call */
    struct text_stats stats;
    size_t max_tokens;
    int full;        /* max_tokens reached */
    int oom;         /* an allocation failed */
    uint8_t pending; /* TEXT_FL_INV for the next code point */
    uint32_t last_punct, punct_run;
    unsigned n_es_marks;  /* ñ ¿ ¡ */
    unsigned n_acute;     /* á é í ó ú */
    unsigned n_script[3]; /* Cyrillic, Greek, Arabic letters */
    unsigned n_unlike[2]; /* Cyrillic, Greek letters unlike any Latin one */
};

/* ---- lifecycle ---------------------------------------------------------- */

struct text_analyzer *
text_analyzer_new(void)
{
    struct text_analyzer *ta = calloc(1, sizeof(*ta));
    if (!ta)
        return NULL;
    ta->words = lang_table_new();
    if (!ta->words) {
        free(ta);
        return NULL;
    }
    return ta;
}

void
text_analyzer_free(struct text_analyzer *ta)
{
    if (!ta)
        return;
    for (unsigned i = 0; i < CLF_MAX_LANGUAGES; i++)
        stem_free(ta->stemmers[i].st);
    lang_table_free(ta->words);
    free(ta->cp);
    free(ta->cls);
    free(ta->fl);
    free(ta->arena);
    free(ta->toks);
    free(ta->words_at);
    free(ta);
}

/* Make room for `more` code points; buffers only grow. */
static int
text_reserve_cp(struct text_analyzer *ta, size_t more)
{
    if (ta->n + more <= ta->cap)
        return 0;
    size_t cap = ta->cap ? ta->cap : 256;
    while (cap < ta->n + more)
        cap *= 2;
    uint32_t *cp = realloc(ta->cp, cap * sizeof(*cp));
    if (!cp)
        goto fail;
    ta->cp = cp;
    uint8_t *cls = realloc(ta->cls, cap);
    if (!cls)
        goto fail;
    ta->cls = cls;
    uint8_t *fl = realloc(ta->fl, cap);
    if (!fl)
        goto fail;
    ta->fl = fl;
    ta->cap = cap;
    return 0;
fail:
    ta->oom = 1;
    return -1;
}

static int
text_reserve_arena(struct text_analyzer *ta, size_t more)
{
    if (ta->arena_len + more <= ta->arena_cap)
        return 0;
    size_t cap = ta->arena_cap ? ta->arena_cap : 1024;
    while (cap < ta->arena_len + more)
        cap *= 2;
    char *a = realloc(ta->arena, cap);
    if (!a) {
        ta->oom = 1;
        return -1;
    }
    ta->arena = a;
    ta->arena_cap = cap;
    return 0;
}

/* ---- pass 1: cleaning -----------------------------------------------------
 */

/*
 * Decode one UTF-8 sequence strictly (no overlongs, surrogates or values
 * over U+10FFFF).  An invalid sequence yields U+FFFD and consumes its
 * maximal valid prefix (at least one byte), as Unicode recommends.
 */
static size_t
text_utf8_next(const unsigned char *s, size_t len, uint32_t *out, int *bad)
{
    unsigned b = s[0];
    size_t need;
    uint32_t c;
    unsigned lo = 0x80, hi = 0xbf;

    *bad = 0;
    if (b < 0x80) {
        *out = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        need = 1;
        c = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        need = 2;
        c = b & 0x0f;
        if (b == 0xe0)
            lo = 0xa0;
        else if (b == 0xed)
            hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3;
        c = b & 0x07;
        if (b == 0xf0)
            lo = 0x90;
        else if (b == 0xf4)
            hi = 0x8f;
    } else {
        goto invalid1;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= len || s[k] < lo || s[k] > hi) {
            *out = 0xfffd;
            *bad = 1;
            return k;
        }
        c = (c << 6) | (s[k] & 0x3f);
        lo = 0x80;
        hi = 0xbf;
    }
    *out = c;
    return need + 1;
invalid1:
    *out = 0xfffd;
    *bad = 1;
    return 1;
}

struct text_entity {
    const char *name;
    uint32_t cp;
};

static const struct text_entity text_entities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},        {"quot", '"'},
    {"apos", '\''},    {"nbsp", ' '},     {"hellip", 0x2026}, {"mdash", 0x2014},
    {"ndash", 0x2013}, {"lsquo", 0x2018}, {"rsquo", 0x2019},  {"ldquo", 0x201c},
    {"rdquo", 0x201d}, {"laquo", 0xab},   {"raquo", 0xbb},
};

/* An HTML entity at s (s[0] == '&'): bytes used, or 0 if there is none. */
static size_t
text_entity(const char *s, size_t len, uint32_t *out)
{
    size_t i = 1;
    if (len < 3)
        return 0;
    if (s[1] == '#') {
        uint32_t v = 0;
        unsigned digits = 0;
        int hex = (len > 2 && (s[2] == 'x' || s[2] == 'X'));
        i = hex ? 3 : 2;
        for (; i < len && digits < 8; i++, digits++) {
            unsigned char ch = (unsigned char)s[i];
            unsigned d;
            if (ch >= '0' && ch <= '9')
                d = ch - '0';
            else if (hex && (ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
                d = (ch | 0x20) - 'a' + 10;
            else
                break;
            v = v * (hex ? 16 : 10) + d;
        }
        if (digits == 0 || digits >= 8 || i >= len || s[i] != ';')
            return 0;
        if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
            return 0;
        *out = v;
        return i + 1;
    }
    for (size_t e = 0; e < sizeof(text_entities) / sizeof(text_entities[0]);
         e++) {
        size_t n = strlen(text_entities[e].name);
        if (len >= n + 2 && memcmp(s + 1, text_entities[e].name, n) == 0 &&
            s[n + 1] == ';') {
            *out = text_entities[e].cp;
            return n + 2;
        }
    }
    return 0;
}

static void
text_push(struct text_analyzer *ta, uint32_t c, uint8_t cls, uint8_t fl)
{
    size_t n = ta->n++;
    ta->cp[n] = c;
    ta->cls[n] = cls;
    ta->fl[n] = fl | ta->pending;
    ta->pending = 0;
    if (cls == TEXT_C_PUNCT) {
        ta->punct_run = (c == ta->last_punct) ? ta->punct_run + 1 : 1;
        ta->last_punct = c;
        if (ta->punct_run > ta->stats.max_punct_run)
            ta->stats.max_punct_run = ta->punct_run;
    } else {
        ta->last_punct = 0;
    }
    if (cls != TEXT_C_EXT)
        ta->stats.n_chars++;
    if (cls == TEXT_C_LETTER)
        ta->stats.n_letters++;
}

static inline void
text_push_ascii(struct text_analyzer *ta, unsigned char b)
{
    uint8_t cls = text_ascii_class[b];
    uint8_t fl = 0;
    if (b >= 'A' && b <= 'Z') {
        b = (unsigned char)(b + 32);
        fl = TEXT_FL_UP;
        ta->stats.n_upper++;
    }
    text_push(ta, b, cls, fl);
}

static int
text_is_latin(uint32_t c)
{
    return c < 0x250 || (c >= 0x1e00 && c <= 0x1eff);
}

static uint8_t
text_class_of(uint32_t c, const utf8proc_property_t *p)
{
    if (c < 0x80)
        return text_ascii_class[c];
    switch (p->category) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return TEXT_C_LETTER;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        return TEXT_C_MARK;
    case UTF8PROC_CATEGORY_ND:
        return TEXT_C_DIGIT;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_CC:
        return TEXT_C_SPACE;
    default:
        return TEXT_C_PUNCT;
    }
}

/* A combining mark after the last code point: compose it when Unicode has
 * the composition ("n" + U+0303 -> "ñ"); drop it when it cannot compose onto
 * a Latin letter (Zalgo text); keep it otherwise (other scripts). */
static void
text_push_mark(struct text_analyzer *ta, uint32_t m)
{
    size_t n = ta->n;
    if (n > 0 && ta->cls[n - 1] == TEXT_C_LETTER) {
        utf8proc_int32_t b[2] = {(utf8proc_int32_t)ta->cp[n - 1],
                                 (utf8proc_int32_t)m};
        if (utf8proc_normalize_utf32(b, 2,
                                     UTF8PROC_COMPOSE | UTF8PROC_STABLE) == 1) {
            ta->cp[n - 1] = (uint32_t)b[0];
            return;
        }
        if (m == 0x307 && ta->cp[n - 1] == 'i')
            return; /* "İ" folds to "i" + dot above: plain "i" */
        if (text_is_latin(ta->cp[n - 1])) {
            ta->fl[n - 1] |= TEXT_FL_ZALGO;
            return;
        }
    }
    if (n > 0 &&
        (ta->cls[n - 1] == TEXT_C_MARK || ta->cls[n - 1] == TEXT_C_LETTER))
        text_push(ta, m, TEXT_C_MARK, 0);
    /* a mark with nothing to sit on is dropped */
}

static uint32_t text_homoglyph(uint32_t c);

static void
text_count_script(struct text_analyzer *ta, uint32_t c)
{
    if (c >= 0x400 && c <= 0x4ff) {
        ta->n_script[0]++;
        ta->n_unlike[0] += !text_homoglyph(c);
    } else if (c >= 0x370 && c <= 0x3ff) {
        ta->n_script[1]++;
        ta->n_unlike[1] += !text_homoglyph(c);
    } else if (c >= 0x600 && c <= 0x6ff) {
        ta->n_script[2]++;
    }
}

/* One non-ASCII code point of the input. */
static void
text_push_unicode(struct text_analyzer *ta, uint32_t c)
{
    size_t n = ta->n;
    uint8_t prev = n ? ta->cls[n - 1] : TEXT_C_SPACE;
    int in_emoji = (prev == TEXT_C_EMOJI || prev == TEXT_C_EXT);

    if (c == 0xf1 || c == 0xd1 || c == 0xbf || c == 0xa1)
        ta->n_es_marks++; /* ñ Ñ ¿ ¡ */
    /* á é í ó ú, either case */
    ta->n_acute += (c | 0x20) == 0xe1 || (c | 0x20) == 0xe9 ||
                   (c | 0x20) == 0xed || (c | 0x20) == 0xf3 ||
                   (c | 0x20) == 0xfa;
    /* Latin-1 letters are already NFKC case-folded apart from their case:
     * the accents of Spanish text skip utf8proc. */
    if (c >= 0xe0 && c <= 0xfe && c != 0xf7) {
        text_push(ta, c, TEXT_C_LETTER, 0);
        return;
    }
    if (c >= 0xc0 && c <= 0xde && c != 0xd7) {
        ta->stats.n_upper++;
        text_push(ta, c + 0x20, TEXT_C_LETTER, TEXT_FL_UP);
        return;
    }
    if (c == 0x200d) { /* ZWJ: glue inside an emoji sequence, else invisible */
        if (in_emoji) {
            text_push(ta, c, TEXT_C_EXT, 0);
            return;
        }
        goto invisible;
    }
    if (c >= 0xfe00 && c <= 0xfe0f) { /* variation selectors */
        if (in_emoji || (n && (ta->cp[n - 1] == '#' || ta->cp[n - 1] == '*' ||
                               ta->cls[n - 1] == TEXT_C_DIGIT)))
            return; /* presentation only; not counted */
        goto invisible;
    }
    if (c >= 0x1f3fb && c <= 0x1f3ff)
        return; /* skin tones: normalised away, 👍🏽 == 👍 */
    if (c >= 0xe0020 && c <= 0xe007f && in_emoji)
        return; /* tag sequence of a subdivision flag */
    if (c == 0x20e3 && n &&
        (ta->cls[n - 1] == TEXT_C_DIGIT || ta->cp[n - 1] == '#' ||
         ta->cp[n - 1] == '*')) {
        ta->cls[n - 1] = TEXT_C_EMOJI; /* keycap: "1⃣" is one emoji */
        text_push(ta, c, TEXT_C_EXT, 0);
        return;
    }

    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)c);
    if (p->ignorable)
        goto invisible;
    if (p->boundclass == UTF8PROC_BOUNDCLASS_REGIONAL_INDICATOR ||
        (p->boundclass == UTF8PROC_BOUNDCLASS_EXTENDED_PICTOGRAPHIC &&
         c >= 0x2190)) {
        text_push(ta, c, TEXT_C_EMOJI, 0);
        return;
    }
    switch (p->category) {
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_CC:
        text_push(ta, ' ', TEXT_C_SPACE, 0);
        return;
    default:
        break;
    }

    int upper = (p->category == UTF8PROC_CATEGORY_LU ||
                 p->category == UTF8PROC_CATEGORY_LT);
    if (upper)
        ta->stats.n_upper++;
    utf8proc_int32_t buf[32];
    int last_bound = 0;
    utf8proc_ssize_t k = utf8proc_decompose_char(
        (utf8proc_int32_t)c, buf, 32,
        UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_DECOMPOSE, &last_bound);
    if (k <= 0 || k > 32) {
        buf[0] = (utf8proc_int32_t)c;
        k = 1;
    }
    for (utf8proc_ssize_t i = 0; i < k; i++) {
        uint32_t d = (uint32_t)buf[i];
        const utf8proc_property_t *pd =
            d < 0x80 ? NULL : utf8proc_get_property(buf[i]);
        uint8_t cls = text_class_of(d, pd);
        if (cls == TEXT_C_MARK && pd && pd->category == UTF8PROC_CATEGORY_MN) {
            text_push_mark(ta, d);
            continue;
        }
        if (cls == TEXT_C_LETTER)
            text_count_script(ta, d);
        text_push(ta, d, cls, (upper && cls == TEXT_C_LETTER) ? TEXT_FL_UP : 0);
    }
    return;

invisible:
    ta->stats.n_invisible++;
    ta->pending = TEXT_FL_INV;
}

#ifdef __SSE2__
/* Sixteen ASCII bytes (no '&') at once: the same classes, folding and flags
 * as the table; *letters and *upper count.  Returns the punctuation bits. */
static inline unsigned
text_clean16(const unsigned char *s, uint32_t *cp, uint8_t *cls, uint8_t *fl,
             uint32_t *letters, uint32_t *upper, unsigned *same)
{
    const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi8(1);
    __m128i v = _mm_loadu_si128((const __m128i *)s);
#define TEXT_IN(lo, hi)                                                        \
    _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8((lo)-1)),                    \
                  _mm_cmplt_epi8(v, _mm_set1_epi8((hi) + 1)))
    __m128i up = TEXT_IN('A', 'Z');
    __m128i letter = _mm_or_si128(up, TEXT_IN('a', 'z'));
    __m128i digit = TEXT_IN('0', '9');
#undef TEXT_IN
    __m128i space = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x21)),
                                 _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    __m128i punct =
        _mm_andnot_si128(_mm_or_si128(space, digit),
                         _mm_andnot_si128(letter, _mm_set1_epi8(-1)));
    __m128i k = _mm_or_si128(
        _mm_or_si128(_mm_and_si128(letter, _mm_set1_epi8(TEXT_C_LETTER)),
                     _mm_and_si128(digit, _mm_set1_epi8(TEXT_C_DIGIT))),
        _mm_or_si128(_mm_and_si128(punct, _mm_set1_epi8(TEXT_C_PUNCT)),
                     _mm_and_si128(space, _mm_set1_epi8(TEXT_C_SPACE))));
    _mm_storeu_si128((__m128i *)cls, k);
    _mm_storeu_si128((__m128i *)fl,
                     _mm_and_si128(up, _mm_set1_epi8(TEXT_FL_UP)));
    __m128i low = _mm_add_epi8(v, _mm_and_si128(up, _mm_set1_epi8(0x20)));
    __m128i l8 = _mm_unpacklo_epi8(low, zero),
            h8 = _mm_unpackhi_epi8(low, zero);
    _mm_storeu_si128((__m128i *)cp, _mm_unpacklo_epi16(l8, zero));
    _mm_storeu_si128((__m128i *)(cp + 4), _mm_unpackhi_epi16(l8, zero));
    _mm_storeu_si128((__m128i *)(cp + 8), _mm_unpacklo_epi16(h8, zero));
    _mm_storeu_si128((__m128i *)(cp + 12), _mm_unpackhi_epi16(h8, zero));
    /* counts: sums of the 0/1 bytes of each half */
    __m128i nl = _mm_sad_epu8(_mm_and_si128(letter, one), zero);
    __m128i nu = _mm_sad_epu8(_mm_and_si128(up, one), zero);
    *letters += (uint32_t)(_mm_cvtsi128_si32(nl) +
                           _mm_cvtsi128_si32(_mm_srli_si128(nl, 8)));
    *upper += (uint32_t)(_mm_cvtsi128_si32(nu) +
                         _mm_cvtsi128_si32(_mm_srli_si128(nu, 8)));
    /* bit i (i >= 1): s[i] == s[i - 1] */
    *same =
        (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_slli_si128(v, 1))) &
        ~1u;
    return (unsigned)_mm_movemask_epi8(punct);
}

/* Bit i set when s[i] is not ASCII or is '&' (the slow path's bytes). */
static inline unsigned
text_stop16(const unsigned char *s)
{
    __m128i v = _mm_loadu_si128((const __m128i *)s);
    return (unsigned)(_mm_movemask_epi8(v) |
                      _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('&'))));
}
#endif

/*
 * The ASCII fast path: the run of ASCII bytes other than '&' from s[i], with
 * a table (and SSE2 where there is one), no utf8proc.  The buffers hold len +
 * 64 code points beyond every non-ASCII expansion.  Returns the run's end.
 */
static size_t
text_clean_ascii(struct text_analyzer *ta, const unsigned char *s, size_t i,
                 size_t len)
{
    size_t n = ta->n;
    uint32_t *cp = ta->cp;
    uint8_t *cls = ta->cls, *fl = ta->fl;
    uint32_t letters = 0, upper = 0, start = (uint32_t)n;
    uint32_t last = ta->last_punct, run = ta->punct_run;
    uint32_t max_run = ta->stats.max_punct_run;
    uint8_t pending = ta->pending;

#ifdef __SSE2__
    for (; i + 16 <= len && !text_stop16(s + i); i += 16, n += 16) {
        unsigned same;
        unsigned pm = text_clean16(s + i, cp + n, cls + n, fl + n, &letters,
                                   &upper, &same);
        fl[n] |= pending;
        pending = 0;
        /* Punctuation runs.  Where no mark repeats the byte before it (the
         * last block's at bit 0), every run here is one long; else one
         * mark at a time.  A loop over every mark mispredicted about 20
         * times in a long comment (callgrind --branch-sim). */
        if (!((pm & same) | ((pm & 1) & (s[i] == last)))) {
            run = pm ? 1 : run;
            max_run = max_run > (pm != 0) ? max_run : (pm != 0);
        } else {
            for (unsigned m = pm; m; m &= m - 1) {
                unsigned k = (unsigned)__builtin_ctz(m);
                uint32_t c = s[i + k];
                run = c == (k ? s[i + k - 1] : last) ? run + 1 : 1;
                max_run = run > max_run ? run : max_run;
            }
        }
        last = pm & 0x8000u ? s[i + 15] : 0;
    }
#endif
    for (; i < len && s[i] < 0x80 && s[i] != '&'; i++, n++) {
        unsigned char b = s[i];
        uint8_t k = text_ascii_class[b];
        uint8_t up = (uint8_t)((unsigned)(b - 'A') < 26u);
        cp[n] = b | (uint32_t)(up << 5);
        cls[n] = k;
        fl[n] = up | pending; /* TEXT_FL_UP == 1 */
        pending = 0;
        upper += up;
        letters += k == TEXT_C_LETTER;
        if (k == TEXT_C_PUNCT) {
            run = b == last ? run + 1 : 1;
            last = b;
            max_run = run > max_run ? run : max_run;
        } else {
            last = 0;
        }
    }
    ta->n = n;
    ta->pending = pending;
    ta->last_punct = last;
    ta->punct_run = run;
    ta->stats.max_punct_run = max_run;
    ta->stats.n_chars += (uint32_t)n - start;
    ta->stats.n_letters += letters;
    ta->stats.n_upper += upper;
    return i;
}

static int
text_clean(struct text_analyzer *ta, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;

    if (text_reserve_cp(ta, len + 64) < 0)
        return -1;
    while (i < len) {
        uint32_t c;
        unsigned char b = s[i];

        if (b < 0x80 && b != '&') {
            i = text_clean_ascii(ta, s, i, len);
            continue;
        }
        /* worst case of one input code point: an NFKC expansion of 18 */
        if (ta->n + (len - i) + 40 > ta->cap &&
            text_reserve_cp(ta, (len - i) + 64) < 0)
            return -1;
        if (b == '&') {
            size_t used = text_entity(text + i, len - i, &c);
            if (!used) {
                text_push_ascii(ta, b);
                i++;
                continue;
            }
            i += used;
            if (c == '&' && i < len) { /* doubly escaped: "&amp;#39;" */
                char tmp[16] = "&";
                size_t m =
                    len - i < sizeof(tmp) - 1 ? len - i : sizeof(tmp) - 1;
                memcpy(tmp + 1, text + i, m);
                uint32_t c2;
                size_t used2 = text_entity(tmp, m + 1, &c2);
                if (used2) {
                    i += used2 - 1;
                    c = c2;
                }
            }
        } else {
            int bad;
            i += text_utf8_next(s + i, len - i, &c, &bad);
            if (bad)
                ta->stats.n_invalid++;
        }
        if (c < 0x80)
            text_push_ascii(ta, (unsigned char)c);
        else
            text_push_unicode(ta, c);
    }
    return 0;
}

/* ---- pass 2: tokens ----------------------------------------------------- */

/* Room for every token the cleaned text can make: each token but a HOST
 * consumes at least one code point, and a HOST follows a URL of 3 or more. */
static int
text_reserve_toks(struct text_analyzer *ta)
{
    size_t need = ta->n + 1 < ta->max_tokens ? ta->n + 1 : ta->max_tokens;
    if (need <= ta->toks_cap)
        return 0;
    size_t cap = ta->toks_cap ? ta->toks_cap : 64;
    while (cap < need)
        cap *= 2;
    struct text_token *t = realloc(ta->toks, cap * sizeof(*t));
    if (!t)
        goto oom;
    ta->toks = t;
    uint32_t *w = realloc(ta->words_at, cap * sizeof(*w));
    if (!w)
        goto oom;
    ta->words_at = w;
    ta->toks_cap = cap;
    return 0;
oom:
    ta->oom = 1;
    return -1;
}

static inline int
text_tok_add(struct text_analyzer *ta, uint8_t kind, uint32_t off, uint32_t len,
             uint8_t flags)
{
    if (ta->n_toks >= ta->max_tokens || ta->n_toks >= ta->toks_cap) {
        ta->full = 1;
        ta->stats.truncated = 1;
        return -1;
    }
    struct text_token *t = &ta->toks[ta->n_toks++];
    t->str = t->surface = off;
    t->len = t->surface_len = len;
    t->kind = kind;
    t->flags = flags;
    /* its text is final; str is the surface until a word is stemmed */
    t->surface_hash = t->str_hash = XXH3_64bits(ta->arena + off, len);
    /* Ask for the word's stem-cache set now, in the language of the
     * comment before (a blog's comments come mostly in one): the stems
     * are looked up only after detection, and by then the lines are in.
     * 15 of 20 alternated runs faster, by 1-4% (07:40 UTC). */
    if (kind == TEXT_WORD && ta->last_stem)
        stem_prefetch(ta->last_stem, t->surface_hash);
    if (kind == TEXT_URL)
        ta->stats.n_urls++;
    else if (kind == TEXT_EMOJI)
        ta->stats.n_emoji++;
    return 0;
}

static size_t
text_utf8_put(char *dst, uint32_t c)
{
    if (c < 0x80) {
        dst[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        dst[0] = (char)(0xc0 | (c >> 6));
        dst[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        dst[0] = (char)(0xe0 | (c >> 12));
        dst[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (c >> 18));
    dst[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* Append code points [a, b) to the arena as a NUL-terminated string, at most
 * max_len bytes; returns 0 and the offset/length, or -1. */
static int
text_emit_range(struct text_analyzer *ta, size_t a, size_t b, size_t max_len,
                uint32_t *off, uint32_t *len)
{
    if (text_reserve_arena(ta, (b - a) * 4 + 1) < 0)
        return -1;
    char *p = ta->arena + ta->arena_len;
    size_t l = 0;
    for (size_t i = a; i < b; i++) {
        uint32_t c = ta->cp[i];
        if (l + (c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4) > max_len)
            break;
        l += text_utf8_put(p + l, c);
    }
    p[l] = '\0';
    *off = (uint32_t)ta->arena_len;
    *len = (uint32_t)l;
    ta->arena_len += l + 1;
    return 0;
}

/* Scripts written without spaces between words: each character is a word
 * of its own (Han ideographs, kana). */
static inline int
text_is_cjk(uint32_t c)
{
    return (c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xf900 && c <= 0xfaff) ||
           (c >= 0x20000 && c <= 0x2ffff);
}

static inline uint32_t
text_cp(const struct text_analyzer *ta, size_t i)
{
    return i < ta->n ? ta->cp[i] : 0;
}

static inline uint8_t
text_cls(const struct text_analyzer *ta, size_t i)
{
    return i < ta->n ? ta->cls[i] : TEXT_C_SPACE;
}

static inline int
text_is_wordc(uint8_t cls)
{
    return cls == TEXT_C_LETTER || cls == TEXT_C_DIGIT || cls == TEXT_C_MARK;
}

/* Does the text at i start with the ASCII string s? */
static int
text_match(const struct text_analyzer *ta, size_t i, const char *s)
{
    for (; *s; s++, i++)
        if (text_cp(ta, i) != (unsigned char)*s)
            return 0;
    return 1;
}

static int
text_is_label_char(const struct text_analyzer *ta, size_t i)
{
    uint8_t k = text_cls(ta, i);
    return text_is_wordc(k) || text_cp(ta, i) == '-' || text_cp(ta, i) == '_';
}

/* Host name labels from h: returns the end; *labels and the last label's
 * start.  Bounded to TEXT_HOST_CP code points. */
static size_t
text_scan_host(const struct text_analyzer *ta, size_t h, unsigned *labels,
               size_t *last)
{
    size_t j = h;
    *labels = 0;
    *last = h;
    while (j - h < TEXT_HOST_CP) {
        size_t s = j;
        while (j - h < TEXT_HOST_CP && text_is_label_char(ta, j))
            j++;
        if (j == s)
            break;
        (*labels)++;
        *last = s;
        if (text_cp(ta, j) == '.' && text_is_label_char(ta, j + 1)) {
            j++;
            continue;
        }
        break;
    }
    return j;
}

/* Top-level domains that make a bare "name.tld" a URL. */
static const char text_tlds[] =
    " com net org info biz io co me ly gl gd tk ml ga cf gq xyz top ru cn de "
    "uk es mx ar br fr it nl us ca au in tv cc ws be eu ch at pl jp kr se fi "
    "dk pt cl pe ve uy ec bo py gt cr pa do hn ni sv pr ie nz za edu gov mil "
    "int online site club shop app dev link live store vip win bid loan "
    "click pw su to tw mobi name pro asia tech news blog fun icu buzz cam ";

static int
text_known_tld(const struct text_analyzer *ta, size_t a, size_t b)
{
    char t[10];
    if (b - a < 2 || b - a > 6)
        return 0;
    t[0] = ' ';
    for (size_t i = a; i < b; i++) {
        uint32_t c = ta->cp[i];
        if (c < 'a' || c > 'z')
            return 0;
        t[1 + i - a] = (char)c;
    }
    t[1 + b - a] = ' ';
    t[2 + b - a] = '\0';
    return strstr(text_tlds, t) != NULL;
}

/* A URL at i: "http(s)://...", "www.x.y" or "name.tld[/path]".  Emits URL and
 * HOST tokens and returns the end, or returns i when there is none. */
static size_t
text_try_url(struct text_analyzer *ta, size_t i)
{
    size_t h = i;
    int scheme = 0;
    if (text_match(ta, i, "https://")) {
        h = i + 8;
        scheme = 1;
    } else if (text_match(ta, i, "http://")) {
        h = i + 7;
        scheme = 1;
    }
    int www = text_match(ta, h, "www.");
    unsigned labels;
    size_t last;
    size_t hend = text_scan_host(ta, h, &labels, &last);
    if (scheme) {
        if (labels < 1)
            return i;
        www &= labels > 1; /* "http://www." has no host after "www." */
    } else if (www) {
        if (labels < 3)
            return i;
    } else {
        if (labels < 2 || !text_known_tld(ta, last, hend))
            return i;
        uint32_t before = i ? ta->cp[i - 1] : ' ';
        if (before == '@' || before == '.' || text_cp(ta, hend) == '@')
            return i;
    }
    if (text_is_wordc(text_cls(ta, hend)))
        return i; /* the host was cut by the length bound */

    size_t j = hend;
    if (text_cp(ta, j) == ':' && text_cls(ta, j + 1) == TEXT_C_DIGIT) {
        j++;
        while (text_cls(ta, j) == TEXT_C_DIGIT)
            j++;
    }
    uint32_t c = text_cp(ta, j);
    if (c == '/' || c == '?' || c == '#') {
        while (j < ta->n) {
            uint8_t k = ta->cls[j];
            c = ta->cp[j];
            if (k == TEXT_C_SPACE || k == TEXT_C_EMOJI || k == TEXT_C_EXT ||
                c == '<' || c == '>' || c == '"')
                break;
            j++;
        }
        /* trailing punctuation belongs to the sentence, except a ")" that
         * closes a "(" of the URL ("wiki/Spam_(food)") */
        int open = 0;
        for (size_t k = hend; k < j; k++)
            open += (ta->cp[k] == '(') - (ta->cp[k] == ')');
        while (j > hend && ta->cp[j - 1] < 0x80 && ta->cp[j - 1] != 0 &&
               strchr(".,;:!?)]}'*", (int)ta->cp[j - 1])) {
            if (ta->cp[j - 1] == ')' && open >= 0)
                break;
            open += ta->cp[j - 1] == ')';
            j--;
        }
    }
    size_t start = h + (www ? 4 : 0);
    size_t end = j;
    if (end > hend && ta->cp[end - 1] == '/')
        end--; /* "x.com/" == "x.com" */
    uint32_t off, len;
    if (text_emit_range(ta, start, end, TEXT_URL_LEN, &off, &len) < 0 ||
        text_tok_add(ta, TEXT_URL, off, len, 0) < 0)
        return j;
    if (text_emit_range(ta, start, hend, TEXT_URL_LEN, &off, &len) < 0 ||
        text_tok_add(ta, TEXT_HOST, off, len, 0) < 0)
        return j;
    return j;
}

/* An e-mail address at i, or i. */
static size_t
text_try_email(struct text_analyzer *ta, size_t i)
{
    size_t j = i;
    while (j - i <= TEXT_NAME_CP) {
        uint32_t c = text_cp(ta, j);
        if (text_is_wordc(text_cls(ta, j)) || c == '.' || c == '_' ||
            c == '%' || c == '+' || c == '-')
            j++;
        else
            break;
    }
    if (text_cp(ta, j) != '@' || j == i)
        return i;
    unsigned labels;
    size_t last;
    size_t hend = text_scan_host(ta, j + 1, &labels, &last);
    if (labels < 2 || hend - last < 2)
        return i;
    for (size_t k = last; k < hend; k++)
        if (ta->cls[k] != TEXT_C_LETTER)
            return i;
    uint32_t off, len;
    if (text_emit_range(ta, i, hend, TEXT_URL_LEN, &off, &len) == 0)
        text_tok_add(ta, TEXT_EMAIL, off, len, 0);
    return hend;
}

/* "@name" at i (ta->cp[i] == '@'), or i. */
static size_t
text_try_mention(struct text_analyzer *ta, size_t i)
{
    size_t j = i + 1;
    if (i > 0 && text_is_wordc(ta->cls[i - 1]))
        return i;
    while (text_is_wordc(text_cls(ta, j)) || text_cp(ta, j) == '_')
        j++;
    if (j == i + 1)
        return i;
    size_t end = j - (i + 1) > TEXT_NAME_CP ? i + 1 + TEXT_NAME_CP : j;
    uint32_t off, len;
    if (text_emit_range(ta, i + 1, end, TEXT_URL_LEN, &off, &len) == 0)
        text_tok_add(ta, TEXT_MENTION, off, len, 0);
    return j;
}

/* One emoji at i (class TEXT_C_EMOJI) with its ZWJ / keycap / flag partners. */
static size_t
text_emoji(struct text_analyzer *ta, size_t i)
{
    size_t j = i + 1;
    int ri = (ta->cp[i] >= 0x1f1e6 && ta->cp[i] <= 0x1f1ff);

    if (text_reserve_arena(ta, 64) < 0)
        return ta->n;
    size_t off = ta->arena_len, l = 0;
    l += text_utf8_put(ta->arena + off, ta->cp[i]);
    if (ri && text_cp(ta, j) >= 0x1f1e6 && text_cp(ta, j) <= 0x1f1ff) {
        l += text_utf8_put(ta->arena + off + l, ta->cp[j]);
        j++;
    }
    while (j < ta->n && ta->cls[j] == TEXT_C_EXT) {
        uint32_t c = ta->cp[j];
        if (c == 0x200d && text_cls(ta, j + 1) == TEXT_C_EMOJI && l + 8 < 56) {
            l += text_utf8_put(ta->arena + off + l, c);
            l += text_utf8_put(ta->arena + off + l, ta->cp[j + 1]);
            j += 2;
            continue;
        }
        if (c == 0x20e3 && l + 4 < 56)
            l += text_utf8_put(ta->arena + off + l, c);
        j++;
    }
    ta->arena[off + l] = '\0';
    ta->arena_len += l + 1;
    text_tok_add(ta, TEXT_EMOJI, (uint32_t)off, (uint32_t)l, 0);
    return j;
}

/* A number at i: digits with . or , between digits.  Returns i when letters
 * follow (then it is a word such as "4th" or "5hit"). */
static size_t
text_try_number(struct text_analyzer *ta, size_t i)
{
    size_t j = i;
    while (text_cls(ta, j) == TEXT_C_DIGIT)
        j++;
    while ((text_cp(ta, j) == '.' || text_cp(ta, j) == ',') &&
           text_cls(ta, j + 1) == TEXT_C_DIGIT) {
        j++;
        while (text_cls(ta, j) == TEXT_C_DIGIT)
            j++;
    }
    uint8_t k = text_cls(ta, j);
    uint32_t c = text_cp(ta, j);
    if (k == TEXT_C_LETTER || k == TEXT_C_MARK ||
        ((c == '*' || c == '$' || c == '@' || c == '!' || c == '\'') &&
         text_cls(ta, j + 1) == TEXT_C_LETTER))
        return i;
    uint32_t off, len;
    if (text_emit_range(ta, i, j, 32, &off, &len) == 0)
        text_tok_add(ta, TEXT_NUMBER, off, len, 0);
    return j;
}

/* ---- words and their de-obfuscation -------------------------------------- */

static void
text_wpush(struct text_analyzer *ta, uint32_t c, uint8_t cls, uint8_t fl)
{
    if (ta->wn < TEXT_WORD_CP)
        ta->wbuf[ta->wn++] = (struct text_wch){c, cls, fl};
}

/* Leet digits as letters. */
static uint32_t
text_leet(uint32_t d)
{
    switch (d) {
    case '0':
        return 'o';
    case '1':
        return 'i';
    case '3':
        return 'e';
    case '4':
        return 'a';
    case '5':
        return 's';
    case '7':
        return 't';
    default:
        return 0;
    }
}

/* Letters after a leading digit that make an ordinal, a unit or a time, not
 * leetspeak: "4th", "5pm", "3kg". */
static const char text_units[] =
    " st nd rd th s am pm k m g d h x mb gb kb km cm mm kg lb lbs ml mg mph "
    "min hr hrs yr yrs ft in pc ";

/* Cyrillic and Greek letters that look like Latin ones (lower case). */
static uint32_t
text_homoglyph(uint32_t c)
{
    switch (c) {
    case 0x430:
        return 'a'; /* а */
    case 0x432:
        return 'b'; /* в (small capital B) */
    case 0x435:
        return 'e'; /* е */
    case 0x451:
        return 'e'; /* ё */
    case 0x43a:
        return 'k'; /* к */
    case 0x43c:
        return 'm'; /* м */
    case 0x43d:
        return 'h'; /* н (small capital H) */
    case 0x43e:
        return 'o'; /* о */
    case 0x440:
        return 'p'; /* р */
    case 0x441:
        return 'c'; /* с */
    case 0x442:
        return 't'; /* т */
    case 0x443:
        return 'y'; /* у */
    case 0x445:
        return 'x'; /* х */
    case 0x44c:
        return 'b'; /* ь */
    case 0x455:
        return 's'; /* ѕ */
    case 0x456:
        return 'i'; /* і */
    case 0x457:
        return 'i'; /* ї */
    case 0x458:
        return 'j'; /* ј */
    case 0x4bb:
        return 'h'; /* һ */
    case 0x4cf:
        return 'l'; /* ӏ */
    case 0x501:
        return 'd'; /* ԁ */
    case 0x51b:
        return 'q'; /* ԛ */
    case 0x51d:
        return 'w'; /* ԝ */
    case 0x3b1:
        return 'a'; /* α */
    case 0x3b2:
        return 'b'; /* β */
    case 0x3b5:
        return 'e'; /* ε */
    case 0x3b7:
        return 'n'; /* η */
    case 0x3b9:
        return 'i'; /* ι */
    case 0x3ba:
        return 'k'; /* κ */
    case 0x3bc:
        return 'u'; /* μ */
    case 0x3bd:
        return 'v'; /* ν */
    case 0x3bf:
        return 'o'; /* ο */
    case 0x3c1:
        return 'p'; /* ρ */
    case 0x3c4:
        return 't'; /* τ */
    case 0x3c5:
        return 'u'; /* υ */
    case 0x3c7:
        return 'x'; /* χ */
    case 0x3c9:
        return 'w'; /* ω */
    case 0x3b3:
        return 'y'; /* γ */
    case 0x131:
        return 'i'; /* ı dotless i */
    case 0x251:
        return 'a'; /* ɑ */
    case 0x261:
        return 'g'; /* ɡ */
    default:
        return 0;
    }
}

/* Common profanity, for resolving masked words: "f**k" matches exactly one
 * entry (one letter per '*'), so it becomes "fuck"; "s**t" (shit? slut?)
 * stays masked as "s*t". */
static const char *const text_masked_words[] = {
    "fuck",    "fucking",  "fucked", "fucker",  "fuckin",   "motherfucker",
    "shit",    "bullshit", "bitch",  "bitches", "ass",      "asshole",
    "cunt",    "dick",     "cock",   "pussy",   "damn",     "hell",
    "bastard", "slut",     "whore",  "nigger",  "nigga",    "niggas",
    "fag",     "faggot",   "retard", "crap",    "piss",     "twat",
    "wanker",  "puta",     "puto",   "putos",   "putas",    "pendejo",
    "pendeja", "mierda",   "cabron", "chinga",  "chingada", "verga",
    "culero",  "culo",     "joder",  "marica",  "maricon",  "perra",
    "zorra",   "pinche",   "mamon",
};

/* Resolve the masked word in wbuf (TEXT_C_MASK entries) against the list. */
static int
text_unmask(struct text_analyzer *ta)
{
    const char *found = NULL;
    for (size_t w = 0;
         w < sizeof(text_masked_words) / sizeof(text_masked_words[0]); w++) {
        const char *m = text_masked_words[w];
        if (strlen(m) != ta->wn)
            continue;
        unsigned k = 0;
        for (; k < ta->wn; k++)
            if (ta->wbuf[k].cls != TEXT_C_MASK &&
                ta->wbuf[k].c != (unsigned char)m[k])
                break;
        if (k < ta->wn)
            continue;
        if (found)
            return 0; /* ambiguous */
        found = m;
    }
    if (!found)
        return 0;
    for (unsigned k = 0; k < ta->wn; k++)
        if (ta->wbuf[k].cls == TEXT_C_MASK)
            ta->wbuf[k] = (struct text_wch){(unsigned char)found[k],
                                            TEXT_C_LETTER, TEXT_FL_SYM};
    return 1;
}

/* May a run of the same letter c be kept twice ("cool", "kill", "free")?
 * Letters that rarely double in English or Spanish collapse to one
 * ("stuuupid" -> "stupid", "siiii" -> "si"); a trailing 'o' too ("noooo"). */
static int
text_keeps_double(uint32_t c, int trailing)
{
    if (c == 'o')
        return !trailing;
    return c > 0 && c < 0x80 && strchr("bcdeflmnprstgxz", (int)c) != NULL;
}

/*
 * Turn wbuf (a word's code points as written) into the word's surface and
 * emit it.  obf: the caller already changed it (symbols, spacing).  Rules,
 * in order:
 *  1. leet digits 0 1 3 4 5 7 -> o i e a s t, only in a word that also has
 *     letters: a digit group between letters ("id10t", "n00b"); a single
 *     leading digit before 2+ letters that are not an ordinal or unit
 *     ("5hit" but not "4th", "5pm"); a single trailing digit once another
 *     group was mapped ("h3ll0").  Pure numbers never reach here; other
 *     mixes stay as written ("mp3", "covid19", "gr8").
 *  2. masks: '*' and '#' inside a word (or trailing after at most three
 *     letters) hide letters; a word that matches exactly one entry of
 *     text_masked_words becomes it, else every run of masks becomes one
 *     '*' ("f*ck" -> "fuck", "s**t" -> "s*t").
 *  3. look-alikes: Cyrillic/Greek letters that look Latin become Latin when
 *     the word mixes them with Latin letters, or is made only of them and
 *     no configured language writes that script ("іdiot", "ѕрам").
 *  4. stretched letters: a run of 3+ of the same letter becomes two when
 *     text_keeps_double() says so, else one ("stuuupid" -> "stupid",
 *     "gooood" -> "good", "noooo" -> "no").
 *  5. laughter: "jajajaja" / "hahaha" (a two-letter unit 3+ times) ->
 *     "jaja" / "haha" (not an obfuscation).
 * Steps 1-4 and removed invisible characters or stray combining marks set
 * TEXT_F_OBFUSCATED.  TEXT_F_UPPER: at least two letters as written, all
 * upper case.
 */
static void
text_word_build(struct text_analyzer *ta, int obf)
{
    struct text_wch *w = ta->wbuf;
    unsigned n = ta->wn;
    unsigned letters = 0, upper = 0, masks = 0;

    for (unsigned k = 0; k < n; k++) {
        if (w[k].cls == TEXT_C_LETTER && !(w[k].fl & TEXT_FL_SYM)) {
            letters++;
            upper += (w[k].fl & TEXT_FL_UP) != 0;
        }
        if (w[k].cls == TEXT_C_MASK)
            masks++;
        if ((k > 0 && (w[k].fl & TEXT_FL_INV)) || (w[k].fl & TEXT_FL_ZALGO))
            obf = 1;
    }
    uint8_t flags = (letters >= 2 && upper == letters) ? TEXT_F_UPPER : 0;

    /* 1. leet digits */
    int mapped = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned a = 0; a < n;) {
            if (w[a].cls != TEXT_C_DIGIT) {
                a++;
                continue;
            }
            unsigned b = a, ok = 1;
            while (b < n && w[b].cls == TEXT_C_DIGIT)
                ok &= text_leet(w[b++].c) != 0;
            int before = a > 0 && w[a - 1].cls == TEXT_C_LETTER;
            int after = b < n && w[b].cls == TEXT_C_LETTER;
            int map = 0;
            if (ok && pass == 0 && before && after && b - a <= 3) {
                map = 1;
            } else if (ok && pass == 0 && a == 0 && after && b - a == 1 &&
                       w[a].c != '4') { /* "4ever", "4real": for */
                char suf[10] = " ";
                unsigned e = b, l = 0;
                for (; e < n && w[e].cls == TEXT_C_LETTER && l < 6; e++, l++)
                    suf[1 + l] = (char)(w[e].c < 0x80 ? w[e].c : '?');
                suf[1 + l] = ' ';
                suf[2 + l] = '\0';
                int whole = (e == n || w[e].cls != TEXT_C_LETTER);
                map = l >= 2 && !(whole && strstr(text_units, suf));
            } else if (ok && pass == 1 && mapped && before && b == n &&
                       b - a == 1) {
                map = 1;
            }
            if (map) {
                for (unsigned k = a; k < b; k++)
                    w[k] = (struct text_wch){text_leet(w[k].c), TEXT_C_LETTER,
                                             TEXT_FL_SYM};
                mapped = 1;
                obf = 1;
            }
            a = b;
        }
    }

    /* 2. masks */
    if (masks) {
        obf = 1;
        if (!text_unmask(ta)) {
            unsigned o = 0;
            for (unsigned k = 0; k < n; k++)
                if (!(w[k].cls == TEXT_C_MASK && o > 0 &&
                      w[o - 1].cls == TEXT_C_MASK))
                    w[o++] = w[k];
            n = o;
        }
    }

    /* 3. look-alike letters (a text that also has Cyrillic or Greek letters
     * unlike any Latin one is real Cyrillic or Greek: its words stay) */
    unsigned latin = 0, alike = 0, other = 0;
    int script_ok = 0;
    int cyrillic_ok = ta->cfg.cyrillic_ok || ta->n_unlike[0] > 0;
    int greek_ok = ta->cfg.greek_ok || ta->n_unlike[1] > 0;
    for (unsigned k = 0; k < n; k++) {
        if (w[k].cls != TEXT_C_LETTER)
            continue;
        uint32_t c = w[k].c;
        if (c >= 0x100 && text_homoglyph(c)) {
            int cyrillic = c >= 0x400 && c < 0x530;
            int greek = c >= 0x370 && c < 0x400;
            alike++;
            if ((cyrillic && cyrillic_ok) || (greek && greek_ok))
                script_ok = 1;
        } else if (text_is_latin(c)) {
            latin++;
        } else {
            other++;
        }
    }
    if (alike && !other && (latin || !script_ok)) {
        for (unsigned k = 0; k < n; k++)
            if (w[k].cls == TEXT_C_LETTER && w[k].c >= 0x100 &&
                text_homoglyph(w[k].c))
                w[k].c = text_homoglyph(w[k].c);
        obf = 1;
    }

    /* 4. stretched letters */
    unsigned o = 0;
    for (unsigned k = 0; k < n;) {
        unsigned e = k + 1;
        while (e < n && w[e].c == w[k].c && w[k].cls == TEXT_C_LETTER)
            e++;
        unsigned keep = e - k;
        if (keep >= 3) {
            keep = text_keeps_double(w[k].c, e == n) ? 2 : 1;
            obf = 1;
        }
        for (unsigned r = 0; r < keep; r++)
            w[o++] = w[k];
        k = e;
    }
    n = o;

    /* 5. laughter */
    if (n >= 6 && n % 2 == 0 && w[0].c != w[1].c) {
        unsigned k = 2;
        while (k < n && w[k].c == w[k % 2].c && w[k].cls == TEXT_C_LETTER)
            k++;
        if (k == n && w[0].cls == TEXT_C_LETTER && w[1].cls == TEXT_C_LETTER)
            n = 4;
    }

    if (obf)
        flags |= TEXT_F_OBFUSCATED;
    if (n == 0 || text_reserve_arena(ta, n * 4 + 1) < 0)
        return;
    size_t off = ta->arena_len, l = 0;
    for (unsigned k = 0; k < n; k++)
        l += text_utf8_put(ta->arena + off + l,
                           w[k].cls == TEXT_C_MASK ? '*' : w[k].c);
    ta->arena[off + l] = '\0';
    ta->arena_len += l + 1;
    text_tok_add(ta, TEXT_WORD, (uint32_t)off, (uint32_t)l, flags);
}

/* s p a c e d, s.p.a.c.e.d, s-p-a-c-e-d or s_p_a_c_e_d letters from i: at
 * least three single letters with the same one-character separator become
 * one word.  Returns the end, or i. */
static size_t
text_try_spaced(struct text_analyzer *ta, size_t i)
{
    uint32_t sep = text_cp(ta, i + 1);
    if (!(sep == ' ' || sep == '.' || sep == '-' || sep == '_'))
        return i;
    size_t j = i, count = 0, upper = 0;
    for (;;) {
        /* j is a single letter: take it */
        count++;
        upper += (ta->fl[j] & TEXT_FL_UP) != 0;
        size_t nx = j + 2;
        if (text_cp(ta, j + 1) != sep || text_cls(ta, nx) != TEXT_C_LETTER ||
            text_is_wordc(text_cls(ta, nx + 1)))
            break; /* no single letter after the separator */
        /* ...nor one that starts a chain of its own ("t U.S.A.") */
        uint32_t other = text_cp(ta, nx + 1);
        if (other != sep &&
            (other == ' ' || other == '.' || other == '-' || other == '_') &&
            text_cls(ta, nx + 2) == TEXT_C_LETTER &&
            !text_is_wordc(text_cls(ta, nx + 3)))
            break;
        j = nx;
    }
    if (count < 3)
        return i;
    ta->wn = 0;
    for (size_t k = i; k <= j; k += 2)
        text_wpush(ta, ta->cp[k], TEXT_C_LETTER, ta->fl[k]);
    /* "U.S.A." is an acronym, not an obfuscation */
    text_word_build(ta, !(sep == '.' && upper == count));
    return j + 1;
}

/* A word at i: letters, digits and marks, with apostrophes, masks and
 * letter-like symbols where they sit inside a word (text_word_build). */
static size_t
text_word(struct text_analyzer *ta, size_t i)
{
    size_t j = i;
    unsigned letters = 0, digits = 0;
    int obf = 0;

    ta->wn = 0;
    while (j < ta->n) {
        uint8_t k = ta->cls[j];
        uint32_t c = ta->cp[j];
        int prev_letter = j > i && ta->cls[j - 1] == TEXT_C_LETTER;
        int next_letter = text_cls(ta, j + 1) == TEXT_C_LETTER;

        if (text_is_wordc(k)) {
            if (c >= 0x3040 && text_is_cjk(c) && (j > i || ta->wn))
                break; /* an ideograph ends the word before it */
            text_wpush(ta, c, k, ta->fl[j]);
            letters += k == TEXT_C_LETTER;
            digits += k == TEXT_C_DIGIT;
            j++;
        } else if (c == '\'' || c == 0x2019 || c == 0x2018 || c == 0x2bc) {
            if (!(prev_letter && next_letter))
                break;
            j++; /* dropped: "don't" -> "dont" */
        } else if ((c == '@' || c == '!' || c == '|') && prev_letter &&
                   next_letter && letters <= 2) {
            text_wpush(ta,
                       c == '@'   ? 'a'
                       : c == '!' ? 'i'
                                  : 'l',
                       TEXT_C_LETTER, TEXT_FL_SYM);
            obf = 1;
            j++;
        } else if (c == '$' || c == '*' || (c == '#' && j > i)) {
            size_t m = j;
            while (m < ta->n && ta->cp[m] == c)
                m++;
            int lead = j == i && c == '$' && m == j + 1 &&
                       text_cls(ta, m) == TEXT_C_LETTER;
            int inner = prev_letter && text_cls(ta, m) == TEXT_C_LETTER;
            int trail = prev_letter && letters <= (c == '$' ? 2u : 3u) &&
                        digits == 0 && !text_is_wordc(text_cls(ta, m));
            if (!(lead || inner || trail))
                break;
            for (; j < m; j++) {
                if (c == '$')
                    text_wpush(ta, 's', TEXT_C_LETTER, TEXT_FL_SYM);
                else
                    text_wpush(ta, '*', TEXT_C_MASK, 0);
            }
            obf = 1;
        } else {
            break;
        }
    }
    if (j == i)
        return i + 1;
    if (letters == 0 && ta->wn && ta->wbuf[0].cls == TEXT_C_DIGIT) {
        /* digits with masks ("1**2"): only the number counts */
        size_t e = i;
        while (text_cls(ta, e) == TEXT_C_DIGIT)
            e++;
        uint32_t off, len;
        if (text_emit_range(ta, i, e, 32, &off, &len) == 0)
            text_tok_add(ta, TEXT_NUMBER, off, len, 0);
        return j;
    }
    text_word_build(ta, obf);
    return j;
}

#ifdef __SSE2__
/* The plain-word test of text_word_plain() for n <= 16 code points at once:
 * their bytes (code points below 0x100) go to p, *high gets the bits of
 * those from 0x80 (not yet UTF-8). */
static inline int
text_plain16(const uint32_t *cp, const uint8_t *fl, size_t n, char *p,
             int *all_upper, unsigned *high)
{
    const __m128i zero = _mm_setzero_si128(), ff = _mm_set1_epi16(0xff);
    const __m128i *c = (const __m128i *)cp;
    __m128i lo = _mm_packs_epi32(_mm_loadu_si128(c), _mm_loadu_si128(c + 1));
    __m128i hi =
        _mm_packs_epi32(_mm_loadu_si128(c + 2), _mm_loadu_si128(c + 3));
    __m128i v = _mm_packus_epi16(lo, hi);
    __m128i f = _mm_loadu_si128((const __m128i *)fl);
    unsigned in = (1u << n) - 1;
    unsigned wide = (unsigned)_mm_movemask_epi8(
        _mm_packs_epi16(_mm_cmpgt_epi16(lo, ff), _mm_cmpgt_epi16(hi, ff)));
    unsigned triple = (unsigned)_mm_movemask_epi8(
        _mm_and_si128(_mm_cmpeq_epi8(v, _mm_slli_si128(v, 1)),
                      _mm_cmpeq_epi8(v, _mm_slli_si128(v, 2))));
#define TEXT_NOT(bit)                                                          \
    ~(unsigned)_mm_movemask_epi8(                                              \
        _mm_cmpeq_epi8(_mm_and_si128(f, _mm_set1_epi8((char)(bit))), zero))
    unsigned removed = TEXT_NOT(TEXT_FL_ZALGO) | (TEXT_NOT(TEXT_FL_INV) & ~1u);
    unsigned up = TEXT_NOT(TEXT_FL_UP);
#undef TEXT_NOT
    if ((wide | (triple & ~3u) | removed) & in)
        return 0;
    _mm_storeu_si128((__m128i *)p, v);
    *all_upper = (up & in) == in;
    *high = (unsigned)_mm_movemask_epi8(v) & in;
    return 1;
}
#endif

/* The n code points of a plain word as UTF-8 at p (room for 2n + 16 bytes):
 * their length, or 0 when one is not Latin-1, three letters repeat, or
 * something was removed inside the word (before it is fine); *all_upper
 * when all were capitals. */
static size_t
text_plain_copy(const uint32_t *cp, const uint8_t *fl, size_t n, char *p,
                int *all_upper)
{
#ifdef __SSE2__
    unsigned high;
    if (n <= 16) {
        if (!text_plain16(cp, fl, n, p, all_upper, &high))
            return 0;
        if (!high)
            return n; /* ASCII: the bytes are the UTF-8 */
        size_t l = (size_t)__builtin_ctz(high);
        for (size_t k = l; k < n; k++)
            l += text_utf8_put(p + l, cp[k]);
        return l;
    }
#endif
    unsigned upper = 0;
    uint8_t inside = fl[0] & ~TEXT_FL_INV;
    uint32_t prev = 0, prev2 = 0;
    size_t l = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t c = cp[k];
        if (c >= 0x100 || (c == prev && c == prev2))
            return 0;
        l += text_utf8_put(p + l, c);
        upper += fl[k] & TEXT_FL_UP;
        inside |= k ? fl[k] : 0;
        prev2 = prev;
        prev = c;
    }
    *all_upper = upper == n;
    return inside & (TEXT_FL_ZALGO | TEXT_FL_INV) ? 0 : l;
}

/* Does text_word() take in more than the letters [i, e)?  An apostrophe or
 * a letter-like symbol before a letter, masks, or a combining mark. */
static int
text_word_goes_on(const struct text_analyzer *ta, size_t e)
{
    uint32_t nx = text_cp(ta, e);
    if (nx == ' ')
        return 0; /* the common case first */
    if (nx == '\'' || nx == 0x2019 || nx == 0x2018 || nx == 0x2bc ||
        nx == '@' || nx == '!' || nx == '|')
        return text_cls(ta, e + 1) == TEXT_C_LETTER;
    return nx == '$' || nx == '*' || nx == '#' ||
           text_cls(ta, e) == TEXT_C_MARK;
}

/* Emit the word [i, e) of letters straight from the cleaned text when
 * nothing else applies: Latin-1 only, nothing removed inside it, no
 * stretched letters, no laughter, and not continued by anything text_word()
 * would take in.  Returns e, or i when the word needs text_word(). */
static size_t
text_word_plain(struct text_analyzer *ta, size_t i, size_t e)
{
    const uint32_t *cp = ta->cp + i;
    size_t n = e - i;

    if (n > TEXT_WORD_CP || text_word_goes_on(ta, e))
        return i;
    /* & not &&: a word's length is random, and the test mispredicted
     * (cp has room beyond the text, so cp[3] can be read) */
    if ((n >= 6) & (cp[0] == cp[2]) & (cp[1] == cp[3]))
        return i; /* may be laughter */
    if (text_reserve_arena(ta, 2 * n + 16) < 0)
        return e;
    char *p = ta->arena + ta->arena_len;
    int all_upper;
    size_t l = text_plain_copy(cp, ta->fl + i, n, p, &all_upper);
    if (!l)
        return i;
    p[l] = '\0';
    uint32_t off = (uint32_t)ta->arena_len;
    ta->arena_len += l + 1;
    uint8_t flags = (n >= 2 && all_upper) ? TEXT_F_UPPER : 0;
    text_tok_add(ta, TEXT_WORD, off, (uint32_t)l, flags);
    return e;
}

/* The end of the run of letters and digits from e; *digits when it has
 * one.  Reads up to 15 classes past the text (text_analyze reserved them). */
static size_t
text_run_end(const struct text_analyzer *ta, size_t e, int *digits)
{
#ifdef __SSE2__
    const __m128i letter = _mm_set1_epi8(TEXT_C_LETTER);
    const __m128i digit = _mm_set1_epi8(TEXT_C_DIGIT);
    for (;;) {
        __m128i k = _mm_loadu_si128((const __m128i *)(ta->cls + e));
        __m128i d = _mm_cmpeq_epi8(k, digit);
        unsigned run = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(k, letter), d));
        if (ta->n - e < 16)
            run &= (1u << (ta->n - e)) - 1;
        unsigned len = (unsigned)__builtin_ctz(~run); /* at most 16 */
        *digits |= ((unsigned)_mm_movemask_epi8(d) & ((1u << len) - 1)) != 0;
        e += len;
        if (len < 16)
            return e;
    }
#else
    for (; e < ta->n; e++) {
        if (ta->cls[e] == TEXT_C_DIGIT)
            *digits = 1;
        else if (ta->cls[e] != TEXT_C_LETTER)
            break;
    }
    return e;
#endif
}

static void
text_tokenize(struct text_analyzer *ta)
{
    size_t i = 0;
    while (i < ta->n && !ta->full) {
        uint8_t k = ta->cls[i];
        if (k == TEXT_C_SPACE) {
            i++; /* the commonest non-word: nothing starts here */
            continue;
        }
        uint32_t c = ta->cp[i];
        size_t j = i;

        if (k == TEXT_C_LETTER || k == TEXT_C_DIGIT) {
            /* the letters and digits from i; what follows them says which
             * kinds of token are possible */
            int digits = 0;
            size_t e = text_run_end(ta, i, &digits);
            uint32_t nx = text_cp(ta, e);
            if (nx == '.' || nx == ':' || nx == '-' || nx == '_' || nx == '@' ||
                nx == '+' || nx == '%') {
                j = text_try_url(ta, i);
                if (j == i)
                    j = text_try_email(ta, i);
            }
            if (j == i && k == TEXT_C_LETTER && e == i + 1)
                j = text_try_spaced(ta, i);
            if (j == i && k == TEXT_C_DIGIT)
                j = text_try_number(ta, i);
            if (j == i && !digits)
                j = text_word_plain(ta, i, e);
            if (j == i && c >= 0x3040 && text_is_cjk(c)) {
                uint32_t off, len;
                if (text_emit_range(ta, i, i + 1, 8, &off, &len) == 0)
                    text_tok_add(ta, TEXT_WORD, off, len, 0);
                j = i + 1;
            }
            if (j == i)
                j = text_word(ta, i);
        } else if (k == TEXT_C_EMOJI) {
            j = text_emoji(ta, i);
        } else if (c == '@') {
            j = text_try_mention(ta, i);
        } else if (c == '$' && text_cls(ta, i + 1) == TEXT_C_LETTER) {
            j = text_word(ta, i);
        }
        i = j > i ? j : i + 1;
    }
}

/* ---- pass 3: language and stems ---------------------------------------- */

/* Resolve the settings' language names unless they are the ones already
 * resolved. */
static void
text_config(struct text_analyzer *ta, const struct clf_settings *s)
{
    struct text_config *c = &ta->cfg;
    unsigned n =
        s->n_languages < CLF_MAX_LANGUAGES ? s->n_languages : CLF_MAX_LANGUAGES;
    if (c->valid && c->n == n &&
        memcmp(c->given, s->languages, sizeof(c->given)) == 0 &&
        memcmp(c->given_def, s->default_language, sizeof(c->given_def)) == 0)
        return;
    memset(c, 0, sizeof(*c));
    c->n = n;
    memcpy(c->given, s->languages, sizeof(c->given));
    memcpy(c->given_def, s->default_language, sizeof(c->given_def));
    char name[CLF_LANG_MAX];
    snprintf(name, sizeof(name), "%s", s->default_language);
    const char *def = lang_name(name);
    int def_ok = 0;
    for (unsigned i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s", s->languages[i]);
        c->name[i] = lang_name(name);
        c->code[i] = c->name[i] ? lang_code(c->name[i]) : NULL;
        c->id[i] = lang_id(c->name[i]);
        if (c->id[i] >= 0)
            c->mask |= 1u << c->id[i];
        if (c->name[i] && c->name[i] == def)
            def_ok = 1;
        if (c->name[i] && (strcmp(c->name[i], "russian") == 0 ||
                           strcmp(c->name[i], "serbian") == 0))
            c->cyrillic_ok = 1;
        if (c->name[i] && strcmp(c->name[i], "greek") == 0)
            c->greek_ok = 1;
    }
    if (!def || (n > 0 && !def_ok)) {
        def = NULL;
        for (unsigned i = 0; i < n && !def; i++)
            def = c->name[i];
    }
    c->def = def ? def : lang_name("english");
    c->valid = 1;
}

/* A hint naming a configured language: that language, else NULL. */
static const char *
text_hint(const struct text_config *c, const char *hint)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->name[i] && (strcasecmp(hint, c->name[i]) == 0 ||
                           strcasecmp(hint, c->code[i]) == 0))
            return c->name[i];
    const char *h = lang_name(hint); /* "es-MX", "nb", ... */
    for (unsigned i = 0; h && i < c->n; i++)
        if (c->name[i] == h)
            return h;
    return NULL;
}

/*
 * Pick the language: a configured hint wins; otherwise each configured
 * language scores 2 points per function word of its list among the first
 * TEXT_DETECT_WORDS words, 1 point per ñ ¿ ¡ (Spanish, at most 2), and a
 * script (Cyrillic, Greek, Arabic) scores 2 points per letter when most
 * letters are in it.  The best language needs at least 4 points (two
 * function words) and a strict lead; otherwise the default language.
 */
static const char *
text_detect(struct text_analyzer *ta, const char *hint)
{
    const struct text_config *c = &ta->cfg;
    if (hint && *hint) {
        const char *h = text_hint(c, hint);
        if (h)
            return h;
    }
    if (c->n <= 1 || !c->mask)
        return c->def;

    /* Byte id of hits counts the function words of language id: the
     * multiplication puts bit id of a mask (ids below LANG_RU have word
     * lists) in bit 0 of byte id, and no byte reaches 256.  Adding masks
     * that way has no branch on whether a word is a function word, which
     * is random. */
    _Static_assert(LANG_RU <= 7 && TEXT_DETECT_WORDS < 256, "hit bytes");
    uint64_t hits = 0;
    unsigned seen = 0;
    for (size_t t = 0; t < ta->n_toks && seen < TEXT_DETECT_WORDS; t++) {
        const struct text_token *tk = &ta->toks[t];
        if (tk->kind != TEXT_WORD)
            continue;
        seen++;
        uint64_t m = lang_table_mask(ta->words, ta->arena + tk->surface,
                                     tk->surface_len, tk->surface_hash) &
                     c->mask & ((1u << LANG_RU) - 1);
        hits += m * 0x0002040810204081u & 0x0001010101010101u;
    }
    unsigned score[LANG_COUNT] = {0};
    for (unsigned id = 0; id < LANG_RU; id++)
        score[id] = 2 * (unsigned)(hits >> 8 * id & 0xff);
    /* ñ ¿ ¡ are Spanish; the acute vowels Spanish and Portuguese (French
     * and Italian write mostly é and grave accents, and have their
     * function words). */
    unsigned marks = ta->n_es_marks + ta->n_acute;
    score[LANG_ES] += marks < 2 ? marks : 2;
    score[LANG_PT] += ta->n_acute < 2 ? ta->n_acute : 2;
    static const int scripts[3] = {LANG_RU, LANG_EL, LANG_AR};
    for (int k = 0; k < 3; k++)
        if (ta->n_script[k] * 2 > ta->stats.n_letters)
            score[scripts[k]] += 2 * ta->n_script[k];

    const char *best = NULL;
    unsigned best_score = 0, second = 0;
    for (unsigned i = 0; i < c->n; i++) {
        unsigned sc = c->id[i] >= 0 ? score[c->id[i]] : 0;
        if (sc > best_score) {
            second = best_score;
            best_score = sc;
            best = c->name[i];
        } else if (sc > second) {
            second = sc;
        }
    }
    if (!best || best_score < 4 || best_score == second)
        return c->def;
    return best;
}

static struct stem *
text_stemmer(struct text_analyzer *ta, const char *name)
{
    unsigned i = 0;
    for (; i < CLF_MAX_LANGUAGES && ta->stemmers[i].name; i++)
        if (ta->stemmers[i].name == name)
            break;
    if (i == CLF_MAX_LANGUAGES)
        return NULL; /* more languages than a model can hold */
    struct text_stemmer *ts = &ta->stemmers[i];
    if (!ts->name)
        ts->name = name;
    if (!ts->st && !ts->failed) {
        ts->st = stem_new(name);
        ts->failed = ts->st == NULL;
    }
    return ts->st;
}

static inline int
text_is_stemmed(const struct text_token *tk)
{
    return tk->kind == TEXT_WORD && tk->surface_len >= TEXT_STEM_MIN;
}

static void
text_stem_all(struct text_analyzer *ta, const char *lang)
{
    struct stem *st = text_stemmer(ta, lang);
    ta->last_stem = st;
    if (!st)
        return; /* words keep their surface */
    /* The words to stem, listed first without a branch: whether a token is
     * one is random, and testing it in the loop below mispredicted about
     * 60 times in a long comment (callgrind --branch-sim). */
    uint32_t *at = ta->words_at;
    size_t n = 0;
    for (size_t t = 0; t < ta->n_toks; t++) {
        at[n] = (uint32_t)t;
        n += text_is_stemmed(&ta->toks[t]);
    }
    /* Each word's cache set is asked for TEXT_STEM_AHEAD words early. */
    for (size_t k = 0; k < n && k < TEXT_STEM_AHEAD; k++)
        stem_prefetch(st, ta->toks[at[k]].surface_hash);
    for (size_t k = 0; k < n; k++) {
        struct text_token *tk = &ta->toks[at[k]];
        if (k + TEXT_STEM_AHEAD < n)
            stem_prefetch(st, ta->toks[at[k + TEXT_STEM_AHEAD]].surface_hash);
        size_t len;
        const char *r = stem_word(st, ta->arena + tk->surface, tk->surface_len,
                                  tk->surface_hash, &len, &tk->str_hash);
        if (!r) {
            ta->oom = 1;
            return;
        }
        if (r == ta->arena + tk->surface)
            continue; /* its own stem: str stays the surface */
        if (text_reserve_arena(ta, len + 1) < 0)
            return;
        memcpy(ta->arena + ta->arena_len, r, len);
        ta->arena[ta->arena_len + len] = '\0';
        tk->str = (uint32_t)ta->arena_len;
        tk->len = (uint32_t)len;
        ta->arena_len += len + 1;
    }
}

/* ---- entry points ---------------------------------------------------------
 */

int
text_analyze(struct text_analyzer *ta, const struct clf_settings *s,
             const char *text, size_t len, const char *lang_hint,
             struct text_doc *out)
{
    size_t max_bytes = s->max_bytes ? s->max_bytes : TEXT_DEFAULT_MAX_BYTES;

    memset(&ta->stats, 0, sizeof(ta->stats));
    ta->n = ta->n_toks = ta->arena_len = 0;
    ta->max_tokens = s->max_tokens ? s->max_tokens : TEXT_DEFAULT_MAX_TOKENS;
    ta->full = ta->oom = 0;
    ta->pending = 0;
    ta->last_punct = ta->punct_run = 0;
    ta->n_es_marks = 0;
    ta->n_acute = 0;
    memset(ta->n_script, 0, sizeof(ta->n_script));
    memset(ta->n_unlike, 0, sizeof(ta->n_unlike));
    text_config(ta, s);
    memset(out, 0, sizeof(*out));
    if (!text)
        len = 0;

    if (len > max_bytes) {
        /* cut at a character boundary: back up to the lead byte of the
         * sequence the limit falls into (at most 3 bytes) */
        size_t cut = max_bytes;
        const unsigned char *u = (const unsigned char *)text;
        for (int k = 0; k < 3 && cut > 0 && (u[cut] & 0xc0) == 0x80; k++)
            cut--;
        if ((u[cut] & 0xc0) == 0x80)
            cut = max_bytes; /* not UTF-8 there anyway */
        len = cut;
        ta->stats.truncated = 1;
    }
    /* the tokeniser's 16-wide loads may read past the cleaned text */
    if (text_clean(ta, text, len) < 0 || text_reserve_cp(ta, 16) < 0)
        return -1;
    if (text_reserve_toks(ta) < 0)
        return -1;
    text_tokenize(ta);
    if (ta->oom)
        return -1;

    const char *lang = text_detect(ta, lang_hint);
    text_stem_all(ta, lang);
    if (ta->oom)
        return -1;

    out->tokens = ta->toks;
    out->arena = ta->arena;
    out->n_tokens = (unsigned)ta->n_toks;
    out->stats = ta->stats;
    /* not snprintf: on this path its cost shows (8% of a short comment) */
    size_t lang_len = strnlen(lang, sizeof(out->lang) - 1);
    memcpy(out->lang, lang, lang_len);
    out->lang[lang_len] = '\0';
    out->lang_hash = XXH3_64bits(out->lang, lang_len);
    return 0;
}

const char *
text_language_name(const char *code_or_name)
{
    return lang_name(code_or_name);
}

const char *
text_language_code(const char *name)
{
    return lang_code(name);
}
