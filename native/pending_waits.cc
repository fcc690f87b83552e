#include "pending_waits.h"

#include <string_view>

namespace kernel_lock {

PendingWaits& PendingWaits::Get() {
  static PendingWaits* registry = new PendingWaits();
  return *registry;
}

void PendingWaits::Add(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[path];
}

void PendingWaits::Remove(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = counts_.find(path);
  if (found == counts_.end()) return;
  if (--found->second == 0) counts_.erase(found);
}

bool PendingWaits::Any(const char* path) {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_.find(std::string_view(path)) != counts_.end();
}

size_t PendingWaits::Size() {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_.size();
}

void PendingWait::Set(const std::string& path) {
  Clear();
  path_ = path;
  registered_ = true;
  PendingWaits::Get().Add(path_);
}

void PendingWait::Clear() {
  if (!registered_) return;
  registered_ = false;
  PendingWaits::Get().Remove(path_);
}

}  // namespace kernel_lock
