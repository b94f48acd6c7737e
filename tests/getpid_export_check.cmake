# Fails when BINARY does not define getpid() for the libraries it loads (node/getpid_cache.cc):
# without it every ZeroMQ mailbox operation is a system call again, which only a benchmark would
# notice. test_node checks that the cache is right and interposes; this checks that tallyd and
# tally are linked with it. Run as: cmake -DNM=nm -DBINARY=path -P getpid_export_check.cmake
include(${CMAKE_CURRENT_LIST_DIR}/binary_symbols.cmake)
binary_symbols(symbols -D --defined-only)
if(NOT symbols MATCHES "(^|\n)[0-9a-f]+ [TW] getpid\n")
  message(FATAL_ERROR "${BINARY} does not export getpid (link it with tally_getpid_cache)")
endif()
message(STATUS "${BINARY}: exports getpid (node/getpid_cache.cc)")
