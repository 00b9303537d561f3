/**
 * The operator log of one request's run: every line carries `request_id` and `model`, and a line about an
 * attempt also its `provider_id` and 1-based `attempt`. Its own module because the run and its launcher both
 * write these lines, and the ids must be spelled the same way on all of them.
 */
import type { Logger } from "../util/logger.js";
import type { Attempt } from "./attempt.js";
import type { FailoverBook } from "./failover-book.js";
import type { DispatchJob } from "./types.js";

export class RunLog {
  readonly #log: Logger | undefined;
  readonly #job: DispatchJob;
  readonly #book: FailoverBook;

  /** `log`: the dispatcher's operator log; without one, every line is dropped. */
  constructor(log: Logger | undefined, job: DispatchJob, book: FailoverBook) {
    this.#log = log;
    this.#job = job;
    this.#book = book;
  }

  /** One operator log line about this request (and, when given, one of its attempts). */
  line(level: "debug" | "info" | "warn", msg: string, a: Attempt | undefined, fields: Record<string, unknown>): void {
    const log = this.#log;
    if (!log) return;
    const who = a ? { provider_id: a.providerId, attempt: this.#book.ordinal(a) } : {};
    log[level](msg, { request_id: this.#job.requestId, model: this.#job.model, ...who, ...fields });
  }
}
