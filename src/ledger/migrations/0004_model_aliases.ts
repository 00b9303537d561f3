/**
 * Model aliases an operator sets through the admin API (`SetModelAlias`): a public model name consumers send
 * (e.g. `gpt-oss-20b`) → the concrete build new traffic goes to, and, during a rollout, the previous build that
 * serves while the new one has no capacity. The table refuses only what is never meaningful (a previous build
 * equal to the build); names and the number of aliases are bounded by the admin API and the store.
 * Uses `Kysely<any>` and never imports `src/`, like every migration.
 */
import { sql, type Kysely } from "kysely";

/* eslint-disable @typescript-eslint/no-explicit-any */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE model_aliases (
      alias text PRIMARY KEY,
      build text NOT NULL,
      previous_build text NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK (previous_build IS NULL OR previous_build <> build)
    );
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE model_aliases;`.execute(db);
}
