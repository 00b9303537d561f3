/**
 * The leader's output on its way to the consumer's sink, and the one place that decides when it may be written.
 * Before any attempt has content, boilerplate (role deltas) is held, bounded, and replayed ahead of the first
 * content; the leader's output is then held until the response is committed (at once for a streaming consumer,
 * at completion for a buffered one). Kept apart from the run because "what has the consumer seen" is exactly
 * the line between an invisible failover and an in-band error, and it should be answerable from one object.
 */
import type { Delta } from "../inference/types.js";
import type { ProviderId } from "../registry/types.js";
import type { DispatchSink } from "./types.js";

export class DeltaForwarder {
  readonly #sink: DispatchSink;
  readonly #maxHeldPreamble: number;
  /** Boilerplate received before any content, replayed ahead of the first content. */
  readonly #preamble: Delta[] = [];
  /** The leader's output, held until commit (a buffered answer). */
  #pending: Delta[] = [];
  #committed = false;

  /** `maxHeldPreamble`: preamble deltas held at most (DispatchOptions.maxHeldPreamble). */
  constructor(sink: DispatchSink, maxHeldPreamble: number) {
    this.#sink = sink;
    this.#maxHeldPreamble = maxHeldPreamble;
  }

  /** The sink has been committed (a byte may have reached the consumer): failures are in-band from here on. */
  get committed(): boolean {
    return this.#committed;
  }

  /** Holds boilerplate from a not-yet-leading attempt: nothing past the bound, and nothing after a role delta. */
  holdPreamble(deltas: readonly Delta[]): void {
    for (const d of deltas)
      if (this.#preamble.length < this.#maxHeldPreamble && !this.#preamble.some((h) => h.kind === "role"))
        this.#preamble.push(d);
  }

  /** The new leader's first content, behind the held preamble unless it brings its own role delta. */
  emitFirst(deltas: readonly Delta[]): void {
    this.emit(
      this.#preamble.length > 0 && !deltas.some((d) => d.kind === "role") ? [...this.#preamble, ...deltas] : deltas,
    );
  }

  /** A leader that completes with no content at all (an empty answer) still gets the held preamble. */
  emitPreamble(): void {
    if (this.#preamble.length > 0) this.emit(this.#preamble);
  }

  /** The leader's output: to the sink once committed, held until then. */
  emit(ds: readonly Delta[]): void {
    if (this.#committed) this.#sink.deltas(ds);
    else for (const d of ds) this.#pending.push(d);
  }

  /** The point of no return: the sink writes its head, then whatever output was held for it. */
  commit(leader: ProviderId): void {
    this.#committed = true;
    this.#sink.commit(leader);
    if (this.#pending.length > 0) this.#sink.deltas(this.#pending);
    this.#pending = [];
  }

  /** A buffered leader failed before commit: its held output is dropped, never shown or billed. */
  dropPending(): void {
    this.#pending = [];
  }
}
