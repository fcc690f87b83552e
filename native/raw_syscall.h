// open, pread, pwrite and close without glibc's cancellation wrappers.
//
// These four are POSIX cancellation points, so in a multi-threaded process
// (a Node process always is) glibc brackets each call with
// __pthread_enable_asynccancel / __pthread_disable_asynccancel: two atomic
// read-modify-writes of the thread's cancellation state per call, ~1 % of
// the uncontended lock cycle in a profile. Nothing in this process cancels
// threads with pthread_cancel (Node does not; our waiter threads are
// interrupted with a signal, interrupt.h), so the bracketing buys nothing
// here. Only on 64-bit Linux: there a 64-bit offset is one register, where a
// 32-bit ABI splits it into a register pair by rules of its own; elsewhere
// the libc functions are used as they are.
#pragma once

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>
#if defined(__linux__) && defined(__LP64__)
#include <sys/syscall.h>
#define KERNEL_LOCK_RAW_SYSCALLS 1
#endif

namespace kernel_lock {

inline int RawOpen(const char* path, int flags, mode_t mode = 0) {
#if defined(KERNEL_LOCK_RAW_SYSCALLS)
  return static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path, flags, mode));
#else
  return ::open(path, flags, mode);
#endif
}

inline ssize_t RawPread(int fd, void* buffer, size_t size, off_t offset) {
#if defined(KERNEL_LOCK_RAW_SYSCALLS)
  return static_cast<ssize_t>(::syscall(SYS_pread64, fd, buffer, size, offset));
#else
  return ::pread(fd, buffer, size, offset);
#endif
}

inline ssize_t RawPwrite(int fd, const void* data, size_t size, off_t offset) {
#if defined(KERNEL_LOCK_RAW_SYSCALLS)
  return static_cast<ssize_t>(::syscall(SYS_pwrite64, fd, data, size, offset));
#else
  return ::pwrite(fd, data, size, offset);
#endif
}

inline int RawClose(int fd) {
#if defined(KERNEL_LOCK_RAW_SYSCALLS)
  return static_cast<int>(::syscall(SYS_close, fd));
#else
  return ::close(fd);
#endif
}

}  // namespace kernel_lock
