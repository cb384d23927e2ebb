/**
 * npx tsx scripts/engine-images.ts
 * Builds (or finds up to date) the real-engine suite's stand-in images, tagged with the references the
 * `local` stack and the suite's test project declare, and prints what it did as one JSON line.
 * `.ci/run` starts it in the background while the other steps run, so the suite finds them warm;
 * `npm run test:engine` builds them itself when they are missing or stale.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { synth } from "./synth";
import { desiredState } from "../test/engine/harness";
import { buildImages, tagsFor } from "../test/engine/images";
import { STACK, appImagesOf, writeEngineProject } from "../test/engine/project";

async function main(): Promise<void> {
  const root = path.resolve(__dirname, "..");
  const local = await synth(root, "local", path.join(root, "sites"), "sites");
  const project = await writeEngineProject(appImagesOf(local.manifest.resources));
  try {
    const desired = await desiredState(project.root, STACK, project.sitesDir);
    const tags = tagsFor([...local.manifest.resources, ...desired.resources]);
    const report = await buildImages(tags, (m) => process.stdout.write(`engine-images: ${m}\n`));
    process.stdout.write(`engine-images: ${JSON.stringify(report)}\n`);
  } finally {
    fs.rmSync(project.root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`engine-images: ${String((err as Error)?.message ?? err)}\n`);
  process.exit(1);
});
