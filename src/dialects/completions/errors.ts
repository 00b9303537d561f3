/**
 * Legacy Completions errors: OpenAI's shape (`{"error":{message,type,code,param}}`), as for chat, since the same
 * SDK clients call both routes.
 */
import { toOpenAIError, type CoordinatorError } from "../../errors/coordinator-error.js";

/** The dialect's error body. */
export function errorBody(e: CoordinatorError): ReturnType<typeof toOpenAIError> {
  return toOpenAIError(e);
}
