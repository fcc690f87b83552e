#include "posix_table.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>

#include "raw_syscall.h"
#include "record_content.h"
#include "unique_fd.h"

namespace kernel_lock {

namespace {

// A thread blocked in AwaitTurn (lockSync): woken through a condition
// variable on the table mutex.
class SyncTicket final : public TurnTicket {
 public:
  using TurnTicket::TurnTicket;
  bool granted = false;
  std::condition_variable cv;

 private:
  bool OnGranted() override {
    granted = true;
    cv.notify_all();
    return true;
  }
};

// Drops the flock and OFD locks a descriptor holds, which closing it would
// have done: needed when its close is deferred. Both are no-ops when the
// descriptor holds nothing.
void DropOwnLocks(int fd) {
  ::flock(fd, LOCK_UN);
#if defined(F_OFD_SETLK)
  struct flock fl {};
  fl.l_type = F_UNLCK;
  fl.l_whence = SEEK_SET;
  ::fcntl(fd, F_OFD_SETLK, &fl);
#endif
}

}  // namespace

void CloseDescriptor(int fd) {
  PosixTable::Get().Close(fd);
}

PosixTable& PosixTable::Get() {
  // Deliberately leaked: a worker thread may still release a lock while the
  // main thread runs static destructors at exit.
  static PosixTable* table = new PosixTable();
  return *table;
}

PosixTable::Entry* PosixTable::FindLocked(int fd) {
  auto found = by_fd_.find(fd);
  return found == by_fd_.end() ? nullptr : found->second;
}

int PosixTable::Join(const char* path, OpenResult* result, struct stat* st) {
  // An inode the process already has an entry for is joined without
  // opening it again: each open would be one more descriptor whose close
  // must be deferred. The caller verifies after locking that the path still
  // names the entry's inode, as for a fresh open.
  struct stat by_path;
  if (::lstat(path, &by_path) == 0 && S_ISREG(by_path.st_mode)) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = by_inode_.find({by_path.st_dev, by_path.st_ino});
    if (found != by_inode_.end()) {
      Entry* entry = found->second;
      ++entry->users;
      result->read_only = entry->read_only;
      result->write_err = entry->write_err;
      *st = by_path;
      return entry->fd;
    }
  }
  UniqueFd opened = OpenLockFile(path, result);
  if (!opened.valid()) return -1;
  *st = result->st;
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_inode_.find({result->st.st_dev, result->st.st_ino});
  if (found != by_inode_.end()) {
    // Another thread created the entry in the meantime.
    Entry* entry = found->second;
    int extra = opened.release();
    if (entry->taken) {
      entry->deferred.push_back(extra);
    } else {
      ::close(extra);
    }
    ++entry->users;
    result->read_only = entry->read_only;
    result->write_err = entry->write_err;
    return entry->fd;
  }
  auto* entry = new Entry();
  entry->dev = result->st.st_dev;
  entry->ino = result->st.st_ino;
  entry->fd = opened.release();
  entry->read_only = result->read_only;
  entry->write_err = result->write_err;
  entry->users = 1;
  by_inode_[{entry->dev, entry->ino}] = entry;
  by_fd_[entry->fd] = entry;
  return entry->fd;
}

void PosixTable::DestroyLocked(Entry* entry) {
  // Closed under the mutex: a new entry for the same inode (and a lock
  // taken through it) cannot appear until these closes are done.
  for (int fd : entry->deferred) ::close(fd);
  ::close(entry->fd);
  by_inode_.erase({entry->dev, entry->ino});
  by_fd_.erase(entry->fd);
  SetUnsettledLocked(entry, false);
  delete entry;
}

void PosixTable::Leave(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* entry = FindLocked(fd);
  if (entry == nullptr) return;
  if (--entry->users > 0) return;
  DestroyLocked(entry);
}

void PosixTable::SetUnsettledLocked(Entry* entry, bool unsettled) {
  if (entry->unsettled == unsettled) return;
  entry->unsettled = unsettled;
  if (unsettled) {
    ++unsettled_;
  } else {
    --unsettled_;
    ++settle_generation_;
    settled_.notify_all();
  }
}

