/**
 * The two status frames a simulated Mac builds from its state: Register (who it is, what it has on disk,
 * what it claims to do) and Heartbeat (what is loaded and how busy it is). Pure: the Mac sends them.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  ProviderStatus,
  ThermalState,
  type ProviderMessageSchema,
} from "../../../gen/coordinator/provider/v1/provider_pb.js";
import type { ChipProfile } from "./chip-profiles.js";
import { decodeTps, prefillTps, type SimModelSpec } from "./mac-performance.js";
import type { ModelSlots } from "./model-slots.js";
import type { SimModelOption, SimulatedMacOptions } from "./simulated-mac-options.js";

type ProviderMessageInit = MessageInitShape<typeof ProviderMessageSchema>;

/** What a Register frame says about the Mac. */
export interface RegisterFacts {
  options: SimulatedMacOptions;
  serial: string;
  version: string;
  chip: ChipProfile;
  publicKey: Uint8Array;
  onDisk: ReadonlyMap<string, SimModelSpec>;
  modelOptions: ReadonlyMap<string, SimModelOption>;
}

/** The Register frame. The claimed decode and prefill rates are those of the first model on disk. */
export function registerFrame(f: RegisterFacts): ProviderMessageInit {
  const first = f.onDisk.values().next().value as SimModelSpec | undefined;
  return {
    msg: {
      case: "register",
      value: {
        authToken: f.options.token,
        serial: f.serial,
        publicKey: f.publicKey,
        version: f.version,
        hardware: {
          chipName: f.chip.chipName,
          chipFamily: f.chip.chipFamily,
          memoryGb: f.chip.memoryGb,
          memoryBandwidthGbs: f.chip.memoryBandwidthGbs,
          gpuCores: f.chip.gpuCores,
        },
        decodeTps: first ? decodeTps(f.chip, first) : 0,
        prefillTps: first ? prefillTps(f.chip, first) : 0,
        maxModelSlots: f.options.maxModelSlots ?? 2,
        privateOnly: f.options.privateOnly === true,
        models: [...f.onDisk.values()].map((spec) => {
          const opt = f.modelOptions.get(spec.id)!;
          return {
            id: spec.id,
            sizeBytes: BigInt(spec.sizeBytes),
            quantization: opt.quantization ?? (spec.id.startsWith("gpt-oss") ? "mxfp4" : "4bit"),
            contextLength: spec.contextLength,
            isVision: spec.isVision,
            ...(opt.templateRenderOk === undefined ? {} : { templateRenderOk: opt.templateRenderOk }),
          };
        }),
      },
    },
  };
}

/**
 * The Heartbeat frame: SERVING while anything runs, the slots' capacity and memory pressure, and a CPU load
 * and thermal state that rise with the number of streams `decoding`.
 */
export function heartbeatFrame(slots: ModelSlots, decoding: number): ProviderMessageInit {
  const all = slots.all();
  const running = all.reduce((n, s) => n + s.running, 0);
  return {
    msg: {
      case: "heartbeat",
      value: {
        status: running > 0 ? ProviderStatus.SERVING : ProviderStatus.IDLE,
        system: {
          memoryPressure: slots.memoryPressure(),
          cpuUsage: Math.min(1, 0.05 + 0.1 * decoding),
          thermalState: decoding >= 4 ? ThermalState.FAIR : ThermalState.NOMINAL,
        },
        capacity: slots.capacity(),
        warmModels: all.filter((s) => s.state === "ready").map((s) => s.spec.id),
      },
    },
  };
}
