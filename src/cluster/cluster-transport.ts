/**
 * The two things the cluster's request plane needs from its message bus. NATS provides them in production
 * (nats-fleet.ts); the forwarder and the owner relay depend only on this, so their logic is tested without one.
 */
export interface ClusterTransport {
  /**
   * One request, one answer. Rejects with {@link NotDeliveredError} when nobody can have received it (NATS "no
   * responders", or the bus is known to be down so nothing was sent); any other rejection (a timeout, a
   * connection lost while waiting) leaves it unknown whether the other side got it.
   */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Fire and forget. */
  publish(subject: string, data: Uint8Array): void;
}

/** A request nobody received: safe to run elsewhere at once. */
export class NotDeliveredError extends Error {
  override readonly name = "NotDeliveredError";
}
