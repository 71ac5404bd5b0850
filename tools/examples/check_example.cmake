# Runs PROGRAM with ARGS (a ;-list) and compares what it printed with the file EXPECTED.
# The lines are compared as sorted lists: each starts with its time stamp, so the order of
# instants is still checked, while lines printed at one instant by different tasks may come in
# any order (they do, with several workers). Exit status 0 is required.
execute_process(COMMAND ${PROGRAM} ${ARGS}
  OUTPUT_VARIABLE output ERROR_VARIABLE errors RESULT_VARIABLE status TIMEOUT 100)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} ${ARGS}: exit status '${status}'\nstdout:\n${output}\nstderr:\n${errors}")
endif()
file(READ ${EXPECTED} expected)
string(REGEX REPLACE "\n$" "" output "${output}")
string(REGEX REPLACE "\n$" "" expected "${expected}")
string(REPLACE "\n" ";" output_lines "${output}")
string(REPLACE "\n" ";" expected_lines "${expected}")
list(SORT output_lines)
list(SORT expected_lines)
if(NOT output_lines STREQUAL expected_lines)
  message(FATAL_ERROR "${PROGRAM} ${ARGS}: output differs from ${EXPECTED}\n"
                      "--- got:\n${output}\n--- expected:\n${expected}\nstderr:\n${errors}")
endif()
