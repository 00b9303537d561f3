/**
 * How the dispatcher talks to one connected provider, independent of the wire (the gRPC session implements
 * it; tests can fake it).
 */
import type { ProviderEvent, RequestShape, RequestTraits } from "../inference/types.js";

export interface InferenceDispatch {
  requestId: string;
  model: string;
  /** The normalized chat-completions request as UTF-8 JSON. */
  bodyJson: Uint8Array;
  traits: RequestTraits;
  /** W3C Trace Context headers of the attempt's span (`traceparent`, `tracestate`); empty or absent when untraced. */
  traceContext?: Record<string, string>;
  /**
   * What a Mac's owner re-checks before it admits a request another coordinator forwarded (cluster mode): the
   * breaker shape and the caller constraints a private or pinned Mac is gated on. A local session ignores them.
   */
  shape?: RequestShape;
  callerAccountId?: string;
  pinnedAccountId?: string;
}

export interface ProviderChannel {
  readonly providerId: string;
  /**
   * Sends the request; `onEvent` receives its events in order until a terminal one (complete, error,
   * disconnected). Returns false if the channel is closed (nothing was sent, no events will follow).
   */
  dispatch(req: InferenceDispatch, onEvent: (e: ProviderEvent) => void): boolean;
  /** Tells the provider to stop; no further events are delivered for the request. */
  cancel(requestId: string, reason: string): void;
  loadModel(model: string): void;
}

/** Finds the channel of a connected provider. */
export interface ProviderDirectory {
  channel(providerId: string): ProviderChannel | undefined;
}
