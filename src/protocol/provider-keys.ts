/**
 * Provider identity proofs with Ed25519 (node:crypto, no dependency): each machine holds a long-term key pair;
 * the coordinator binds the public key to the machine's serial at its first registration and from then on asks
 * for a signature over a fresh nonce at every registration and periodically on live sessions. Whoever cannot
 * sign cannot take the serial's place, whatever provider token it presents.
 *
 * The signed bytes are domain-separated and name the serial, so a signature can neither be replayed for another
 * machine nor be confused with any other use of the key:
 * `"coordinator.provider.v1.challenge" || 0x00 || serial || 0x00 || nonce`.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from "node:crypto";

/** Bytes of a challenge nonce. */
export const CHALLENGE_NONCE_BYTES = 32;

const DOMAIN = Buffer.from("coordinator.provider.v1.challenge", "utf8");
const SEP = Buffer.from([0]);
// DER prefixes of an Ed25519 SubjectPublicKeyInfo and of a PKCS#8 private key holding a 32-byte seed.
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** A fresh random challenge nonce. */
export function newChallengeNonce(): Uint8Array {
  return randomBytes(CHALLENGE_NONCE_BYTES);
}

/** The exact bytes a provider signs to answer a challenge. */
export function challengeMessage(serial: string, nonce: Uint8Array): Buffer {
  return Buffer.concat([DOMAIN, SEP, Buffer.from(serial, "utf8"), SEP, nonce]);
}

/** True when `signature` is `publicKey`'s Ed25519 signature over the challenge for (serial, nonce). */
export function verifyChallenge(
  publicKey: Uint8Array,
  serial: string,
  nonce: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return verify(null, challengeMessage(serial, nonce), publicKeyObject(publicKey), signature);
  } catch {
    return false; // not a valid curve point
  }
}

/**
 * The key object of a raw 32-byte Ed25519 public key. Imported as a JWK, not as DER: the DER (SPKI) import goes
 * through OpenSSL 3's decoder framework and took ~175 µs here, as long as the verification itself, against ~15 µs
 * for the JWK (measured on this 2-core machine; every registration verifies once). Neither import checks that the
 * bytes are a curve point; verification does, and fails.
 */
function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const x = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString("base64url");
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
}

/** A provider key pair. */
export interface ProviderKeyPair {
  privateKey: KeyObject;
  /** The raw 32-byte public key sent in Register.public_key. */
  publicKey: Uint8Array;
}

/** The Ed25519 key pair whose private key is `seed` (32 bytes), e.g. one a provider keeps on disk. */
export function keyPairFromSeed(seed: Uint8Array): ProviderKeyPair {
  if (seed.length !== 32) throw new Error("an Ed25519 seed is 32 bytes");
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return { privateKey, publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)) };
}

/** A provider's answer to a challenge. */
export function signChallenge(privateKey: KeyObject, serial: string, nonce: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, challengeMessage(serial, nonce), privateKey));
}
