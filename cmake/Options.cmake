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
#   HAKMEM_CHECKED            HAKMEM_CHECKED             OFF      expensive checks (implies
#                                                                 HAKMEM_DEBUG): free blocks
#                                                                 filled and verified on reuse,
#                                                                 protected free-list links, full
#                                                                 invariant walks
#   HAKMEM_OVERRIDE           HAKMEM_OVERRIDE            ON       export malloc/free/..., the
#                                                                 __libc_* aliases and the C++
#                                                                 operators new/delete
#   HAKMEM_SANITIZER          HAKMEM_ASAN, HAKMEM_TSAN   none     none|asan|ubsan|tsan|fuzz, applied
#                                                                 to every target (fuzz: clang,
#                                                                 ASan + UBSan + libFuzzer
#                                                                 coverage, harnesses in fuzz/)
#   HAKMEM_PLANT_BUG          HAKMEM_PLANT_BUG (number)  ""       tests only: compile in one known
#                                                                 bug (see below) to prove that the
#                                                                 regression tests and fuzzers
#                                                                 catch it
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
option(HAKMEM_CHECKED "Expensive checks: fill patterns, protected links, invariant walks" OFF)
if(HAKMEM_CHECKED AND NOT HAKMEM_DEBUG)
  set(HAKMEM_DEBUG ON CACHE BOOL "Debug assertions (hak_assert)" FORCE)
endif()
option(HAKMEM_OVERRIDE "Export malloc/free/... and the C++ operators" ON)
option(HAKMEM_BUILD_TESTS "Build and register the tests under tests/" ON)

set(HAKMEM_SANITIZER "none" CACHE STRING "Sanitizer: none, asan, ubsan, tsan or fuzz")
set_property(CACHE HAKMEM_SANITIZER PROPERTY STRINGS none asan ubsan tsan fuzz)
if(NOT HAKMEM_SANITIZER MATCHES "^(none|asan|ubsan|tsan|fuzz)$")
  message(FATAL_ERROR "HAKMEM_SANITIZER must be none, asan, ubsan, tsan or fuzz (got '${HAKMEM_SANITIZER}')")
endif()
if(HAKMEM_SANITIZER STREQUAL "fuzz" AND NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "HAKMEM_SANITIZER=fuzz needs clang (libFuzzer); configure with "
                      "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++")
endif()

# Planted bugs: each name compiles in exactly one of the root causes of the debug playbook, so
# that tests/regress and the fuzz harnesses can be shown to catch it (tests/planted/run_planted.sh).
# Never for use outside that proof. The number is what src/config.h compares against.
set(HAKMEM_PLANT_BUG_NAMES stale_hint sll_userptr registry_late_unregister class_drift
    magazine_userptr remote_double_drain double_offset remote_touch_after_push stale_notify
    orphan_stale_count uncarved_free fork_no_takeover large_grow_late_unregister)
set(HAKMEM_PLANT_BUG "" CACHE STRING "Tests only: compile in one planted bug (${HAKMEM_PLANT_BUG_NAMES})")
set_property(CACHE HAKMEM_PLANT_BUG PROPERTY STRINGS "" ${HAKMEM_PLANT_BUG_NAMES})
set(HAKMEM_PLANT_BUG_ID 0)
if(NOT HAKMEM_PLANT_BUG STREQUAL "" AND NOT HAKMEM_PLANT_BUG STREQUAL "none")
  list(FIND HAKMEM_PLANT_BUG_NAMES "${HAKMEM_PLANT_BUG}" _hakmem_plant_index)
  if(_hakmem_plant_index LESS 0)
    list(JOIN HAKMEM_PLANT_BUG_NAMES ", " _hakmem_plant_list)
    message(FATAL_ERROR "HAKMEM_PLANT_BUG must be empty or one of ${_hakmem_plant_list} "
                        "(got '${HAKMEM_PLANT_BUG}')")
  endif()
  math(EXPR HAKMEM_PLANT_BUG_ID "${_hakmem_plant_index} + 1")
  message(WARNING "HAKMEM_PLANT_BUG=${HAKMEM_PLANT_BUG}: this build has a bug compiled in on "
                  "purpose; use it only to prove that the tests catch it")
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
             HAKMEM_CHECKED HAKMEM_OVERRIDE)
  _hakmem_bool(_val "${${_opt}}")
  list(APPEND HAKMEM_DEFINITIONS "${_opt}=${_val}")
endforeach()
if(HAKMEM_SANITIZER MATCHES "^(asan|fuzz)$")
  list(APPEND HAKMEM_DEFINITIONS HAKMEM_ASAN=1 HAKMEM_TSAN=0)
elseif(HAKMEM_SANITIZER STREQUAL "tsan")
  list(APPEND HAKMEM_DEFINITIONS HAKMEM_ASAN=0 HAKMEM_TSAN=1)
else()
  list(APPEND HAKMEM_DEFINITIONS HAKMEM_ASAN=0 HAKMEM_TSAN=0)
endif()
list(APPEND HAKMEM_DEFINITIONS HAKMEM_PLANT_BUG=${HAKMEM_PLANT_BUG_ID})
unset(_val)
