#include "waiter_threads.h"

#include <signal.h>

#include <chrono>

namespace kernel_lock {

namespace {
// The thread only makes a few system calls; a small stack keeps hundreds of
// waiters cheap. Sanitizer builds need more room for their own frames.
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kStackSize = 1 << 20;
#else
constexpr size_t kStackSize = 256 * 1024;
#endif
}  // namespace

WaiterThreads& WaiterThreads::Get() {
  static auto* threads = new WaiterThreads();
  return *threads;
}

int WaiterThreads::Run(ThreadJob* job, pthread_t* thread) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ++running_;
    if (parked_ != nullptr) {
      Slot* slot = parked_;
      Unpark(slot);
      slot->job = job;
      *thread = slot->thread;
      // Notified after the mutex is released, so the thread does not wake
      // only to block on it. Slots are never freed (a thread that exits
      // leaves its slot for the next new thread), so a late notify reaches,
      // at worst, a thread that rechecks its job and sleeps on.
      lock.unlock();
      slot->wake.notify_one();
      return 0;
    }
  }
  pthread_attr_t attr;
  int err = pthread_attr_init(&attr);
  if (err != 0) return err;
  pthread_attr_setstacksize(&attr, kStackSize);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Slot* slot = free_;
    if (slot != nullptr) {
      free_ = slot->next_parked;
      slot->next_parked = nullptr;
    } else {
      slot = new Slot();
    }
    slot->job = job;
    // Counted before it starts. The thread may finish its job and park
    // before pthread_create returns: created with the mutex held, so it
    // cannot park before its id is stored.
    err = pthread_create(&slot->thread, &attr, &WaiterThreads::Main, slot);
    if (err == 0) {
      ++alive_;
      *thread = slot->thread;
    } else {
      --running_;
      slot->job = nullptr;
      slot->next_parked = free_;
      free_ = slot;
    }
  }
  pthread_attr_destroy(&attr);
  return err;
}

void WaiterThreads::Unpark(Slot* slot) {
  Slot** link = &parked_;
  while (*link != slot) link = &(*link)->next_parked;
  *link = slot->next_parked;
  slot->next_parked = nullptr;
  --parked_count_;
}

void* WaiterThreads::Main(void* arg) {
  auto* slot = static_cast<Slot*>(arg);
  WaiterThreads& self = Get();
  // Every signal stays blocked here: this thread must not run handlers that
  // the application meant for its own threads. A wait unblocks only its
  // interrupt signal, only while it is in the kernel (interrupt.h).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_lock<std::mutex> lock(self.mutex_);
  for (;;) {
    ThreadJob* job = slot->job;
    slot->job = nullptr;
    lock.unlock();
    job->RunOnThread();
    lock.lock();
    if (self.parked_count_ >= kMaxParked) break;
    slot->next_parked = self.parked_;
    self.parked_ = slot;
    ++self.parked_count_;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kLingerMs);
    if (!slot->wake.wait_until(lock, deadline, [slot] { return slot->job != nullptr; })) {
      self.Unpark(slot);
      break;
    }
  }
  --self.alive_;
  slot->next_parked = self.free_;
  self.free_ = slot;
  return nullptr;
}

void WaiterThreads::Joined() {
  std::lock_guard<std::mutex> lock(mutex_);
  --running_;
}

size_t WaiterThreads::Idle() {
  std::lock_guard<std::mutex> lock(mutex_);
  // A thread that exits after its job may leave alive_ before its owner
  // joins the job: never below zero.
  return alive_ > running_ ? alive_ - running_ : 0;
}

size_t WaiterThreads::Alive() {
  std::lock_guard<std::mutex> lock(mutex_);
  return alive_;
}

}  // namespace kernel_lock
