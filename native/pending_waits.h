// The inodes this process is waiting to lock, process-wide (every
// worker_thread shares it). A release with removeOnRelease asks it before
// unlinking: when another acquisition of this very process waits for the
// same inode, the releaser is not the last holder, and unlinking would send
// every such waiter through a wake-up on an orphaned inode, a reopen and a
// new wait at the back of the queue (O(waiters) work per hand-off, and the
// kernel's FIFO order lost). The last of them unlinks instead.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <utility>

namespace kernel_lock {

class PendingWaits {
 public:
  // The one registry of the process. Never destroyed (worker threads may
  // use it while static destructors run).
  static PendingWaits& Get();

  void Add(dev_t dev, ino_t ino);
  void Remove(dev_t dev, ino_t ino);
  // True while at least one wait of this process is pending on the inode.
  bool Any(dev_t dev, ino_t ino);
  // Inodes with a pending wait (tests check that it returns to zero).
  size_t Size();

 private:
  PendingWaits() = default;

  std::mutex mutex_;
  // Exact erase (no tombstones); only inodes with a wait pending, a handful in practice.
  std::map<std::pair<dev_t, ino_t>, size_t> counts_;
};

// Registers a wait on the inode of `fd` for as long as it lives; Move()
// follows the wait to another descriptor (the file was replaced). Safe to
// construct with an fd that cannot be fstat()ed: it then registers nothing.
class PendingWait {
 public:
  PendingWait() = default;
  explicit PendingWait(int fd) { Move(fd); }
  PendingWait(const PendingWait&) = delete;
  PendingWait& operator=(const PendingWait&) = delete;
  ~PendingWait() { Clear(); }

  void Move(int fd);
  void Clear();

 private:
  bool registered_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace kernel_lock
