/*
 * What bench/floor.c shares with bench/floor-waiters.c: the system calls of
 * kernel-lock's acquisition, in the pieces an async waiter splits between
 * its threads.
 */
#pragma once

#include <stdint.h>

uint64_t now_ns(void);
void die(const char* what);

/* Locks the whole file with the serve mode's kind (flock, ofd or posix);
 * busy is reported as EWOULDBLOCK. */
int lock_fd(int fd, int blocking);
/* open(O_RDWR|O_CREAT|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK). */
int open_lock_file(const char* path);
/* The checks made before a wait: fstat, fstatfs. */
void before_wait(int fd);
/* After the grant: fstat + lstat (the path still names the locked inode),
 * [fstatfs when there was no wait], pread, pwrite (the owner record).
 * Returns 0, or -1 when the file was unlinked or replaced. */
int verify_and_record(const char* path, int fd, int waited);

/* When the current acquisition entered the wait (the blocking call, or the
 * inotify waiter's first sleep); 0 when it did not wait. For the crowd's
 * order by queue entry (bench/twowake.mjs). */
extern uint64_t queued_ns;

/* serve-async: the blocking acquisition of an async Node waiter (a thread
 * blocked in the lock call, then eventfd -> epoll_wait). pin: the waiter
 * thread runs on the CPU the main thread last ran on. */
void open_async_waiter(int pin);
int acquire_async(const char* path);

/* serve-inotify (an experiment): one thread; the main thread sleeps in
 * epoll_wait on an inotify watch of the lock file and retries without
 * blocking on every close. */
void open_inotify_waiter(void);
int acquire_inotify(const char* path);
/* Waits that ended only on the fallback timer (a release without a close
 * event, or a close event before the lock was released). */
extern long inotify_late_wakes;
