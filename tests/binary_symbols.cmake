# For the scripts that check what a program was linked with (client_links_check.cmake,
# getpid_export_check.cmake): binary_symbols(OUT [nm options...]) sets OUT to what
# `${NM} [options] ${BINARY}` prints, and stops the script with a clear error when BINARY is
# missing or nm fails.
function(binary_symbols out)
  if(NOT BINARY OR NOT EXISTS "${BINARY}")
    message(FATAL_ERROR "no binary to check: '${BINARY}'")
  endif()
  execute_process(COMMAND "${NM}" ${ARGN} "${BINARY}" OUTPUT_VARIABLE symbols RESULT_VARIABLE status
                  ERROR_VARIABLE errors)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${NM} ${ARGN} ${BINARY} failed: ${errors}")
  endif()
  set(${out} "${symbols}" PARENT_SCOPE)
endfunction()
