# Fails when the `tally` binary holds code of a replica, a consensus engine or the SQLite
# ledger: the client must reach replicas through node/api and bft/quorum.h only (README,
# "How it is built"). client/CMakeLists.txt refuses such a link at configure time; this looks at
# what was really linked. Run as: cmake -DNM=nm -DBINARY=path/to/tally -P client_links_check.cmake
include(${CMAKE_CURRENT_LIST_DIR}/binary_symbols.cmake)
binary_symbols(symbols -C)
# Sanity: the client itself is there (so an nm that printed nothing does not pass).
if(NOT symbols MATCHES "tally::client::Client::")
  message(FATAL_ERROR "${BINARY} has no tally::client::Client symbols: not the binary expected")
endif()
set(failed "")
foreach(pattern "tally::bft::pbft::" "tally::bft::Output::" "tally::node::Replica::"
                "tally::node::WorkerPool::" "tally::node::Transport::"
                "tally::node::TraitorEngine::" "tally::ledger::State::" "sqlite3_")
  string(REGEX MATCHALL "[^\n]*${pattern}[^\n]*" found "${symbols}")
  list(LENGTH found count)
  if(count GREATER 0)
    list(GET found 0 example)
    string(APPEND failed "\n  ${count} symbols of ${pattern} (e.g. ${example})")
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "${BINARY} links consensus or replica code:${failed}")
endif()
message(STATUS "${BINARY}: no replica, engine or SQLite ledger code")
