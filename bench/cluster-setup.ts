/**
 * What the cluster benchmark (cluster-scale-out.ts) sets up, shared with its report (cluster-report.ts): the load,
 * the two fleets and the accounts.
 */
/** The load: concurrent streams. */
export const CONCURRENCY = 256;
export const FORWARD_MODEL = "qwen3-8b";
export const THROUGHPUT_MODEL = "gpt-oss-20b";
/**
 * Macs per fleet and concurrent requests per Mac: room for all 256 streams on either fleet (with 9, admission's
 * KV budget ran them full and QUEUE_LIMIT's 10 waiting requests per model overflowed into 429s).
 */
export const MACS = 16;
export const MAC_CONCURRENCY = 64;
/**
 * Macs of each lone node (the reference cell of three coordinators that are not a cluster): 8 each, 24 in all. The
 * fleet's 16 split in three, or 6 each, ran past admission's KV budget on whichever node the load's drift made
 * slowest (a closed loop holds more requests where they last longer), and the cell measured 429s instead of what
 * three processes cost; a cluster spreads that excess over the whole fleet.
 */
export const LONE_MACS_PER_NODE = 8;
/**
 * The forwarding cells' paced fleet: Macs and concurrent requests each, room for the 256 streams within the
 * scheduler's per-Mac quality cap; chunks at most every FORWARD_COALESCE_MS per stream (about 20 per second,
 * several tokens each), so 256 streams are about 5,000 relayed chunks per second.
 */
export const FORWARD_MACS = 64;
export const FORWARD_MAC_CONCURRENCY = 8;
export const FORWARD_COALESCE_MS = 50;
/**
 * The forwarding cell's shortest measured window: its requests last about 2 s, and a window shorter than one of
 * them (the quick mode's 400 ms) would measure none (every request it starts began in the warm-up).
 */
export const FORWARD_MIN_CELL_MS = 4_000;
/**
 * Service-tier accounts the load rotates over: 200 req/s each, a third of that per cluster node
 * (COORDINATOR_REPLICAS=3), so 3,200 req/s per entry node: far above what this machine serves.
 */
export const ACCOUNTS = 48;
/** How long every node may take to see the whole fleet (own Macs registered, the others' mirrored). */
export const FLEET_VIEW_TIMEOUT_MS = 30_000;

/**
 * Output per forwarding-cell request: its Macs decode at the simulated chip's pace, so 256 streams last seconds
 * each, as real streams do, and the machine is not saturated: first token then measures the path, not a queue.
 */
export const FORWARD_MAX_TOKENS = 128;
/** Output per throughput-cell request (instant Macs: the cells measure what the coordinators' CPU can serve). */
export const THROUGHPUT_MAX_TOKENS = 32;
