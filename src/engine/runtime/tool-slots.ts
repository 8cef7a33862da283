/**
 * The bound on tool processes one engine runs at once: a counting semaphore with a FIFO queue. A call takes a
 * slot before its process starts and gives it back once the process is gone; calls beyond the bound wait in
 * arrival order. A waiting call whose signal aborts (its run was canceled or timed out) leaves the queue at
 * once and never starts a process; closing (shutdown) turns every waiting call away the same way.
 */
export class ToolSlots {
  readonly capacity: number;
  #busy = 0;
  #closed = false;
  readonly #queue: Array<(granted: boolean) => void> = [];

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new Error(`the tool process bound must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  /** Slots in use (their processes running or being reaped). */
  get busy(): number {
    return this.#busy;
  }

  /** Calls waiting for a slot. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Resolves true with a slot (give it back with release()), or false when `signal` aborted or the slots closed first. */
  acquire(signal?: AbortSignal): Promise<boolean> {
    if (this.#closed || signal?.aborted) return Promise.resolve(false);
    if (this.#busy < this.capacity) {
      this.#busy++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const onAbort = () => {
        const index = this.#queue.indexOf(settle);
        if (index >= 0) this.#queue.splice(index, 1);
        resolve(false);
      };
      const settle = (granted: boolean) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(granted);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(settle);
    });
  }

  /** Gives a slot back: to the longest-waiting call, if any. */
  release(): void {
    const next = this.#queue.shift();
    if (next) next(true);
    else this.#busy = Math.max(0, this.#busy - 1);
  }

  /** Turns away every waiting call and every later one. */
  close(): void {
    this.#closed = true;
    for (const settle of this.#queue.splice(0)) settle(false);
  }
}
