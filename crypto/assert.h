// TALLY_ASSERT: an always-on check of an invariant. A broken invariant is a programmer error:
// it logs where and what, then aborts. Never use it on untrusted input — validate that first
// and return an Error or drop and count the message.
#pragma once

#include <cstdio>
#include <cstdlib>

#define TALLY_ASSERT(cond)                                                                   \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                    \
        }                                                                                    \
    } while (0)
