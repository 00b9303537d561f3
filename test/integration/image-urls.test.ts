/**
 * Image URLs are vetted before a volunteer's Mac fetches them (issue 13, item 5): every dialect that carries
 * images (Chat Completions `image_url`, Responses `input_image`, Anthropic `image` sources, and Anthropic's
 * count_tokens) refuses a loopback, private, link-local or metadata address with a 400 in its own error shape,
 * naming the field; nothing reaches a Mac and no ledger row is written. Operators can make exceptions.
 */
import assert from "node:assert/strict";
import { sql } from "kysely";
import { startTestCoordinator, type TestCoordinator } from "../support/coordinator.js";
import { postJson } from "../support/http.js";

const VISION = "gemma-4-26b";
const visionMac = { models: [VISION], warmModels: [VISION], naturalTokens: { min: 3, max: 5 } };
const PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

type OpenAIError = { error: { message: string; type: string; code: string; param: string | null } };
type AnthropicError = { type: string; error: { type: string; message: string } };

const chat = (url: string) => ({
  model: VISION,
  max_tokens: 8,
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "what is this?" },
        { type: "image_url", image_url: { url } },
      ],
    },
  ],
});
const responses = (url: string) => ({
  model: VISION,
  max_output_tokens: 8,
  input: [
    {
      role: "user",
      content: [
        { type: "input_text", text: "what is this?" },
        { type: "input_image", image_url: url },
      ],
    },
  ],
});
const messages = (source: unknown) => ({
  model: VISION,
  max_tokens: 8,
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "what is this?" },
        { type: "image", source },
      ],
    },
  ],
});

