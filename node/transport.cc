// Transport: the ROUTERs a replica binds and the DEALERs it connects to its peers
// (transport.h).
#include "node/transport.h"

namespace tally::node {

namespace {

// Peers never send on our DEALERs; whatever arrives there is kept tiny and never read.
constexpr int kDealerReceiveHwm = 16;
constexpr int64_t kDealerReceiveBytesMax = 1024;

zmq::socket_t bind_router(zmq::context_t& context, const std::string& endpoint, int send_hwm,
                          int receive_hwm, size_t message_bytes_max) {
    zmq::socket_t router(context, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::router_mandatory, 0);
    router.set(zmq::sockopt::sndhwm, send_hwm);
    router.set(zmq::sockopt::rcvhwm, receive_hwm);
    router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(message_bytes_max));
    router.bind(endpoint);
    return router;
}

}  // namespace

Result<std::unique_ptr<Transport>> Transport::open(const api::NetworkConfig& config, bft::ReplicaId self,
                                                   const TransportOptions& options) {
    if (self >= config.n())
        return make_error("network", "replica " + std::to_string(self) + " is not in the config");
    std::unique_ptr<Transport> t(new Transport());
    t->self_ = self;
    t->endpoint_ = config.replicas[self].endpoint();
    t->client_endpoint_ = config.replicas[self].client_endpoint();
    try {
        try {
            t->router_ = bind_router(t->context_, t->endpoint_, options.router_send_hwm,
                                     options.router_receive_hwm, options.max_message_bytes);
        } catch (const zmq::error_t& e) {
            return make_error("bind", "cannot bind " + t->endpoint_ + ": " + e.what());
        }
        if (config.replicas[self].client_port != 0) {
            try {
                t->clients_ = bind_router(t->context_, t->client_endpoint_, options.client_send_hwm,
                                          options.client_receive_hwm,
                                          options.client_message_bytes_max);
            } catch (const zmq::error_t& e) {
                return make_error("bind", "cannot bind " + t->client_endpoint_ + " (client port): " +
                                              e.what());
            }
            t->has_clients_ = true;
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
    if (has_clients_) clients_.close();
    context_.close();
}

Transport::Received Transport::receive(std::string& routing_id, zmq::message_t& frame) {
    if (!has_clients_) return receive_from(router_, kPeerPortTag, routing_id, frame);
    clients_first_ = !clients_first_;
    zmq::socket_t& first = clients_first_ ? clients_ : router_;
    zmq::socket_t& second = clients_first_ ? router_ : clients_;
    const char first_tag = clients_first_ ? kClientPortTag : kPeerPortTag;
    const char second_tag = clients_first_ ? kPeerPortTag : kClientPortTag;
    const Received received = receive_from(first, first_tag, routing_id, frame);
    if (received != Received::kNone) return received;
    return receive_from(second, second_tag, routing_id, frame);
}

Transport::Received Transport::receive_from(zmq::socket_t& socket, char tag,
                                            std::string& routing_id, zmq::message_t& frame) {
    zmq::message_t id;
    try {
        if (!socket.recv(id, zmq::recv_flags::dontwait)) return Received::kNone;
        routing_id.assign(1, tag);
        routing_id.append(static_cast<const char*>(id.data()), id.size());
        // A ROUTER always delivers the routing id with more parts to follow.
        if (!id.more()) return Received::kBadFraming;
        (void)socket.recv(frame, zmq::recv_flags::dontwait);
        if (!frame.more()) return Received::kFrame;
        // More than one frame: read and drop the rest of the message.
        zmq::message_t rest;
        do {
            (void)socket.recv(rest, zmq::recv_flags::dontwait);
        } while (rest.more());
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
    if (routing_id.empty() || (on_client_port(routing_id) && !has_clients_)) {
        ++dropped_sends_;
        return false;
    }
    zmq::socket_t& socket = on_client_port(routing_id) ? clients_ : router_;
    routing_id.remove_prefix(1);
    try {
        auto first = socket.send(zmq::const_buffer(routing_id.data(), routing_id.size()),
                                 zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        if (first) {
            auto second = socket.send(zmq::const_buffer(envelope.data(), envelope.size()),
                                      zmq::send_flags::dontwait);
            if (second) return true;
        }
    } catch (const zmq::error_t&) {
    }
    ++dropped_sends_;
    return false;
}

}  // namespace tally::node
