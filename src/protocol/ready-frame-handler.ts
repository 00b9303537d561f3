/**
 * What a registered (`ready`) provider session's frames do: heartbeats update the registry, per-request frames
 * reach their dispatcher handlers, load outcomes are reported, and everything unprompted is charged to the
 * session's frame budget first. Kept apart from the service, which owns sessions and their lifecycle, because
 * this is the hot path a provider drives at will: the trust rules for its frames (foreign request ids, floods,
 * protocol violations) read in one place.
 */
import * as grpc from "@grpc/grpc-js";
import { LoadState, type ProviderMessage } from "../../gen/coordinator/provider/v1/provider_pb.js";
import type { ProviderRecord, ProviderRegistry } from "../registry/provider-registry.js";
import { count } from "../telemetry/metrics.js";
import type { Logger } from "../util/logger.js";
import { MAX_STRIKES, STRIKE_WINDOW_MS, type FrameKind } from "./frame-budget.js";
import { answerChallenge } from "./key-challenge.js";
import { completeFromFrame, deltasFromChunk, errorFromFrame, heartbeatFromFrame } from "./frames.js";
import type { ProviderSession } from "./provider-session.js";
import { checkModelId, ProtocolViolation, sanitizeText } from "./wire-bounds.js";

/** What handling a ready session's frames needs from the service. */
export interface ReadyFrameContext {
  registry: ProviderRegistry;
  log: Logger;
  /** Keeps a serial disconnected for flooding from registering again for a while. */
  penalize(serial: string, nowMs: number): void;
  /** A LoadModel outcome. */
  onLoadStatus?(rec: ProviderRecord, model: string, ok: boolean, error: string): void;
}

type Msg = ProviderMessage["msg"];

/**
 * Handles one frame of a session in the `ready` state (`providerId`: its registered id). A frame past the
 * session's budget is dropped (a flood ends the session); a malformed one ends the session, and its in-flight
 * requests fail over to honest Macs.
 */
export function handleReadyFrame(
  ctx: ReadyFrameContext,
  session: ProviderSession,
  providerId: string,
  msg: Msg,
  nowMs: number,
): void {
  // Per-request frames for ids this session does not own are "foreign": budgeted, never handled.
  const requestId = perRequestId(msg);
  const kind =
    msg.case === "heartbeat"
      ? "heartbeat"
      : msg.case === "modelLoadStatus"
        ? "load_status"
        : requestId !== undefined && !session.knows(requestId)
          ? "foreign"
          : "other";
  if (kind !== "other" && !admitFrame(ctx, session, providerId, kind, msg.case ?? "unknown", requestId, nowMs)) return;
  if (kind === "foreign") return;
  try {
    applyFrame(ctx, session, providerId, msg, nowMs);
  } catch (e) {
    if (!(e instanceof ProtocolViolation)) throw e;
    // One malformed frame ends the session: its in-flight requests fail over to honest Macs.
    count("provider.protocol_violations", { frame: msg.case ?? "unknown" });
    ctx.log.warn("provider protocol violation", {
      provider_id: providerId,
      account_id: session.identity?.accountId,
      frame: msg.case,
      reason: e.message,
    });
    session.close(`protocol violation: ${e.message}`, { code: grpc.status.INVALID_ARGUMENT, details: e.message });
  }
}

