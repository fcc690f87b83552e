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
    std::lock_guard<std::mutex> lock(mutex_);
    if (parked_ != nullptr) {
      Slot* slot = parked_;
      Unpark(slot);
      slot->job = job;
      *thread = slot->thread;
      // Notified with the mutex held: the slot may be deleted by its thread
      // (lingered out) the moment the mutex is released otherwise. It
      // cannot here: it has a job, so its thread runs it.
      slot->wake.notify_one();
      return 0;
    }
  }
  auto* slot = new Slot();
  slot->job = job;
  pthread_attr_t attr;
  int err = pthread_attr_init(&attr);
  if (err != 0) {
    delete slot;
    return err;
  }
  pthread_attr_setstacksize(&attr, kStackSize);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  {
    // Counted before it starts, under the mutex its first park takes.
    std::lock_guard<std::mutex> lock(mutex_);
    ++alive_;
    // The thread may finish its job, park and read slot->thread before
    // pthread_create returns: create it with the mutex held so that it
    // cannot park before the id is stored.
    err = pthread_create(&slot->thread, &attr, &WaiterThreads::Main, slot);
    if (err != 0) --alive_;
  }
  pthread_attr_destroy(&attr);
  if (err != 0) {
    delete slot;
    return err;
  }
  *thread = slot->thread;
  return 0;
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
  lock.unlock();
  delete slot;
  return nullptr;
}

size_t WaiterThreads::Parked() {
  std::lock_guard<std::mutex> lock(mutex_);
  return parked_count_;
}

size_t WaiterThreads::Alive() {
  std::lock_guard<std::mutex> lock(mutex_);
  return alive_;
}

}  // namespace kernel_lock
