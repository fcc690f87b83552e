// RAII owner of one file descriptor. Every descriptor the addon opens lives in
// one of these until it is deliberately handed to JavaScript with release(),
// so an early return on any error path closes it.
#pragma once

#include <unistd.h>

namespace kernel_lock {

// Closes a descriptor without dropping a posix lock this process holds on
// its inode (posix_table.cc): every descriptor the addon closes goes here.
void CloseDescriptor(int fd);

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Gives up ownership without closing.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Closing a descriptor releases every flock/OFD lock on its open file
  // description; EINTR from close() on Linux still closes, so never retry.
  void reset(int fd = -1) {
    if (fd_ >= 0) CloseDescriptor(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace kernel_lock
