// getpid(), answered from memory, for the programs that run ZeroMQ: tallyd and tally.
//
// Why: libzmq asks getpid() around every operation on a socket's mailbox, to notice that it
// runs in a forked child (signaler.cpp), and glibc (since 2.25) makes every call a system call.
// A PBFT backup with one client made 48 of them per transfer, a quarter of all its system
// calls, and on this project's VM a system call costs its hypervisor's interrupt path each time.
// Measured (README, Performance: "getpid() from memory"), tallyd with and without it
// alternated in one sitting, 5 rounds of 5 s each: PBFT one client p50 3.21 -> 3.07 ms and
// replica CPU per transfer 5.29 -> 5.06 ms; Raft one client 1.07 -> 1.01 ms, and 1.25 ->
// 1.19 ms of replica CPU; ahead in 5 of 5 rounds each. At 64 clients, where a message carries
// a batch, within the noise.
//
// Linked into those executables only (an object library, node/CMakeLists.txt; and test_node,
// which tests it): this definition interposes on libc's for every library the program loads,
// libzmq, SQLite and OpenSSL's libcrypto (its own fork check) included.
//
// Correct because a process's id changes only in a new process: after fork(), whose child
// handler (pthread_atfork) asks the kernel again before the child's own code runs, and after
// exec(), which starts the program (and this cache) afresh. A child made by vfork() or clone()
// without fork's handlers would see its parent's id until it execs; neither program makes one
// (`tally net up` forks, then execs tallyd). The first call, which may come from a library's
// constructor before this file's, asks the kernel.
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>

namespace {

std::atomic<pid_t> cached_pid{0};

pid_t ask_kernel() {
    const auto pid = static_cast<pid_t>(::syscall(SYS_getpid));
    cached_pid.store(pid, std::memory_order_relaxed);
    return pid;
}

// Asks once at load, too: a vfork() child that called getpid() first would otherwise store its
// own id in the memory it shares with its parent.
[[gnu::constructor]] void register_fork_handler() {
    ask_kernel();
    ::pthread_atfork(nullptr, nullptr, [] { ask_kernel(); });
}

}  // namespace

extern "C" pid_t getpid() noexcept {
    const pid_t pid = cached_pid.load(std::memory_order_relaxed);
    return pid != 0 ? pid : ask_kernel();
}
