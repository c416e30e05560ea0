// Every C++ operator new/delete form, on top of the hak_ API. Built only with HAKMEM_OVERRIDE.
//
// Throwing forms call the installed new-handler until it succeeds or there is none, then throw
// std::bad_alloc; nothrow forms return nullptr instead. Aligned forms honour align_val_t.
#include <cstddef>
#include <new>

#include "hakmem.h"

#define HAK_CXX_API __attribute__((visibility("default")))

namespace {

void *alloc_or_handle(std::size_t n, std::size_t align, bool nothrow) {
  for (;;) {
    void *p = align <= 16 ? hak_malloc(n) : hak_aligned_alloc(align, n);
    if (p != nullptr) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

}  // namespace

HAK_CXX_API void *operator new(std::size_t n) { return alloc_or_handle(n, 0, false); }
HAK_CXX_API void *operator new[](std::size_t n) { return alloc_or_handle(n, 0, false); }
HAK_CXX_API void *operator new(std::size_t n, const std::nothrow_t &) noexcept {
  return alloc_or_handle(n, 0, true);
}
HAK_CXX_API void *operator new[](std::size_t n, const std::nothrow_t &) noexcept {
  return alloc_or_handle(n, 0, true);
}
HAK_CXX_API void *operator new(std::size_t n, std::align_val_t al) {
  return alloc_or_handle(n, static_cast<std::size_t>(al), false);
}
HAK_CXX_API void *operator new[](std::size_t n, std::align_val_t al) {
  return alloc_or_handle(n, static_cast<std::size_t>(al), false);
}
HAK_CXX_API void *operator new(std::size_t n, std::align_val_t al,
                               const std::nothrow_t &) noexcept {
  return alloc_or_handle(n, static_cast<std::size_t>(al), true);
}
HAK_CXX_API void *operator new[](std::size_t n, std::align_val_t al,
                                 const std::nothrow_t &) noexcept {
  return alloc_or_handle(n, static_cast<std::size_t>(al), true);
}

HAK_CXX_API void operator delete(void *p) noexcept { hak_free(p); }
HAK_CXX_API void operator delete[](void *p) noexcept { hak_free(p); }
HAK_CXX_API void operator delete(void *p, const std::nothrow_t &) noexcept { hak_free(p); }
HAK_CXX_API void operator delete[](void *p, const std::nothrow_t &) noexcept { hak_free(p); }
HAK_CXX_API void operator delete(void *p, std::size_t) noexcept { hak_free(p); }
HAK_CXX_API void operator delete[](void *p, std::size_t) noexcept { hak_free(p); }
HAK_CXX_API void operator delete(void *p, std::align_val_t) noexcept { hak_free(p); }
HAK_CXX_API void operator delete[](void *p, std::align_val_t) noexcept { hak_free(p); }
HAK_CXX_API void operator delete(void *p, std::size_t, std::align_val_t) noexcept {
  hak_free(p);
}
HAK_CXX_API void operator delete[](void *p, std::size_t, std::align_val_t) noexcept {
  hak_free(p);
}
HAK_CXX_API void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept {
  hak_free(p);
}
HAK_CXX_API void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept {
  hak_free(p);
}
