#include "pending_waits.h"

#include <sys/stat.h>

namespace kernel_lock {

PendingWaits& PendingWaits::Get() {
  static PendingWaits* registry = new PendingWaits();
  return *registry;
}

void PendingWaits::Add(dev_t dev, ino_t ino) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[{dev, ino}];
}

void PendingWaits::Remove(dev_t dev, ino_t ino) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = counts_.find({dev, ino});
  if (found == counts_.end()) return;
  if (--found->second == 0) counts_.erase(found);
}

bool PendingWaits::Any(dev_t dev, ino_t ino) {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_.count({dev, ino}) != 0;
}

size_t PendingWaits::Size() {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_.size();
}

void PendingWait::Move(int fd) {
  Clear();
  struct stat st;
  if (::fstat(fd, &st) != 0) return;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  registered_ = true;
  PendingWaits::Get().Add(dev_, ino_);
}

void PendingWait::Clear() {
  if (!registered_) return;
  registered_ = false;
  PendingWaits::Get().Remove(dev_, ino_);
}

}  // namespace kernel_lock
