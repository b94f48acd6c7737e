// Transport: the ROUTERs a replica binds and the DEALERs it connects to its peers
// (transport.h).
#include "node/transport.h"

#include <netdb.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <zmq.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>

#include "crypto/hash.h"
#include "node/rejections.h"

namespace tally::node {

namespace {

// Peers never send on our DEALERs; whatever arrives there is kept tiny and never read.
constexpr int kDealerReceiveHwm = 16;
constexpr int64_t kDealerReceiveBytesMax = 1024;

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";  // fixed by RFC 27
constexpr std::string_view kPeersDomain = "peers";
constexpr std::string_view kClientsDomain = "clients";
constexpr const char* kClientsMonitorEndpoint = "inproc://tally.clients.monitor";
constexpr const char* kPeersMonitorEndpoint = "inproc://tally.peers.monitor";
// A handshake that failed other than by the ZAP handler's refusal (counted there): no CURVE
// (plain ZeroMQ), garbage, a CURVE client that expected another server key, a timeout.
constexpr int kHandshakeFailed = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;

// A PAIR that receives `socket`'s monitor events (`events`) from `endpoint`.
zmq::socket_t watch(zmq::context_t& context, zmq::socket_t& socket, const char* endpoint, int events) {
    if (zmq_socket_monitor(socket.handle(), endpoint, events) != 0) throw zmq::error_t();
    zmq::socket_t monitor(context, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(endpoint);
    return monitor;
}

// The numeric address of a connected socket's peer, as libzmq puts it in a ZAP request
// ("127.0.0.1"); empty when the descriptor is no longer connected.
std::string peer_address(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return {};
    char host[NI_MAXHOST];
    if (getnameinfo(reinterpret_cast<sockaddr*>(&address), length, host, sizeof(host), nullptr, 0,
                    NI_NUMERICHOST) != 0)
        return {};
    return host;
}

std::string_view bytes_of(const uint8_t* bytes, size_t size) {
    return {reinterpret_cast<const char*>(bytes), size};
}

zmq::socket_t bind_router(zmq::context_t& context, const std::string& endpoint, int send_hwm,
                          int receive_hwm, size_t message_bytes_max,
                          const crypto::TransportSecret& secret, std::string_view zap_domain) {
    zmq::socket_t router(context, zmq::socket_type::router);
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::router_mandatory, 0);
    router.set(zmq::sockopt::sndhwm, send_hwm);
    router.set(zmq::sockopt::rcvhwm, receive_hwm);
    router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(message_bytes_max));
    router.set(zmq::sockopt::curve_server, 1);
    router.set(zmq::sockopt::curve_secretkey, bytes_of(secret.data(), secret.size()));
    router.set(zmq::sockopt::zap_domain, zap_domain);
    router.bind(endpoint);
    return router;
}

std::string_view view(const zmq::message_t& m) { return m.to_string_view(); }

}  // namespace

