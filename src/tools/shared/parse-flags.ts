/**
 * Command-line flags for the tools and benches: `node:util` `parseArgs` in strict mode (no positionals), with
 * its errors restated in one short form that names the flag (`unknown option --fast`, `--seed needs a
 * value`), which the tools' tests and usage messages rely on.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

type FlagOptions = NonNullable<ParseArgsConfig["options"]>;

/** Parses `argv` (the arguments after the command) against `options`; throws an Error naming the bad flag. */
export function parseFlags<const O extends FlagOptions>(argv: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new Error(flagProblem(argv, options) ?? (e instanceof Error ? e.message : String(e)));
  }
}

/** The first problem with `argv`, read from parseArgs' tokens; undefined when it finds none. */
function flagProblem(argv: readonly string[], options: FlagOptions): string | undefined {
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind === "positional") return `unexpected argument ${t.value}`;
    if (t.kind !== "option") continue;
    const spec = options[t.name];
    if (!spec) return `unknown option ${t.rawName}`;
    if (spec.type === "boolean" && t.value !== undefined) return `${t.rawName} takes no value`;
    if (spec.type === "string" && t.value === undefined) return `${t.rawName} needs a value`;
    // parseArgs will not take "-x" as a value after a space: it may be a forgotten value followed by a flag.
    if (spec.type === "string" && !t.inlineValue && t.value?.startsWith("-")) {
      return `${t.rawName} needs a value (to pass one starting with "-", write ${t.rawName}=${t.value})`;
    }
  }
  return undefined;
}
