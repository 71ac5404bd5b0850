# Sanitizers for the whole build: the library, the tests, the benchmarks and the tools.
#
# CORUN_SANITIZE is a list of sanitizer names as `-fsanitize=` spells them, or a shorthand:
#   asan  -> address;undefined   (ASan + UBSan; LSan comes with ASan on Linux)
#   tsan  -> thread
#   ""    -> none
# e.g. `-DCORUN_SANITIZE=asan`, `-DCORUN_SANITIZE=tsan`, `-DCORUN_SANITIZE="address;undefined"`.
#
# The flags are added with add_compile_options/add_link_options, so corun_apply_sanitizers() must
# be called in the top-level CMakeLists.txt before any target or subdirectory is declared: every
# target below it, including tests/, bench/ and tools/, is then built with the same sanitizers
# (mixing instrumented and plain code gives false reports under TSan and missed ones under ASan).
# It sets CORUN_SANITIZERS_ACTIVE (the list, e.g. address;undefined) and CORUN_SANITIZER_FLAGS (the
# compile and link flags as one string) for the directories below, empty when off.

set(CORUN_SANITIZE "" CACHE STRING
  "Sanitizers for every target: asan (address+undefined), tsan (thread), or a list like address;undefined")
set_property(CACHE CORUN_SANITIZE PROPERTY STRINGS "" asan tsan "address;undefined" thread)

function(corun_apply_sanitizers)
  set(CORUN_SANITIZERS_ACTIVE "" PARENT_SCOPE)
  set(CORUN_SANITIZER_FLAGS "" PARENT_SCOPE)
  set(requested ${CORUN_SANITIZE})
  if(NOT requested)
    return()
  endif()

  set(sanitizers "")
  foreach(item IN LISTS requested)
    string(TOLOWER "${item}" item)
    if(item STREQUAL "asan")
      list(APPEND sanitizers address undefined)
    elseif(item STREQUAL "tsan")
      list(APPEND sanitizers thread)
    elseif(item STREQUAL "ubsan")
      list(APPEND sanitizers undefined)
    elseif(item MATCHES "^(address|undefined|thread|leak)$")
      list(APPEND sanitizers ${item})
    else()
      message(FATAL_ERROR "CORUN_SANITIZE: unknown sanitizer '${item}' "
        "(use asan, tsan, or a list of address, undefined, thread, leak)")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES sanitizers)

  if("thread" IN_LIST sanitizers AND ("address" IN_LIST sanitizers OR "leak" IN_LIST sanitizers))
    message(FATAL_ERROR "CORUN_SANITIZE: ThreadSanitizer cannot be combined with Address/LeakSanitizer")
  endif()

  list(JOIN sanitizers "," joined)
  set(flags "-fsanitize=${joined}")
  if("undefined" IN_LIST sanitizers)
    # Any UB report fails the test that caused it instead of scrolling past.
    list(APPEND flags -fno-sanitize-recover=all)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
      # clang 14's -fsanitize=function (part of `undefined`; it checks calls through function
      # pointers of the wrong type) breaks every coroutine: the assembler fails with "Cannot
      # represent a difference across sections". Fixed by clang 16's new implementation.
      list(APPEND flags -fno-sanitize=function)
    endif()
  endif()
  # Readable stacks in reports, also from optimised code.
  add_compile_options(${flags} -fno-omit-frame-pointer)
  if("thread" IN_LIST sanitizers AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # g++ warns (-Wtsan) at every std::atomic_thread_fence inlined into our code: TSan does not
    # model fences. corun's own code has none (DESIGN.md); the warnings all come from
    # moodycamel::ConcurrentQueue, the injection queue, whose fences we cannot change.
    add_compile_options(-Wno-tsan)
  endif()
  add_link_options(${flags})

  # For code built outside this tree that links corun (tests/install builds a consumer).
  list(JOIN flags " " flags_string)
  set(CORUN_SANITIZERS_ACTIVE ${sanitizers} PARENT_SCOPE)
  set(CORUN_SANITIZER_FLAGS "${flags_string} -fno-omit-frame-pointer" PARENT_SCOPE)
  message(STATUS "corun: -fsanitize=${joined} on every target")
endfunction()