Result<std::unique_ptr<Transport>> Transport::open(const api::NetworkConfig& config, bft::ReplicaId self,
                                                   const crypto::KeyPair& key,
                                                   const TransportOptions& options) {
    if (self >= config.n())
        return make_error("network", "replica " + std::to_string(self) + " is not in the config");
    std::vector<crypto::CurveKey> transport_keys;
    for (const auto& replica : config.replicas) {
        auto derived = crypto::transport_public_key(replica.public_key);
        if (!derived)
            return make_error("invalid", "replica " + std::to_string(replica.id) + ": " + derived.error().message);
        transport_keys.push_back(*derived);
    }
    auto own = crypto::transport_public_key(key.public_key());
    if (!own || *own != transport_keys[self])
        return make_error("invalid", "replica " + std::to_string(self) +
                                         ": the key pair is not the one network.json names");
    const crypto::TransportSecret secret(key);

    std::unique_ptr<Transport> t(new Transport());
    t->self_ = self;
    t->endpoint_ = config.replicas[self].endpoint();
    t->client_endpoint_ = config.replicas[self].client_endpoint();
    for (bft::ReplicaId id = 0; id < config.n(); ++id)
        if (id != self) t->peer_keys_.emplace_back(id, transport_keys[id]);
    t->peers_accept_any_ = config.replicas[self].client_port == 0;
    if (t->peers_accept_any_)
        spdlog::warn("replica {} has no client_port in network.json: clients share the replicas' "
                     "socket, so it accepts any CURVE key and the allowlist of replica keys cannot "
                     "apply (give every replica a client_port, as `tally net up` does)",
                     self);
    try {
        // The ZAP handler first: no ROUTER may take a connection before it can be asked.
        t->zap_ = zmq::socket_t(t->context_, zmq::socket_type::rep);
        t->zap_.set(zmq::sockopt::linger, 0);
        t->zap_.bind(kZapEndpoint);
        try {
            t->router_ = bind_router(t->context_, t->endpoint_, options.router_send_hwm,
                                     options.router_receive_hwm, options.max_message_bytes, secret,
                                     kPeersDomain);
        } catch (const zmq::error_t& e) {
            return make_error("bind", "cannot bind " + t->endpoint_ + ": " + e.what());
        }
        if (config.replicas[self].client_port != 0) {
            try {
                t->clients_ = bind_router(t->context_, t->client_endpoint_, options.client_send_hwm,
                                          options.client_receive_hwm,
                                          options.client_message_bytes_max, secret, kClientsDomain);
            } catch (const zmq::error_t& e) {
                return make_error("bind", "cannot bind " + t->client_endpoint_ + " (client port): " +
                                              e.what());
            }
            t->has_clients_ = true;
            // Accepted and closed client connections, for the connections-per-address limit
            // (a connection accepted before the monitor starts is not counted: there is none,
            // the thread that answers ZAP requests has not started yet), and failed handshakes.
            t->monitor_ = watch(t->context_, t->clients_, kClientsMonitorEndpoint,
                                ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | kHandshakeFailed);
            t->connections_per_address_max_ = options.client_connections.connections_per_address_max;
        }
        t->peers_monitor_ = watch(t->context_, t->router_, kPeersMonitorEndpoint, kHandshakeFailed);
        t->watched_[0] = WatchedSocket{&t->router_, t->router_.get(zmq::sockopt::fd)};
        if (t->has_clients_) t->watched_[1] = WatchedSocket{&t->clients_, t->clients_.get(zmq::sockopt::fd)};
        // ZAP requests wait in zap_'s queue until this thread answers them.
        t->zap_thread_ = std::thread([raw = t.get()] { raw->serve_zap(); });
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
            dealer.set(zmq::sockopt::curve_serverkey, bytes_of(transport_keys[id].data(), transport_keys[id].size()));
            dealer.set(zmq::sockopt::curve_publickey, bytes_of(own->data(), own->size()));
            dealer.set(zmq::sockopt::curve_secretkey, bytes_of(secret.data(), secret.size()));
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
    // The ZAP thread's poll fails with ETERM; it closes its sockets and returns.
    context_.shutdown();
    if (zap_thread_.joinable()) zap_thread_.join();
    zap_.close();  // only when the thread never started (it closes its own)
    monitor_.close();
    peers_monitor_.close();
    context_.close();
}

void Transport::serve_zap() {
    LogLimiter refusal_log;
    LogLimiter client_refusal_log;
    std::vector<zmq::message_t> request;
    while (true) {
        request.clear();
        try {
            std::vector<zmq::pollitem_t> items = {{zap_.handle(), 0, ZMQ_POLLIN, 0}};
            if (peers_monitor_) items.push_back({peers_monitor_.handle(), 0, ZMQ_POLLIN, 0});
            if (monitor_) items.push_back({monitor_.handle(), 0, ZMQ_POLLIN, 0});
            zmq::poll(items.data(), items.size(), std::chrono::milliseconds(-1));
            // The monitors first: a connection's "accepted" precedes its ZAP request.
            if (peers_monitor_) drain_monitor(peers_monitor_);
            if (monitor_) drain_monitor(monitor_);
            if (!(items[0].revents & ZMQ_POLLIN)) continue;
            // A multipart message is delivered whole: once its first part is here, all are.
            bool received = true;
            do {
                request.emplace_back();
                received = zap_.recv(request.back(), zmq::recv_flags::dontwait).has_value();
            } while (received && request.back().more());
            if (!received) continue;
        } catch (const zmq::error_t& e) {
            if (e.num() == ETERM) break;
            continue;  // EINTR: a partial request is dropped; libzmq never sends one
        }
        // RFC 27: version, request_id, domain, address, identity, mechanism, credentials...
        std::string status = "400";
        std::string text = "malformed ZAP request";
        std::string request_id;
        std::string user_id;  // a replica's id, for a connection under its transport key
        if (request.size() >= 6) {
            request_id = request[1].to_string();
            const std::string_view version = view(request[0]);
            const std::string_view domain = view(request[2]);
            const std::string_view mechanism = view(request[5]);
            if (version != "1.0") {
                text = "unsupported ZAP version";
            } else if (mechanism != "CURVE" || request.size() != 7 ||
                       request[6].size() != sizeof(crypto::CurveKey)) {
                text = "CURVE only";
            } else if (admit(domain, view(request[3]), view(request[6]), &user_id)) {
                status = "200";
                text = "OK";
            } else if (domain == kClientsDomain) {
                text = "too many connections from this address";
                uint64_t suppressed = 0;
                if (client_refusal_log.allow(&suppressed))
                    spdlog::warn("refused a client connection from {}: {} connections open from that "
                                 "address, at most {} (too_many_connections: {} refused in all) [{} "
                                 "more not logged]",
                                 view(request[3]), client_addresses_.count(view(request[3])),
                                 connections_per_address_max_,
                                 refused_client_connections_.load(std::memory_order_relaxed), suppressed);
            } else {
                text = "not a replica key";
                uint64_t suppressed = 0;
                if (refusal_log.allow(&suppressed)) {
                    crypto::CurveKey k{};
                    std::copy_n(reinterpret_cast<const uint8_t*>(request[6].data()), k.size(), k.begin());
                    spdlog::warn("refused a connection to the replicas' port from {}: CURVE key {} is "
                                 "not the transport key of another replica in network.json ({} "
                                 "refused in all) [{} more not logged]",
                                 view(request[3]), crypto::to_hex(k),
                                 refused_connections_.load(std::memory_order_relaxed), suppressed);
                }
            }
        }
        zap_requests_.fetch_add(1, std::memory_order_relaxed);
        try {
            zap_.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
            zap_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
            zap_.send(zmq::buffer(status), zmq::send_flags::sndmore);
            zap_.send(zmq::buffer(text), zmq::send_flags::sndmore);
            zap_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
            zap_.send(zmq::str_buffer(""), zmq::send_flags::none);     // metadata
        } catch (const zmq::error_t& e) {
            if (e.num() == ETERM) break;
        }
    }
    zap_.close();
    monitor_.close();
    peers_monitor_.close();
}

void Transport::drain_monitor(zmq::socket_t& monitor) {
    while (true) {
        zmq::message_t event;
        zmq::message_t endpoint;
        if (!monitor.recv(event, zmq::recv_flags::dontwait)) return;
        if (event.more()) (void)monitor.recv(endpoint, zmq::recv_flags::dontwait);
        // libzmq's monitor event: a 16-bit event number and a 32-bit value (the descriptor).
        if (event.size() != 6) continue;
        uint16_t number = 0;
        int32_t fd = 0;
        std::memcpy(&number, event.data(), sizeof(number));
        std::memcpy(&fd, static_cast<const char*>(event.data()) + sizeof(number), sizeof(fd));
        if (number == ZMQ_EVENT_ACCEPTED)
            client_addresses_.opened(fd, peer_address(fd));
        else if (number == ZMQ_EVENT_DISCONNECTED)
            client_addresses_.closed(fd);
        else if (number & kHandshakeFailed)
            failed_handshakes_.fetch_add(1, std::memory_order_relaxed);
    }
}

bool Transport::admit(std::string_view domain, std::string_view address, std::string_view key,
                      std::string* user_id) {
    if (domain == kClientsDomain) {
        // The count includes the connection asking (its "accepted" was drained first).
        if (client_addresses_.count(address) <= connections_per_address_max_) return true;
        refused_client_connections_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    if (domain != kPeersDomain) return false;
    for (const auto& [id, k] : peer_keys_)
        if (key.size() == k.size() && sodium_memcmp(key.data(), k.data(), k.size()) == 0) {
            *user_id = std::to_string(id);  // what receive() reads back off its messages
            return true;
        }
    if (peers_accept_any_) return true;
    refused_connections_.fetch_add(1, std::memory_order_relaxed);
    return false;
}

Transport::Received Transport::receive(std::string& routing_id, zmq::message_t& frame, bool clients_too) {
    const auto from_peers = [&] { return receive_from(watched_[0], kPeerPortTag, routing_id, frame); };
    const auto from_clients = [&] { return receive_from(watched_[1], kClientPortTag, routing_id, frame); };
    if (!has_clients_ || !clients_too) return from_peers();
    clients_first_ = !clients_first_;
    const Received received = clients_first_ ? from_clients() : from_peers();
    if (received != Received::kNone) return received;
    return clients_first_ ? from_peers() : from_clients();
}

// The replica whose transport key the connection a message came on was admitted under: the
// ZAP handler (admit) gave it as the connection's user id, which libzmq puts on every message.
std::optional<bft::ReplicaId> Transport::authenticated_replica(zmq::message_t& frame) {
    const char* user_id = nullptr;
    try {
        user_id = frame.gets("User-Id");
    } catch (const zmq::error_t&) {
        return std::nullopt;  // no ZAP user id: not a replica's connection
    }
    bft::ReplicaId id = 0;
    const std::string_view text = user_id ? user_id : "";
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || id == self_) return std::nullopt;
    return id;
}

Transport::Received Transport::receive_from(WatchedSocket& watched, char tag, std::string& routing_id,
                                            zmq::message_t& frame) {
    if (!watched.readable) return Received::kNone;
    zmq::socket_t& socket = *watched.socket;
    zmq::message_t id;
    try {
        if (!socket.recv(id, zmq::recv_flags::dontwait)) {
            watched.readable = false;
            return Received::kNone;
        }
        const std::string_view connection(static_cast<const char*>(id.data()), id.size());
        routing_id.assign(1, tag);
        routing_id.append(connection);
        // A ROUTER always delivers the routing id with more parts to follow.
        if (!id.more()) return Received::kBadFraming;
        (void)socket.recv(frame, zmq::recv_flags::dontwait);
        if (tag == kPeerPortTag)
            if (auto replica = authenticated_replica(frame)) routing_id = replica_routing_id(*replica, connection);
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

Status Transport::wait(std::chrono::milliseconds wait, bool clients_too, int wake_fd) {
    const bool clients = has_clients_ && clients_too;
    if (!clients) watched_[1].readable = false;
    return wait_readable(std::span(watched_.data(), clients ? 2 : 1), wait, wake_fd);
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
    routing_id = socket_routing_id(routing_id);
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
