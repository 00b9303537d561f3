/**
 * The request-body bytes held at once across every open consumer request. Each body is charged as its bytes
 * arrive and released when its response closes (the parsed body and the provider-bound copy live that long),
 * so memory for bodies stays bounded however many callers upload at once: 20 concurrent 15 MiB bodies took
 * the process to 568 MiB before this existed (issue 13).
 */
export class BodyBudget {
  readonly #limitBytes: number;
  #usedBytes = 0;

  /** @param limitBytes total bytes of bodies held at once (MAX_INFLIGHT_BODY_BYTES). */
  constructor(limitBytes: number) {
    this.#limitBytes = limitBytes;
  }

  get limitBytes(): number {
    return this.#limitBytes;
  }

  /** Bytes currently charged. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Whether `bytes` more would fit right now (nothing is charged). */
  fits(bytes: number): boolean {
    return this.#usedBytes + bytes <= this.#limitBytes;
  }

  /** Charges `bytes` if they fit; false (and nothing charged) if not. */
  tryCharge(bytes: number): boolean {
    if (!this.fits(bytes)) return false;
    this.#usedBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#usedBytes = Math.max(0, this.#usedBytes - bytes);
  }
}
