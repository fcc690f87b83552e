// One 'abort' listener per AbortSignal, however many waits share it.
// Sharing one controller among many lock() calls is ordinary (cancel every
// waiter of a request at once), but a listener per wait makes Node print a
// MaxListenersExceededWarning past ten: a false leak report to the user.

const subscribers = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `fn` once when `signal` aborts; returns the function that unsubscribes. */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  // A listener added after the event would never run.
  if (signal.aborted) {
    fn();
    return () => {};
  }
  let set = subscribers.get(signal);
  if (set === undefined) {
    const fresh = new Set<() => void>();
    set = fresh;
    subscribers.set(signal, fresh);
    signal.addEventListener(
      'abort',
      () => {
        subscribers.delete(signal);
        for (const subscriber of fresh) subscriber();
        fresh.clear();
      },
      { once: true },
    );
  }
  const current = set;
  current.add(fn);
  return () => {
    current.delete(fn);
  };
}