bool PosixTable::TakeTurn(int fd, EnvId env, TurnTicket* ticket) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* entry = FindLocked(fd);
  if (entry == nullptr) return false;
  if (!entry->taken) {
    entry->taken = true;
    entry->turn_env = env;
    return true;
  }
  if (ticket != nullptr) entry->queue.push_back(ticket);
  return false;
}

int PosixTable::AwaitTurn(int fd, EnvId env, double timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  Entry* entry = FindLocked(fd);
  if (entry == nullptr) return EBADF;
  if (!entry->taken) {
    entry->taken = true;
    entry->turn_env = env;
    return 0;
  }
  // This thread blocking for a turn its own environment must pass on
  // would never wake.
  if (entry->turn_env == env) return EDEADLK;
  for (TurnTicket* queued : entry->queue) {
    if (queued->env() == env) return EDEADLK;
  }
  SyncTicket ticket(env);
  entry->queue.push_back(&ticket);
  if (std::isfinite(timeout_ms)) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::microseconds(static_cast<int64_t>(std::max(0.0, timeout_ms) * 1000.0));
    ticket.cv.wait_until(lock, deadline, [&] { return ticket.granted; });
  } else {
    ticket.cv.wait(lock, [&] { return ticket.granted; });
  }
  if (ticket.granted) return 0;
  entry->queue.erase(std::find(entry->queue.begin(), entry->queue.end(), &ticket));
  return -1;
}

bool PosixTable::Withdraw(int fd, TurnTicket* ticket) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* entry = FindLocked(fd);
  if (entry == nullptr) return false;
  auto found = std::find(entry->queue.begin(), entry->queue.end(), ticket);
  if (found == entry->queue.end()) return false;
  entry->queue.erase(found);
  return true;
}

void PosixTable::PassTurnLocked(Entry* entry) {
  SetUnsettledLocked(entry, false);
  entry->taken = false;
  entry->turn_env = 0;
  // Between two turns the process holds no posix lock on the inode (the
  // caller has just unlocked): the deferred closes are harmless now.
  for (int deferred : entry->deferred) ::close(deferred);
  entry->deferred.clear();
  while (!entry->queue.empty()) {
    TurnTicket* next = entry->queue.front();
    entry->queue.pop_front();
    entry->taken = true;
    entry->turn_env = next->env();
    if (next->OnGranted()) return;
    entry->taken = false;
    entry->turn_env = 0;
  }
}

void PosixTable::PassTurn(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* entry = FindLocked(fd);
  if (entry != nullptr && entry->taken) PassTurnLocked(entry);
}

int PosixTable::TryLock(int fd, const LockRequest& req) {
  {
    // Marked before the attempt, so no sibling's EDEADLK can see the grant
    // before it is counted.
    std::lock_guard<std::mutex> lock(mutex_);
    Entry* entry = FindLocked(fd);
    if (entry == nullptr) return EBADF;
    SetUnsettledLocked(entry, true);
  }
  int err = kernel_lock::TryLock(fd, req);
  if (err != 0) Settle(fd);
  return err;
}

void PosixTable::Settle(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* entry = FindLocked(fd);
  if (entry != nullptr) SetUnsettledLocked(entry, false);
}

void PosixTable::Wake() {
  std::lock_guard<std::mutex> lock(mutex_);
  settled_.notify_all();
}

bool PosixTable::AwaitSettle(EnvId env, bool may_wait_own, const std::atomic<bool>* cancelled) {
  std::unique_lock<std::mutex> lock(mutex_);
  bool any = false;
  for (const auto& item : by_fd_) {
    const Entry* entry = item.second;
    // A blocked thread cannot wait for its own environment to settle: that
    // environment is the blocked thread.
    if (entry->unsettled && (may_wait_own || entry->turn_env != env)) any = true;
  }
  if (!any) return false;
  uint64_t generation = settle_generation_;
  settled_.wait(lock, [&] { return settle_generation_ != generation || (cancelled != nullptr && cancelled->load()); });
  return cancelled == nullptr || !cancelled->load();
}

