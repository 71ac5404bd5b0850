# Run by CTest as `cmake -P` for the test install.shared_library_builds:
#   1. configure the corun source tree CORUN_SOURCE_DIR as a shared library (BUILD_SHARED_LIBS=ON,
#      no tests, benchmarks or tools) in a fresh SHARED_BUILD_DIR, build it and install it into a
#      fresh PREFIX;
#   2. configure, build and run CONSUMER_SOURCE_DIR against it, telling the consumer to expect a
#      shared corun: it then fails to compile unless corun::corun carries CORUN_SHARED_LIBRARY,
#      which keeps the hot thread-locals on the default TLS model (corun/detail/config.hpp).
# Any failing step fails the test.
foreach(var IN ITEMS CORUN_SOURCE_DIR SHARED_BUILD_DIR PREFIX CONSUMER_SOURCE_DIR
                     CONSUMER_BINARY_DIR CXX_COMPILER GENERATOR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "shared_library_builds.cmake: ${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE "${SHARED_BUILD_DIR}" "${PREFIX}" "${CONSUMER_BINARY_DIR}")

message(STATUS "configure corun as a shared library in ${SHARED_BUILD_DIR}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" -S "${CORUN_SOURCE_DIR}" -B "${SHARED_BUILD_DIR}" -G "${GENERATOR}"
          "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" -DCMAKE_BUILD_TYPE=Release
          -DBUILD_SHARED_LIBS=ON -DCORUN_BUILD_TESTS=OFF -DCORUN_BUILD_BENCH=OFF
          -DCORUN_BUILD_TOOLS=OFF
  COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${SHARED_BUILD_DIR}" --target corun
                COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${SHARED_BUILD_DIR}" --prefix "${PREFIX}"
                COMMAND_ERROR_IS_FATAL ANY)
file(GLOB_RECURSE shared_libraries "${PREFIX}/libcorun.so*")
if(shared_libraries STREQUAL "")
  message(FATAL_ERROR "no libcorun.so was installed under ${PREFIX}")
endif()

message(STATUS "configure the consumer against the shared corun in ${PREFIX}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${CONSUMER_BINARY_DIR}"
          -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" -DCMAKE_BUILD_TYPE=Release
          "-DCMAKE_PREFIX_PATH=${PREFIX}" -DCMAKE_FIND_PACKAGE_PREFER_CONFIG=ON
          -DCORUN_CONSUMER_EXPECT_SHARED=ON
  COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${CONSUMER_BINARY_DIR}"
                COMMAND_ERROR_IS_FATAL ANY)

message(STATUS "run the consumer")
list(GET shared_libraries 0 first_library)
get_filename_component(library_dir "${first_library}" DIRECTORY)
execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env "LD_LIBRARY_PATH=${library_dir}"
          "${CONSUMER_BINARY_DIR}/corun_consumer"
  COMMAND_ERROR_IS_FATAL ANY)
