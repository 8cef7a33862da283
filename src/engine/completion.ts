/**
 * Wakes whoever waits on an execution the moment it is finalized. Waiters subscribe before they read
 * the store, so a completion between the read and the wait is never missed; a wait that ends for
 * another reason unsubscribes, so nothing accumulates.
 */
export class CompletionNotifier {
  readonly #waiters = new Map<string, Set<() => void>>();

  /** A promise that resolves when `id` is finalized, and a way to stop waiting. */
  subscribe(id: string): { readonly completed: Promise<void>; readonly unsubscribe: () => void } {
    let wake!: () => void;
    const completed = new Promise<void>((resolve) => {
      wake = resolve;
    });
    let set = this.#waiters.get(id);
    if (!set) this.#waiters.set(id, (set = new Set()));
    set.add(wake);
    return {
      completed,
      unsubscribe: () => {
        const current = this.#waiters.get(id);
        current?.delete(wake);
        if (current?.size === 0) this.#waiters.delete(id);
      },
    };
  }

  notify(id: string): void {
    const set = this.#waiters.get(id);
    if (!set) return;
    this.#waiters.delete(id);
    for (const wake of set) wake();
  }

  get waiting(): number {
    return this.#waiters.size;
  }
}
