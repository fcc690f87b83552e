#include "close_watch.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#if defined(__linux__)
#include <sys/inotify.h>
#endif

namespace kernel_lock {

#if defined(__linux__)

int CloseWatch::Add(int fd, CloseListener* listener) {
  if (done_ != nullptr) return -1;  // shutting down
  if (instance_ == nullptr) {
    int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ifd < 0) return -1;
    auto* instance = new Instance();
    instance->fd = ifd;
    instance->owner = this;
    instance->poll.data = instance;
    if (uv_poll_init(loop_, &instance->poll, ifd) != 0) {
      ::close(ifd);
      delete instance;
      return -1;
    }
    // The pending waits keep the loop alive (the hub's handle), not this.
    uv_unref(reinterpret_cast<uv_handle_t*>(&instance->poll));
    uv_poll_start(&instance->poll, UV_READABLE, &CloseWatch::OnReadable);
    instance_ = instance;
  }
  // The inode the descriptor is open on, whatever the path names now.
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  int wd = inotify_add_watch(instance_->fd, path, IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
  if (wd < 0) {
    if (listeners_.empty()) Shut();
    return -1;
  }
  listeners_[wd].push_back(listener);
  return wd;
}

void CloseWatch::Remove(int wd, CloseListener* listener) {
  auto found = listeners_.find(wd);
  if (found == listeners_.end()) return;
  auto& queue = found->second;
  auto at = std::find(queue.begin(), queue.end(), listener);
  if (at == queue.end()) return;
  queue.erase(at);
  if (!queue.empty()) return;
  listeners_.erase(found);
  if (instance_ != nullptr) inotify_rm_watch(instance_->fd, wd);
  if (listeners_.empty()) Shut();
}

void CloseWatch::Shut() {
  if (instance_ == nullptr) return;
  Instance* instance = instance_;
  instance_ = nullptr;
  ++closing_;
  uv_poll_stop(&instance->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&instance->poll), &CloseWatch::OnClosed);
}

void CloseWatch::OnClosed(uv_handle_t* handle) {
  auto* instance = static_cast<Instance*>(handle->data);
  CloseWatch* owner = instance->owner;
  ::close(instance->fd);  // closing it drops its watches
  delete instance;
  if (--owner->closing_ == 0 && owner->done_ != nullptr) owner->done_(owner->done_arg_);
}

void CloseWatch::Shutdown(void (*done)(void*), void* arg) {
  done_ = done;
  done_arg_ = arg;
  listeners_.clear();
  Shut();
  if (closing_ == 0) done(arg);
}

void CloseWatch::OnReadable(uv_poll_t* handle, int status, int) {
  auto* instance = static_cast<Instance*>(handle->data);
  if (status < 0 || instance->owner->instance_ != instance) return;
  instance->owner->Dispatch(instance);
}

void CloseWatch::Dispatch(Instance* instance) {
  alignas(struct inotify_event) char buffer[4096];
  // Bounded: the attempts below may close descriptors of watched inodes,
  // which queue more events; those are read on the next callback.
  for (int reads = 0; reads < 8 && instance_ == instance; ++reads) {
    ssize_t got = ::read(instance->fd, buffer, sizeof(buffer));
    if (got <= 0) return;  // EAGAIN: drained
    for (char* p = buffer; p < buffer + got;) {
      auto* event = reinterpret_cast<struct inotify_event*>(p);
      p += sizeof(struct inotify_event) + event->len;
      auto found = listeners_.find(event->wd);
      if (found == listeners_.end()) continue;
      if ((event->mask & IN_IGNORED) != 0) {
        // The kernel removed the watch; its number may be handed out again.
        std::deque<CloseListener*> lost;
        lost.swap(found->second);
        listeners_.erase(found);
        for (CloseListener* listener : lost) listener->WatchLost();
        if (listeners_.empty()) Shut();
        continue;
      }
      // Only the oldest waiter of the inode tries: this process's waiters
      // keep the kernel's order among themselves.
      if (!found->second.empty()) found->second.front()->OnClose();
      if (instance_ != instance) return;  // the last listener left
    }
  }
}

#else

int CloseWatch::Add(int, CloseListener*) {
  return -1;
}
void CloseWatch::Remove(int, CloseListener*) {}
void CloseWatch::Shutdown(void (*done)(void*), void* arg) {
  done(arg);
}

#endif

}  // namespace kernel_lock
