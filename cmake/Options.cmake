# hakmem build options: every switch in one place.
#
#   CMake option              macro (always 0/1)         default  meaning
#   HAKMEM_TINY_HEADERLESS    HAKMEM_TINY_HEADERLESS     OFF      tiny blocks carry no header; free
#                                                                 finds the SuperSlab (hint, else
#                                                                 registry)
#   HAKMEM_TINY_SS_TLS_HINT   HAKMEM_TINY_SS_TLS_HINT    ON       compile the per-thread SuperSlab
#                                                                 hint box (headerless free path)
#   HAKMEM_DEBUG_HDRLESS      HAKMEM_DEBUG_HDRLESS       OFF      one-shot diagnostic logs
#                                                                 ([HINT_LOOKUP], ...)
#   HAKMEM_DEBUG              HAKMEM_DEBUG               OFF      hak_assert checks on
#   HAKMEM_OVERRIDE           HAKMEM_OVERRIDE            ON       export malloc/free/..., the
#                                                                 __libc_* aliases and the C++
#                                                                 operators new/delete
#   HAKMEM_SANITIZER          HAKMEM_ASAN, HAKMEM_TSAN   none     none|asan|ubsan|tsan, applied to
#                                                                 every target
#   HAKMEM_LIB_SUFFIX         -                          ""       library name suffix: _asan gives
#                                                                 libhakmem_asan.so
#   HAKMEM_STRESS_SECONDS     -                          2        seconds each stress test runs
#   HAKMEM_PRELOAD_TESTS      -                          (*)      run the LD_PRELOAD tests
#   HAKMEM_BUILD_TESTS        -                          ON       build tests/ and register them
#
# (*) ON when HAKMEM_OVERRIDE is ON and no sanitizer that owns malloc (asan, tsan) is in use.
# Run-time switches (HAKMEM_* environment variables) are listed in README.md.

option(HAKMEM_TINY_HEADERLESS "Tiny blocks without a per-block header" OFF)
option(HAKMEM_TINY_SS_TLS_HINT "Compile the per-thread SuperSlab hint box" ON)
option(HAKMEM_DEBUG_HDRLESS "One-shot diagnostic logs of the headerless paths" OFF)
option(HAKMEM_DEBUG "Debug assertions (hak_assert)" OFF)
option(HAKMEM_OVERRIDE "Export malloc/free/... and the C++ operators" ON)
option(HAKMEM_BUILD_TESTS "Build and register the tests under tests/" ON)

set(HAKMEM_SANITIZER "none" CACHE STRING "Sanitizer: none, asan, ubsan or tsan")
set_property(CACHE HAKMEM_SANITIZER PROPERTY STRINGS none asan ubsan tsan)
if(NOT HAKMEM_SANITIZER MATCHES "^(none|asan|ubsan|tsan)$")
  message(FATAL_ERROR "HAKMEM_SANITIZER must be none, asan, ubsan or tsan (got '${HAKMEM_SANITIZER}')")
endif()

set(HAKMEM_LIB_SUFFIX "" CACHE STRING "Suffix of the library names (libhakmem<suffix>.so)")
if(NOT HAKMEM_LIB_SUFFIX MATCHES "^[A-Za-z0-9_]*$")
  message(FATAL_ERROR "HAKMEM_LIB_SUFFIX may hold only letters, digits and '_' (got '${HAKMEM_LIB_SUFFIX}')")
endif()

set(HAKMEM_STRESS_SECONDS "2" CACHE STRING "Seconds each stress test runs")
if(NOT HAKMEM_STRESS_SECONDS MATCHES "^[1-9][0-9]*$")
  message(FATAL_ERROR "HAKMEM_STRESS_SECONDS must be a positive integer (got '${HAKMEM_STRESS_SECONDS}')")
endif()

# AddressSanitizer and ThreadSanitizer own malloc: under them a preloaded allocator would
# silently switch their heap checks off, so the LD_PRELOAD tests run only without them.
if(HAKMEM_OVERRIDE AND HAKMEM_SANITIZER MATCHES "^(none|ubsan)$")
  set(_hakmem_preload_possible ON)
else()
  set(_hakmem_preload_possible OFF)
endif()
option(HAKMEM_PRELOAD_TESTS "Run the LD_PRELOAD tests" ${_hakmem_preload_possible})
if(HAKMEM_PRELOAD_TESTS AND NOT _hakmem_preload_possible)
  message(WARNING "HAKMEM_PRELOAD_TESTS needs HAKMEM_OVERRIDE=ON and HAKMEM_SANITIZER none or "
                  "ubsan; the preload tests are left out of this build")
  set(HAKMEM_PRELOAD_TESTS OFF)
endif()

# The macros the sources test with #if: always defined, to 0 or 1.
function(_hakmem_bool out value)
  if(value)
    set(${out} 1 PARENT_SCOPE)
  else()
    set(${out} 0 PARENT_SCOPE)
  endif()
endfunction()

set(HAKMEM_DEFINITIONS "")
foreach(_opt HAKMEM_TINY_HEADERLESS HAKMEM_TINY_SS_TLS_HINT HAKMEM_DEBUG_HDRLESS HAKMEM_DEBUG
             HAKMEM_OVERRIDE)
  _hakmem_bool(_val "${${_opt}}")
  list(APPEND HAKMEM_DEFINITIONS "${_opt}=${_val}")
endforeach()
if(HAKMEM_SANITIZER STREQUAL "asan")
  list(APPEND HAKMEM_DEFINITIONS HAKMEM_ASAN=1 HAKMEM_TSAN=0)
elseif(HAKMEM_SANITIZER STREQUAL "tsan")
  list(APPEND HAKMEM_DEFINITIONS HAKMEM_ASAN=0 HAKMEM_TSAN=1)
else()
  list(APPEND HAKMEM_DEFINITIONS HAKMEM_ASAN=0 HAKMEM_TSAN=0)
endif()
unset(_val)
