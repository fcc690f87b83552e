#include "fdinfo_search.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_set>

#include "unique_fd.h"
#include "waiter_threads.h"

namespace kernel_lock {

namespace {

using Clock = std::chrono::steady_clock;

// An fdinfo file is a few lines; a page holds dozens of lock lines. One
// read() of at most this much, as the JavaScript search did.
constexpr size_t kFdinfoBytes = 4096;

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};
// closedir() closes its descriptor directly: a /proc directory never
// carries a posix lock of this process, so the posix table has no say.
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// A /proc entry name made only of digits (a pid, a descriptor number), as int; -1 otherwise.
int NumberName(const char* name) {
  if (*name == '\0') return -1;
  long value = 0;
  for (const char* c = name; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9') return -1;
    value = value * 10 + (*c - '0');
    if (value > 0x7fffffff) return -1;
  }
  return static_cast<int>(value);
}

// Every pid listed in /proc now (its pid namespace's view); false when /proc cannot be listed.
bool ListPids(std::vector<int>* pids) {
  UniqueDir dir(opendir("/proc"));
  if (dir == nullptr) return false;
  while (dirent* entry = readdir(dir.get())) {
    int pid = NumberName(entry->d_name);
    if (pid > 0) pids->push_back(pid);
  }
  return true;
}

// Does the line have a whitespace-separated token equal to one of the fields?
// Every line the parser in src/proc/proc-locks.ts accepts for a field has it
// as such a token (and the parser confirms it is the device column).
bool NamesField(std::string_view line, const std::unordered_set<std::string_view>& fields) {
  size_t at = 0;
  while (at < line.size()) {
    while (at < line.size() && (line[at] == ' ' || line[at] == '\t')) ++at;
    size_t end = at;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
    if (end > at && fields.count(line.substr(at, end - at)) != 0) return true;
    at = end;
  }
  return false;
}

// Appends to `lines` each line of `text` that names a field; true if any did.
bool PickLines(std::string_view text, const std::unordered_set<std::string_view>& fields, std::string* lines) {
  bool any = false;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    if (NamesField(line, fields)) {
      lines->append(line.data(), line.size());
      lines->push_back('\n');
      any = true;
    }
    if (newline == std::string_view::npos) break;
    text.remove_prefix(newline + 1);
  }
  return any;
}

// The walk's state: its bounds and where it stands against them.
class Walk {
 public:
  Walk(const FdinfoQuery& query, const std::atomic<bool>& stop, FdinfoResult* result)
      : query_(query), stop_(stop), result_(result), started_(Clock::now()) {
    for (const std::string& field : query.fields) fields_.insert(field);
    if (std::isfinite(query.max_ms)) {
      timed_ = true;
      double us = std::max(0.0, query.max_ms) * 1000.0;
      deadline_ = started_ + std::chrono::microseconds(static_cast<int64_t>(std::min(us, 1e15)));
    }
  }

  // Reads the fdinfo of one process; false once a bound or a stop cut the search short.
  bool Process(int pid) {
    char path[64];
    std::snprintf(path, sizeof(path), "/proc/%d/fdinfo", pid);
    int dir_fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return true;  // gone, or not ours to read (EACCES)
    UniqueDir dir(fdopendir(dir_fd));
    if (dir == nullptr) {
      ::close(dir_fd);
      return true;
    }
    while (dirent* entry = readdir(dir.get())) {
      int fd = NumberName(entry->d_name);
      if (fd < 0) continue;  // "." and ".."
      if (!MayRead()) return false;
      ++result_->descriptors;
      Read(pid, fd, dirfd(dir.get()), entry->d_name);
    }
    return true;  // listed to its end, or the process exited meanwhile
  }

 private:
  bool MayRead() const {
    if (stop_.load(std::memory_order_relaxed)) return false;
    if (result_->descriptors >= query_.max_descriptors) return false;
    return !timed_ || Clock::now() <= deadline_;
  }