describe("image URLs handed to Macs", function () {
  this.timeout(30_000);

  describe("with the default policy", () => {
    let t: TestCoordinator;
    before(async () => {
      t = await startTestCoordinator({ macs: [visionMac] });
    });
    after(async () => t?.close());

    async function assertNothingReachedAMac(): Promise<void> {
      assert.equal(t.macs[0]!.records.length, 0, "no request reached a Mac");
      await t.coordinator.ledger.flush();
      const { rows } = await sql<{ n: string }>`SELECT count(*)::text AS n FROM ledger_requests`.execute(t.db.db);
      assert.equal(rows[0]!.n, "0", "no ledger row");
    }

    it("Chat Completions: 400 invalid_image_url naming messages[0].content[1].image_url.url", async () => {
      const cases: [string, RegExp][] = [
        ["http://169.254.169.254/latest/meta-data/iam/", /must be an https URL/],
        [
          "https://169.254.169.254/latest/meta-data/iam/",
          /169\.254\.169\.254, a link-local \(cloud metadata\) address/,
        ],
        ["https://2852039166/", /non-standard form/],
        ["https://user:pw@example.com/cat.png", /credentials/],
        ["https://127.0.0.1:8080/", /loopback/],
        ["https://192.168.1.1/admin.png", /private/],
        ["data:image/svg+xml;base64,PHN2Zz4=", /png\|jpeg\|gif\|webp/],
      ];
      for (const [url, message] of cases) {
        const r = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat(url));
        assert.equal(r.status, 400, `${url}: ${r.text}`);
        const e = JSON.parse(r.text) as OpenAIError;
        assert.deepEqual(
          { type: e.error.type, code: e.error.code, param: e.error.param },
          { type: "invalid_request_error", code: "invalid_image_url", param: "messages[0].content[1].image_url.url" },
          url,
        );
        assert.match(e.error.message, /^'messages\[0\]\.content\[1\]\.image_url\.url' /);
        assert.match(e.error.message, message);
      }
      await assertNothingReachedAMac();
    });

    it("Responses: 400 invalid_image_url naming input[0].content[1].image_url", async () => {
      for (const url of [
        "https://[::ffff:169.254.169.254]/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://metadata/computeMetadata/v1/",
      ]) {
        const r = await postJson(`${t.apiBase}/responses`, t.apiKey, responses(url));
        assert.equal(r.status, 400, `${url}: ${r.text}`);
        const e = JSON.parse(r.text) as OpenAIError;
        assert.deepEqual(
          { type: e.error.type, code: e.error.code, param: e.error.param },
          { type: "invalid_request_error", code: "invalid_image_url", param: "input[0].content[1].image_url" },
          url,
        );
      }
      await assertNothingReachedAMac();
    });

    it("Anthropic Messages and count_tokens: 400 in Anthropic's shape, the message naming the source field", async () => {
      const cases: [unknown, RegExp][] = [
        [
          { type: "url", url: "https://metadata.google.internal/computeMetadata/v1/" },
          /^'messages\[0\]\.content\[1\]\.source\.url' .*cloud metadata/,
        ],
        [{ type: "url", url: "https://localhost/x.png" }, /^'messages\[0\]\.content\[1\]\.source\.url' /],
        [
          { type: "base64", media_type: "image/png", data: "not base64!" },
          /^'messages\[0\]\.content\[1\]\.source' .*valid base64/,
        ],
        [{ type: "base64", media_type: "text/html", data: "PGgxPg==" }, /^'messages\[0\]\.content\[1\]\.source' /],
      ];
      for (const path of ["/v1/messages", "/v1/messages/count_tokens"]) {
        for (const [source, message] of cases) {
          const r = await postJson(`${t.baseUrl}${path}`, t.apiKey, messages(source));
          assert.equal(r.status, 400, `${path} ${JSON.stringify(source)}: ${r.text}`);
          const e = JSON.parse(r.text) as AnthropicError;
          assert.equal(e.type, "error");
          assert.equal(e.error.type, "invalid_request_error");
          assert.match(e.error.message, message);
        }
      }
      await assertNothingReachedAMac();
    });

    it("serves public https URLs and valid data URIs in every dialect", async () => {
      const ok = [
        await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat("https://example.com/cat.png")),
        await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat(`data:image/png;base64,${PNG_1PX}`)),
        await postJson(`${t.apiBase}/responses`, t.apiKey, responses("https://images.example.com/a.webp")),
        await postJson(
          `${t.baseUrl}/v1/messages`,
          t.apiKey,
          messages({ type: "url", url: "https://example.com/a.jpg" }),
        ),
        await postJson(
          `${t.baseUrl}/v1/messages`,
          t.apiKey,
          messages({ type: "base64", media_type: "image/png", data: PNG_1PX }),
        ),
      ];
      assert.deepEqual(
        ok.map((r) => r.status),
        [200, 200, 200, 200, 200],
        ok.map((r) => r.text.slice(0, 200)).join("\n"),
      );
    });
  });

  describe("with operator exceptions", () => {
    let t: TestCoordinator;
    before(async () => {
      t = await startTestCoordinator({
        macs: [visionMac],
        config: { imageUrlAllowHttp: true, imageUrlAllowHosts: "images.internal,10.20.30.40", maxImageDataBytes: 16 },
      });
    });
    after(async () => t?.close());

    it("accepts allowlisted hosts and http, and still refuses other private addresses and oversized data", async () => {
      const statuses = [
        (await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat("http://images.internal/cat.png"))).status,
        (await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat("https://10.20.30.40/cat.png"))).status,
        (await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat("http://example.com/cat.png"))).status,
        (await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat("http://10.20.30.41/cat.png"))).status,
        (await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat("http://169.254.169.254/"))).status,
      ];
      assert.deepEqual(statuses, [200, 200, 200, 400, 400]);
      const big = await postJson(`${t.apiBase}/chat/completions`, t.apiKey, chat(`data:image/png;base64,${PNG_1PX}`));
      assert.equal(big.status, 400);
      assert.match((JSON.parse(big.text) as OpenAIError).error.message, /limit 16\)/);
    });
  });
});
