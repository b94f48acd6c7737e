// Waiting on ZeroMQ sockets without zmq_poll. See socket_wait.h.
#include "node/socket_wait.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace tally::node {

Status wait_readable(std::span<WatchedSocket> sockets, std::chrono::milliseconds wait, int extra_fd) {
    bool any = false;
    try {
        for (auto& s : sockets) {
            s.readable = (s.socket->get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
            any = any || s.readable;
        }
    } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) return make_error("network", std::string("reading socket events: ") + e.what());
        // Interrupted (a signal: the caller's loop checks for a stop): let the reader look.
        for (auto& s : sockets) s.readable = true;
        return Ok{};
    }
    if (any) return Ok{};
    // A handful of sockets (the replica's two ROUTERs, the client's one DEALER per replica):
    // on the stack, without an allocation per wait, unless there are many.
    constexpr size_t kOnStack = 16;
    const size_t count = sockets.size() + (extra_fd >= 0 ? 1 : 0);
    pollfd on_stack[kOnStack];
    std::vector<pollfd> on_heap(count > kOnStack ? count : 0);
    pollfd* fds = count > kOnStack ? on_heap.data() : on_stack;
    for (size_t i = 0; i < sockets.size(); ++i) fds[i] = pollfd{sockets[i].fd, POLLIN, 0};
    if (extra_fd >= 0) fds[sockets.size()] = pollfd{extra_fd, POLLIN, 0};
    const int timeout = wait.count() < 0 ? -1 : static_cast<int>(std::min<int64_t>(wait.count(), INT32_MAX));
    const int rc = ::poll(fds, count, timeout);
    if (rc < 0 && errno != EINTR) return make_error("network", std::string("poll: ") + std::strerror(errno));
    for (size_t i = 0; i < sockets.size(); ++i) sockets[i].readable = rc > 0 && (fds[i].revents & POLLIN) != 0;
    return Ok{};
}

}  // namespace tally::node