int PosixTable::BlockingLock(Interruptible* ctx, int fd, const LockRequest& req, EnvId env, bool may_wait_own) {
  for (;;) {
    {
      // The turn holder waits: it holds nothing until the kernel grants.
      std::lock_guard<std::mutex> lock(mutex_);
      Entry* entry = FindLocked(fd);
      if (entry == nullptr) return EBADF;
      SetUnsettledLocked(entry, false);
    }
    int err;
    if (ctx != nullptr) {
      err = InterruptibleLock(ctx, fd, req);
    } else {
      do err = kernel_lock::BlockingLock(fd, req);
      while (err == EINTR);
    }
    if (err == 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      Entry* entry = FindLocked(fd);
      if (entry != nullptr) SetUnsettledLocked(entry, true);
      return 0;
    }
    if (err != EDEADLK) return err;
    // The kernel saw a cycle of waits. When it runs through a lock this
    // process was granted but has not settled (a waiter woken on an
    // orphaned inode, about to drop it), it dissolves once that lock is
    // dropped: wait for a settlement, then ask again. Without such a lock
    // the cycle is made of held locks: a real deadlock.
    if (!AwaitSettle(env, may_wait_own, ctx != nullptr ? &ctx->cancelled : nullptr)) {
      return ctx != nullptr && ctx->cancelled.load() ? kCancelled : EDEADLK;
    }
  }
}

void PosixTable::UnlockAndPassTurn(int fd, const LockRequest& req) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* entry = FindLocked(fd);
  if (entry == nullptr) return;
  kernel_lock::Unlock(fd, req);
  if (entry->taken) PassTurnLocked(entry);
}

int PosixTable::Release(int fd, const char* path, uint32_t flags, const LockRequest& req) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* entry = FindLocked(fd);
  if (entry == nullptr) return -EBADF;
  bool last = entry->users == 1 && entry->queue.empty();
  int result = 0;
  if ((flags & kUnlink) != 0 && last) {
    bool whole_exclusive = !req.shared && req.start == 0 && req.length == 0;
    // A range or shared holder is the last one only if it can take the
    // whole file exclusively: other processes may hold other ranges.
    if (whole_exclusive || kernel_lock::TryLock(fd, LockRequest{Kind::kPosix, false, 0, 0}) == 0) {
      struct stat st;
      bool same = false;
      if (PathNamesFd(fd, path, &same, &st) == 0 && same) {
        Content content = ClassifyFile(fd, st.st_size);
        if (!IsOurs(content)) {
          result = 2;
        } else if (MayUnlink(content)) {
          result = ::unlink(path) == 0 ? 1 : -errno;
        }
      }
    }
  }
  --entry->users;
  if (last) {
    // Closing the inode's descriptors drops the lock.
    DestroyLocked(entry);
  } else {
    kernel_lock::Unlock(fd, req);
    PassTurnLocked(entry);
  }
  return result;
}

int PosixTable::DescriptorFor(dev_t dev, ino_t ino) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_inode_.find({dev, ino});
  return found == by_inode_.end() ? -1 : found->second->fd;
}

void PosixTable::Close(int fd) {
  if (fd < 0) return;
  // Checked and closed under the mutex: an entry (and a lock through it)
  // for this inode cannot appear between the check and the close.
  std::lock_guard<std::mutex> lock(mutex_);
  if (!by_inode_.empty()) {
    struct stat st;
    if (::fstat(fd, &st) == 0) {
      auto found = by_inode_.find({st.st_dev, st.st_ino});
      if (found != by_inode_.end() && found->second->taken) {
        DropOwnLocks(fd);
        found->second->deferred.push_back(fd);
        return;
      }
    }
  }
  RawClose(fd);
}

}  // namespace kernel_lock
