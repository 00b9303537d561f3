/**
 * Command-line flags for every command (serve/demo settings, the simulator, the benches): `node:util`
 * `parseArgs`, with every mistake reported as a {@link FlagError} that names the flag and says what is wrong
 * (strict mode's own messages differ across Node versions, and callers word them for their users). As with the
 * hand-written parsers this replaces, a value may start with "-" (`--seed -1`), but not with "--":
 * `--seed --hours 2` is a forgotten value, not a seed of "--hours".
 */
import { type ParseArgsConfig, parseArgs } from "node:util";

type FlagOptions = NonNullable<ParseArgsConfig["options"]>;

/** What is wrong with the command line; `flag` is the flag or argument as typed. */
export type FlagProblem = "unexpected_argument" | "unknown_flag" | "takes_no_value" | "needs_value";

export class FlagError extends Error {
  override readonly name = "FlagError";
  constructor(
    readonly problem: FlagProblem,
    readonly flag: string,
  ) {
    super(defaultMessage(problem, flag));
  }
}

function defaultMessage(problem: FlagProblem, flag: string): string {
  switch (problem) {
    case "unexpected_argument":
      return `unexpected argument ${flag}`;
    case "unknown_flag":
      return `unknown option ${flag}`;
    case "takes_no_value":
      return `${flag} takes no value`;
    case "needs_value":
      return `${flag} needs a value`;
  }
}

/** Parses `argv` (the arguments after the command) against `options`; throws a FlagError naming the bad flag. */
export function parseFlags<const O extends FlagOptions>(argv: readonly string[], options: O) {
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const args: string[] = [];
  for (const t of tokens) {
    if (t.kind === "positional") throw new FlagError("unexpected_argument", t.value);
    if (t.kind === "option-terminator") throw new FlagError("unexpected_argument", "--");
    const spec = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    // A single-dash form counts only for an option that declares it as its short name.
    if (!spec || (!t.rawName.startsWith("--") && spec.short === undefined))
      throw new FlagError("unknown_flag", t.rawName);
    if (spec.type === "boolean") {
      if (t.value !== undefined) throw new FlagError("takes_no_value", t.rawName);
      args.push(`--${t.name}`);
    } else {
      if (t.value === undefined || (!t.inlineValue && t.value.startsWith("--")))
        throw new FlagError("needs_value", t.rawName);
      // Inline, so strict parsing below never sees a separate value starting with "-" as ambiguous.
      args.push(`--${t.name}=${t.value}`);
    }
  }
  return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
}
