/**
 * Key challenges: a signature verifies only for the key, serial and nonce it was made over, and no bytes a
 * provider can send (a wrong length, a key that is not a curve point) make verification throw.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  CHALLENGE_NONCE_BYTES,
  keyPairFromSeed,
  newChallengeNonce,
  signChallenge,
  verifyChallenge,
} from "../../../src/protocol/provider-keys.js";

describe("provider keys", () => {
  const keys = keyPairFromSeed(randomBytes(32));
  const nonce = newChallengeNonce();
  const signature = signChallenge(keys.privateKey, "SERIAL-1", nonce);

  it("verifies a signature over the serial and nonce it was made for", () => {
    assert.equal(nonce.length, CHALLENGE_NONCE_BYTES);
    assert.equal(keys.publicKey.length, 32);
    assert.equal(verifyChallenge(keys.publicKey, "SERIAL-1", nonce, signature), true);
  });

  it("refuses another serial, another nonce, another key or an altered signature", () => {
    assert.equal(verifyChallenge(keys.publicKey, "SERIAL-2", nonce, signature), false);
    assert.equal(verifyChallenge(keys.publicKey, "SERIAL-1", newChallengeNonce(), signature), false);
    assert.equal(verifyChallenge(keyPairFromSeed(randomBytes(32)).publicKey, "SERIAL-1", nonce, signature), false);
    const altered = Uint8Array.from(signature);
    altered[10] ^= 1;
    assert.equal(verifyChallenge(keys.publicKey, "SERIAL-1", nonce, altered), false);
  });

  it("reads the public key from a view into a larger buffer (as protobuf decoding hands it over)", () => {
    const backing = new Uint8Array(80);
    backing.set(keys.publicKey, 7);
    const view = backing.subarray(7, 39);
    assert.equal(verifyChallenge(view, "SERIAL-1", nonce, signature), true);
  });

  it("returns false, without throwing, for keys and signatures of the wrong length", () => {
    assert.equal(verifyChallenge(keys.publicKey.subarray(0, 31), "SERIAL-1", nonce, signature), false);
    assert.equal(verifyChallenge(new Uint8Array(33), "SERIAL-1", nonce, signature), false);
    assert.equal(verifyChallenge(keys.publicKey, "SERIAL-1", nonce, signature.subarray(0, 63)), false);
    assert.equal(verifyChallenge(keys.publicKey, "SERIAL-1", nonce, new Uint8Array(0)), false);
  });

  it("returns false, without throwing, for 32 bytes that are not a point on the curve", () => {
    // A y coordinate ≥ the field prime (2^255 − 19) is not a canonical point encoding.
    const notAPoint = new Uint8Array(32).fill(0xff);
    notAPoint[31] = 0x7f;
    assert.equal(verifyChallenge(notAPoint, "SERIAL-1", nonce, signature), false);
    // Nor is any y for which x² = (y² − 1) ÷ (d·y² + 1) has no square root; y = 2 is one.
    const noRoot = new Uint8Array(32);
    noRoot[0] = 2;
    assert.equal(verifyChallenge(noRoot, "SERIAL-1", nonce, signature), false);
  });
});
