/**
 * Command-line flags for the simulator and the benches: `node:util` `parseArgs`, with every mistake reported
 * in one short form that names the flag (`unknown option --fast`, `--seed needs a value`, `unexpected
 * argument x`); strict mode's own messages differ across Node versions. As with the hand-written parsers this
 * replaces, a value may start with "-" (`--seed -1`), but not with "--": `--seed --hours 2` is a forgotten
 * value, not a seed of "--hours".
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

type FlagOptions = NonNullable<ParseArgsConfig["options"]>;

/** Parses `argv` (the arguments after the command) against `options`; throws an Error naming the bad flag. */
export function parseFlags<const O extends FlagOptions>(argv: readonly string[], options: O) {
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const args: string[] = [];
  for (const t of tokens) {
    if (t.kind === "positional") throw new Error(`unexpected argument ${t.value}`);
    if (t.kind === "option-terminator") throw new Error(`unexpected argument --`);
    const spec = options[t.name];
    // A single-dash form counts only for an option that declares it as its short name.
    if (!spec || (!t.rawName.startsWith("--") && spec.short === undefined))
      throw new Error(`unknown option ${t.rawName}`);
    if (spec.type === "boolean") {
      if (t.value !== undefined) throw new Error(`${t.rawName} takes no value`);
      args.push(`--${t.name}`);
    } else {
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith("--")))
        throw new Error(`${t.rawName} needs a value`);
      // Inline, so strict parsing below never sees a separate value starting with "-" as ambiguous.
      args.push(`--${t.name}=${t.value}`);
    }
  }
  return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
}
