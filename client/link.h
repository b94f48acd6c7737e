// What a Client (client/client.h) sends and receives over, and the clock it reads. Every
// program's Client talks over ZeroMQ and reads the system's steady clock (ZmqLink,
// client/zmq_link.h); the deterministic simulator gives it a simulated network and a virtual
// clock instead, so the real Client's deadlines and retransmissions run in simulated time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

namespace tally::client {

using Clock = std::chrono::steady_clock;
using Duration = std::chrono::milliseconds;

// Replies, read replies and status replies are small; anything larger is refused by the link
// before it is buffered (ZmqLink: ZeroMQ's maxmsgsize), and by open() after.
inline constexpr size_t kReplyBytesMax = 1 << 20;

// What a Client sends and receives over, and the time it reads: ZeroMQ and the system clock
// in every program (ZmqLink, client/zmq_link.h), a simulated network and a virtual clock in
// the simulator. Replicas are numbered 0..n-1 as in network.json. Used by one thread, the
// Client's.
class ClientLink {
public:
    virtual ~ClientLink() = default;
    // Sends one frame to replica `replica` without blocking; false when dropped.
    virtual bool send(uint32_t replica, std::string_view frame) = 0;
    // Waits at most `max_wait` for frames, then hands each received one to on_frame(replica, frame)
    // (a bounded number per call). A message of more than one frame counts in `malformed` and is
    // dropped. on_frame may call send(); a frame's bytes live until on_frame returns.
    virtual void receive(Duration max_wait, const std::function<void(uint32_t, std::string_view)>& on_frame,
                         uint64_t& malformed) = 0;
    // The time the Client's deadlines and retransmissions are measured in. A virtual clock
    // must move on while the Client waits (a simulated receive() advancing it by up to
    // max_wait), or a synchronous call, which polls until its deadline, never returns.
    virtual Clock::time_point now() const { return Clock::now(); }
};

}  // namespace tally::client