/** Carries out an admitted frame; throws ProtocolViolation for a frame that breaks the protocol. */
function applyFrame(ctx: ReadyFrameContext, session: ProviderSession, id: string, msg: Msg, now: number): void {
  const { registry } = ctx;
  switch (msg.case) {
    case "heartbeat": {
      registry.touch(id, now);
      const clamped = registry.applyHeartbeat(id, heartbeatFromFrame(msg.value), now);
      if (clamped.length > 0 && !session.heartbeatClampLogged) {
        session.heartbeatClampLogged = true; // once per session: every heartbeat would repeat it
        ctx.log.warn("provider claims clamped", {
          provider_id: id,
          account_id: session.identity?.accountId,
          frame: "heartbeat",
          clamped,
        });
      }
      break;
    }
    case "inferenceAccepted":
      registry.touch(id, now);
      session.deliver(msg.value.requestId, { kind: "accepted" });
      break;
    case "inferenceChunk":
      registry.touch(id, now);
      session.deliver(msg.value.requestId, { kind: "chunk", deltas: deltasFromChunk(msg.value) });
      break;
    case "inferenceComplete": {
      registry.touch(id, now);
      const done = completeFromFrame(msg.value);
      session.deliver(msg.value.requestId, done);
      // The request completed (billed at the coordinator's count); the session that lied ends.
      if (done.usageRefused) throw new ProtocolViolation("inference_complete", done.usageRefused);
      break;
    }
    case "inferenceError":
      registry.touch(id, now);
      session.deliver(msg.value.requestId, errorFromFrame(msg.value));
      break;
    case "modelLoadStatus": {
      registry.touch(id, now);
      // The model names a key of the load cooldowns and a log field: it is checked like every other model id,
      // and a model the Mac did not advertise was never asked of it, so its outcome is not recorded.
      const model = checkModelId(msg.value.model, "model_load_status.model");
      const rec = registry.get(id);
      const st = msg.value.state;
      if (!rec || (st !== LoadState.SUCCEEDED && st !== LoadState.FAILED)) break;
      if (!rec.models.some((m) => m.id === model)) break;
      registry.loadFinished(id, model);
      ctx.onLoadStatus?.(rec, model, st === LoadState.SUCCEEDED, sanitizeText(msg.value.error));
      break;
    }
    case "challengeResponse":
      answerChallenge(session, msg.value.nonce, msg.value.signature, ctx.log);
      break;
    case "register":
      session.close("duplicate Register", { code: grpc.status.INVALID_ARGUMENT, details: "Register sent twice" });
      break;
    default:
      break; // unknown future frame: ignore
  }
}

/**
 * Applies the session's frame budget: false when the frame is to be ignored. A session past its strikes ends
 * with RESOURCE_EXHAUSTED and its serial waits out the penalty before it may register again.
 */
function admitFrame(
  ctx: ReadyFrameContext,
  session: ProviderSession,
  providerId: string,
  kind: FrameKind,
  frame: string,
  requestId: string | undefined,
  nowMs: number,
): boolean {
  if (kind === "foreign" && session.foreignFrames++ === 0) {
    // One line per session: a flood of them is what the budget is for.
    ctx.log.warn("provider sent a frame for a request it does not hold", {
      provider_id: providerId,
      account_id: session.identity?.accountId,
      frame,
      request_id: requestId?.slice(0, 64),
    });
  }
  const verdict = session.frames?.admit(kind, nowMs) ?? "ok";
  if (verdict === "ok") return true;
  count("provider.frames_dropped", { kind });
  if (verdict === "disconnect") {
    const serial = session.identity?.serial;
    if (serial) ctx.penalize(serial, nowMs);
    count("provider.flood_disconnects", {});
    ctx.log.warn("provider disconnected for flooding", {
      provider_id: providerId,
      account_id: session.identity?.accountId,
      serial,
      frame,
      reason: `more than ${MAX_STRIKES} frames over budget within ${STRIKE_WINDOW_MS} ms`,
    });
    session.close("frame flood", {
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: `too many frames: more than ${MAX_STRIKES} over budget within ${STRIKE_WINDOW_MS / 1000} s`,
    });
  }
  return false;
}

/** The request id of a per-request frame, or undefined for session-level frames. */
function perRequestId(msg: Msg): string | undefined {
  switch (msg.case) {
    case "inferenceAccepted":
    case "inferenceChunk":
    case "inferenceComplete":
    case "inferenceError":
      return msg.value.requestId;
    default:
      return undefined;
  }
}
