/**
 * Which behaviour a simulated Mac carries out for one request. The build's own faults come first (a chat
 * template that cannot render, the pre-0.6.3 crash on nullable tool schemas, an image sent to a text-only
 * build), then the failure script, then the per-Mac probabilities. Pure apart from consuming the script and
 * drawing once from `random`, and only when nothing was scripted, so a seed replays the same draws.
 */
import { ErrorReason } from "../../../gen/coordinator/provider/v1/provider_pb.js";
import { compareVersions } from "../../util/version.js";
import {
  drawBehaviour,
  takeScripted,
  type FailureBehaviour,
  type FailureOptions,
  type ScriptedBehaviour,
} from "./failure-script.js";
import { hasNullableOrUntypedSchema, type SimChatRequest } from "./sim-request.js";

/** What the choice depends on. */
export interface BehaviourContext {
  model: string;
  /** The Mac's provider version (the template crash depends on it). */
  version: string;
  body: SimChatRequest;
  /** The coordinator's traits say the request needs vision. */
  requiresVision: boolean;
  /** The loaded build of the model has a vision encoder. */
  modelIsVision: boolean;
  /** The build's `templateRenderOk` option; `false` fails every request. */
  templateRenderOk: boolean | undefined;
  failures: FailureOptions | undefined;
  /** The Mac's pending scripted behaviours; a match is removed. */
  script: ScriptedBehaviour[];
  random: () => number;
}

/** Chooses the behaviour; a tool call falls back to `normal` when the request has no tools or forbids calling them. */
export function chooseBehaviour(c: BehaviourContext): FailureBehaviour {
  const { body } = c;
  const hasTools = body.tools.length > 0;
  const crashBelow = c.failures?.templateCrashOnNullableToolsBelow;
  let behaviour: FailureBehaviour;
  if (c.templateRenderOk === false) {
    behaviour = {
      kind: "error_before_content",
      statusCode: 500,
      reason: ErrorReason.TEMPLATE,
      message: "chat template failed to render",
    };
  } else if (
    crashBelow &&
    hasTools &&
    compareVersions(c.version, crashBelow) < 0 &&
    hasNullableOrUntypedSchema(body.tools)
  ) {
    behaviour = {
      kind: "error_before_content",
      statusCode: 500,
      reason: ErrorReason.TEMPLATE,
      message: "chat template crashed on a tool schema without a string type",
    };
  } else if ((body.hasImages || c.requiresVision) && !c.modelIsVision) {
    // What a text-only build does with an image: a sickness error after the role delta, not a 4xx.
    behaviour = {
      kind: "error_before_content",
      statusCode: 500,
      reason: ErrorReason.INTERNAL,
      message: "this build has no vision encoder",
    };
  } else {
    behaviour = takeScripted(c.script, { model: c.model, hasTools }) ?? drawBehaviour(c.failures ?? {}, c.random());
    // A model told it must call a tool does so (tool_choice "required" or a named function).
    if (behaviour.kind === "normal" && body.toolCallRequired) behaviour = { kind: "tool_call" };
  }
  if (behaviour.kind === "tool_call" && (!hasTools || body.toolCallForbidden)) behaviour = { kind: "normal" };
  return behaviour;
}
