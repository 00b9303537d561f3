/**
 * Admission of a provider's Register, in order of cost: frame validation, the flood penalty box (no database
 * work), the provider token, the serial's identity (owner account, key, fence), the key challenge, and for a new
 * serial the account's machine cap and the claim of the serial. A refusal is one warn line, a counted outcome
 * and the session closed with a status naming why; the live session of the serial, if any, is never touched.
 */
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { LRUCache } from "lru-cache";
import type { Register } from "../../gen/coordinator/provider/v1/provider_pb.js";
import type { ProviderIdentity, ProviderIdentityStore } from "../ledger/provider-identities.js";
import { count } from "../telemetry/metrics.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import { registrationFromFrame, type RegistrationInfo } from "./frames.js";
import type { ChallengeOutcome } from "./key-challenge.js";
import type { ProviderSession } from "./provider-session.js";
import type { FailedTokenThrottle } from "./provider-service-options.js";
import { throttleKey } from "../util/throttle-key.js";
import { ProtocolViolation } from "./wire-bounds.js";

/** How long a registration from a serial in the flood penalty box is held before it is refused. */
export const FLOOD_TARPIT_MS = 5_000;

/** Serials remembered in the flood penalty box at most (the oldest penalty goes first). */
const MAX_PENALIZED_SERIALS = 10_000;

/**
 * A provider token this process verified within this long passes the per-address failed-token throttle, as a
 * recently verified API key does on the consumer port; at most {@link VERIFIED_TOKENS_MAX} are remembered (the
 * least recently verified is forgotten first, which only subjects it to the throttle again). A revoked token is
 * still refused by its lookup.
 */
export const VERIFIED_TOKEN_TTL_MS = 10 * 60_000;
export const VERIFIED_TOKENS_MAX = 10_000;

export interface ProviderAdmissionOptions {
  clock: Clock;
  log: Logger;
  identities: ProviderIdentityStore;
  authenticate(token: string): Promise<{ accountId: string; tokenId: string } | undefined>;
  /** Runs a key challenge on the session (its identity must be set). */
  challenge(session: ProviderSession): Promise<ChallengeOutcome>;
  /** A serial disconnected for flooding may not register again for this long. */
  floodPenaltyMs: number;
  /** Provider machines (serials) one account may own. */
  maxMachinesPerAccount: number;
  failedTokens?: FailedTokenThrottle;
}

/** A registration that passed every check. */
export interface Admitted {
  info: RegistrationInfo;
  identity: ProviderIdentity;
  accountId: string;
}

/** Why a registration was refused: gRPC status, the provider-facing details, and the metric outcome. */
interface Refusal {
  code: grpc.status;
  details: string;
  outcome: string;
}

export class ProviderAdmission {
  readonly #o: ProviderAdmissionOptions;
  /** Serials disconnected for flooding → when they may register again. */
  readonly #penalties = new Map<string, number>();
  /** Digests of provider tokens verified within {@link VERIFIED_TOKEN_TTL_MS}: they pass the failed-token throttle. */
  readonly #verifiedTokens = new LRUCache<string, true>({ max: VERIFIED_TOKENS_MAX, ttl: VERIFIED_TOKEN_TTL_MS });

  constructor(o: ProviderAdmissionOptions) {
    this.#o = o;
  }

