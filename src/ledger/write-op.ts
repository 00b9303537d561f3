/**
 * The operations the ledger queues for group commit: one per durable change a request (or a lease) makes.
 * Kept in a file of its own because three parts share it without depending on each other: the in-memory
 * ledger that produces them, the `EntryWriter` queue that batches them, and the SQL that writes a batch
 * (`write-batch.ts`) or sets one aside (`quarantine.ts`). Money is integer µUSD as bigint.
 */

/** One queued ledger write. `kind` decides the statement it joins in `writeBatch`. */
export type WriteOp =
  /** The reservation's `ledger_requests` row (written once the request reached a provider, or on settle). */
  | {
      kind: "reserve";
      requestId: string;
      accountId: string;
      keyId: string;
      leaseId: string;
      holderId: string;
      model: string;
      reservedMicroUsd: bigint;
    }
  /** Moves the row to `settled` and writes its debit / earning / platform_fee entries, exactly once. */
  | {
      kind: "settle";
      requestId: string;
      debitMicroUsd: bigint;
      providerCreditMicroUsd: bigint;
      platformFeeMicroUsd: bigint;
      providerAccountId: string;
      providerId: string;
      promptTokens: number;
      completionTokens: number;
      reasoningTokens: number;
    }
  /** Moves a recorded reservation to `released` (no entries: nothing was charged). */
  | { kind: "release"; requestId: string; reason: string }
  /** Returns a credit lease (its unspent hold goes back to the account's available balance). */
  | { kind: "close_lease"; leaseId: string };
