// KernelLockAddon (addon.h): descriptors opened only to read a lock file (a
// probe, an owner record). They are closed through the posix table
// (closeDescriptor: closing any descriptor of a file would drop this
// process's posix locks on it), so they are opened here too, not with
// node:fs: in a worker_thread Node tracks every descriptor fs.open() returns
// until fs.close() closes it ("unmanaged" descriptors, closed when the
// worker exits), and one closed behind its back stays tracked. Its number,
// reused by the next open, then drew "File descriptor N opened in unmanaged
// mode twice", and Node closes the numbers a worker still tracks when it
// exits (trackUnmanagedFds), whatever they may have come to name by then.
#include <fcntl.h>

#include <cerrno>

#include "addon.h"

namespace kernel_lock {

Napi::Value KernelLockAddon::OpenReader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char path[kPathBuffer];
  if (!ReadPath(info[0], path, sizeof(path))) return env.Undefined();
  // Never creates (reading must not leave a file behind); no symlink
  // redirection and no hanging on a FIFO, as for the lock itself.
  int fd;
  do {
    fd = ::open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Napi::Number::New(env, -errno);
  // The environment's, like a lock's descriptor: a worker terminated while a
  // read of it is on the threadpool (readRecord()) has it closed at teardown.
  Track(fd);
  return Napi::Number::New(env, fd);
}

}  // namespace kernel_lock
