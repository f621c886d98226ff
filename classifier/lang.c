/*
 * lang.c - language names and the function-word table (see lang.h).
 *
 * The word lists are written for this project: the commonest articles,
 * pronouns, prepositions, conjunctions, auxiliaries and chat words of each
 * language, as the tokeniser folds them (lower case, accents kept,
 * apostrophes removed: "don't" -> "dont", "c'est" -> "cest").  A word may sit
 * in several lists ("de", "no", "in"); it then counts for each.
 */
#include "lang.h"

#include <libstemmer.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

/* Only languages below LANG_RU may have a list: text_detect() counts the
 * hits of those (a byte each) and reads the scripts for the others. */
static const char *const lang_words[LANG_COUNT] = {
    [LANG_EN] = "the a an and or but of to in on at for with from by about "
                "is are was were be been am isnt arent wasnt it its this "
                "that these those there here you your youre u ur i im ive "
                "me my we our us he his him she her they them their theyre "
                "not no dont doesnt didnt cant wont do does did have has "
                "had will would can could should what who how why when "
                "where which if so just like get got all some any than "
                "then too very out up also because lol yes thanks please "
                "really only more over one "
                /* frequent chat words with no other reading */
                "ya yo ha hey oh omg lmao gonna wanna gotta aint bitch "
                "bitches ass shit fuck fucking nigga niggas hoes know "
                "love good people",
    [LANG_ES] = "el la los las un una unos unas a de del y e que en es por "
                "para con no se lo le les su sus al como más mas pero me "
                "mi mis te tu tú ti ya muy esta este está estás estan están "
                "esto eso esa ese son ser fue hay yo él ella ellos qué si sí "
                "cuando todo todos también tambien porque ni nos o u q pues "
                "bien sin hasta donde dónde cómo quien quién soy eres era "
                "hace tiene tienen ha han va vas voy solo sólo nada algo "
                "ahora así asi aquí aqui jaja jajaja xq pa k "
                /* frequent chat words with no other reading */
                "madre puto puta putos putas pinche verga cabrón cabron "
                "pendejo pendeja chinga mierda wey güey neta gracias "
                "hoy día dia días dias gente mejor nunca siempre mucho "
                "tiene hacer quiero puedo vida amor",
    [LANG_FR] = "le la les un une des de du et est en que qui pas ne je tu "
                "il elle nous vous ils elles ce cette ces cest dans pour sur "
                "avec mais ou où au aux sont suis jai très tres plus mon ma "
                "mes ton ta tes son sa ses on moi toi lui leur être avoir "
                "fait comme tout bien aussi quand parce ça ca oui non",
    [LANG_PT] = "o a os as um uma de do da dos das e que em no na nos nas "
                "não nao é com por para se mais mas como eu você voce ele "
                "ela isso este esta essa esse muito também tambem tem são "
                "sao foi ao pelo pela meu minha seu sua vai está estou tá "
                "ta já ja só so aqui quando porque vc kkk kkkk",
    [LANG_IT] = "il lo la i gli le un uno una di del della dei delle e è che "
                "in non per con su sono mi ti si ma come anche questo questa "
                "più piu perché perche ho hai ha io tu lui lei noi voi al "
                "alla nel nella molto sei siamo cosa tutto tutti ci ne",
    [LANG_DE] = "der die das den dem des ein eine einen einem und ist nicht "
                "ich du er sie es wir ihr mit von zu auf für fur im in auch "
                "sich dass aber wie was sind war noch nur so wenn bei mir "
                "mich dir dich kein keine oder hat habe haben wird schon "
                "doch mal ja nein sehr",
    [LANG_NL] = "de het een en van ik je is dat niet op te in met zijn voor "
                "die er maar om ook als aan bij wat nog naar dan hij ze wij "
                "we jij heb hebben wel geen moet kan zo dit deze was",
};

/* ---- names ------------------------------------------------------------ */

struct lang_iso {
    const char *code, *name;
};

static const struct lang_iso lang_isos[] = {
    {"ar", "arabic"},    {"hy", "armenian"},   {"eu", "basque"},
    {"ca", "catalan"},   {"da", "danish"},     {"nl", "dutch"},
    {"en", "english"},   {"fi", "finnish"},    {"fr", "french"},
    {"de", "german"},    {"el", "greek"},      {"hi", "hindi"},
    {"hu", "hungarian"}, {"id", "indonesian"}, {"ga", "irish"},
    {"it", "italian"},   {"lt", "lithuanian"}, {"ne", "nepali"},
    {"no", "norwegian"}, {"nb", "norwegian"},  {"pt", "portuguese"},
    {"ro", "romanian"},  {"ru", "russian"},    {"sr", "serbian"},
    {"es", "spanish"},   {"sv", "swedish"},    {"ta", "tamil"},
    {"tr", "turkish"},   {"yi", "yiddish"},
};

static const char *const lang_id_names[LANG_COUNT] = {
    "english", "spanish", "french",  "portuguese", "italian",
    "german",  "dutch",   "russian", "greek",      "arabic",
};

int
lang_id(const char *snowball_name)
{
    if (!snowball_name)
        return -1;
    for (int i = 0; i < LANG_COUNT; i++)
        if (strcmp(lang_id_names[i], snowball_name) == 0)
            return i;
    return -1;
}