  void Read(int pid, int fd, int dir_fd, const char* name) {
    UniqueFd file(::openat(dir_fd, name, O_RDONLY | O_CLOEXEC));
    if (!file.valid()) return;  // closed meanwhile
    ssize_t n;
    do {
      n = ::read(file.get(), buffer_, sizeof(buffer_));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return;
    std::string_view text(buffer_, static_cast<size_t>(n));
    // Most descriptors carry no lock: one search settles them.
    if (text.find("lock:") == std::string_view::npos) return;
    std::string lines;
    if (PickLines(text, fields_, &lines)) result_->matches.push_back(FdinfoMatch{pid, fd, std::move(lines)});
  }

  const FdinfoQuery& query_;
  const std::atomic<bool>& stop_;
  FdinfoResult* const result_;
  std::unordered_set<std::string_view> fields_;
  const Clock::time_point started_;
  bool timed_ = false;
  Clock::time_point deadline_{};
  char buffer_[kFdinfoBytes];
};

}  // namespace

void SearchFdinfo(const FdinfoQuery& query, const std::atomic<bool>& stop, FdinfoResult* result) {
  result->complete = false;
  // The walk keeps a page-sized buffer: on the heap, not the thread's small
  // stack. Made first: its time bound runs from here.
  auto walk = std::make_unique<Walk>(query, stop, result);
  std::vector<int> listed;
  if (query.all_pids && !ListPids(&listed)) return;
  const std::vector<int>& pids = query.all_pids ? listed : query.pids;
  for (int pid : pids) {
    if (!walk->Process(pid)) return;
  }
  result->complete = true;
}

napi_value FdinfoResultToJs(napi_env env, const FdinfoResult& result) {
  napi_value object, complete, descriptors, pids, fds, lines;
  size_t count = result.matches.size();
  if (napi_create_object(env, &object) != napi_ok || napi_get_boolean(env, result.complete, &complete) != napi_ok ||
      napi_create_double(env, static_cast<double>(result.descriptors), &descriptors) != napi_ok ||
      napi_create_array_with_length(env, count, &pids) != napi_ok ||
      napi_create_array_with_length(env, count, &fds) != napi_ok ||
      napi_create_array_with_length(env, count, &lines) != napi_ok) {
    return nullptr;
  }
  for (size_t i = 0; i < count; ++i) {
    const FdinfoMatch& match = result.matches[i];
    napi_value pid, fd, text;
    // fdinfo text is ASCII; latin1 keeps any other byte as it is.
    if (napi_create_int32(env, match.pid, &pid) != napi_ok || napi_create_int32(env, match.fd, &fd) != napi_ok ||
        napi_create_string_latin1(env, match.lines.data(), match.lines.size(), &text) != napi_ok ||
        napi_set_element(env, pids, static_cast<uint32_t>(i), pid) != napi_ok ||
        napi_set_element(env, fds, static_cast<uint32_t>(i), fd) != napi_ok ||
        napi_set_element(env, lines, static_cast<uint32_t>(i), text) != napi_ok) {
      return nullptr;
    }
  }
  if (napi_set_named_property(env, object, "complete", complete) != napi_ok ||
      napi_set_named_property(env, object, "descriptors", descriptors) != napi_ok ||
      napi_set_named_property(env, object, "pids", pids) != napi_ok ||
      napi_set_named_property(env, object, "fds", fds) != napi_ok ||
      napi_set_named_property(env, object, "lines", lines) != napi_ok) {
    return nullptr;
  }
  return object;
}

// The walk's side of an async search, shared by the completion (on the
// JavaScript thread) and the waiter thread that runs it, so that either may
// let go of it first: at teardown the completion is deleted while the thread
// may still be finishing its last read.
class FdinfoSearchJob final : public ThreadJob {
 public:
  explicit FdinfoSearchJob(FdinfoQuery query) : query_(std::move(query)) {}

  // Hands the walk to a waiter thread, which keeps `self` until its last
  // touch and posts `completion` to `hub` when done, unless the search was
  // abandoned first. Returns 0 or an errno from pthread_create (nothing runs).
  int Start(std::shared_ptr<FdinfoSearchJob> self, WaitHub* hub, Completion* completion) {
    hub_ = hub;
    completion_ = completion;
    self_ = std::move(self);
    pthread_t thread;
    int err = WaiterThreads::Get().Run(this, &thread);
    if (err != 0) self_.reset();  // no thread took it
    return err;
  }

