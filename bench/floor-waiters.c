/*
 * Async waiters in C, for bench/floor.c's serve-async and serve-inotify
 * modes: how a waiter that must not block its main thread waits, with
 * nothing of Node around it, so a hand-off's cost can be split between the
 * kernel, the waiting shape and the runtime.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "floor.h"

/*
 * The two-wake-up waiter: the shape of every async waiter in Node, kernel-lock
 * lock() included (native/waiter_threads.cc, waiter.cc, wait_hub.cc), in C.
 * The main thread tries once without blocking; when the lock is busy it makes
 * the pre-wait checks, hands the descriptor to a parked waiter thread
 * (mutex + condition variable) and sleeps in epoll_wait on an eventfd, as
 * libuv's loop does on its uv_async_t. The waiter thread blocks in flock(2);
 * on the grant it runs kernel-lock's verification and owner record on the
 * same thread (fstat, lstat, pread, pwrite), posts the descriptor under the
 * mutex and writes the eventfd (uv_async_send), then parks again. The main
 * thread wakes, reads the eventfd and holds the lock. A hand-off thus pays
 * two wake-ups in series (the waiter thread's, then the main thread's) where
 * a process blocked in flock pays one. kernel-lock's thread also unblocks its
 * cancellation signal around the blocking call (native/interrupt.cc): the
 * two sigprocmask calls are made here too. Its thread exits after 2 s parked;
 * this one parks for good (a thread is created only once per process).
 */
static struct {
  pthread_mutex_t mutex;
  pthread_cond_t wake;
  pthread_t thread;
  int started;
  const char* path;
  int job_fd;   /* handed to the thread, -1 when none */
  int done_fd;  /* posted by the thread, -1 when none */
  int pin_cpu;  /* pin the thread to the main thread's last CPU (experiment), -1: do not */
  int event_fd; /* the loop's eventfd */
  int epoll_fd; /* the loop */
} loop = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, -1, -1, -1, -1, -1};

static int pin_waiter = 0;

static int interrupt_signal(void) {
  return SIGRTMAX - 1;
}

/* On the waiter thread: wait for the lock on fd, verify, record; as
 * GrantWork::Run does, a replaced file is reopened and locked on this
 * thread, the orphan kept locked until the new file is held. */
static int wait_on_thread(const char* path, int fd) {
  sigset_t ours;
  sigemptyset(&ours);
  sigaddset(&ours, interrupt_signal());
  queued_ns = now_ns(); /* read by the main thread after the post (the mutex orders it) */
  for (;;) {
    pthread_sigmask(SIG_UNBLOCK, &ours, NULL);
    int rc = lock_fd(fd, 1);
    pthread_sigmask(SIG_BLOCK, &ours, NULL);
    if (rc != 0) die("flock");
    if (verify_and_record(path, fd, 1) == 0) return fd;
    int orphan = fd;
    fd = open_lock_file(path);
    if (lock_fd(fd, 0) == 0) {
      close(orphan);
      if (verify_and_record(path, fd, 0) == 0) return fd;
      continue; /* replaced again: wait on the one we hold (granted at once) */
    }
    if (errno != EWOULDBLOCK) die("flock");
    before_wait(fd);
    pthread_sigmask(SIG_UNBLOCK, &ours, NULL);
    rc = lock_fd(fd, 1);
    pthread_sigmask(SIG_BLOCK, &ours, NULL);
    if (rc != 0) die("flock");
    close(orphan);
    if (verify_and_record(path, fd, 1) == 0) return fd;
  }
}

static void* waiter_main(void* unused) {
  (void)unused;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&loop.mutex);
  for (;;) {
    while (loop.job_fd < 0) pthread_cond_wait(&loop.wake, &loop.mutex); /* parked */
    int fd = loop.job_fd;
    loop.job_fd = -1;
    int cpu = loop.pin_cpu;
    pthread_mutex_unlock(&loop.mutex);
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    fd = wait_on_thread(loop.path, fd);
    pthread_mutex_lock(&loop.mutex); /* the hub's queue */
    loop.done_fd = fd;
    pthread_mutex_unlock(&loop.mutex);
    uint64_t one = 1;
    if (write(loop.event_fd, &one, sizeof one) != sizeof one) die("write eventfd");
    pthread_mutex_lock(&loop.mutex);
  }
  return NULL;
}

