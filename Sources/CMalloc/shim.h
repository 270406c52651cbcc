#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
/// Gives the heap's free pages back to the system (glibc). Returns 1 when memory was released.
static inline int cmalloc_trim(void) { return malloc_trim(0); }
#else
static inline int cmalloc_trim(void) { return 0; }
#endif
#endif
