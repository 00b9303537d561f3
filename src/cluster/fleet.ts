/**
 * The `Fleet` port: how this coordinator reaches every Mac it may route to. One process (the default) reaches
 * only the Macs connected to it, through the provider service itself. In cluster mode (`--cluster nats://…`,
 * nats-fleet.ts) it also mirrors the Macs every other coordinator owns and reaches them through their owner.
 * The dispatcher sees a `ProviderDirectory` either way.
 */
import type { ProviderDirectory } from "../dispatch/provider-channel.js";
import type { ProviderRecord } from "../registry/provider-registry.js";

export type FleetStatus =
  | { mode: "single" }
  | {
      mode: "cluster";
      node: string;
      /** Other coordinators heard from within the node timeout. */
      peers: string[];
      /** Macs whose streams this node holds / mirrors of the others' Macs. */
      owned: number;
      mirrored: number;
      /** Whether the NATS connection is up (when it is not, routing falls back to this node's own Macs). */
      connected: boolean;
    };

export interface Fleet extends ProviderDirectory {
  /** A Mac's session started here (after the provider service registered it). */
  connected(rec: ProviderRecord): void;
  /** A Mac's session here ended. */
  disconnected(rec: ProviderRecord): void;
  /** Asks the coordinator that owns this Mac's stream to end it (a fence or a forgotten identity decided here). */
  endRemote(providerId: string, reason: string): void;
  status(): FleetStatus;
  /** Stops taking forwarded work and leaves the cluster (its Macs' entries are withdrawn). */
  close(): Promise<void>;
}

/** One coordinator on its own: the Macs connected here are the fleet. */
export function inProcessFleet(local: ProviderDirectory): Fleet {
  return {
    channel: (id) => local.channel(id),
    connected: () => {},
    disconnected: () => {},
    endRemote: () => {},
    status: () => ({ mode: "single" }),
    close: async () => {},
  };
}
