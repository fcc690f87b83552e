// The fast path of a contended wait (Linux): the event loop learns of a
// holder's close(2) through inotify and makes the first attempt after it
// itself. Without it, a release wakes the waiter thread, which must then
// wake the event loop: two wake-ups in a row, each tens of microseconds on
// a virtual machine whose idle CPUs sleep. With it, the loop is woken once,
// straight by the kernel; the waiter thread, woken by the same release,
// races it, and exactly one of the two takes the grant (async_waiter.h).
//
// The thread stays the fallback for every release inotify does not see: a
// lock dropped without a close (LOCK_UN, F_UNLCK), a holder on another host
// of a network file system, an overflowing event queue, or no inotify at all
// (ENOSPC from max_user_watches, EMFILE from max_user_instances).
//
// One inotify instance per environment, open only while waits use it (an
// instance counts against the user's max_user_instances, which file
// watchers need too). A watch is per inode; the waiters of one inode are
// kept in arrival order and only the oldest makes the attempt, so waiters
// of this process keep the order the kernel gives them.
#pragma once

#include <uv.h>

#include <deque>
#include <unordered_map>

namespace kernel_lock {

// A wait that can take a grant on the event loop.
class CloseListener {
 public:
  // On the JavaScript thread, after a close of the watched inode: one
  // non-blocking attempt. May remove itself from the watch.
  virtual void OnClose() = 0;
  // The kernel dropped the watch (the inode is gone): nothing to remove.
  virtual void WatchLost() = 0;

 protected:
  ~CloseListener() = default;
};

class CloseWatch {
 public:
  explicit CloseWatch(uv_loop_t* loop) : loop_(loop) {}
  CloseWatch(const CloseWatch&) = delete;
  CloseWatch& operator=(const CloseWatch&) = delete;
  // Only once Closing() is 0 (no uv handle of ours is still closing).
  ~CloseWatch() = default;

  // On the JavaScript thread: watches the inode of `fd` for `listener`.
  // Returns the watch descriptor, or -1 when inotify is unavailable (the
  // waiter thread alone then serves the wait).
  int Add(int fd, CloseListener* listener);
  // Stops watching for `listener`; the last listener of an inode removes
  // the watch, the last watch closes the instance.
  void Remove(int wd, CloseListener* listener);

  // Teardown: forgets every listener and closes the instance. `done` runs
  // (on the loop) once no handle of ours is closing any more: at once, or
  // from the last close callback.
  void Shutdown(void (*done)(void*), void* arg);

 private:
  struct Instance {
    int fd = -1;
    uv_poll_t poll{};
    CloseWatch* owner = nullptr;
  };
  static void OnReadable(uv_poll_t* handle, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  void Dispatch(Instance* instance);
  void Shut();

  uv_loop_t* const loop_;
  Instance* instance_ = nullptr;
  int closing_ = 0;
  void (*done_)(void*) = nullptr;
  void* done_arg_ = nullptr;
  std::unordered_map<int, std::deque<CloseListener*>> listeners_;
};

}  // namespace kernel_lock
