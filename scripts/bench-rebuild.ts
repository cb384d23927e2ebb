/**
 * npm run bench:rebuild (as root, with a Docker engine, age and rclone; never in CI)
 * The rebuild rehearsal of the engine suite (test/engine/rebuild.ts), timed per phase: the `local`
 * stack's shape with off-site copies to a local S3-compatible server, data in every database, each
 * site's backup and upload, the whole "host" destroyed, rebuilt from the desired state, every database
 * restored from the remote, every site served and every row back. Prints a Markdown table of the
 * phases and writes build/bench/rebuild.json. Everything it creates is removed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Harness } from "../test/engine/harness";
import { rehearseRebuild, rehearsalTable } from "../test/engine/rebuild";
import type { S3Server } from "../test/s3-server";

const ROOT = path.resolve(__dirname, "..");
const log = (m: string) => process.stderr.write(`bench:rebuild: ${m}\n`);

async function main(): Promise<void> {
  const harness = new Harness({ log });
  let s3: S3Server | undefined;
  try {
    const r = await rehearseRebuild(harness, log, (started) => (s3 = started));
    process.stdout.write(
      `Sites: ${Object.entries(r.rows)
        .map(([site, n]) => `${site} (${n} rows)`)
        .join(", ")}; ${r.remoteObjects.length} objects off-site.\n\n${rehearsalTable(r.seconds)}`,
    );
    const out = path.join(ROOT, "build", "bench");
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(
      path.join(out, "rebuild.json"),
      `${JSON.stringify({ seconds: r.seconds, rows: r.rows }, null, 2)}\n`,
    );
  } finally {
    const left = await harness.cleanup();
    if (left.length) log(`cleanup could not remove:\n${left.join("\n")}`);
    await s3?.stop();
  }
}

main().catch((err: unknown) => {
  log(String((err as Error).stack ?? err));
  process.exit(1);
});
