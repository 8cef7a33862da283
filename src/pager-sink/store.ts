/**
 * The pages a pager sink has received, newest last, bounded: once `capacity` pages are held, each new
 * page evicts the oldest, so memory stays flat however long Alertmanager keeps paging.
 */

/** One alert of an Alertmanager webhook notification (payload version 4). */
export interface WebhookAlert {
  readonly status: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly startsAt?: string;
  readonly endsAt?: string;
  readonly generatorURL?: string;
  readonly fingerprint?: string;
}

/** An Alertmanager webhook notification (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config). */
export interface WebhookPayload {
  readonly version?: string;
  readonly groupKey?: string;
  readonly truncatedAlerts?: number;
  readonly status: string;
  readonly receiver: string;
  readonly groupLabels: Readonly<Record<string, string>>;
  readonly commonLabels: Readonly<Record<string, string>>;
  readonly commonAnnotations: Readonly<Record<string, string>>;
  readonly externalURL?: string;
  readonly alerts: readonly WebhookAlert[];
}

/** A received page: the notification as Alertmanager sent it, plus where and when it arrived. */
export interface Page {
  /** Increases by one per page received since the sink started (survives eviction, so gaps show loss). */
  readonly seq: number;
  readonly receivedAt: string;
  /** The receiver named by the URL path (/pages/<receiver>), e.g. "pager" or "notify". */
  readonly receiver: string;
  readonly payload: WebhookPayload;
}

export interface PageFilter {
  readonly receiver?: string;
  readonly alertname?: string;
  readonly status?: string;
  /** Only pages with seq greater than this. */
  readonly since?: number;
}

export class PageStore {
  readonly capacity: number;
  #pages: Page[] = [];
  #nextSeq = 1;
  #evicted = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`page store capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  add(receiver: string, payload: WebhookPayload, receivedAt: Date = new Date()): Page {
    const page: Page = { seq: this.#nextSeq++, receivedAt: receivedAt.toISOString(), receiver, payload };
    this.#pages.push(page);
    if (this.#pages.length > this.capacity) {
      // Amortised: drop a batch at once rather than shifting the array on every add.
      const excess = this.#pages.length - this.capacity;
      this.#pages.splice(0, excess);
      this.#evicted += excess;
    }
    return page;
  }

  list(filter: PageFilter = {}): Page[] {
    return this.#pages.filter((page) => matches(page, filter));
  }

  clear(): void {
    this.#evicted += this.#pages.length;
    this.#pages = [];
  }

  get size(): number {
    return this.#pages.length;
  }

  /** Pages dropped to respect the capacity (or cleared). */
  get evicted(): number {
    return this.#evicted;
  }

  /** Pages received since start. */
  get received(): number {
    return this.#nextSeq - 1;
  }
}

function matches(page: Page, filter: PageFilter): boolean {
  if (filter.since !== undefined && page.seq <= filter.since) return false;
  if (filter.receiver !== undefined && page.receiver !== filter.receiver) return false;
  if (filter.status !== undefined && page.payload.status !== filter.status) return false;
  if (filter.alertname !== undefined) {
    const name = filter.alertname;
    if (!page.payload.alerts.some((alert) => alert.labels['alertname'] === name)) return false;
  }
  return true;
}
