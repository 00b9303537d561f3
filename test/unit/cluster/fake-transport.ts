/** A hand-written {@link ClusterTransport}: records what is sent; each request waits for the test to settle it. */
import type { ClusterTransport } from "../../../src/cluster/cluster-transport.js";
import { bytesOf, textOf } from "../../../src/cluster/cluster-messages.js";

export interface SentRequest {
  subject: string;
  body: Record<string, unknown>;
  timeoutMs: number;
  answer(m: object): void;
  fail(e: Error): void;
}

export class FakeTransport implements ClusterTransport {
  readonly requests: SentRequest[] = [];
  readonly published: { subject: string; body: Record<string, unknown> }[] = [];

  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.requests.push({
        subject,
        body: JSON.parse(textOf(data)) as Record<string, unknown>,
        timeoutMs,
        answer: (m) => resolve(bytesOf(JSON.stringify(m))),
        fail: reject,
      });
    });
  }

  /** Byte size of each published message, in order. */
  readonly sizes: number[] = [];

  publish(subject: string, data: Uint8Array): void {
    this.published.push({ subject, body: JSON.parse(textOf(data)) as Record<string, unknown> });
    this.sizes.push(data.length);
  }

  /** Published messages on `subject`. */
  on(subject: string): Record<string, unknown>[] {
    return this.published.filter((p) => p.subject === subject).map((p) => p.body);
  }
}

/** Lets settled promises run their callbacks. */
export const settle = () => new Promise<void>((r) => setImmediate(r));
