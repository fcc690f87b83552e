// What a waiter thread does the moment the kernel grants a whole
// acquisition (kinds flock and ofd), before JavaScript hears of it: check
// that the path still names the locked inode, and write the owner record,
// its createdAt set to the grant time. When the file was replaced (its
// holder unlinked it on release) the thread reopens the path and locks or
// waits again itself: JavaScript sees one wait however often the file
// changes, and no new thread is started.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "interrupt.h"
#include "lock_ops.h"
#include "record_content.h"
#include "unique_fd.h"

namespace kernel_lock {

// Result of a grant when JavaScript must close the descriptor and start the
// acquisition over on its own thread (an open or verification failed: the
// error is then reported exactly as the first attempt reports it).
constexpr int kRestart = -2;

// The out slot value for the descriptor's writability (see addon.cc kOutReadOnly).
double ReadOnlyOut(const OpenResult& opened);

// What the grant produced, for the out slots.
struct GrantReport {
  dev_t dev = 0;
  ino_t ino = 0;
  int record_err = 0;
  bool record_skipped = false;
  double read_only = 0;
};

// Writes `record` (length bytes) over the owner record of the locked file
// `fd` of `size` bytes, unless the file holds foreign content (skipped) or
// was opened read-only (EBADF). Returns 0 or an errno.
// `scratch` (kScratchBytes) and `known` are as for ClassifyFile().
int WriteOwnerRecord(int fd, const char* record, size_t length, bool read_only, off_t size, bool* skipped,
                     char* scratch = nullptr, const std::string* known = nullptr);

// Sets the record's "createdAt" (an ISO 8601 UTC time with milliseconds, as
// Date#toISOString writes it) to now. The first `"createdAt":"` in a record
// is its key: JSON escaping leaves no unescaped quote inside a string.
void StampCreatedAt(char* record, size_t length);

class GrantWork {
 public:
  // `flags` are the acquisition's (kReadOnlyIfForeign matters here);
  // `read_only` describes the descriptor the wait starts on.
  GrantWork(std::string path, std::string record, bool has_record, uint32_t flags, double read_only)
      : path_(std::move(path)), record_(std::move(record)), has_record_(has_record), flags_(flags) {
    report_.read_only = read_only;
  }

  // On the waiter thread, the lock on *fd granted. Returns 0 (verified,
  // record written, report filled), kRestart, kCancelled or an errno. *fd
  // may be replaced by a descriptor of the file the path names now.
  int Run(Interruptible* ctx, UniqueFd* fd, const LockRequest& req);
  // The lock on `fd` granted (on any thread): 0 when the path still names
  // it (record written, report filled), kReplaced when it does not,
  // kRestart when the check failed.
  int Verify(int fd, const LockRequest& req);
  static constexpr int kReplaced = 1;
  const GrantReport& report() const { return report_; }
  const std::string& path() const { return path_; }
  // Whether the descriptor the wait started on is read-only.
  bool read_only() const { return report_.read_only != 0; }

 private:
  const std::string path_;
  std::string record_;
  const bool has_record_;
  const uint32_t flags_;
  GrantReport report_;
  // Allocated (and touched) on the JavaScript thread with the GrantWork: the
  // waiter thread reads and pads the record in it, allocating nothing.
  std::vector<char> scratch_ = std::vector<char>(kScratchBytes);
};

}  // namespace kernel_lock
