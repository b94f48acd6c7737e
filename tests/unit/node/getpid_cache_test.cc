// node/getpid_cache.cc: getpid() answered from memory, linked into this program as into tallyd
// and tally.
#include <dlfcn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace {

pid_t kernel_pid() { return static_cast<pid_t>(::syscall(SYS_getpid)); }

TEST(GetpidCache, AnswersThisProcesssId) {
    EXPECT_EQ(::getpid(), kernel_pid());
    EXPECT_EQ(::getpid(), ::getpid());
}

// The libraries the program loads (libzmq, SQLite) find this definition, not libc's: what the
// cache is for. A link that stopped exporting it would leave them making the system call.
TEST(GetpidCache, IsTheDefinitionTheLoadedLibrariesFind) {
    void* found = ::dlsym(RTLD_DEFAULT, "getpid");
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found, reinterpret_cast<void*>(&::getpid));
    void* libc = ::dlsym(RTLD_NEXT, "getpid");
    ASSERT_NE(libc, nullptr) << "libc's getpid, behind this one";
    EXPECT_NE(found, libc);
}

// A forked child answers its own id (fork's child handler asks the kernel again), not the
// parent's cached one; libzmq relies on it to notice that it runs in a child.
TEST(GetpidCache, AForkedChildAnswersItsOwnId) {
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const bool own = ::getpid() == kernel_pid() && ::getpid() != parent;
        ::_exit(own ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the child answered its parent's id";
    EXPECT_EQ(::getpid(), parent);
}

}  // namespace
