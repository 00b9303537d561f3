/** What the simulated-Mac tests share: a chat body, and readers of the frames the fake coordinator recorded. */
import type { ProviderMessage } from "../../../../gen/coordinator/provider/v1/provider_pb.js";

/** A chat request body for gpt-oss-20b. */
export const chat = (text: string, extra: Record<string, unknown> = {}) => ({
  model: "gpt-oss-20b",
  messages: [{ role: "user", content: text }],
  ...extra,
});

/** Deltas of one request, flattened in order. */
export function deltas(frames: ProviderMessage[]) {
  return frames.flatMap((f) => (f.msg.case === "inferenceChunk" ? f.msg.value.deltas.map((d) => d.delta) : []));
}

/** The request's completion frame, if any. */
export function complete(frames: ProviderMessage[]) {
  const f = frames.find((x) => x.msg.case === "inferenceComplete");
  return f?.msg.case === "inferenceComplete" ? f.msg.value : undefined;
}

/** The request's error frame, if any. */
export function error(frames: ProviderMessage[]) {
  const f = frames.find((x) => x.msg.case === "inferenceError");
  return f?.msg.case === "inferenceError" ? f.msg.value : undefined;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
