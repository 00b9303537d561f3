/**
 * One provider attempt of a request, and the pure rules for its deadlines. Phases:
 *
 * - `waiting`: dispatched; nothing received. Bounded by the first-token deadline.
 * - `accepted`: the provider said it is loading the model; the wait extends to the inference timeout.
 * - `preamble`: only role deltas so far (boilerplate, held, not committed). Past the first-token deadline it
 *   gets the preamble-to-content budget, then fails over.
 * - `streaming`: this attempt leads (first content; every rival was cancelled). A streaming response is committed;
 *   a buffered one is held until completion, so a failure here still fails over. Bounded by the idle timeout.
 * - `done`: finished, failed, cancelled or lost the race.
 */
import type { Delta, Usage } from "../inference/types.js";
import type { StreamedOutput } from "../usage/streamed-output.js";
import type { ProviderId } from "../registry/types.js";
import type { Cancel } from "../util/clock.js";
import type { DispatchOptions } from "./dispatch-options.js";

export type AttemptPhase = "waiting" | "accepted" | "preamble" | "streaming" | "done";

export interface Attempt {
  providerId: ProviderId;
  accountId: string;
  version: string;
  /** A speculative backup raced against the primary. */
  backup: boolean;
  phase: AttemptPhase;
  startedAtMs: number;
  /** The first-token deadline. */
  deadlineAtMs: number;
  acceptedAtMs?: number;
  /** When the first content arrived (the attempt won), for the measured prefill and decode rates. */
  firstContentAtMs?: number;
  preambleAtMs?: number;
  timer?: Cancel;
  /** Characters of output streamed to the consumer (for a partial-usage estimate). */
  contentChars: number;
  /** The coordinator's own token count of everything this attempt streamed. */
  output: StreamedOutput;
  /** The provider has sent a frame for this attempt. */
  started?: boolean;
}

/** What an attempt's timer means when it fires. */
export type TimerVerdict =
  | { kind: "extend"; untilMs: number } // still within an extension (accepted, or preamble budget)
  | { kind: "first_token_timeout" } // nothing useful before the deadline: fail over
  | { kind: "stalled" }; // leading and silent past the idle timeout

/** Decides what a fired timer means for a non-finished attempt (pure); `leading`: it has produced content. */
export function timerVerdict(
  a: Attempt,
  leading: boolean,
  nowMs: number,
  o: Pick<DispatchOptions, "inferenceTimeoutMs" | "preambleContentTimeoutMs">,
): TimerVerdict {
  if (leading) return { kind: "stalled" };
  if (a.acceptedAtMs !== undefined && nowMs < a.acceptedAtMs + o.inferenceTimeoutMs)
    return { kind: "extend", untilMs: a.acceptedAtMs + o.inferenceTimeoutMs };
  if (a.preambleAtMs !== undefined && nowMs < a.preambleAtMs + o.preambleContentTimeoutMs)
    return { kind: "extend", untilMs: a.preambleAtMs + o.preambleContentTimeoutMs };
  return { kind: "first_token_timeout" };
}

/** Average characters per token, for estimating what a consumer received when no usage frame came. */
const CHARS_PER_TOKEN = 4;

/** Tokens to bill for what the leader generated before a post-commit failure or the consumer's hang-up. */
export function partialUsage(a: Attempt, promptTokens: number): Usage {
  return { promptTokens, completionTokens: Math.ceil(a.contentChars / CHARS_PER_TOKEN), reasoningTokens: 0 };
}

/** Streamed characters → tokens, for the registry's in-flight accounting. */
export function charsToTokens(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

/** Characters of model output in `deltas` (content, reasoning, tool-call arguments), for the accounting above. */
export function outputChars(deltas: readonly Delta[]): number {
  let chars = 0;
  for (const d of deltas)
    chars +=
      d.kind === "content" || d.kind === "reasoning"
        ? d.text.length
        : d.kind === "tool_call"
          ? (d.arguments?.length ?? 0)
          : 0;
  return chars;
}

/** Provider-reported usage is trusted but bounded by what the request allowed. */
export function clampUsage(u: Usage, maxTokens: number): Usage {
  const completion = Math.min(u.completionTokens, maxTokens);
  return {
    promptTokens: u.promptTokens,
    completionTokens: completion,
    reasoningTokens: Math.min(u.reasoningTokens, completion),
  };
}
