/**
 * Failure injection for simulated Macs: what a Mac does with one inference request, chosen from a queue of
 * scripted behaviours (consumed in order, optionally filtered by model / tools) or from per-Mac
 * probabilities drawn with a seeded PRNG. Pure: the SimulatedMac carries the chosen behaviour out.
 */
import type { ErrorReason } from "../../../gen/coordinator/provider/v1/provider_pb.js";

/**
 * One request's behaviour.
 * - `normal`: generate as usual.
 * - `error_before_content`: InferenceError (default 500 INTERNAL) before any content; after the role delta
 *   unless `afterRole: false`.
 * - `disconnect_before_content`: send the role delta, then break the gRPC stream (the Mac reconnects).
 * - `role_then_stall`: send the role delta, then nothing for this request.
 * - `error_after_content`: `afterTokens` content tokens (default 5), then InferenceError (default 500 INTERNAL).
 * - `stall_after_content`: `afterTokens` content tokens (default 5), then nothing.
 * - `slow_first_token`: generate normally, but wait `delayMs` extra **real** milliseconds (not scaled by
 *   timeScale, so a test can race it against the coordinator's real deadlines) before the first content.
 * - `tool_call`: if the request has tools, answer with a tool call to its first tool (finish TOOL_CALLS).
 */
export type FailureBehaviour =
  | { kind: "normal" }
  | { kind: "error_before_content"; statusCode?: number; reason?: ErrorReason; message?: string; afterRole?: boolean }
  | { kind: "disconnect_before_content" }
  | { kind: "role_then_stall" }
  | { kind: "error_after_content"; afterTokens?: number; statusCode?: number; reason?: ErrorReason; message?: string }
  | { kind: "stall_after_content"; afterTokens?: number }
  | { kind: "slow_first_token"; delayMs: number }
  | { kind: "tool_call" };

export type FailureKind = FailureBehaviour["kind"];

/** A scripted behaviour, optionally only for requests matching `when`. */
export type ScriptedBehaviour = FailureBehaviour & { when?: { model?: string; hasTools?: boolean } };

/** Per-Mac failure options. */
export interface FailureOptions {
  /** Behaviours for the next requests, consumed first-match in order. */
  script?: ScriptedBehaviour[];
  /**
   * Probability per request of each parameterless behaviour (checked in the listed order; the sum should be
   * ≤ 1). `slow_first_token` uses `slowFirstTokenMs`.
   */
  probabilities?: Partial<Record<Exclude<FailureKind, "normal">, number>>;
  /** Extra real ms for a probabilistic `slow_first_token` (default 3000). */
  slowFirstTokenMs?: number;
  /**
   * Versions strictly below this crash in the chat template (InferenceError 500 TEMPLATE, after the role
   * delta, before content) on tool schemas with a missing or non-string `type`, as provider builds before
   * 0.6.3 did on `["string","null"]`.
   */
  templateCrashOnNullableToolsBelow?: string;
}

/** Removes and returns the first scripted behaviour whose `when` matches; undefined when none does. */
export function takeScripted(
  script: ScriptedBehaviour[],
  request: { model: string; hasTools: boolean },
): FailureBehaviour | undefined {
  const i = script.findIndex(
    (s) =>
      (s.when?.model === undefined || s.when.model === request.model) &&
      (s.when?.hasTools === undefined || s.when.hasTools === request.hasTools),
  );
  if (i < 0) return undefined;
  const [entry] = script.splice(i, 1);
  const { when: _when, ...behaviour } = entry!;
  return behaviour as FailureBehaviour;
}

/** Draws a behaviour from `probabilities` with one uniform sample `u` in [0, 1). */
export function drawBehaviour(options: FailureOptions, u: number): FailureBehaviour {
  const probs = options.probabilities ?? {};
  let acc = 0;
  for (const [kind, p] of Object.entries(probs) as [Exclude<FailureKind, "normal">, number][]) {
    acc += p;
    if (u < acc) {
      return kind === "slow_first_token"
        ? { kind, delayMs: options.slowFirstTokenMs ?? 3000 }
        : ({ kind } as FailureBehaviour);
    }
  }
  return { kind: "normal" };
}
