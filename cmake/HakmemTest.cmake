# The build settings every test program of tests/ and every fuzz harness of fuzz/ shares, in
# one function (tests/CMakeLists.txt includes this module; fuzz/ is added after it).
#
# hak_test_target(TARGET [INTERNAL] [LINK lib...])
#   C11 and C++17 without compiler extensions, _GNU_SOURCE, -Wall -Wextra, tests/support and
#   include/ on the include path (hak_test.h, the one family of check macros), threads.
#   INTERNAL: the program includes hakmem's src/ headers (hakmem_internal: src/ on the include
#             path and this build's HAKMEM_* definitions), with -Wno-unused-parameter as for the
#             library, whose inline headers keep mode-dependent parameters.
#   LINK:     what else it links: the library under test (hakmem_static, hakmem_core without the
#             malloc override, hakmem_sched with the schedule points' hook, hak_test_support for
#             the api and stress tests), CMAKE_DL_LIBS, ...
# The sanitizer flags are not here: cmake/Sanitizers.cmake sets them for every target of the
# build, so an instrumented library always meets an instrumented program.
include_guard(GLOBAL)

find_package(Threads REQUIRED)

function(hak_test_target target)
  cmake_parse_arguments(PARSE_ARGV 1 H "INTERNAL" "" "LINK")
  if(H_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "hak_test_target(${target}): unknown arguments ${H_UNPARSED_ARGUMENTS}")
  endif()
  set_target_properties(${target} PROPERTIES
    C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF
    CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE)
  target_include_directories(${target} PRIVATE "${PROJECT_SOURCE_DIR}/tests/support"
                                                "${PROJECT_SOURCE_DIR}/include")
  target_compile_options(${target} PRIVATE -Wall -Wextra
    $<$<COMPILE_LANGUAGE:CXX>:-fsized-deallocation -faligned-new>)
  if(H_INTERNAL)
    target_compile_options(${target} PRIVATE -Wno-unused-parameter)
    list(APPEND H_LINK hakmem_internal)
  endif()
  target_link_libraries(${target} PRIVATE ${H_LINK} Threads::Threads)
endfunction()
