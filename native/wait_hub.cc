#include "wait_hub.h"

#include <vector>

namespace kernel_lock {

WaitHub* WaitHub::Create(napi_env env, HubOwner* owner) {
  auto* hub = new WaitHub(env, owner);
  if (!hub->Init()) {
    delete hub;
    return nullptr;
  }
  return hub;
}

bool WaitHub::Init() {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || loop == nullptr) return false;
  napi_value resource, name;
  if (napi_create_object(env_, &resource) != napi_ok) return false;
  if (napi_create_string_utf8(env_, "kernel-lock-wait", NAPI_AUTO_LENGTH, &name) != napi_ok) return false;
  if (napi_async_init(env_, resource, name, &context_) != napi_ok) return false;
  if (napi_create_reference(env_, resource, 1, &receiver_) != napi_ok) {
    napi_async_destroy(env_, context_);
    return false;
  }
  if (napi_add_async_cleanup_hook(env_, &WaitHub::OnCleanup, this, &cleanup_) != napi_ok) {
    napi_delete_reference(env_, receiver_);
    napi_async_destroy(env_, context_);
    return false;
  }
  uv_async_init(loop, &async_, &WaitHub::OnAsync);
  async_.data = this;
  // Idle until a wait is pending: the loop may end while none is.
  uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
  return true;
}

void WaitHub::Track(Completion* item) {
  live_.emplace(item->id(), item);
  if (live_.size() == 1) uv_ref(reinterpret_cast<uv_handle_t*>(&async_));
}

Completion* WaitHub::Find(uint32_t id) {
  auto found = live_.find(id);
  return found == live_.end() ? nullptr : found->second;
}

void WaitHub::Forget(Completion* item) {
  live_.erase(item->id());
  if (live_.empty()) uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
}

void WaitHub::Post(Completion* item) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    item->next_posted_ = nullptr;
    if (posted_tail_ != nullptr) {
      posted_tail_->next_posted_ = item;
    } else {
      posted_head_ = item;
    }
    posted_tail_ = item;
  }
  // Coalesces: one callback delivers everything posted before it runs.
  uv_async_send(&async_);
}

// On the JavaScript thread.
void WaitHub::OnAsync(uv_async_t* handle) {
  auto* hub = static_cast<WaitHub*>(handle->data);
  Completion* ready;
  {
    std::lock_guard<std::mutex> lock(hub->mutex_);
    ready = hub->posted_head_;
    hub->posted_head_ = hub->posted_tail_ = nullptr;
  }
  if (ready == nullptr) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(hub->env_, &scope) != napi_ok) return;
  napi_value receiver = nullptr;
  napi_get_reference_value(hub->env_, hub->receiver_, &receiver);
  while (ready != nullptr) {
    Completion* item = ready;
    ready = item->next_posted_;
    // Forgotten first: JavaScript running in Deliver() may start or cancel
    // other waits, and must not find this one.
    hub->Forget(item);
    item->Deliver(hub->env_, hub->context_, receiver);
    delete item;
  }
  napi_close_handle_scope(hub->env_, scope);
}

void WaitHub::AbortAll() {
  // Every producer is stopped before anything is deleted: an aborted wait
  // may have posted itself already.
  std::vector<Completion*> items;  // on the JavaScript thread: allocating is fine
  items.reserve(live_.size());
  for (auto& entry : live_) items.push_back(entry.second);
  live_.clear();
  for (Completion* item : items) item->Abort();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    posted_head_ = posted_tail_ = nullptr;
  }
  for (Completion* item : items) delete item;
  uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
}

void WaitHub::OwnerGone() {
  AbortAll();
  owner_ = nullptr;
}

// On the JavaScript thread at environment teardown, before the addon is
// finalized (see the header).
void WaitHub::OnCleanup(napi_async_cleanup_hook_handle, void* data) {
  auto* hub = static_cast<WaitHub*>(data);
  hub->AbortAll();
  if (hub->owner_ != nullptr) hub->owner_->HubClosed();
  napi_delete_reference(hub->env_, hub->receiver_);
  napi_async_destroy(hub->env_, hub->context_);
  uv_close(reinterpret_cast<uv_handle_t*>(&hub->async_), &WaitHub::OnClosed);
}

void WaitHub::OnClosed(uv_handle_t* handle) {
  auto* hub = static_cast<WaitHub*>(handle->data);
  napi_remove_async_cleanup_hook(hub->cleanup_);
  delete hub;
}

}  // namespace kernel_lock
