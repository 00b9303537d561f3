/**
 * The coordinator's own count of what one provider attempt streamed back: content, reasoning and every tool
 * call's name and arguments, each through its own {@link OutputTokenCounter} (feeding them into one would merge
 * words across streams). The raw o200k_base total is what defendUsage compares a provider's completion claim
 * with, and what a failed or cancelled attempt is billed for.
 */
import type { Delta } from "../inference/types.js";
import { OutputTokenCounter } from "./token-counter.js";

export class StreamedOutput {
  readonly #content = new OutputTokenCounter();
  readonly #reasoning = new OutputTokenCounter();
  readonly #toolCalls = new Map<number, OutputTokenCounter>();
  /** Indices of the tool calls that carried a name: only those are calls (an index alone is three bytes). */
  readonly #namedCalls = new Set<number>();

  add(deltas: readonly Delta[]): void {
    for (const d of deltas) {
      if (d.kind === "content") this.#content.push(d.text);
      else if (d.kind === "reasoning") this.#reasoning.push(d.text);
      else if (d.kind === "tool_call") {
        let c = this.#toolCalls.get(d.index);
        if (!c) this.#toolCalls.set(d.index, (c = new OutputTokenCounter()));
        if (d.name) {
          c.push(d.name);
          this.#namedCalls.add(d.index);
        }
        if (d.arguments) c.push(d.arguments);
      }
    }
  }

  /** Raw o200k_base tokens streamed so far (not scaled to the model's tokenizer). */
  get tokens(): number {
    let n = this.#content.tokens + this.#reasoning.tokens;
    for (const c of this.#toolCalls.values()) n += c.tokens;
    return n;
  }

  /**
   * Tool calls streamed with a name. Each earns the completion claim a framing allowance (defendUsage), so a
   * delta that names no function earns none: 256 empty ones must not buy 4,096 tokens.
   */
  get toolCalls(): number {
    return this.#namedCalls.size;
  }
}
