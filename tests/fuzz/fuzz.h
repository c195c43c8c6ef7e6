/* What the libFuzzer targets share: a property that must hold for every input, checked in release
 * builds too (assert is compiled out under NDEBUG); its failure is a crash libFuzzer keeps. */
#ifndef PROVISIONER_FUZZ_H
#define PROVISIONER_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
