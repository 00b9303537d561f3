/**
 * Parses a legacy OpenAI Completions request (`POST /v1/completions`).
 *
 * Providers speak one protocol, a chat-completions body, so a legacy prompt is translated: the body carries
 * the prompt as a single user message plus the extension flag `x_raw_prompt: true`. A provider that knows the
 * flag feeds `messages[0].content` to the model verbatim (no chat template), which is what legacy completion
 * means; one that does not still answers sensibly through its chat template.
 */
import type { NormalizedRequest } from "../../inference/types.js";
import { rejectMultipleChoices } from "../chat/parse.js";
import { finalizeRequest } from "../shared/provider-body.js";
import {
  invalid,
  optBoolean,
  optInteger,
  optNumber,
  optPositiveInt,
  optStop,
  optString,
  requireBody,
  requireObject,
  requireString,
} from "../shared/request-fields.js";
import type { ParseContext } from "../shared/types.js";

/** The extension field that tells a provider the single user message is a raw prompt. */
export const RAW_PROMPT_FIELD = "x_raw_prompt";

function parsePrompt(v: unknown): string {
  if (typeof v === "string") return v;
  // The API also takes token arrays and batches; providers take one text prompt per request.
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === "string") return v[0];
  if (v === undefined || v === null) throw invalid("prompt", "'prompt' is required");
  throw invalid("prompt", "'prompt' must be a string or an array of exactly one string");
}

/** Parses a legacy Completions request body. */
export function parseCompletionsRequest(raw: unknown, ctx: ParseContext): NormalizedRequest {
  const b = requireBody(raw);
  const model = requireString(b.model, "model");
  const prompt = parsePrompt(b.prompt);
  rejectMultipleChoices(b.n);
  if ((optInteger(b.best_of, "best_of") ?? 1) !== 1) throw invalid("best_of", "only best_of=1 is supported");
  if (b.echo === true) throw invalid("echo", "echo is not supported");
  if (b.logprobs !== undefined && b.logprobs !== null) throw invalid("logprobs", "logprobs are not supported");
  if (typeof b.suffix === "string" && b.suffix.length > 0) throw invalid("suffix", "suffix is not supported");
  const stream = optBoolean(b.stream, "stream") ?? false;
  if (b.stream_options !== undefined && b.stream_options !== null) {
    if (!stream) throw invalid("stream_options", "'stream_options' is only allowed when 'stream' is true");
    optBoolean(requireObject(b.stream_options, "stream_options").include_usage, "stream_options.include_usage");
  }
  const user = optString(b.user, "user");
  return finalizeRequest(
    {
      model,
      messages: [{ role: "user", content: prompt }],
      tools: undefined,
      maxTokens: optPositiveInt(b.max_tokens, "max_tokens"),
      stream,
      affinityKey: user,
      extra: {
        [RAW_PROMPT_FIELD]: true,
        temperature: optNumber(b.temperature, "temperature", 0, 2),
        top_p: optNumber(b.top_p, "top_p", 0, 1),
        presence_penalty: optNumber(b.presence_penalty, "presence_penalty", -2, 2),
        frequency_penalty: optNumber(b.frequency_penalty, "frequency_penalty", -2, 2),
        seed: optInteger(b.seed, "seed"),
        stop: optStop(b.stop, "stop"),
        user,
      },
    },
    ctx,
  );
}
