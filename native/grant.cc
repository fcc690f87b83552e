#include "grant.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>

#include "record_content.h"

namespace kernel_lock {

namespace {
// As in addon.cc: each retry means another process completed a whole
// release in that instant; the bound only stops a pathological livelock.
constexpr int kMaxVerifyAttempts = 1000;
constexpr char kCreatedAtKey[] = "\"createdAt\":\"";
constexpr size_t kStampLength = 24;  // 2026-01-01T00:00:00.000Z

bool LooksLikeStamp(const char* p) {
  // Digits where Date#toISOString writes digits, its separators elsewhere.
  static constexpr char kShape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  for (size_t i = 0; i < kStampLength; ++i) {
    if (kShape[i] == 'd' ? (p[i] < '0' || p[i] > '9') : p[i] != kShape[i]) return false;
  }
  return true;
}
}  // namespace

double ReadOnlyOut(const OpenResult& opened) {
  if (!opened.read_only) return 0;
  return opened.write_err != 0 ? opened.write_err : -1;
}

int WriteOwnerRecord(int fd, const char* record, size_t length, bool read_only, off_t size, bool* skipped,
                     char* scratch, const std::string* known) {
  *skipped = false;
  Content content = Content::kForeign;
  if (scratch == nullptr) {
    content = ClassifyFile(fd, size);
  } else if (known != nullptr) {
    content = ClassifyFile(fd, size, scratch, known->data(), known->size());
  } else {
    content = ClassifyFile(fd, size, scratch);
  }
  if (!IsOurs(content)) {
    *skipped = true;
    return 0;
  }
  if (read_only) return EBADF;
  return WriteRecord(fd, record, length, size, content, scratch);
}

void StampCreatedAt(char* record, size_t length) {
  const size_t key = sizeof(kCreatedAtKey) - 1;
  const char* end = record + length;
  char* at = nullptr;
  for (char* p = record; p + key + kStampLength <= end; ++p) {
    if (std::memcmp(p, kCreatedAtKey, key) == 0) {
      at = p + key;
      break;
    }
  }
  if (at == nullptr || !LooksLikeStamp(at)) return;
  struct timespec now;
  if (clock_gettime(CLOCK_REALTIME, &now) != 0 || now.tv_sec < 0) return;
  // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm): a
  // few integer operations, where gmtime_r and snprintf are kilobytes of
  // cold code on a thread that just woke up.
  int64_t days = now.tv_sec / 86400;
  int64_t second = now.tv_sec % 86400;
  days += 719468;
  int64_t era = days / 146097;
  int64_t doe = days - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year > 9999) return;
  int64_t millis = now.tv_nsec / 1000000;
  auto put = [](char* out, int64_t value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10) out[i] = static_cast<char>('0' + value % 10);
  };
  put(at, year, 4);
  put(at + 5, month, 2);
  put(at + 8, day, 2);
  put(at + 11, second / 3600, 2);
  put(at + 14, second / 60 % 60, 2);
  put(at + 17, second % 60, 2);
  put(at + 20, millis, 3);
}

int GrantWork::Verify(int fd, const LockRequest& req) {
  struct stat st;
  bool same = false;
  if (PathNamesFd(fd, path_.c_str(), &same, &st) != 0) return kRestart;
  if (!same) return kReplaced;
  report_.dev = st.st_dev;
  report_.ino = st.st_ino;
  if (has_record_ && !req.shared) {
    StampCreatedAt(&record_[0], record_.size());
    report_.record_err = WriteOwnerRecord(fd, record_.data(), record_.size(), report_.read_only != 0, st.st_size,
                                          &report_.record_skipped, scratch_.data());
  }
  return 0;
}

int GrantWork::Run(Interruptible* ctx, UniqueFd* fd, const LockRequest& req) {
  for (int attempt = 0; attempt < kMaxVerifyAttempts; ++attempt) {
    int verified = Verify(fd->get(), req);
    if (verified != kReplaced) return verified;
    // Unlinked or replaced while we waited: the lock guards nothing. Open
    // what the path names now and lock it.
    if (ctx->cancelled.load()) return kCancelled;
    OpenResult opened;
    UniqueFd next = OpenLockFile(path_.c_str(), &opened);
    if (!next.valid() || CheckFileSystem(next.get(), &opened) != 0) return kRestart;
    if ((flags_ & kReadOnlyIfForeign) != 0) next = ReopenReadOnlyIfForeign(path_.c_str(), std::move(next), &opened);
    // The orphan stays open, its lock held, until this wait holds the new
    // file: closing it earlier would wake the waiter queued behind us on
    // it, which could then enter the new file's queue before us. So the
    // waiters of an orphaned inode move over one at a time, each once the
    // one before it holds the new file: in the order the kernel queued them.
    UniqueFd orphan = std::move(*fd);
    *fd = std::move(next);
    report_.read_only = ReadOnlyOut(opened);
    int err = TryLock(fd->get(), req);
    if (err == EWOULDBLOCK) err = InterruptibleLock(ctx, fd->get(), req);
    orphan.reset();
    if (err != 0) return err;
  }
  return kRestart;
}

}  // namespace kernel_lock
