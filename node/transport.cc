// Transport: the ROUTER a replica binds and the DEALERs it connects to its peers
// (transport.h).
#include "node/transport.h"

namespace tally::node {

namespace {

// Peers never send on our DEALERs; whatever arrives there is kept tiny and never read.
constexpr int kDealerReceiveHwm = 16;
constexpr int64_t kDealerReceiveBytesMax = 1024;

}  // namespace

Result<std::unique_ptr<Transport>> Transport::open(const NetworkConfig& config, bft::ReplicaId self,
                                                   const TransportOptions& options) {
    if (self >= config.n())
        return make_error("network", "replica " + std::to_string(self) + " is not in the config");
    std::unique_ptr<Transport> t(new Transport());
    t->self_ = self;
    t->endpoint_ = config.replicas[self].endpoint();
    try {
        t->router_ = zmq::socket_t(t->context_, zmq::socket_type::router);
        t->router_.set(zmq::sockopt::linger, 0);
        t->router_.set(zmq::sockopt::router_mandatory, 0);
        t->router_.set(zmq::sockopt::sndhwm, options.router_send_hwm);
        t->router_.set(zmq::sockopt::rcvhwm, options.router_receive_hwm);
        t->router_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_message_bytes));
        try {
            t->router_.bind(t->endpoint_);
        } catch (const zmq::error_t& e) {
            return make_error("bind", "cannot bind " + t->endpoint_ + ": " + e.what());
        }
        t->peers_.resize(config.n());
        for (bft::ReplicaId id = 0; id < config.n(); ++id) {
            if (id == self) continue;
            zmq::socket_t dealer(t->context_, zmq::socket_type::dealer);
            dealer.set(zmq::sockopt::linger, 0);
            dealer.set(zmq::sockopt::sndhwm, options.peer_send_hwm);
            dealer.set(zmq::sockopt::rcvhwm, kDealerReceiveHwm);
            dealer.set(zmq::sockopt::maxmsgsize, kDealerReceiveBytesMax);
            // Queue only to a connected peer: messages for a replica that is down are dropped
            // (the engine retransmits), not saved up to flood it when it comes back.
            dealer.set(zmq::sockopt::immediate, 1);
            dealer.connect(config.replicas[id].endpoint());
            t->peers_[id] = std::move(dealer);
        }
    } catch (const zmq::error_t& e) {
        return make_error("network", t->endpoint_ + ": " + e.what());
    }
    return t;
}

Transport::~Transport() {
    // linger 0 on every socket: closing drops what is queued, never waits.
    for (auto& s : peers_) s.close();
    router_.close();
    context_.close();
}

Transport::Received Transport::receive(std::string& routing_id, zmq::message_t& frame) {
    zmq::message_t id;
    try {
        if (!router_.recv(id, zmq::recv_flags::dontwait)) return Received::kNone;
        // A ROUTER always delivers the routing id with more parts to follow.
        if (!id.more()) return Received::kBadFraming;
        (void)router_.recv(frame, zmq::recv_flags::dontwait);
        if (!frame.more()) {
            routing_id.assign(static_cast<const char*>(id.data()), id.size());
            return Received::kFrame;
        }
        // More than one frame: read and drop the rest of the message.
        zmq::message_t rest;
        do {
            (void)router_.recv(rest, zmq::recv_flags::dontwait);
        } while (rest.more());
        routing_id.assign(static_cast<const char*>(id.data()), id.size());
        return Received::kBadFraming;
    } catch (const zmq::error_t&) {
        return Received::kNone;  // EINTR and the like: try again on the next poll
    }
}

bool Transport::send_to_replica(bft::ReplicaId to, std::string_view envelope) {
    if (to >= peers_.size() || to == self_) {
        ++dropped_sends_;
        return false;
    }
    try {
        auto sent = peers_[to].send(zmq::const_buffer(envelope.data(), envelope.size()),
                                    zmq::send_flags::dontwait);
        if (sent) return true;
    } catch (const zmq::error_t&) {
    }
    ++dropped_sends_;
    return false;
}

bool Transport::send_to_client(std::string_view routing_id, std::string_view envelope) {
    try {
        auto first = router_.send(zmq::const_buffer(routing_id.data(), routing_id.size()),
                                  zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        if (first) {
            auto second = router_.send(zmq::const_buffer(envelope.data(), envelope.size()),
                                       zmq::send_flags::dontwait);
            if (second) return true;
        }
    } catch (const zmq::error_t&) {
    }
    ++dropped_sends_;
    return false;
}

}  // namespace tally::node
