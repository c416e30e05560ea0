/* Every C++ operator new/delete form, on top of the hak_ API. Built only with HAKMEM_OVERRIDE.
 *
 * Written in C under the operators' Itanium-ABI names (x86-64: size_t mangles as 'm') so that
 * the library needs no C++ runtime of its own: a C program under LD_PRELOAD does not load
 * libstdc++, libm and libgcc_s (about 1.2 MiB of resident pages) for operators it never calls.
 * The runtime is only needed when an allocation fails, and then the caller is C++ code, which
 * has loaded it:
 *   - a throwing form calls the installed new-handler until an attempt succeeds or there is no
 *     handler, then throws std::bad_alloc (the runtime's std::__throw_bad_alloc);
 *   - a nothrow form returns NULL when there is no handler; with one, it asks the runtime's own
 *     nothrow form, which calls our throwing form inside a try block and turns whatever the
 *     handler throws into NULL, as the standard requires (C cannot catch).
 * The runtime's functions are looked up by name with dlsym on that cold path. This file is
 * compiled with -fexceptions, so a bad_alloc unwinds through its frames.
 *
 * The one RTLD_NEXT lookup (new_or_null) is not a fallback to another allocator: it is taken
 * only after hakmem failed and a handler is installed, and what it finds is the C++ runtime's
 * nothrow operator, whose memory comes from ::operator new or malloc, both resolved to
 * hakmem's (libstdc++ since GCC 9: `try { return ::operator new(n); } catch (...) {}`;
 * before: a malloc loop calling the handler). No lock is held across it. A nothrow new with
 * a handler that throws must return NULL, which takes a catch, and C has none; calling the
 * handler here instead would let its exception leave a noexcept function (std::terminate).
 * api_cxx tests both handlers (one that returns, one that throws) on the nothrow forms. */
#include <dlfcn.h>
#include <stddef.h>

#include "hakmem.h"
#include "internal.h"

#if !HAKMEM_OVERRIDE
#error "override_new.c is built only with HAKMEM_OVERRIDE"
#endif

typedef void (*hak_new_handler_t)(void);
typedef void *(*hak_nothrow_new_t)(size_t n, const void *tag);
typedef void *(*hak_nothrow_new_aligned_t)(size_t n, size_t align, const void *tag);

/* A function of the C++ runtime, or the fail-fast diagnostic when the process has none (a C++
 * operator called from a program that does not load libstdc++). */
static void *runtime_fn(void *handle, const char *name) {
  void *f = dlsym(handle, name);
  if (f == NULL) hak_fail("operator new: allocation failed and no C++ runtime is loaded", NULL, NULL, -1);
  return f;
}

static hak_new_handler_t installed_handler(void) {
  /* std::get_new_handler() */
  hak_new_handler_t (*get)(void) =
      (hak_new_handler_t(*)(void))runtime_fn(RTLD_DEFAULT, "_ZSt15get_new_handlerv");
  return get();
}

/* form: HAK_FORM_NEW or HAK_FORM_ARRAY, recorded for the deletes to check (HAK_DELETE_CHECKED
 * builds) when the form takes no alignment argument (align 0). */
static inline void *try_alloc(size_t n, size_t align, unsigned form) {
  if (align != 0) return align <= 16 ? hak_malloc(n) : hak_aligned_alloc(align, n);
  void *p = hak_malloc(n);
#if HAK_DELETE_CHECKED
  if (hak_likely(p != NULL)) hak_new_record(p, n, form);
#else
  (void)form;
#endif
  return p;
}

