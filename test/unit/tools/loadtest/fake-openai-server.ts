/**
 * A small OpenAI-compatible HTTP server for the load-test tests: streams SSE chunks with usage, and on command
 * answers with the failures the load-test client must classify, or stalls until the client gives up.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export type FakeBehavior =
  | "ok"
  | "billing_503"
  | "ratelimit_429"
  | "capacity_429"
  | "pool_exhausted_429"
  | "dispatch_502"
  | "model_unavailable_503"
  | "bad_request_400"
  | "in_band"
  | "reset"
  | "stall";

export interface FakeServerOptions {
  /** Decides each chat request's behaviour from its max_tokens and its arrival index among requests with that max_tokens. */
  plan?: (maxTokens: number, index: number) => FakeBehavior;
  /** Content chunks per successful stream. Default 4. */
  chunks?: number;
  /** Serve /v1/models/capacity (else 404). Default true. */
  capacity?: boolean;
}

export interface FakeServer {
  baseUrl: string;
  chatRequests: number;
  capacityRequests: number;
  /** Request bodies received, in order. */
  bodies: Record<string, unknown>[];
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};
const err = (message: string, type: string, code: string) => ({ error: { message, type, code, param: null } });

export async function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const plan = options.plan ?? (() => "ok");
  const chunks = options.chunks ?? 4;
  const perMaxTokens = new Map<number, number>();
  const sockets = new Set<Socket>();
  const state = { chatRequests: 0, capacityRequests: 0, bodies: [] as Record<string, unknown>[] };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "GET" && req.url === "/v1/models")
      return json(res, 200, { object: "list", data: [{ id: "fake-model", object: "model" }] });
    if (req.method === "GET" && req.url === "/v1/models/capacity") {
      if (options.capacity === false) return json(res, 404, err("not found", "invalid_request_error", "not_found"));
      const k = state.capacityRequests++;
      return json(res, 200, {
        models: [
          {
            id: "fake-model",
            routable_providers: 10,
            warm_providers: k % 5,
            cold_providers: 10 - (k % 5),
            active_requests: 1,
            queued_requests: 0,
            queue_limit: 10,
            aggregate_tps: 100,
            estimated_ttft_ms: 50,
            token_budget_remaining: 1000,
            token_budget_total: 1000,
          },
          { id: "other-model", routable_providers: 2, warm_providers: 1, cold_providers: 1 },
        ],
      });
    }
    if (req.method !== "POST" || req.url !== "/v1/chat/completions")
      return json(res, 404, err("no route", "invalid_request_error", "not_found"));
    let raw = "";
    for await (const c of req) raw += c;
    const body = JSON.parse(raw) as Record<string, unknown>;
    state.bodies.push(body);
    state.chatRequests++;
    const maxTokens = Number(body.max_tokens);
    const index = perMaxTokens.get(maxTokens) ?? 0;
    perMaxTokens.set(maxTokens, index + 1);
    switch (plan(maxTokens, index)) {
      case "billing_503":
        return json(res, 503, err("service temporarily unavailable", "service_unavailable", "service_unavailable"));
      case "ratelimit_429":
        return json(res, 429, err("output_tokens rate limit exceeded", "rate_limit_error", "rate_limit_exceeded"));
      case "capacity_429":
        return json(res, 429, err("all providers at capacity; queue full", "rate_limit_error", "capacity_exhausted"));
      case "pool_exhausted_429":
        return json(res, 429, err("provider pool exhausted", "rate_limit_error", "pool_exhausted"));
      case "dispatch_502":
        return json(res, 502, err("inference failed after 3 attempts", "api_error", "provider_error"));
      case "model_unavailable_503":
        return json(res, 503, err("no provider can serve this model", "service_unavailable", "model_unavailable"));
      case "bad_request_400":
        return json(res, 400, err("max_tokens too large", "invalid_request_error", "invalid_request"));
      case "stall":
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.flushHeaders();
        return; // never writes a body: the client timeout must fire
      case "reset":
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`data: ${JSON.stringify(chunk("fake-model", { content: "Hi" }, null))}\n\n`);
        setImmediate(() => res.socket?.destroy());
        return;
      case "in_band":
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`data: ${JSON.stringify(chunk("fake-model", { role: "assistant", content: "Hi" }, null))}\n\n`);
        res.end(`data: ${JSON.stringify(err("provider disconnected", "api_error", "provider_failed"))}\n\n`);
        return;
      case "ok": {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        res.write(": keep-alive comment\n\n");
        for (let i = 0; i < chunks; i++) {
          res.write(`data: ${JSON.stringify(chunk("fake-model", { content: `tok${i} ` }, null))}\n\n`);
          await new Promise((r) => setImmediate(r));
        }
        res.write(`data: ${JSON.stringify(chunk("fake-model", {}, "length"))}\n\n`);
        res.write(
          `data: ${JSON.stringify({ ...chunk("fake-model", {}, null), choices: [], usage: { prompt_tokens: 7, completion_tokens: chunks * 2, total_tokens: 7 + chunks * 2 } })}\n\n`,
        );
        res.end("data: [DONE]\n\n");
        return;
      }
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      res.destroy(e as Error);
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    get chatRequests() {
      return state.chatRequests;
    },
    get capacityRequests() {
      return state.capacityRequests;
    },
    bodies: state.bodies,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function chunk(model: string, delta: Record<string, unknown>, finish: string | null) {
  return {
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    created: 1,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
}

/** A loopback port that was just free and is now closed (connections to it are refused). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
