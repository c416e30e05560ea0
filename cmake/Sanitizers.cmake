# Sanitizer flags for every target of the build (library and tests alike), chosen by
# HAKMEM_SANITIZER. Under asan, tsan and fuzz the sanitizer owns malloc, so the library is built with
# HAKMEM_OVERRIDE=OFF and exercised through its prefixed API (see cmake/Options.cmake).

if(HAKMEM_SANITIZER STREQUAL "asan")
  set(HAKMEM_SANITIZER_FLAGS -fsanitize=address -fno-omit-frame-pointer)
elseif(HAKMEM_SANITIZER STREQUAL "ubsan")
  set(HAKMEM_SANITIZER_FLAGS -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
elseif(HAKMEM_SANITIZER STREQUAL "tsan")
  set(HAKMEM_SANITIZER_FLAGS -fsanitize=thread)
elseif(HAKMEM_SANITIZER STREQUAL "fuzz")
  # Coverage for libFuzzer everywhere; the harnesses add -fsanitize=fuzzer (its main) at link.
  set(HAKMEM_SANITIZER_FLAGS -fsanitize=address,undefined,fuzzer-no-link
      -fno-sanitize-recover=all -fno-omit-frame-pointer)
else()
  set(HAKMEM_SANITIZER_FLAGS "")
endif()

if(HAKMEM_SANITIZER_FLAGS)
  add_compile_options(${HAKMEM_SANITIZER_FLAGS})
  add_link_options(${HAKMEM_SANITIZER_FLAGS})
endif()
