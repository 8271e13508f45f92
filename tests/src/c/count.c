/* A malloc that counts: LD_PRELOAD'ed before the agent-vault preload. */
#define _GNU_SOURCE
#include <stddef.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static long count;
void *malloc(size_t n) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); return __libc_memalign(a, n); }
int posix_memalign(void **r, size_t a, size_t n) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); *r = __libc_memalign(a, n); return *r ? 0 : 12; }
void free(void *p) { __libc_free(p); }
long av_alloc_count(void) { return __atomic_load_n(&count, __ATOMIC_RELAXED); }