  void Stop() { stop_.store(true, std::memory_order_relaxed); }

  // On the JavaScript thread: the completion lets go. The walk stops before
  // its next read and nothing is posted from now on. True when the thread
  // had posted already, i.e. it is done with the search (its owner counts
  // it joined); otherwise the thread does that when it sees the abandon.
  bool Abandon() {
    Stop();
    std::lock_guard<std::mutex> lock(mutex_);
    abandoned_ = true;
    return posted_;
  }

  const FdinfoResult& result() const { return result_; }

 private:
  void RunOnThread() override {
    // The thread's reference, dropped when this returns: the job may go then.
    std::shared_ptr<FdinfoSearchJob> self = std::move(self_);
#if defined(__linux__)
    // Named while it searches, so that it can be told apart in `top -H`, in a
    // debugger, and by the tests (/proc/self/task/*/comm); the waiter
    // thread's own name comes back before the result is posted. prctl, not
    // pthread_getname_np: musl before 1.2.3 lacks the latter, and the addon
    // would not load there.
    char name[16] = "";
    bool renamed = prctl(PR_GET_NAME, name) == 0 && prctl(PR_SET_NAME, "kl-fdinfo") == 0;
#endif
    SearchFdinfo(query_, stop_, &result_);
#if defined(__linux__)
    if (renamed) prctl(PR_SET_NAME, name);
#endif
    bool abandoned;
    {
      // Posted under the job's lock: Abandon() either sees it posted or
      // keeps it from posting to a completion that is being deleted.
      std::lock_guard<std::mutex> lock(mutex_);
      abandoned = abandoned_;
      if (!abandoned) {
        posted_ = true;
        hub_->Post(completion_);
      }
    }
    if (abandoned) WaiterThreads::Get().Joined();
  }

  const FdinfoQuery query_;
  FdinfoResult result_;
  std::atomic<bool> stop_{false};
  WaitHub* hub_ = nullptr;
  Completion* completion_ = nullptr;
  std::shared_ptr<FdinfoSearchJob> self_;
  std::mutex mutex_;
  bool abandoned_ = false;
  bool posted_ = false;
};

AsyncFdinfoSearch::AsyncFdinfoSearch(uint32_t id, WaitHub* hub, FdinfoQuery query)
    : Completion(id), hub_(hub), job_(std::make_shared<FdinfoSearchJob>(std::move(query))) {}

AsyncFdinfoSearch::~AsyncFdinfoSearch() {
  LetGo();
  if (callback_ != nullptr) napi_delete_reference(env_, callback_);
}

int AsyncFdinfoSearch::Begin(napi_env env, napi_value callback) {
  env_ = env;
  if (napi_create_reference(env, callback, 1, &callback_) != napi_ok) return ENOMEM;
  int err = job_->Start(job_, hub_, this);
  if (err == 0) started_ = true;
  return err;
}

void AsyncFdinfoSearch::LetGo() {
  if (!started_ || let_go_) return;
  let_go_ = true;
  if (job_->Abandon()) WaiterThreads::Get().Joined();
}

void AsyncFdinfoSearch::Stop() {
  job_->Stop();
}

void AsyncFdinfoSearch::Deliver(napi_env env, napi_async_context context, napi_value receiver) {
  // The thread posted as its last use of the search: it is done with it
  // (and parks for the next wait or search) before JavaScript hears of it.
  LetGo();
  napi_value callback, argv[1], ignored;
  bool ready = napi_get_reference_value(env, callback_, &callback) == napi_ok && callback != nullptr &&
               (argv[0] = FdinfoResultToJs(env, job_->result())) != nullptr;
  napi_delete_reference(env, callback_);
  callback_ = nullptr;
  if (ready && napi_make_callback(env, context, receiver, callback, 1, argv, &ignored) == napi_pending_exception) {
    // A throwing callback surfaces as an uncaught exception, as for any callback.
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
  }
}

void AsyncFdinfoSearch::Abort() {
  // Not joined: the walk stops before its next read on its own, and the
  // thread drops the job and parks without posting. The loop is not made to
  // wait for a thread that may need milliseconds to get a CPU.
  LetGo();
}

}  // namespace kernel_lock