/* The throwing forms. */
static void *__attribute__((noinline)) new_or_throw(size_t n, size_t align, unsigned form) {
  for (;;) {
    void *p = try_alloc(n, align, form);
    if (hak_likely(p != NULL)) return p;
    hak_new_handler_t handler = installed_handler();
    if (handler == NULL) {
      /* std::__throw_bad_alloc(), [[noreturn]] */
      void (*throw_bad_alloc)(void) =
          (void (*)(void))runtime_fn(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
      throw_bad_alloc();
      hak_fail("operator new: std::__throw_bad_alloc returned", NULL, NULL, -1);
    }
    handler();
  }
}

/* The nothrow forms: the runtime's own nothrow form (name), found past this library, runs
 * our throwing form under try/catch once a handler is installed. */
static void *new_or_null(size_t n, size_t align, const char *name, unsigned form) {
  void *p = try_alloc(n, align, form);
  if (hak_likely(p != NULL)) return p;
  if (installed_handler() == NULL) return NULL;
  void *f = runtime_fn(RTLD_NEXT, name);
  if (align == 0) return ((hak_nothrow_new_t)f)(n, NULL);
  return ((hak_nothrow_new_aligned_t)f)(n, align, NULL);
}

/* The tag arguments (std::nothrow_t, a reference) are never read. */
#define NOTHROW_NEW "_ZnwmRKSt9nothrow_t"
#define NOTHROW_NEW_ARRAY "_ZnamRKSt9nothrow_t"
#define NOTHROW_NEW_ALIGNED "_ZnwmSt11align_val_tRKSt9nothrow_t"
#define NOTHROW_NEW_ARRAY_ALIGNED "_ZnamSt11align_val_tRKSt9nothrow_t"

/* operator new(size_t), new[](size_t) */
hak_api void *_Znwm(size_t n) { return new_or_throw(n, 0, HAK_FORM_NEW); }
hak_api void *_Znam(size_t n) { return new_or_throw(n, 0, HAK_FORM_ARRAY); }
/* operator new(size_t, const nothrow_t &), new[] */
hak_api void *_ZnwmRKSt9nothrow_t(size_t n, const void *tag) {
  (void)tag;
  return new_or_null(n, 0, NOTHROW_NEW, HAK_FORM_NEW);
}
hak_api void *_ZnamRKSt9nothrow_t(size_t n, const void *tag) {
  (void)tag;
  return new_or_null(n, 0, NOTHROW_NEW_ARRAY, HAK_FORM_ARRAY);
}
/* operator new(size_t, align_val_t), new[] */
hak_api void *_ZnwmSt11align_val_t(size_t n, size_t align) {
  return new_or_throw(n, align, HAK_FORM_NEW);
}
hak_api void *_ZnamSt11align_val_t(size_t n, size_t align) {
  return new_or_throw(n, align, HAK_FORM_ARRAY);
}
/* operator new(size_t, align_val_t, const nothrow_t &), new[] */
hak_api void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *tag) {
  (void)tag;
  return new_or_null(n, align, NOTHROW_NEW_ALIGNED, HAK_FORM_NEW);
}
hak_api void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *tag) {
  (void)tag;
  return new_or_null(n, align, NOTHROW_NEW_ARRAY_ALIGNED, HAK_FORM_ARRAY);
}

/* Every delete form frees. Those without an alignment argument first check the block's form
 * and their size argument in HAK_DELETE_CHECKED builds (api.c: hak_delete_check); other builds
 * and the aligned forms need neither. */
static inline void delete_as(void *p, size_t n, unsigned form) {
#if HAK_DELETE_CHECKED
  hak_delete_check(p, n, form);
#else
  (void)n;
  (void)form;
#endif
  hak_free(p);
}

hak_api void _ZdlPv(void *p) { delete_as(p, HAK_NO_SIZE, HAK_FORM_NEW); }
hak_api void _ZdaPv(void *p) { delete_as(p, HAK_NO_SIZE, HAK_FORM_ARRAY); }
hak_api void _ZdlPvRKSt9nothrow_t(void *p, const void *tag) {
  delete_as(p, HAK_NO_SIZE, HAK_FORM_NEW);
}
hak_api void _ZdaPvRKSt9nothrow_t(void *p, const void *tag) {
  delete_as(p, HAK_NO_SIZE, HAK_FORM_ARRAY);
}
hak_api void _ZdlPvm(void *p, size_t n) { delete_as(p, n, HAK_FORM_NEW); }
hak_api void _ZdaPvm(void *p, size_t n) { delete_as(p, n, HAK_FORM_ARRAY); }
hak_api void _ZdlPvSt11align_val_t(void *p, size_t align) { hak_free(p); }
hak_api void _ZdaPvSt11align_val_t(void *p, size_t align) { hak_free(p); }
hak_api void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t align) { hak_free(p); }
hak_api void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t align) { hak_free(p); }
hak_api void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag) {
  hak_free(p);
}
hak_api void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag) {
  hak_free(p);
}
