/**
 * The two things the cluster's request plane needs from its message bus. NATS provides them in production
 * (nats-fleet.ts); the forwarder and the owner relay depend only on this, so their logic is tested without one.
 */
export interface ClusterTransport {
  /** One request, one answer; rejects on timeout or when nobody listens (NATS "no responders"). */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Fire and forget. */
  publish(subject: string, data: Uint8Array): void;
}
