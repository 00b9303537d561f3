/**
 * Chat Completions errors in OpenAI's shape (`{"error":{message,type,code,param}}`), which the `openai` SDK
 * turns into an `APIError`: the body of an error status, and the data of an in-band SSE error after commit.
 */
import { toOpenAIError, type CoordinatorError } from "../../errors/coordinator-error.js";

/** The dialect's error body. */
export function errorBody(e: CoordinatorError): ReturnType<typeof toOpenAIError> {
  return toOpenAIError(e);
}
