// How finished waits reach JavaScript: one uv_async_t per environment and a
// queue, instead of a thread-safe function per wait. A wait's thread posts
// itself and wakes the loop; the loop delivers every posted wait in one
// callback, each through napi_make_callback (so promise reactions run right
// after it, as for any I/O callback).
//
// Lifetime, the subtle part. The hub belongs to one environment (the main
// thread or a worker) and must outlive every thread that may post to it.
// At environment teardown (a worker terminated, the process exiting) Node
// runs the hub's async cleanup hook, which is registered after the addon's
// napi_env exists and therefore runs before the addon is finalized: it
// aborts every live wait (interrupts and joins its thread, closes what it
// owns; no JavaScript runs), drops the queue, and only then closes the
// uv_async_t. Once the close completes the hub deletes itself and tells
// Node its cleanup is done. After Abort() returns nothing posts again, so no
// thread ever touches a closed handle or a deleted hub.
#pragma once

#include <node_api.h>
#include <uv.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace kernel_lock {

// Something a thread finishes and the JavaScript thread then delivers.
class Completion {
 public:
  explicit Completion(uint32_t id) : id_(id) {}
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  virtual ~Completion() = default;
  uint32_t id() const { return id_; }

  // On the JavaScript thread, once, after it was posted: report to
  // JavaScript (through napi_make_callback with `context` and `receiver`).
  // The hub deletes the completion afterwards.
  virtual void Deliver(napi_env env, napi_async_context context, napi_value receiver) = 0;
  // On the JavaScript thread at environment teardown, instead of
  // Deliver(): make sure no other thread will post it again (interrupt and
  // join its thread, withdraw it from a queue) and release what it holds.
  // No JavaScript may run. The hub deletes it afterwards.
  virtual void Abort() = 0;
  // On the JavaScript thread: asks a pending completion to finish early
  // (it is then delivered as cancelled, unless it finished already).
  virtual void Stop() = 0;

 private:
  friend class WaitHub;
  const uint32_t id_;
  // The hub's queue of posted completions is intrusive: posting allocates
  // nothing (a waiter thread's first malloc would set up a glibc arena for
  // it, several system calls on the hand-off's critical path).
  Completion* next_posted_ = nullptr;
};

// Told when the hub is gone (the environment is being torn down).
class HubOwner {
 public:
  virtual void HubClosed() = 0;

 protected:
  ~HubOwner() = default;
};

class WaitHub {
 public:
  // On the JavaScript thread. Returns nullptr (nothing allocated) when the
  // loop or the cleanup hook is unavailable.
  static WaitHub* Create(napi_env env, HubOwner* owner);

  // On the JavaScript thread: a new pending completion. While any is
  // pending the hub keeps the event loop alive, as a timer would.
  void Track(Completion* item);
  // Forgets a completion that was never started (its owner deletes it).
  void Untrack(Completion* item) { Forget(item); }
  // The pending completion with this id, or nullptr.
  Completion* Find(uint32_t id);
  size_t Pending() const { return live_.size(); }

  // Any thread: the completion is finished; the loop will deliver it.
  void Post(Completion* item);

  // On the JavaScript thread, when the owner goes away first (defensive:
  // the cleanup hook normally runs before it): abort every completion and
  // forget the owner. The handle itself is left to the cleanup hook.
  void OwnerGone();

 private:
  WaitHub(napi_env env, HubOwner* owner) : env_(env), owner_(owner) {}
  ~WaitHub() = default;
  bool Init();
  void Forget(Completion* item);
  void AbortAll();
  static void OnAsync(uv_async_t* handle);
  static void OnCleanup(napi_async_cleanup_hook_handle handle, void* data);
  static void OnClosed(uv_handle_t* handle);

  napi_env env_;
  HubOwner* owner_;
  uv_async_t async_{};
  napi_async_context context_ = nullptr;
  napi_ref receiver_ = nullptr;
  napi_async_cleanup_hook_handle cleanup_ = nullptr;

  // JavaScript thread only.
  std::unordered_map<uint32_t, Completion*> live_;
  // Shared with the posting threads: a FIFO list through next_posted_.
  std::mutex mutex_;
  Completion* posted_head_ = nullptr;
  Completion* posted_tail_ = nullptr;
};

}  // namespace kernel_lock
