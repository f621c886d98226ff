/*
 * fuzz.h - shared by the libFuzzer targets: stop on a broken invariant,
 * saying which (libFuzzer keeps the input that broke it).
 */
#ifndef MODFILTER_FUZZ_H
#define MODFILTER_FUZZ_H

#include <stdio.h>

#define FUZZ_FAIL(why)                                                         \
    do {                                                                       \
        fprintf(stderr, "%s: %s\n", __FILE__, why);                            \
        __builtin_trap();                                                      \
    } while (0)

#endif
