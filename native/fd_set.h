// The descriptors an environment owns, as a bitmap indexed by descriptor
// number. Descriptor numbers are small and dense (the kernel hands out the
// lowest free one), so this costs a byte per number up to the highest used,
// and inserting or erasing allocates nothing: a node-based set would
// malloc and free on every uncontended acquisition.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kernel_lock {

class FdSet {
 public:
  void insert(int fd) {
    if (fd < 0) return;
    auto index = static_cast<size_t>(fd);
    if (index >= present_.size()) present_.resize(index + 1 + index / 2, 0);
    if (present_[index] == 0) ++size_;
    present_[index] = 1;
  }
  void erase(int fd) {
    auto index = static_cast<size_t>(fd);
    if (fd < 0 || index >= present_.size() || present_[index] == 0) return;
    present_[index] = 0;
    --size_;
  }
  bool contains(int fd) const {
    auto index = static_cast<size_t>(fd);
    return fd >= 0 && index < present_.size() && present_[index] != 0;
  }
  size_t size() const { return size_; }
  template <typename F>
  void ForEach(F&& f) const {
    for (size_t i = 0; i < present_.size(); ++i) {
      if (present_[i] != 0) f(static_cast<int>(i));
    }
  }
  void clear() {
    present_.clear();
    size_ = 0;
  }

 private:
  std::vector<uint8_t> present_;
  size_t size_ = 0;
};

}  // namespace kernel_lock