int acquire_async(const char* path) {
  for (;;) {
    int fd = open_lock_file(path);
    if (lock_fd(fd, 0) == 0) {
      if (verify_and_record(path, fd, 0) == 0) return fd;
      close(fd);
      continue;
    }
    if (errno != EWOULDBLOCK) die("flock");
    before_wait(fd);
    pthread_mutex_lock(&loop.mutex);
    loop.path = path;
    loop.job_fd = fd;
    loop.pin_cpu = pin_waiter ? sched_getcpu() : -1;
    if (!loop.started) {
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setstacksize(&attr, 256 * 1024);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      if (pthread_create(&loop.thread, &attr, waiter_main, NULL) != 0) die("pthread_create");
      pthread_attr_destroy(&attr);
      loop.started = 1;
    }
    pthread_mutex_unlock(&loop.mutex);
    pthread_cond_signal(&loop.wake);
    /* The event loop's sleep. */
    struct epoll_event event;
    int n;
    do n = epoll_wait(loop.epoll_fd, &event, 1, -1);
    while (n < 0 && errno == EINTR);
    if (n != 1) die("epoll_wait");
    uint64_t count;
    if (read(loop.event_fd, &count, sizeof count) != sizeof count) die("read eventfd");
    pthread_mutex_lock(&loop.mutex);
    fd = loop.done_fd;
    loop.done_fd = -1;
    pthread_mutex_unlock(&loop.mutex);
    return fd;
  }
}

void open_async_waiter(int pin) {
  pin_waiter = pin;
  loop.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* as libuv's uv_async_t */
  loop.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (loop.event_fd < 0 || loop.epoll_fd < 0) die("eventfd/epoll");
  struct epoll_event event = {.events = EPOLLIN, .data = {.fd = loop.event_fd}};
  if (epoll_ctl(loop.epoll_fd, EPOLL_CTL_ADD, loop.event_fd, &event) != 0) die("epoll_ctl");
  /* Blocked in the main thread too: a process-directed copy goes to no one. */
  sigset_t ours;
  sigemptyset(&ours);
  sigaddset(&ours, interrupt_signal());
  pthread_sigmask(SIG_BLOCK, &ours, NULL);
}

/*
 * The one-wake-up async waiter (an experiment; the candidate "an
 * inotify-driven wake on the event loop"): no thread. When the lock is busy
 * the main thread watches the lock file for closes (IN_CLOSE_WRITE |
 * IN_CLOSE_NOWRITE: a holder's release is the close of its descriptor),
 * sleeps in epoll_wait on the inotify descriptor, and tries the lock again
 * without blocking on every event. Such a waiter is not in the kernel's queue
 * of the lock: whoever retries first after a close wins.
 *
 * Two holes: the kernel posts the close event (fsnotify_close, in __fput)
 * BEFORE it removes the closing descriptor's locks (locks_remove_file), so a
 * waiter that runs at once can find the lock still held and sleep on with no
 * further event coming (the count below shows it happen); and a release by
 * flock(LOCK_UN) is no close and posts no event at all. Here a fallback timer
 * (kFallbackMs) retries then, and counts each wait it ended
 * (inotify_late_wakes); a real waiter would keep a blocked thread instead.
 */
enum { kFallbackMs = 20 };
long inotify_late_wakes = 0;
static int inotify_fd = -1;
static int inotify_epoll = -1;

void open_inotify_waiter(void) {
  inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  inotify_epoll = epoll_create1(EPOLL_CLOEXEC);
  if (inotify_fd < 0 || inotify_epoll < 0) die("inotify/epoll");
  struct epoll_event event = {.events = EPOLLIN, .data = {.fd = inotify_fd}};
  if (epoll_ctl(inotify_epoll, EPOLL_CTL_ADD, inotify_fd, &event) != 0) die("epoll_ctl");
}

static void drain_events(void) {
  char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  while (read(inotify_fd, events, sizeof events) > 0) {
  }
}

int acquire_inotify(const char* path) {
  for (;;) {
    int fd = open_lock_file(path);
    int waited = 0;
    if (lock_fd(fd, 0) != 0) {
      if (errno != EWOULDBLOCK) die("flock");
      before_wait(fd);
      /* Added once per file and kept (adding it again only returns the
       * same watch): removing it would be one more call after the grant. */
      if (inotify_add_watch(inotify_fd, path, IN_CLOSE_WRITE | IN_CLOSE_NOWRITE) < 0) die("inotify_add_watch");
      for (;;) {
        drain_events(); /* closes from before this attempt, our own included */
        /* Tried after the watch is in place: a release before it posted no
         * event we could see. */
        if (lock_fd(fd, 0) == 0) break;
        if (errno != EWOULDBLOCK) die("flock");
        if (queued_ns == 0) queued_ns = now_ns();
        struct epoll_event event;
        int n;
        do n = epoll_wait(inotify_epoll, &event, 1, kFallbackMs);
        while (n < 0 && errno == EINTR);
        if (n < 0) die("epoll_wait");
        if (n == 0) {
          if (lock_fd(fd, 0) == 0) {
            ++inotify_late_wakes; /* free, and no event said so */
            break;
          }
          if (errno != EWOULDBLOCK) die("flock");
        }
      }
      waited = 1;
    }
    if (verify_and_record(path, fd, waited) == 0) return fd;
    close(fd);
  }
}
