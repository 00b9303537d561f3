/**
 * The provider service's periodic sweep over its sessions: a registered provider silent past the heartbeat
 * timeout is closed, a live session due for a key re-proof gets one, and a handshake that has not registered in
 * time is ended. Kept apart from provider-service.ts because it is one self-contained pass over the sessions with
 * its own timeouts; the service owns the sessions and when the sweep runs.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../util/logger.js";
import { reproveKey, type ReproofContext } from "./key-challenge.js";
import type { ResolvedProviderServiceOptions } from "./provider-service-options.js";
import type { ProviderSession } from "./provider-session.js";

/** What the sweep reads: the timeouts, the registry's heartbeats, and how to re-prove a key. */
export type SweepContext = Pick<
  ResolvedProviderServiceOptions,
  "clock" | "registry" | "heartbeatTimeoutMs" | "registerTimeoutMs" | "challengeIntervalMs"
> & { log: Logger; reproof: ReproofContext };

/** Evicts silent providers and stalled handshakes, and starts periodic key challenges. */
export function sweepSessions(
  sessions: ReadonlyMap<string, ProviderSession>,
  handshaking: Set<ProviderSession>,
  ctx: SweepContext,
): void {
  const { clock, registry, heartbeatTimeoutMs, registerTimeoutMs, challengeIntervalMs } = ctx;
  const now = clock.nowMs();
  for (const [id, session] of sessions) {
    const rec = registry.get(id);
    if (rec && now - rec.lastHeartbeatMs > heartbeatTimeoutMs) {
      session.close("heartbeat timeout", {
        code: grpc.status.DEADLINE_EXCEEDED,
        details: "no heartbeat within the timeout",
      });
    } else if (!session.challenge && now - session.lastProvedMs >= challengeIntervalMs) {
      void reproveKey(session, ctx.reproof).catch((e) =>
        ctx.log.error("provider fence failed", { provider_id: id, reason: String((e as Error)?.message ?? e) }),
      );
    }
  }
  for (const s of handshaking) {
    if (s.state.t === "handshaking" && now - s.state.sinceMs > registerTimeoutMs) {
      handshaking.delete(s);
      s.close("register timeout", { code: grpc.status.DEADLINE_EXCEEDED, details: "Register not received in time" });
    }
  }
}
