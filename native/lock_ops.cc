#include "lock_ops.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/statfs.h>
#include <sys/syscall.h>
#endif

#include <cerrno>
#include <cstring>
#include <vector>

#include "raw_syscall.h"
#include "record_content.h"

namespace kernel_lock {

namespace {

FileType TypeOf(mode_t mode) {
  if (S_ISREG(mode)) return FileType::kRegular;
  if (S_ISDIR(mode)) return FileType::kDirectory;
  if (S_ISFIFO(mode)) return FileType::kFifo;
  if (S_ISSOCK(mode)) return FileType::kSocket;
  if (S_ISCHR(mode)) return FileType::kCharDevice;
  if (S_ISBLK(mode)) return FileType::kBlockDevice;
  if (S_ISLNK(mode)) return FileType::kSymlink;
  return FileType::kOther;
}

int RetryEintr(int (*call)(int, int), int fd, int op) {
  int rc;
  do rc = call(fd, op);
  while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

void FillFlock(const LockRequest& req, short type, struct flock* fl) {
  std::memset(fl, 0, sizeof(*fl));
  fl->l_type = type;
  fl->l_whence = SEEK_SET;
  fl->l_start = req.start;
  fl->l_len = req.length;
  fl->l_pid = 0;  // must be 0 for OFD locks
}

int SetLkCommand(Kind kind, bool wait) {
#if defined(F_OFD_SETLK)
  if (kind == Kind::kOfd) return wait ? F_OFD_SETLKW : F_OFD_SETLK;
#endif
  (void)kind;
  return wait ? F_SETLKW : F_SETLK;
}

int FcntlLock(int fd, int cmd, struct flock* fl) {
  int rc;
  do rc = ::fcntl(fd, cmd, fl);
  while (rc != 0 && errno == EINTR);
  if (rc == 0) return 0;
  // POSIX allows EACCES as well as EAGAIN for a conflicting F_SETLK.
  return (errno == EACCES || errno == EAGAIN) ? EWOULDBLOCK : errno;
}

}  // namespace

LockRequest DecodeRequest(uint32_t flags, double start, double length) {
  LockRequest req;
  req.kind = static_cast<Kind>(flags & kKindMask);
  req.shared = (flags & kShared) != 0;
  req.start = static_cast<off_t>(start);
  req.length = static_cast<off_t>(length);
  return req;
}

const char* FileTypeName(FileType type) {
  switch (type) {
    case FileType::kRegular: return "regular file";
    case FileType::kDirectory: return "directory";
    case FileType::kFifo: return "FIFO";
    case FileType::kSocket: return "socket";
    case FileType::kCharDevice: return "character device";
    case FileType::kBlockDevice: return "block device";
    case FileType::kSymlink: return "symbolic link";
    case FileType::kKernelFile: return "kernel pseudo-file (procfs, sysfs, cgroupfs...)";
    case FileType::kOther: return "special file";
  }
  return "special file";
}

bool OfdSupported() {
#if defined(F_OFD_SETLK)
  return true;
#else
  return false;
#endif
}

int CheckRegular(const struct stat& st, OpenResult* result) {
  FileType type = TypeOf(st.st_mode);
  if (type == FileType::kRegular) return 0;
  result->err = EINVAL;
  result->syscall = "fstat";
  result->type = type;
  return EINVAL;
}

UniqueFd OpenLockFile(const char* path, OpenResult* result, bool check_type) {
  // O_NOFOLLOW: a symlink planted at the lock path must never redirect our
  // write; O_NONBLOCK: opening a FIFO must not hang waiting for a writer.
  constexpr int kBase = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  UniqueFd fd(RawOpen(path, O_RDWR | O_CREAT | kBase, 0644));
  if (!fd.valid()) {
    int err = errno;
    // flock(2) needs no write access, so an existing file in a read-only
    // place can still be locked; only the owner record is skipped.
    if (err == EACCES || err == EROFS || err == EPERM) {
      fd.reset(::open(path, O_RDONLY | kBase));
      if (fd.valid()) {
        result->read_only = true;
        result->write_err = err;
      } else if (errno == ELOOP || errno == ENXIO) {
        err = errno;
      }
    }
    if (!fd.valid()) {
      result->err = err;
      result->syscall = "open";
      if (err == ELOOP) result->type = FileType::kSymlink;
      if (err == ENXIO) result->type = FileType::kSocket;
      return UniqueFd();
    }
  }
  if (!check_type) return fd;
  if (::fstat(fd.get(), &result->st) != 0) {
    result->err = errno;
    result->syscall = "fstat";
    return UniqueFd();
  }
  if (CheckRegular(result->st, result) != 0) return UniqueFd();
  if (CheckFileSystem(fd.get(), result) != 0) return UniqueFd();
  return fd;
}

int CheckFileSystem(int fd, OpenResult* result) {
#if defined(__linux__)
  // Literal values, as in linux/magic.h, so older kernel headers that lack
  // some of the names still build.
  static constexpr unsigned long kKernelFileSystems[] = {
      0x9fa0,      // procfs
      0x62656572,  // sysfs
      0x27e0eb,    // cgroup
      0x63677270,  // cgroup2
      0x64626720,  // debugfs
      0x74726163,  // tracefs
      0x73636673,  // securityfs
      0xcafe4a11,  // bpf
      0xf97cff8c,  // selinuxfs
      0xde5e81e4,  // efivarfs
      0x6165676c,  // pstore
      0x62656570,  // configfs
  };
  struct statfs fs;
  if (::fstatfs(fd, &fs) != 0) return 0;  // cannot tell; the type check already passed
  const auto type = static_cast<unsigned long>(fs.f_type) & 0xffffffffUL;
  for (unsigned long kernel : kKernelFileSystems) {
    if (type == kernel) {
      result->err = EINVAL;
      result->syscall = "fstatfs";
      result->type = FileType::kKernelFile;
      return EINVAL;
    }
  }
  return 0;
#else
  (void)fd;
  (void)result;
  return 0;
#endif
}

int TryLock(int fd, const LockRequest& req) {
  if (req.kind == Kind::kFlock) {
    int rc = RetryEintr(::flock, fd, (req.shared ? LOCK_SH : LOCK_EX) | LOCK_NB);
    return rc;  // EWOULDBLOCK on conflict
  }
  struct flock fl;
  FillFlock(req, req.shared ? F_RDLCK : F_WRLCK, &fl);
  return FcntlLock(fd, SetLkCommand(req.kind, false), &fl);
}

int BlockingLock(int fd, const LockRequest& req) {
  long rc;
  if (req.kind == Kind::kFlock) {
#if defined(__linux__)
    rc = ::syscall(SYS_flock, fd, req.shared ? LOCK_SH : LOCK_EX);
#else
    rc = ::flock(fd, req.shared ? LOCK_SH : LOCK_EX);
#endif
  } else {
    struct flock fl;
    FillFlock(req, req.shared ? F_RDLCK : F_WRLCK, &fl);
#if defined(__linux__) && defined(SYS_fcntl64)
    rc = ::syscall(SYS_fcntl64, fd, SetLkCommand(req.kind, true), &fl);
#elif defined(__linux__)
    rc = ::syscall(SYS_fcntl, fd, SetLkCommand(req.kind, true), &fl);
#else
    rc = ::fcntl(fd, SetLkCommand(req.kind, true), &fl);
#endif
  }
  return rc == 0 ? 0 : errno;
}

int Unlock(int fd, const LockRequest& req) {
  if (req.kind == Kind::kFlock) return RetryEintr(::flock, fd, LOCK_UN);
  struct flock fl;
  FillFlock(req, F_UNLCK, &fl);
  return FcntlLock(fd, SetLkCommand(req.kind, false), &fl);
}

int GetLock(int fd, const LockRequest& req, int* type, int64_t* pid, int64_t* start, int64_t* length) {
  struct flock fl;
  FillFlock(req, req.shared ? F_RDLCK : F_WRLCK, &fl);
  int cmd = F_GETLK;
#if defined(F_OFD_GETLK)
  if (req.kind == Kind::kOfd) cmd = F_OFD_GETLK;
#endif
  if (::fcntl(fd, cmd, &fl) != 0) return errno;
  *type = fl.l_type;
  *pid = fl.l_pid;
  *start = fl.l_start;
  *length = fl.l_len;
  return 0;
}

int PathNamesFd(int fd, const char* path, bool* same, struct stat* by_fd_out) {
  struct stat& by_fd = *by_fd_out;
  struct stat by_path;
  if (::fstat(fd, &by_fd) != 0) return errno;
  if (::lstat(path, &by_path) != 0) {
    if (errno == ENOENT) {
      *same = false;
      return 0;
    }
    return errno;
  }
  *same = by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
  return 0;
}

int WriteRecord(int fd, const char* data, size_t length, off_t previous_size, Content content, char* scratch) {
  // A lease file's record area is blanked up to its fixed size and the
  // token slot after it is never touched; any other record file is at most
  // kMaxRecordBytes (nothing else is ever written over: see IsOurs).
  const bool lease = content == Content::kLease;
  const off_t blank_to = lease ? kMaxRecordBytes : previous_size;
  size_t total = length;
  std::vector<char> padded;
  if (blank_to > static_cast<off_t>(length) && blank_to <= kMaxRecordBytes) {
    total = static_cast<size_t>(blank_to);
    char* out = scratch;
    if (out == nullptr) {
      padded.resize(total);
      out = padded.data();
    }
    std::memcpy(out, data, length);
    std::memset(out + length, ' ', total - length);
    out[total - 1] = '\n';
    data = out;
  }
  ssize_t written;
  do written = RawPwrite(fd, data, total, 0);
  while (written < 0 && errno == EINTR);
  int err = 0;
  if (written < 0) {
    err = errno;
  } else if (static_cast<size_t>(written) != total) {
    err = ENOSPC;
  }
  // A torn record is worse than none: readers would see half of ours over
  // half of the previous one. Empty is unambiguous ("no record"); a lease
  // file keeps its token slot and gets a blank record area instead.
  if (err != 0) {
    if (lease) {
      std::vector<char> blank(static_cast<size_t>(kMaxRecordBytes), ' ');
      blank.back() = '\n';
      if (::pwrite(fd, blank.data(), blank.size(), 0) < 0) {
        // Nothing more can be done; the record is advisory and err is reported.
      }
    } else if (::ftruncate(fd, 0) != 0) {
      // Nothing more can be done; the record is advisory and err is reported.
    }
  }
  return err;
}

UniqueFd ReopenReadOnlyIfForeign(const char* path, UniqueFd fd, OpenResult* result) {
  if (result->read_only) return fd;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return fd;
  if (IsOurs(ClassifyFile(fd.get(), st.st_size))) return fd;
  UniqueFd reader(::open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  struct stat again;
  if (!reader.valid() || ::fstat(reader.get(), &again) != 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
    return fd;
  }
  result->read_only = true;
  result->write_err = 0;
  return reader;
}

}  // namespace kernel_lock
