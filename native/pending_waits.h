// The lock paths this process is waiting to lock, process-wide (every
// worker_thread shares it). A release with removeOnRelease asks it before
// unlinking: when another acquisition of this very process waits for the
// same path, the releaser is not the last holder, and unlinking would send
// that waiter through a wake-up on an orphaned inode and a reopen, and the
// ones queued behind it with it (the kernel's FIFO order at risk, work per
// hand-off). The last of them unlinks instead.
//
// Keyed by the path as the acquisition spelled it (absolute and normalised
// by src/lock/options.ts), not by inode: a waiter that is moving from an
// orphaned inode to the file the path names now is between inodes, and
// must still count. Two spellings of one file (a hard link, a symlinked
// directory) are two keys: the waiter then takes the slow, correct way.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>

namespace kernel_lock {

class PendingWaits {
 public:
  // The one registry of the process. Never destroyed (worker threads may
  // use it while static destructors run).
  static PendingWaits& Get();

  void Add(const std::string& path);
  void Remove(const std::string& path);
  // True while at least one wait of this process is pending on the path.
  bool Any(const char* path);
  // Paths with a pending wait (tests check that it returns to zero).
  size_t Size();

 private:
  PendingWaits() = default;

  std::mutex mutex_;
  // Exact erase (no tombstones); only paths with a wait pending.
  std::map<std::string, size_t, std::less<>> counts_;
};

// Registers a wait on a path for as long as it lives (or until Clear()).
class PendingWait {
 public:
  PendingWait() = default;
  PendingWait(const PendingWait&) = delete;
  PendingWait& operator=(const PendingWait&) = delete;
  ~PendingWait() { Clear(); }

  void Set(const std::string& path);
  void Clear();

 private:
  bool registered_ = false;
  std::string path_;
};

}  // namespace kernel_lock
