/**
 * Assembles streamed tool-call fragments (`Delta` of kind "tool_call") into whole calls, keyed by the call's
 * index in the response. Shared by every renderer so id/name defaults and argument concatenation agree.
 */
import type { Delta, FinishReason } from "../../inference/types.js";

export interface AssembledToolCall {
  index: number;
  id: string;
  name: string;
  arguments: string;
}

type ToolCallDelta = Extract<Delta, { kind: "tool_call" }>;

/** Collects tool calls of one response. */
export class ToolCallAssembler {
  readonly #calls = new Map<number, AssembledToolCall>();
  readonly #idPrefix: string;

  /** @param idPrefix used to mint ids for calls whose provider sent none, e.g. `call_<requestId>_`. */
  constructor(idPrefix: string) {
    this.#idPrefix = idPrefix;
  }

  /** Applies one fragment. `first` is true when the fragment opened the call (id and name go out then). */
  add(d: ToolCallDelta): { call: AssembledToolCall; first: boolean } {
    let call = this.#calls.get(d.index);
    const first = call === undefined;
    if (call === undefined) {
      call = { index: d.index, id: d.id ?? `${this.#idPrefix}${d.index}`, name: d.name ?? "", arguments: "" };
      this.#calls.set(d.index, call);
    } else if (d.name !== undefined && call.name === "") {
      // Some engines send the name on a later fragment; keep the first non-empty one.
      call.name = d.name;
    }
    if (d.arguments !== undefined) call.arguments += d.arguments;
    return { call, first };
  }

  get size(): number {
    return this.#calls.size;
  }

  /** All calls in index order. */
  list(): AssembledToolCall[] {
    return [...this.#calls.values()].sort((a, b) => a.index - b.index);
  }
}

/**
 * A provider that emitted tool calls but reported `stop` still ended on tool calls: SDKs (and agents) key
 * their tool loop on `tool_calls`, so report that.
 */
export function effectiveFinishReason(reason: FinishReason, sawToolCalls: boolean): FinishReason {
  return sawToolCalls && reason === "stop" ? "tool_calls" : reason;
}
