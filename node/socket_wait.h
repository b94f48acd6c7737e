// Waiting on ZeroMQ sockets without zmq_poll: for the replica's transport (node/transport.h)
// and the client's link (client/zmq_link.h) alike. Its own small library (tally_socket_wait),
// so that the client shares it without linking the replica.
//
// Why not zmq_poll: a blocking zmq_poll asks each socket for its events twice and calls poll(2)
// twice, and each question costs ZeroMQ a getpid and a poll of its mailbox. Here each socket
// is asked once (ZMQ_EVENTS, which takes in its pending commands); only when none holds a
// message does poll(2) wait on their ZMQ_FDs. ZMQ_FD is edge-triggered — it signals that a
// socket's state may have changed, and any operation on the socket may consume the signal — so
// nothing may touch the sockets between the question and poll(2): whatever arrives after the
// question signals its fd.
//
// Threads: the sockets' owner's.
#pragma once

#include <chrono>
#include <span>

#include <zmq.hpp>

#include "crypto/result.h"

namespace tally::node {

// A socket waited on: its ZMQ_FD (read once, when the socket is opened) and whether it may
// hold a message. wait_readable() sets `readable`; the reader clears it when a read finds the
// socket empty, and reads nothing from a socket that is not readable.
struct WatchedSocket {
    zmq::socket_t* socket = nullptr;
    int fd = -1;
    bool readable = true;
};

// Marks readable each of `sockets` that holds a message, and returns at once if one does.
// Otherwise waits until a socket's ZMQ_FD signals (marking it readable: it may hold one, a
// read finds out), `extra_fd` (when >= 0) is readable, or `wait` has passed (negative: no
// limit). A question interrupted by a signal (EINTR) marks every socket readable; an
// interrupted wait, none. Error "network" when ZeroMQ or poll(2) fails otherwise.
Status wait_readable(std::span<WatchedSocket> sockets, std::chrono::milliseconds wait, int extra_fd = -1);

}  // namespace tally::node
