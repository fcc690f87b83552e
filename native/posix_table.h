// The process-wide table of inodes kind 'posix' locks are taken on.
//
// Classic POSIX record locks (F_SETLK) belong to the process, not to a
// descriptor or a thread, and closing ANY descriptor of a file drops ALL of
// the process's locks on it (SQLite's os_unix.c calls this "a design
// error"). So, for the whole process (every worker_thread shares it):
//  - one descriptor per inode carries every posix lock on that inode;
//  - acquisitions of the process take turns per inode (a second one waits,
//    instead of silently "succeeding" on a lock the process already owns);
//  - no descriptor of an inode with a turn taken is closed until the turn
//    ends: the close is deferred (after dropping the descriptor's own flock
//    or OFD lock, which the close would have dropped).
// The table lives in native memory because JavaScript state is per
// environment, and the kernel's is per process.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "interrupt.h"
#include "lock_ops.h"

namespace kernel_lock {

// Identifies one JavaScript environment (the main thread or a worker).
using EnvId = uint64_t;

// A request for the turn on an inode, queued while someone else has it.
class TurnTicket {
 public:
  explicit TurnTicket(EnvId env) : env_(env) {}
  TurnTicket(const TurnTicket&) = delete;
  TurnTicket& operator=(const TurnTicket&) = delete;
  EnvId env() const { return env_; }

 protected:
  ~TurnTicket() = default;

 private:
  friend class PosixTable;
  // Called with the table mutex held when the turn passes to this ticket.
  // Returns false when the ticket can no longer take it (its environment is
  // closing); the turn then passes on.
  virtual bool OnGranted() = 0;

  const EnvId env_;
};

class PosixTable {
 public:
  // The one table of the process. Never destroyed: worker threads may still
  // use it while static destructors run at exit.
  static PosixTable& Get();

  // Joins the entry for the inode `path` names, creating it (and opening the
  // file) when the process has none: an inode already in the table costs no
  // descriptor. Returns the entry's descriptor, or -1 with result->err set.
  // result->read_only / write_err describe the entry's descriptor.
  int Join(const char* path, OpenResult* result, struct stat* st);
  // Leaves an entry joined before; the last user closes its descriptors.
  void Leave(int fd);

  // Takes the turn if it is free (true); otherwise queues `ticket` when one
  // is given (false).
  bool TakeTurn(int fd, EnvId env, TurnTicket* ticket);
  // Blocks the calling thread for the turn, up to timeout_ms (Infinity
  // waits forever). 0 when taken, -1 on timeout, EDEADLK when `env` already
  // has the turn or a ticket queued (its thread is the one that must pass
  // it on), EBADF for an unknown entry.
  int AwaitTurn(int fd, EnvId env, double timeout_ms);
  // Removes a queued ticket; false when the turn was already passed to it.
  bool Withdraw(int fd, TurnTicket* ticket);
  // Ends the caller's turn: the next queued ticket gets it.
  void PassTurn(int fd);

  // One non-blocking F_SETLK by the turn holder. Returns 0, EWOULDBLOCK or
  // an errno; while a granted lock is not yet owned by a handle it counts as
  // "unsettled" (see AwaitSettle).
  int TryLock(int fd, const LockRequest& req);
  // A blocking F_SETLKW by the turn holder, interruptible through `ctx`
  // (nullptr: uninterruptible, for lockSync without a timeout). EDEADLK
  // caused by a lock this process was granted but has not settled yet (a
  // waiter woken on a file its releaser unlinked, about to let go and retry)
  // is not a deadlock: the wait retries once that lock settles. Returns 0,
  // kCancelled or an errno.
  int BlockingLock(Interruptible* ctx, int fd, const LockRequest& req, EnvId env, bool may_wait_own);
  // Marks the lock on `fd` settled (owned by a handle, or dropped).
  void Settle(int fd);
  // Wakes waits parked in BlockingLock so they notice a cancellation.
  void Wake();

  // Unlocks the request's range and ends the turn.
  void UnlockAndPassTurn(int fd, const LockRequest& req);
  // A handle's release: with kUnlink, the last user of the inode unlinks the
  // file while still holding it (only if the path still names it and its
  // content is ours). The last user then closes every descriptor of the
  // inode; any other unlocks its range and passes the turn. Returns 1
  // unlinked, 0 kept, 2 kept because the file holds foreign content,
  // -errno when unlink failed.
  int Release(int fd, const char* path, uint32_t flags, const LockRequest& req);

  // The entry descriptor for an inode, or -1.
  int DescriptorFor(dev_t dev, ino_t ino);
  // Closes a descriptor that is not an entry's: at once, or, while the
  // process may hold posix locks on its inode, at the end of the turn.
  void Close(int fd);

 private:
  struct Entry {
    dev_t dev = 0;
    ino_t ino = 0;
    int fd = -1;
    bool read_only = false;
    int write_err = 0;
    std::vector<int> deferred;  // descriptors whose close waits for the turn to end
    int users = 0;              // joined: holders, acquirers, queued tickets
    bool taken = false;         // someone has the turn
    EnvId turn_env = 0;
    bool unsettled = false;  // the turn holder may hold a lock no handle owns yet
    std::deque<TurnTicket*> queue;
  };

  PosixTable() = default;
  Entry* FindLocked(int fd);
  void PassTurnLocked(Entry* entry);
  void SetUnsettledLocked(Entry* entry, bool unsettled);
  void DestroyLocked(Entry* entry);
  bool AwaitSettle(EnvId env, bool may_wait_own, const std::atomic<bool>* cancelled);

  std::mutex mutex_;
  std::condition_variable settled_;
  std::map<std::pair<dev_t, ino_t>, Entry*> by_inode_;
  std::unordered_map<int, Entry*> by_fd_;
  int unsettled_ = 0;
  uint64_t settle_generation_ = 0;
};

}  // namespace kernel_lock
