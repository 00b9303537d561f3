import assert from "node:assert/strict";
import fc from "fast-check";
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import { countTextTokens, isWhitespace, MAX_RUN_CHARS, OutputTokenCounter } from "../../../src/usage/token-counter.js";

/** The library's own count of the whole text in one call (no segmenting). */
const unsplit = (s: string) => countTokens(s, { disallowedSpecial: new Set() });

const prose =
  "The coordinator forwards each request to a volunteer Mac, streams the answer back, and bills the account " +
  "for the tokens used. Providers report their own usage; we check it.\n\n";
const markdown =
  "## Trust model\n\n- **Prompt**: counted by the coordinator.\n- *Completion*: counted from the stream.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
const code =
  "export function f(x: number): number {\n\treturn x * 2 + Math.max(0, x - 1); // why: clamp\n}\n\nconst y = [1, 2, 3].map((v) => v ** 2);\n";
const cjk = "协调器把每个请求转发给志愿者的电脑，并按使用的令牌计费。日本語の文章も数えます。";
const emoji = "Done 🎉🚀 — naïve café, Ελληνικά, русский текст.\n";
const fixture = `${prose + markdown + code + cjk}\n${emoji}`.repeat(3);

/** A deterministic pseudo-random string over `alphabet`. */
function randomText(length: number, alphabet: string, seed = 1): string {
  let s = seed >>> 0;
  let out = "";
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out += alphabet[s % alphabet.length];
  }
  return out;
}

describe("countTextTokens", () => {
  it("counts o200k_base tokens exactly on ordinary prose, markdown, code, CJK and emoji", () => {
    assert.equal(countTextTokens(""), 0);
    assert.equal(countTextTokens("hello world"), 2);
    assert.equal(countTextTokens(fixture), unsplit(fixture));
  });

  it("is exact for any text whose runs between spaces are short (soft boundaries never change the count)", () => {
    const word = fc.stringMatching(/^[a-zA-Z0-9.,;:'"!?()\-_/\\{}<>=+*&^%$#@~`|éü中文😀]{1,30}$/u);
    const gap = fc.constantFrom(" ", "  ", "\t", "\n", " \n", "\n\n", "\u00a0", " \u00a0 ", "\r\n", "\u3000");
    fc.assert(
      fc.property(fc.array(fc.tuple(word, gap), { maxLength: 60 }), (parts) => {
        const text = parts.map(([w, g]) => w + g).join("");
        assert.equal(countTextTokens(text), unsplit(text));
      }),
      { numRuns: 300 },
    );
  });

  it("stays within 2% of the unsplit count when long runs are hard-cut", () => {
    const b64 = randomText(3_000, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    const letters = randomText(2_000, "abcdefghijklmnopqrstuvwxyz", 7);
    const text = `${prose}data:image/png;base64,${b64} ${markdown}${cjk.repeat(30)}\n${letters}${code}`;
    const exact = unsplit(text);
    const counted = countTextTokens(text);
    assert.notEqual(counted, 0);
    assert.ok(Math.abs(counted - exact) / exact < 0.02, `counted ${counted}, unsplit ${exact}`);
  });

  it("hard-cuts a run with no whitespace every MAX_RUN_CHARS characters, so a 1 MB run is tokenized in bounded pieces (speed is measured in bench/, not here)", () => {
    const runs = (1 << 20) / MAX_RUN_CHARS;
    // Unsplit, this is one 1 MB byte-pair merge: quadratic, minutes.
    assert.equal(countTextTokens("a".repeat(runs * MAX_RUN_CHARS)), runs * unsplit("a".repeat(MAX_RUN_CHARS)));
    // High-entropy text defeats the merge cache; 256 KB takes ~0.3 s on the bench machine.
    countTextTokens(randomText(256 * 1024, "abcdefghijklmnopqrstuvwxyz"));
  });

  it("never hard-cuts between the halves of a surrogate pair", () => {
    // "x" then 300 emoji (2 code units each): a cut at 256 would land inside a pair, so it moves to 255.
    const text = `x${"😀".repeat(300)}`;
    const expected = unsplit(text.slice(0, 255)) + unsplit(text.slice(255, 511)) + unsplit(text.slice(511));
    assert.equal(countTextTokens(text), expected);
    assert.notEqual(
      countTextTokens(text),
      unsplit(text.slice(0, 256)) + unsplit(text.slice(256, 512)) + unsplit(text.slice(512)),
    );
  });

  it("counts special-token strings in consumer text as plain text instead of throwing", () => {
    const n = countTextTokens("ignore <|endoftext|> and <|im_start|>system");
    assert.ok(n > 6, `got ${n}`);
  });

  it("treats exactly JavaScript's \\s as whitespace", () => {
    for (let c = 0; c <= 0xffff; c++) {
      assert.equal(isWhitespace(c), /\s/.test(String.fromCharCode(c)), `U+${c.toString(16)}`);
    }
  });
});

describe("OutputTokenCounter", () => {
  it("matches countTextTokens on the joined text however the output is split into deltas", () => {
    const chunk = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.string({ unit: "grapheme", maxLength: 8 }),
      fc.constantFrom(" ", "\n", "a".repeat(300), "😀".repeat(140), "<|endoftext|>", "中文字符", " the", "ing"),
    );
    fc.assert(
      fc.property(fc.array(chunk, { maxLength: 40 }), (deltas) => {
        const c = new OutputTokenCounter();
        for (const d of deltas) c.push(d);
        assert.equal(c.tokens, countTextTokens(deltas.join("")));
      }),
      { numRuns: 300 },
    );
  });

  it("reads a running total after every one-character delta", () => {
    const text = fixture.repeat(20); // ~40 KB
    const c = new OutputTokenCounter();
    let reads = 0;
    for (const ch of text) {
      c.push(ch);
      reads += c.tokens > 0 ? 1 : 0;
    }
    assert.ok(reads > 0);
    // Re-counting the whole output per delta would be ~40,000 × 40 KB; segment-at-a-time is milliseconds.
    assert.equal(c.tokens, countTextTokens(text));
  });
});
