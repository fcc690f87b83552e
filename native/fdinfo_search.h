// Finding the processes that hold locks on given files through their
// descriptors, natively (src/proc/descriptors.ts holds the policy and the
// parsing). An OFD lock names no process in /proc/locks, so its holder is
// found by reading /proc/<pid>/fdinfo/<fd> of every process: 10,000
// descriptors on a busy host are 10,000 reads. Done from JavaScript on the
// event loop, each read cost ~250 bytes of garbage (young-generation
// collections) and a few reads take 0.3-0.75 ms in the kernel, so the loop
// stalled for over a millisecond however the work was sliced
// (docs/PERFORMANCE.md, "Inspection on a busy host"). Here the walk runs on
// another thread and hands back only the matching lines: the loop does work
// in proportion to the matches, not to the descriptors.
//
// The thread is a waiter thread (waiter_threads.h, the one place that makes
// threads; named `kl-fdinfo` while it searches), never a libuv threadpool
// thread (that pool belongs to the application's fs work), and its result
// reaches JavaScript through the environment's WaitHub, like a finished
// wait. At environment teardown (a worker terminated) the hub aborts the
// search: the walk sees the stop flag before its next read, and the search
// is abandoned rather than joined (the thread is shared: it parks after).
#pragma once

#include <node_api.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wait_hub.h"

namespace kernel_lock {

// What to look for, and the search's bounds (see findDescriptorHolders()).
struct FdinfoQuery {
  // Device fields as /proc/locks and fdinfo print them ("fd:01:5678": major
  // and minor in hex, inode in decimal).
  std::vector<std::string> fields;
  // The processes to read; every process in /proc when `all_pids`.
  std::vector<int> pids;
  bool all_pids = true;
  // At most this many fdinfo files are opened; the search is then incomplete.
  uint64_t max_descriptors = 0;
  // Milliseconds from the start after which the search stops, incomplete;
  // not finite: no time bound.
  double max_ms = 0;
};

// One descriptor whose fdinfo shows a lock on a searched file.
struct FdinfoMatch {
  int pid;
  int fd;
  // Its lines that name a searched device field, each ending in '\n'.
  std::string lines;
};

struct FdinfoResult {
  std::vector<FdinfoMatch> matches;
  // fdinfo files opened (or tried): the bound counts these.
  uint64_t descriptors = 0;
  // False when a bound or a stop cut the search short, or /proc could not be listed.
  bool complete = false;
};

// The walk itself, on any thread; it returns early, incomplete, once `stop`
// is set. Unreadable processes (another user's, exited) are skipped.
void SearchFdinfo(const FdinfoQuery& query, const std::atomic<bool>& stop, FdinfoResult* result);

// { complete, descriptors, pids: number[], fds: number[], lines: string[] }.
napi_value FdinfoResultToJs(napi_env env, const FdinfoResult& result);

class FdinfoSearchJob;

// A search on a waiter thread (waiter_threads.h: the threads waits run on,
// parked between jobs), delivered through the hub. The hub owns it from
// Track() on and deletes it after Deliver() or Abort().
//
// The walk's state lives in a job shared with the thread (FdinfoSearchJob):
// at teardown the search is abandoned, not joined. The walk sees the stop
// flag before its next read and its thread lets go of the job and parks, but
// the loop does not wait for that (on a loaded machine the thread may need
// milliseconds to get a CPU), and the abandoned job never posts.
class AsyncFdinfoSearch final : public Completion {
 public:
  AsyncFdinfoSearch(uint32_t id, WaitHub* hub, FdinfoQuery query);
  ~AsyncFdinfoSearch() override;

  // On the JavaScript thread: keeps `callback` and hands the walk to a
  // waiter thread. Returns 0 or an errno (EAGAIN: no thread to be had); on
  // failure nothing runs and the caller deletes the search. The caller
  // tracks it in the hub first: the thread may post before Begin() returns.
  int Begin(napi_env env, napi_value callback);

  // callback(result): the object FdinfoResultToJs() makes.
  void Deliver(napi_env env, napi_async_context context, napi_value receiver) override;
  // Teardown: stops the walk and abandons it. No JavaScript runs, and the
  // loop does not wait for the thread.
  void Abort() override;
  // Cuts the walk short; what it found so far is delivered, incomplete.
  void Stop() override;

 private:
  // Lets go of the job (once): abandons it unless it was posted, and counts
  // it joined, now or, when its thread is still walking, when it stops.
  void LetGo();

  WaitHub* const hub_;
  const std::shared_ptr<FdinfoSearchJob> job_;
  bool started_ = false;
  bool let_go_ = false;
  napi_env env_ = nullptr;
  napi_ref callback_ = nullptr;
};

}  // namespace kernel_lock
