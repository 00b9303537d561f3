/**
 * DispatchSink implementations over a Node HTTP response: streaming (SSE via the dialect's renderer) and
 * buffered (the dialect's accumulator). Nothing touches the response before `commit`, so a failure before it
 * can still become a clean retry or a proper error status. The dispatcher commits a buffered response only when
 * its provider completes, so a buffered answer whose provider fails mid-generation is retried elsewhere too.
 */
import type { ServerResponse } from "node:http";
import type { Dialect, RenderMeta } from "../dialects/shared/types.js";
import type { DispatchSink } from "../dispatch/types.js";
import type { CoordinatorError } from "../errors/coordinator-error.js";
import type { Delta, FinishReason, Usage } from "../inference/types.js";
import { sendJson } from "../util/send-json.js";

/**
 * A sink that also knows whether it has written anything yet. The terminal part of a response (the last
 * event, `[DONE]`, the JSON body, or an in-band error) is held back by `finish`/`failAfterCommit` and written
 * by {@link HttpSink.end}, which the route calls once the request's settlement is durable: a consumer never
 * holds a finished answer whose charge a crash could still lose.
 */
export interface HttpSink extends DispatchSink {
  readonly committed: boolean;
  /** Writes the held terminal part and ends the response (idempotent; no-op before a terminal call). */
  end(): void;
}

export function streamingSink(
  res: ServerResponse,
  dialect: Dialect,
  meta: RenderMeta,
  headers: Record<string, string>,
): HttpSink {
  const r = dialect.streamRenderer(meta);
  let committed = false;
  let tail: string | undefined;
  const write = (s: string) => {
    if (s.length > 0 && !res.writableEnded) res.write(s);
  };
  return {
    get committed() {
      return committed;
    },
    end() {
      if (tail !== undefined && !res.writableEnded) res.end(tail);
    },
    commit(providerId) {
      committed = true;
      // No `connection` header: node:http writes it, with the `keep-alive: timeout=` hint clients need to drop an
      // idle connection before the server does, or `close` while the server drains (ConsumerServer).
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
        "x-provider-id": providerId,
        ...headers,
      });
      // The headers leave with the first event (one write, not two); flushed alone only if there is none.
      const start = r.start();
      if (start.length > 0) res.write(start);
      else res.flushHeaders();
    },
    deltas(ds: readonly Delta[]) {
      write(r.deltas(ds));
    },
    finish(reason: FinishReason, usage: Usage) {
      tail ??= r.finish(reason, usage);
    },
    failAfterCommit(e: CoordinatorError) {
      tail ??= r.error(e);
    },
  };
}

export function bufferedSink(
  res: ServerResponse,
  dialect: Dialect,
  meta: RenderMeta,
  headers: Record<string, string>,
): HttpSink {
  const acc = dialect.accumulator(meta);
  let committed = false;
  let providerId = "";
  let terminal: (() => void) | undefined;
  return {
    get committed() {
      return committed;
    },
    end() {
      terminal?.();
      terminal = undefined;
    },
    commit(p) {
      committed = true;
      providerId = p;
    },
    deltas(ds: readonly Delta[]) {
      acc.deltas(ds);
    },
    finish(reason: FinishReason, usage: Usage) {
      const body = acc.finish(reason, usage);
      terminal ??= () => sendJson(res, 200, body, { "x-provider-id": providerId, ...headers });
    },
    failAfterCommit(e: CoordinatorError) {
      // The dispatcher never calls this for a buffered response (it commits one only together with `finish`);
      // should it, nothing has been written yet, so the consumer gets a real error status.
      terminal ??= () => dialect.sendError(res, e, { headers });
    },
  };
}