const char *
lang_name(const char *code_or_name)
{
    char buf[32];
    size_t n = 0;

    if (!code_or_name)
        return NULL;
    /* Lower-case copy; "en-US" / "es_MX" keep only the language part. */
    for (; code_or_name[n] && n < sizeof(buf) - 1; n++) {
        char c = code_or_name[n];
        if (c == '-' || c == '_')
            break;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        buf[n] = c;
    }
    if (code_or_name[n] && code_or_name[n] != '-' && code_or_name[n] != '_')
        return NULL; /* longer than any language name */
    buf[n] = '\0';
    if (n == 0)
        return NULL;

    const char *want = buf;
    for (size_t i = 0; i < sizeof(lang_isos) / sizeof(lang_isos[0]); i++)
        if (strcmp(lang_isos[i].code, buf) == 0) {
            want = lang_isos[i].name;
            break;
        }
    for (const char **l = sb_stemmer_list(); *l; l++)
        if (strcmp(*l, want) == 0)
            return *l;
    return NULL;
}

const char *
lang_code(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof(lang_isos) / sizeof(lang_isos[0]); i++)
        if (strcasecmp(lang_isos[i].name, name) == 0)
            return lang_isos[i].code;
    return name;
}

/* ---- function-word table ---------------------------------------------- */

/*
 * Buckets of LANG_WAYS entries, one 64-byte cache line each.  A word always
 * sits in its home bucket (hash & bucket_mask): lang_table_new() doubles the
 * bucket count until no bucket overflows (256 buckets, 16 KB, for these
 * lists), so a lookup reads one line and compares all six keys with no
 * data-dependent branch.  Whether a word is a function word is random, and
 * the linear-probing table's branches (empty slot? hash match?) mispredicted
 * on it; with text_detect() adding masks without a branch too, scoring a
 * long comment took about 4.5% less time (13.1 -> 12.5 us,
 * 8 alternating runs, 06:10 UTC).
 *
 * An entry's key is its hash with the low 6 bits replaced by its length
 * (1..16): with at least 64 buckets those bits are the bucket's, so key and
 * bucket together still hold the whole hash and the length.  Key 0 marks an
 * empty entry (every real key has a length); mask[LANG_WAYS] stays 0 and is
 * what a miss reads.
 */
#define LANG_WAYS 6
#define LANG_MIN_BUCKETS 64u /* the low 6 hash bits pick the bucket */

struct lang_bucket {
    _Alignas(64) uint64_t key[LANG_WAYS];
    uint16_t mask[LANG_WAYS + 1];
};

struct lang_table {
    uint64_t bucket_mask; /* bucket count - 1 */
    struct lang_bucket buckets[];
};

static uint64_t
lang_key(uint64_t hash, size_t len)
{
    return (hash & ~(uint64_t)(LANG_MIN_BUCKETS - 1)) | len;
}

/* Adds the word to the mask of its home bucket; false if the bucket is full. */
static bool
lang_table_add(struct lang_table *t, uint64_t h, size_t len, unsigned id)
{
    struct lang_bucket *b = &t->buckets[h & t->bucket_mask];
    uint64_t key = lang_key(h, len);
    for (int i = 0; i < LANG_WAYS; i++) {
        if (b->key[i] == 0)
            b->key[i] = key;
        if (b->key[i] == key) {
            b->mask[i] |= (uint16_t)(1u << id);
            return true;
        }
    }
    return false;
}

/* Fills an empty table with the word lists; false if a bucket overflows. */
static bool
lang_table_fill(struct lang_table *t)
{
    for (unsigned id = 0; id < LANG_COUNT; id++) {
        const char *p = lang_words[id];
        while (p && *p) {
            while (*p == ' ')
                p++;
            size_t len = strcspn(p, " ");
            if (len == 0)
                break;
            if (len <= 16 && !lang_table_add(t, XXH3_64bits(p, len), len, id))
                return false;
            p += len;
        }
    }
    return true;
}

struct lang_table *
lang_table_new(void)
{
    for (size_t n = LANG_MIN_BUCKETS; n <= 65536; n *= 2) {
        size_t size =
            sizeof(struct lang_table) + n * sizeof(struct lang_bucket);
        struct lang_table *t = aligned_alloc(_Alignof(struct lang_table), size);
        if (!t)
            return NULL;
        memset(t, 0, size);
        t->bucket_mask = n - 1;
        if (lang_table_fill(t))
            return t;
        free(t);
    }
    return NULL;
}

void
lang_table_free(struct lang_table *t)
{
    free(t);
}

unsigned
lang_table_mask(const struct lang_table *t, const char *word, size_t len,
                uint64_t hash)
{
    if (len == 0 || len > 16)
        return 0;
    /* The 64-bit hash and the length decide (a false hit costs a point of
     * language score once in 2^64 words); no byte comparison.  A bucket
     * holds a key at most once. */
    (void)word;
    const struct lang_bucket *b = &t->buckets[hash & t->bucket_mask];
    uint64_t key = lang_key(hash, len);
    /* Unrolled: six compares and conditional moves; a miss leaves hit at
     * LANG_WAYS, whose mask is 0. */
    unsigned hit = LANG_WAYS;
#pragma GCC unroll 8
    for (unsigned i = 0; i < LANG_WAYS; i++)
        hit = b->key[i] == key ? i : hit;
    return b->mask[hit];
}
