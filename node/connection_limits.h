// Limits on one client connection, below admission (node/admission.h), which caps what a
// connection may have pending: what it may send per second, and how many connections one
// address may hold open.
//
//   - ConnectionRates: a token bucket of bytes per client connection (keyed by its routing
//     id). A frame that does not fit is dropped before it costs a signature check, counted
//     ("client_rate_limited", `tally net status`) and logged (rate-limited); the client
//     retransmits, as after any loss. A connection starts with a full bucket (`burst_bytes`),
//     so a client's first burst of pipelined requests passes. A frame that failed its
//     signature check is charged again, heavily (`bad_signature_bytes`), once a worker has
//     found out: such a flood costs a signature check per frame, and a few bad frames put
//     the connection to silence for a while.
//   - AddressCounts: the client connections open from each address, kept by the transport's
//     ZAP thread from its socket monitor (accepted / disconnected) and consulted when a new
//     connection asks to be admitted: beyond connections_per_address_max it is refused
//     ("too_many_connections"). Without this one host could open connections until the
//     replica's memory (each holds up to client_receive_hwm frames) or its descriptors ran out.
//
// Why these numbers (ConnectionLimits): the benchmark and a gateway multiplex every account
// over one connection, so a connection's rate must carry a whole benchmark (4,000 transfers/s
// of ~200 bytes is 0.8 MB/s); 4 MiB/s leaves room, and with the per-connection pending cap
// (admission) and ZeroMQ's fair queueing across connections, one connection cannot take more
// than its share of a replica's turns. 64 connections per address covers every client process
// on one machine in the tests (each Client holds one per replica) and caps one host at
// 64 MiB of queued frames.
//
// Pure: no clocks (the caller passes `now`), no I/O. Thread-compatible.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tally::node {

struct ConnectionLimits {
    uint64_t bytes_per_second = 4u << 20;  // per client connection
    uint64_t burst_bytes = 1u << 20;       // what a connection may send at once after a pause
    // What a frame that failed its signature check costs its connection, in bytes of its
    // rate: a connection sending bad signatures gets bytes_per_second / this of them checked
    // per second (16), not thousands. An honest client never sends one.
    uint64_t bad_signature_bytes = 256u << 10;
    size_t connections_per_address_max = 64;
};

// What a replica that proved itself faulty may still make this one check. A frame that came
// over a replica's own connection (node/host.h) and failed its signature check is that
// replica's doing: an honest replica never sends one. Such a replica may send `burst` of them
// at once, then `per_second`; past that, every frame of its connection is dropped before any
// check ("peer_silenced") until its debt is paid off at `per_second`. A flood of bad
// signatures from a traitor then costs about one check a second, not a core, and nothing an
// honest replica sends is ever dropped. (A ConnectionRates whose bytes are faults.)
struct PeerFaultLimits {
    uint64_t burst = 16;
    uint64_t per_second = 1;
};

class ConnectionRates {
public:
    using Clock = std::chrono::steady_clock;

    explicit ConnectionRates(const ConnectionLimits& limits);
    explicit ConnectionRates(const PeerFaultLimits& limits);

    // Whether connection `routing_id` may send `bytes` now; if so they are taken from its
    // bucket. A frame larger than the whole burst never fits (the clients' socket refuses such
    // frames anyway).
    bool allow(std::string_view routing_id, size_t bytes, Clock::time_point now);

    // Takes `bytes` from connection `routing_id`'s bucket, below zero if need be (a penalty:
    // the connection sends nothing more until its rate has refilled the debt).
    void charge(std::string_view routing_id, uint64_t bytes, Clock::time_point now);

    // Forgets the connections whose buckets are full again (idle for burst/rate): a connection
    // not tracked is one with a full bucket, so this changes no verdict and keeps the table to
    // the connections that sent lately.
    void prune(Clock::time_point now);

    size_t tracked() const { return buckets_.size(); }

private:
    struct Bucket {
        double tokens = 0;
        Clock::time_point last{};
    };
    double refilled(const Bucket& bucket, Clock::time_point now) const;
    // The connection's bucket (a full one if it had none), refilled up to `now`.
    Bucket& refill(std::string_view routing_id, Clock::time_point now);

    double rate_;   // bytes per second
    double burst_;  // bytes
    std::unordered_map<std::string, Bucket> buckets_;
};

class AddressCounts {
public:
    // A connection on descriptor `fd` was accepted from `address` (empty: unknown, not
    // counted). A descriptor the table still holds (its close not seen yet) is closed first.
    void opened(int fd, std::string address);
    // The connection on `fd` closed (unknown descriptors are ignored).
    void closed(int fd);
    // Connections open from `address`.
    size_t count(std::string_view address) const;
    size_t open_connections() const { return by_fd_.size(); }

private:
    std::unordered_map<int, std::string> by_fd_;
    std::map<std::string, size_t, std::less<>> by_address_;
};

}  // namespace tally::node
