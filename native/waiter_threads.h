// The threads waits run on: created on demand, and parked (asleep on a
// condition variable, not polling) between waits instead of exiting, so a
// wait's end costs its thread no exit and the next wait's start no create.
//
// Why it matters for a hand-off: a thread that exits right after posting its
// grant unmaps its stack's pages (madvise(MADV_DONTNEED): a TLB flush on every
// CPU running the process, the event loop's included) and runs the kernel's
// exit path while the loop it just woke wants a CPU. A parked thread goes
// straight back to sleep, like a libuv pool thread after its work.
//
// Never libuv's threadpool (a thread parked in flock(2) there would starve
// every fs.* call): these threads are ours, one per wait in progress (and
// per descriptor search, fdinfo_search.h: the addon makes no other thread). How
// many stay parked is bounded (kMaxParked); a parked thread exits after
// kLingerMs without a wait, so a process that stopped waiting keeps no
// thread. Process-wide, shared by every environment (worker threads
// included), never destroyed: a parked thread holds nothing of an
// environment, and a worker's teardown ends its waits, not the threads.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace kernel_lock {

// Work for a waiter thread.
class ThreadJob {
 public:
  // On the waiter thread. The thread does not touch the job afterwards.
  virtual void RunOnThread() = 0;

 protected:
  ~ThreadJob() = default;
};

class WaiterThreads {
 public:
  // The one set of the process. Never destroyed (parked threads use it
  // while static destructors run).
  static WaiterThreads& Get();

  // Runs `job` on a parked thread, or on a new one. Returns 0 and the
  // thread's id in *thread (the thread a cancellation interrupts), or an
  // errno from pthread_create (nothing runs). The job counts as running
  // until Joined().
  int Run(ThreadJob* job, pthread_t* thread);
  // The job's owner saw it end (RunOnThread() is past its last touch), or,
  // for a job its owner abandoned, the job itself ended. Once per job.
  void Joined();

  // Threads alive (running a job, parked, or about to park or exit), and
  // those of them that run no job that is not yet joined: the threads a
  // caller that joined every wait it started would see beyond its own.
  size_t Alive();
  size_t Idle();

  // How long a parked thread waits for a job before it exits.
  static constexpr int kLingerMs = 2000;
  // At most this many threads stay parked; more exit when their job ends.
  static constexpr size_t kMaxParked = 16;

 private:
  struct Slot {
    pthread_t thread{};
    std::condition_variable wake;
    ThreadJob* job = nullptr;
    Slot* next_parked = nullptr;
  };

  WaiterThreads() = default;
  static void* Main(void* arg);
  // With mutex_ held: takes the slot off the parked list.
  void Unpark(Slot* slot);

  std::mutex mutex_;
  Slot* parked_ = nullptr;  // a stack: the most recently parked thread is the warmest
  Slot* free_ = nullptr;    // slots of exited threads, for new ones (never freed)
  size_t parked_count_ = 0;
  size_t alive_ = 0;
  size_t running_ = 0;  // jobs handed out and not yet joined
};

}  // namespace kernel_lock
