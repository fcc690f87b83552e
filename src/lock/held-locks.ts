// The locks this thread holds, by inode. The kernel is the authority on who
// holds what; this table only answers questions the kernel cannot answer for
// us cheaply: "would this synchronous wait block on ourselves?" and, for
// inspection, "is the holder this very process?".

/** Key of an inode: "dev:ino". */
export type InodeKey = string;

const counts = new Map<InodeKey, number>();

export function inodeKey(dev: number, ino: number): InodeKey {
  return `${dev}:${ino}`;
}

export function noteAcquired(key: InodeKey): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

export function noteReleased(key: InodeKey): void {
  const count = counts.get(key) ?? 0;
  if (count <= 1) counts.delete(key);
  else counts.set(key, count - 1);
}

/** How many handles of this thread hold a lock on the inode. */
export function heldHere(key: InodeKey): number {
  return counts.get(key) ?? 0;
}