  /**
   * Checks a Register frame. Resolves with the admitted identity, or undefined when the session was refused
   * (and closed) or ended meanwhile. Sets `session.identity` once the token is accepted (the challenge needs it).
   */
  async admit(session: ProviderSession, frame: Register): Promise<Admitted | undefined> {
    const { clock, identities, maxMachinesPerAccount } = this.#o;
    let info: RegistrationInfo;
    try {
      info = registrationFromFrame(frame);
    } catch (e) {
      if (!(e instanceof ProtocolViolation)) throw e;
      return this.#refuse(session, undefined, {
        code: grpc.status.INVALID_ARGUMENT,
        details: e.message,
        outcome: "invalid",
      });
    }
    const penaltyUntil = this.#penalties.get(info.serial);
    if (penaltyUntil !== undefined && penaltyUntil > clock.nowMs()) return this.#tarpit(session, penaltyUntil);
    // Before the token's database lookup: an address spraying tokens is refused from memory, except for a token
    // this process verified recently (a Mac behind the same NAT as a sprayer still reconnects).
    const address = throttleKey(peerAddress(session.peer));
    const tokenHash = createHash("sha256").update(info.authToken).digest("base64");
    const attempt = this.#verifiedTokens.has(tokenHash)
      ? undefined
      : this.#o.failedTokens?.check(address, clock.nowMs());
    if (attempt && !attempt.allowed)
      return this.#refuse(session, info, {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `too many invalid provider tokens from this address; retry in ${Math.ceil(attempt.retryAfterMs / 1000)} s`,
        outcome: "token_throttled",
      });
    let owner: { accountId: string; tokenId: string } | undefined;
    try {
      owner = await this.#o.authenticate(info.authToken);
    } catch (e) {
      this.#o.log.error("provider authentication unavailable", {
        peer: session.peer,
        serial: info.serial,
        reason: String((e as Error)?.message ?? e),
      });
      session.close("auth unavailable", {
        code: grpc.status.UNAVAILABLE,
        details: "provider authentication unavailable, retry",
      });
      return undefined;
    }
    // Charged even when the stream ended meanwhile: hanging up must not make a lookup free.
    if (owner) this.#verifiedTokens.set(tokenHash, true);
    else {
      this.#o.failedTokens?.recordFailure(address, clock.nowMs());
      this.#verifiedTokens.delete(tokenHash); // revoked since: throttled like any other bad token from now on
    }
    if (session.state.t !== "handshaking") return undefined; // the stream ended while we were authenticating
    if (!owner) {
      return this.#refuse(session, info, {
        code: grpc.status.UNAUTHENTICATED,
        details: "invalid provider token",
        outcome: "unauthenticated",
      });
    }

    session.identity = {
      serial: info.serial,
      accountId: owner.accountId,
      tokenId: owner.tokenId,
      publicKey: info.publicKey,
    };
    const known = await identities.get(info.serial);
    const refusal = known && identityRefusal(known, owner.accountId, info.publicKey);
    if (refusal)
      return this.#refuse(session, info, refusal, {
        account_id: owner.accountId,
        owner_account_id: known.accountId,
        provider_id: known.providerId,
      });

    // Proof of the key: a fresh nonce signed over this serial. A new serial proves it too, so nobody can bind a
    // serial to a key it does not hold.
    const signature = await this.#o.challenge(session);
    if (session.state.t !== "handshaking") return undefined;
    if (!signature.ok) {
      return this.#refuse(session, info, {
        code: signature.timedOut ? grpc.status.DEADLINE_EXCEEDED : grpc.status.PERMISSION_DENIED,
        details: signature.reason,
        outcome: "bad_signature",
      });
    }

    if (known) {
      await identities.seen(info.serial, owner.tokenId);
      return { info, identity: known, accountId: owner.accountId };
    }
    // Each new serial is a row: a token holder minting serials in a loop is stopped at the account's cap.
    const identity = await identities.claim({
      serial: info.serial,
      accountId: owner.accountId,
      publicKey: info.publicKey,
      tokenId: owner.tokenId,
      maxPerAccount: maxMachinesPerAccount,
    });
    if (!identity) {
      const details = `this account already has ${maxMachinesPerAccount} provider machines; forget one first`;
      return this.#refuse(
        session,
        info,
        { code: grpc.status.RESOURCE_EXHAUSTED, details, outcome: "too_many_machines" },
        { account_id: owner.accountId },
      );
    }
    // Two first registrations raced: whoever's row is stored owns the serial.
    const lost = identityRefusal(identity, owner.accountId, info.publicKey);
    if (lost)
      return this.#refuse(session, info, lost, { account_id: owner.accountId, owner_account_id: identity.accountId });
    return { info, identity, accountId: owner.accountId };
  }

  /** Puts a serial in the penalty box (it flooded): its registrations are held, then refused, for a while. */
  penalize(serial: string, nowMs: number): void {
    for (const [s, until] of this.#penalties) if (until <= nowMs) this.#penalties.delete(s);
    if (this.#penalties.size >= MAX_PENALIZED_SERIALS) this.#penalties.delete(this.#penalties.keys().next().value!);
    this.#penalties.set(serial, nowMs + this.#o.floodPenaltyMs);
  }

  /**
   * A serial in the flood penalty box is refused, but slowly: before any database work, the stream is held for
   * up to {@link FLOOD_TARPIT_MS}, so a flooder that reconnects at once costs one idle stream per hold, not a
   * registration per round trip.
   */
  #tarpit(session: ProviderSession, penaltyUntil: number): undefined {
    const { clock } = this.#o;
    count("provider.registrations", { outcome: "penalized" });
    clock.setTimeout(
      () => {
        if (session.state.t !== "handshaking") return;
        const waitS = Math.max(1, Math.ceil((penaltyUntil - clock.nowMs()) / 1000));
        session.close("registration refused: flood penalty", {
          code: grpc.status.RESOURCE_EXHAUSTED,
          details: `disconnected for flooding; retry in ${waitS} s`,
        });
      },
      Math.min(FLOOD_TARPIT_MS, Math.max(0, penaltyUntil - clock.nowMs())),
    );
    return undefined;
  }

  /** Ends a handshake with a refusal: one warn line and a counted outcome (the provider sees `details`). */
  #refuse(
    session: ProviderSession,
    info: RegistrationInfo | undefined,
    r: Refusal,
    fields: Record<string, unknown> = {},
  ): undefined {
    count("provider.registrations", { outcome: r.outcome });
    this.#o.log.warn("provider registration refused", {
      peer: session.peer,
      serial: info?.serial,
      ...fields,
      outcome: r.outcome,
      reason: r.details,
    });
    session.close(`registration refused: ${r.details}`, { code: r.code, details: r.details });
    return undefined;
  }
}

/** Why a known identity refuses this registration, or undefined if the account and key match and it is not fenced. */
function identityRefusal(known: ProviderIdentity, accountId: string, publicKey: Uint8Array): Refusal | undefined {
  if (known.accountId !== accountId)
    return {
      code: grpc.status.PERMISSION_DENIED,
      details: "this serial is registered to another account",
      outcome: "foreign_serial",
    };
  if (known.fenceReason !== null) {
    return {
      code: grpc.status.PERMISSION_DENIED,
      details: `this provider is fenced (${known.fenceReason}); its owner must forget it before it registers again`,
      outcome: "fenced",
    };
  }
  if (!Buffer.from(known.publicKey).equals(Buffer.from(publicKey))) {
    return {
      code: grpc.status.PERMISSION_DENIED,
      details: "public key differs from the one registered for this serial",
      outcome: "key_mismatch",
    };
  }
  return undefined;
}

/**
 * The address in a grpc-js peer string: the server side writes `${remoteAddress}:${remotePort}` ("1.2.3.4:5678",
 * "::1:5678"), other forms carry a scheme or brackets ("ipv4:1.2.3.4:5678", "ipv6:[::1]:5678"). The port is
 * always last, so it is cut at the last colon; anything without one is returned as it is.
 */
export function peerAddress(peer: string): string {
  const m = /^(?:ipv[46]:)?\[?(.*?)\]?:(\d+)$/.exec(peer);
  return m ? m[1]! : peer;
}
