// `tally net web`: the live view of a local network in the browser.
//
// One page (client/web/index.html, app.js, style.css, embedded into `tally` at build time) and a
// small JSON API over HTTP (cpp-httplib):
//   GET  /                          the page
//   GET  /api/state                 the last poll of the replicas (with their recent batches'
//                                   steps), the last minute's history and per-phase latency, and
//                                   the recent events (the page polls it every 500 ms)
//   POST /api/replicas/N/kill       as `tally net kill --node N`  (202: queued; 409: one is running)
//   POST /api/replicas/N/start      as `tally net start --node N`
//
// Read-only with respect to consensus. ONE background thread asks every replica for its status
// (client/client.h `status`, as `tally net status`) and scrapes its metrics port for the
// committed-transaction count, every `poll_interval`, and keeps the answer; a web request only
// copies that answer and never reaches a replica, so no number or speed of browsers changes
// what the replicas see: two status requests and two metrics scrapes per replica per second.
// Each status request also asks for the replica's 16 most recent sequence numbers' steps
// (StatusRequest.recent_seqs; a replica sends at most 64): the page's timeline of batches through
// pre-prepare, prepared, committed and executed (Raft: appended, committed, executed) and view
// changes or elections. Per-phase latency is the median, over the last minute, of each newly
// executed seq's time from one stage to the next, measured on that replica's own clock (clocks
// differ across hosts): a sample of the batches, the newest of each poll.
// Throughput is each replica's rate between two polls (batches from its executed sequence
// number, transfers from its metrics' tally_committed_transactions_total), and of those the
// (f+1)-th highest: a rate that at least one honest replica reached.
//
// Bounds of the HTTP side: `kHttpThreads` worker threads; at most `kHttpQueue` accepted
// connections wait for one (past that the accept loop waits, and the kernel's backlog of 64
// holds the rest); a request body of at most 4 KiB; one request per connection (httplib holds a
// worker for each open connection, so keep-alive would let idle browsers occupy them); reads and
// writes time out after 5 s, so a client that stalls holds a worker at most that long per read.
// Kill and start run one at a time on their own thread.
//
// Guard against other sites (CSRF) and DNS rebinding: every request's Host must name this
// server by localhost, an IP address or the --host given, with its port (a rebinding site's
// page sends its own domain name); a POST must carry
// Content-Type application/json (which a cross-site form cannot send and a cross-site fetch
// cannot without a CORS preflight that this server never grants) and, when the browser sends
// them, an Origin equal to this server and a Sec-Fetch-Site of same-origin. Binds 127.0.0.1
// unless --host says otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

#include "crypto/result.h"

namespace tally::client::web {

inline constexpr size_t kHttpThreads = 4;
inline constexpr size_t kHttpQueue = 32;

struct WebOptions {
    std::string dir = "tally-net";
    std::string host = "127.0.0.1";
    uint16_t port = 8080;  // 0: any free port (printed)
    std::chrono::milliseconds poll_interval{500};
};

// Serves the live view until SIGINT or SIGTERM. Errors: "not_found" (no network in dir),
// "bind" (the port is taken), "usage".
Status serve(const WebOptions& options, std::ostream& out);

}  // namespace tally::client::web
