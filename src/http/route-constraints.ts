/**
 * Routing the caller asks for, on any inference route: `provider_serials` in the body (only these machines) and
 * the `X-Route` header (`self`: only my machines, not billed; `prefer`: mine first, then paid public; `public`,
 * the default). Both bypass public model pools and keep every capability gate; an impossible constraint fails
 * fast in preflight. `provider_serials` is removed from the body here, so no Mac ever sees it.
 */
import { CoordinatorError } from "../errors/coordinator-error.js";
import { checkSerial } from "../protocol/wire-bounds.js";

/** Most serials one request may name: an allowlist, not a fleet listing. */
export const MAX_PROVIDER_SERIALS = 16;

export type RouteMode = "public" | "self" | "prefer";

export interface RouteConstraints {
  mode: RouteMode;
  /** Only machines with these serials; absent = any. */
  serials?: ReadonlySet<string>;
}

/** Reads (and strips) the caller's routing constraints; 400 `invalid_request` for a malformed one. */
export function takeRouteConstraints(body: unknown, header: string | string[] | undefined): RouteConstraints {
  const mode = routeMode(header);
  if (typeof body !== "object" || body === null || Array.isArray(body) || !("provider_serials" in body))
    return { mode };
  const raw = (body as Record<string, unknown>).provider_serials;
  delete (body as Record<string, unknown>).provider_serials;
  if (raw === null) return { mode };
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_PROVIDER_SERIALS) {
    throw invalid(`provider_serials must be an array of 1 to ${MAX_PROVIDER_SERIALS} machine serials`);
  }
  const serials = new Set<string>();
  raw.forEach((s, i) => {
    if (typeof s !== "string") throw invalid(`provider_serials[${i}] must be a string`);
    try {
      serials.add(checkSerial(s, `provider_serials[${i}]`));
    } catch (e) {
      throw invalid(`provider_serials[${i}] is not a machine serial: ${(e as Error).message}`);
    }
  });
  return { mode, serials };
}

function routeMode(header: string | string[] | undefined): RouteMode {
  if (header === undefined) return "public";
  const v = (Array.isArray(header) ? header.join(",") : header).trim().toLowerCase();
  if (v === "" || v === "public") return "public";
  if (v === "self" || v === "prefer") return v;
  throw new CoordinatorError(
    "invalid_request",
    `X-Route must be "self", "prefer" or "public", not ${JSON.stringify(v.slice(0, 32))}`,
    { param: "X-Route", wireCode: "invalid_route" },
  );
}

function invalid(message: string): CoordinatorError {
  return new CoordinatorError("invalid_request", message, { param: "provider_serials" });
}
