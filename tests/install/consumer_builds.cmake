# Run by CTest as `cmake -P` for the test install.consumer_builds:
#   1. install the corun build tree CORUN_BUILD_DIR into a fresh PREFIX, and check that only
#      include/corun/ was installed as headers;
#   2. configure CONSUMER_SOURCE_DIR in a fresh CONSUMER_BINARY_DIR against it
#      (CMAKE_PREFIX_PATH=PREFIX), with the compiler, generator, build type and sanitizer flags
#      of the corun build;
#   3. build it and run the consumer, which checks its own result.
# Any failing step fails the test.
foreach(var IN ITEMS CORUN_BUILD_DIR PREFIX CONSUMER_SOURCE_DIR CONSUMER_BINARY_DIR CXX_COMPILER
                     GENERATOR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "consumer_builds.cmake: ${var} is not set")
  endif()
endforeach()

set(config_flags_arg "")
if(NOT "${BUILD_TYPE}" STREQUAL "")
  string(TOUPPER "${BUILD_TYPE}" build_type_upper)
  set(config_flags_arg "-DCMAKE_CXX_FLAGS_${build_type_upper}=${CONFIG_CXX_FLAGS}")
endif()

file(REMOVE_RECURSE "${PREFIX}" "${CONSUMER_BINARY_DIR}")

message(STATUS "install ${CORUN_BUILD_DIR} into ${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${CORUN_BUILD_DIR}" --prefix "${PREFIX}"
                COMMAND_ERROR_IS_FATAL ANY)

# Only the public headers are installed: include/corun/, nothing from runtime/.
file(GLOB installed_include_dirs RELATIVE "${PREFIX}/include" "${PREFIX}/include/*")
if(NOT installed_include_dirs STREQUAL "corun" OR NOT EXISTS "${PREFIX}/include/corun/corun.hpp")
  message(FATAL_ERROR "expected exactly include/corun/ with corun.hpp under ${PREFIX}, "
                      "found: ${installed_include_dirs}")
endif()

message(STATUS "configure the consumer against ${PREFIX}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${CONSUMER_BINARY_DIR}"
          -G "${GENERATOR}"
          "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
          "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
          "-DCMAKE_PREFIX_PATH=${PREFIX}"
          "-DCMAKE_FIND_PACKAGE_PREFER_CONFIG=ON"
          "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
          ${config_flags_arg}
          "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}"
  COMMAND_ERROR_IS_FATAL ANY)

message(STATUS "build the consumer")
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${CONSUMER_BINARY_DIR}"
                COMMAND_ERROR_IS_FATAL ANY)

message(STATUS "run the consumer")
execute_process(COMMAND "${CONSUMER_BINARY_DIR}/corun_consumer" COMMAND_ERROR_IS_FATAL ANY)
