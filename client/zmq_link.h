// The link every program's Client talks over (client/link.h): one ZeroMQ DEALER per replica,
// connected to the replica's client endpoint in network.json under CurveZMQ (client/curve.h),
// and the system's steady clock.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "client/link.h"
#include "crypto/result.h"
#include "node/api/network_config.h"
#include "node/socket_wait.h"

namespace tally::client {

class ZmqLink final : public ClientLink {
public:
    // Connects one DEALER per replica of `config` (ids 0..n-1 in order). Does not wait for the
    // replicas: ZeroMQ connects in the background and queues what is sent meanwhile. Errors:
    // "invalid" (a replica's key gives no transport key), "network" (ZeroMQ failed).
    static Result<std::unique_ptr<ZmqLink>> connect(const node::api::NetworkConfig& config);

    bool send(uint32_t replica, std::string_view frame) override;
    // Waits as the replica's transport does (node/socket_wait.h: one question per socket and
    // one poll(2), where zmq::poll asks twice and polls twice), then reads the sockets that may
    // hold a message. Takes at most kDrainPerSocketMax frames from each socket per call, so one
    // chatty replica cannot starve the others. An interrupted wait (EINTR) returns having
    // received nothing.
    void receive(Duration max_wait, const std::function<void(uint32_t, std::string_view)>& on_frame,
                 uint64_t& malformed) override;

    static constexpr int kDrainPerSocketMax = 512;

private:
    ZmqLink() = default;

    zmq::context_t context_{1};
    std::vector<zmq::socket_t> sockets_;  // by replica id
    std::vector<node::WatchedSocket> watched_;  // one per socket, in the same order
};

}  // namespace tally::client
