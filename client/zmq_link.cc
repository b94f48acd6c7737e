// The Client's ZeroMQ link. See zmq_link.h.
#include "client/zmq_link.h"

#include <utility>

#include "client/curve.h"

namespace tally::client {
namespace {

// What one socket may queue each way; a full send queue (a dead replica's) drops.
constexpr int kSocketQueueMax = 100'000;

}  // namespace

Result<std::unique_ptr<ZmqLink>> ZmqLink::connect(const node::api::NetworkConfig& config) {
    try {
        std::unique_ptr<ZmqLink> link(new ZmqLink());
        for (const auto& replica : config.replicas) {
            zmq::socket_t socket(link->context_, zmq::socket_type::dealer);
            socket.set(zmq::sockopt::linger, 0);
            socket.set(zmq::sockopt::sndhwm, kSocketQueueMax);
            socket.set(zmq::sockopt::rcvhwm, kSocketQueueMax);
            socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kReplyBytesMax));
            // CURVE: only the replica holding its key can answer on this connection.
            if (auto s = secure_to_replica(socket, replica); !s) return s.error();
            socket.connect(replica.client_endpoint());
            link->sockets_.push_back(std::move(socket));
        }
        for (auto& socket : link->sockets_)
            link->watched_.push_back(node::WatchedSocket{&socket, socket.get(zmq::sockopt::fd)});
        return link;
    } catch (const zmq::error_t& e) {
        return make_error("network", std::string("cannot connect to the replicas: ") + e.what());
    }
}

bool ZmqLink::send(uint32_t replica, std::string_view frame) {
    try {
        auto sent = sockets_[replica].send(zmq::const_buffer(frame.data(), frame.size()),
                                           zmq::send_flags::dontwait);
        return sent.has_value();
    } catch (const zmq::error_t&) {
        return false;
    }
}

void ZmqLink::receive(Duration max_wait, const std::function<void(uint32_t, std::string_view)>& on_frame,
                      uint64_t& malformed) {
    // A failed wait (ZeroMQ or poll(2) refusing) reads nothing; the Client polls again.
    if (!node::wait_readable(watched_, max_wait)) return;
    for (uint32_t i = 0; i < watched_.size(); ++i) {
        for (int k = 0; k < kDrainPerSocketMax && watched_[i].readable; ++k) {
            zmq::message_t message;
            try {
                if (!sockets_[i].recv(message, zmq::recv_flags::dontwait)) {
                    watched_[i].readable = false;  // empty until the next wait says otherwise
                    break;
                }
            } catch (const zmq::error_t&) {
                break;
            }
            if (message.more()) {
                // One frame per message is the wire: discard the rest of this one.
                ++malformed;
                zmq::message_t rest;
                while (message.more() && sockets_[i].recv(rest, zmq::recv_flags::dontwait) &&
                       rest.more()) {
                }
                continue;
            }
            on_frame(i, message.to_string_view());
        }
    }
}

}  // namespace tally::client
