/**
 * The fleet view's KV bucket (memory storage: soft state the Macs rebuild in seconds) and the one watch this
 * process keeps on it. The handle is opened on demand and dropped after a failure or a reconnect (a restarted
 * server has lost the bucket; `create` makes it again). The watch is re-created with backoff whenever it ends
 * or fails, never per request (users report consumer leaks on reconnect storms); a reconnect wakes it at once.
 */
import { Kvm, type KV, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator } from "@nats-io/transport-node";
import { count } from "../telemetry/metrics.js";
import type { Logger } from "../util/logger.js";

/** A snapshot value bigger than this is refused by the bucket (a Mac with thousands of requests in flight). */
const MAX_SNAPSHOT_BYTES = 1024 * 1024;
/** Backoff of a failed watch. */
const WATCH_BACKOFF_MIN_MS = 250;
const WATCH_BACKOFF_MAX_MS = 5_000;
/** Refused snapshot keys logged (once each) per process; past it they are only counted. */
const MAX_LOGGED_REFUSALS = 1_024;

export class FleetBucket {
  readonly #nc: NatsConnection;
  readonly #name: string;
  readonly #log: Logger;
  readonly #node: string;
  #kv: Promise<KV> | undefined;
  #watcher: QueuedIterator<KvWatchEntry> | undefined;
  /** Ends the watch loop's backoff sleep early (set while it sleeps). */
  #wake: (() => void) | undefined;
  #stopped = false;
  readonly #refusedKeys = new Set<string>();

  constructor(nc: NatsConnection, name: string, node: string, log: Logger) {
    this.#nc = nc;
    this.#name = name;
    this.#node = node;
    this.#log = log;
  }

  /** The bucket, created if it does not exist. */
  open(): Promise<KV> {
    this.#kv ??= new Kvm(this.#nc)
      .create(this.#name, { storage: "memory", history: 1, maxValueSize: MAX_SNAPSHOT_BYTES })
      .catch((e: unknown) => {
        this.#kv = undefined;
        throw e;
      });
    return this.#kv;
  }

  /** The handle if one is open or opening (no new open). */
  get opened(): Promise<KV> | undefined {
    return this.#kv;
  }

  /** A write failed: the next use opens the bucket again. */
  invalidate(): void {
    this.#kv = undefined;
  }

  /** The connection is back: re-open the bucket and re-create the watch at once. */
  reconnected(): void {
    this.#kv = undefined;
    this.#watcher?.stop();
    this.#wake?.();
  }

  /** Watches every key (last values, then updates) until {@link stop}, re-creating the watch as needed. */
  async watch(onEntry: (e: KvWatchEntry) => void): Promise<void> {
    let backoff = WATCH_BACKOFF_MIN_MS;
    while (!this.#stopped) {
      try {
        const iter = await (await this.open()).watch();
        this.#watcher = iter;
        backoff = WATCH_BACKOFF_MIN_MS;
        for await (const e of iter) this.#apply(onEntry, e);
      } catch (e) {
        this.#kv = undefined;
        this.#log.warn("cluster fleet view: watch failed; retrying", {
          node: this.#node,
          retry_in_ms: backoff,
          reason: String(e),
        });
      }
      if (this.#stopped) return;
      const woken = await new Promise<boolean>((resolve) => {
        this.#wake = () => resolve(true);
        setTimeout(() => resolve(false), backoff).unref();
      });
      this.#wake = undefined;
      // A reconnect wakes the loop at once with a fresh backoff: the outage that grew it is over.
      backoff = woken ? WATCH_BACKOFF_MIN_MS : Math.min(backoff * 2, WATCH_BACKOFF_MAX_MS);
    }
  }

  /**
   * One entry, isolated: an entry that throws (a peer on another version, a forged key) is skipped and counted,
   * or the watch would fail on it, restart, replay up to it and never apply a later entry again.
   */
  #apply(onEntry: (e: KvWatchEntry) => void, e: KvWatchEntry): void {
    try {
      onEntry(e);
    } catch (err) {
      count("cluster.snapshots_refused");
      if (this.#refusedKeys.size < MAX_LOGGED_REFUSALS && !this.#refusedKeys.has(e.key)) {
        this.#refusedKeys.add(e.key);
        this.#log.warn("cluster fleet view: snapshot refused", { node: this.#node, key: e.key, reason: String(err) });
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#watcher?.stop();
    this.#wake?.();
  }
}
