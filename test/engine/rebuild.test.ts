/**
 * The rebuild rehearsal on the real engine (test/engine/rebuild.ts): the `local` stack's shape with
 * off-site copies to a local S3-compatible server, backed up and uploaded through the uploader
 * container, the whole "host" destroyed, rebuilt from the desired state, every database restored
 * from the remote with `npm run restore -- --from offsite`, every site served and every row back.
 * The phases' seconds go to build/engine/measurements.json (`rebuild`); no test asserts a time.
 */
import * as assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Harness } from "./harness";
import { recordMeasurements } from "./measurements";
import { rehearseRebuild, rehearsalTable } from "./rebuild";
import type { S3Server } from "../s3-server";

const log = (m: string) => process.stdout.write(`engine-rebuild: ${m}\n`);

describe("real engine, rebuild rehearsal", { timeout: 25 * 60_000 }, () => {
  const harness = new Harness({ log });
  let s3: S3Server | undefined;

  after(async () => {
    const left = await harness.cleanup();
    if (left.length) log(`cleanup could not remove:\n${left.join("\n")}`);
    await s3?.stop();
  });

  it("rebuilds a lost host from the desired state and the off-site copies: every site served, every row back", async () => {
    const r = await rehearseRebuild(harness, log, (started) => (s3 = started));
    // Each site's dump and manifest, encrypted, on the remote; nothing else of the host there.
    assert.deepEqual(
      r.remoteObjects.map((k) => k.replace(/-\d{8}T\d{6}Z/, "-<time>")),
      ["legacy", "mall", "solo"].flatMap((site) => [
        `rehearsal/${site}/${site}-<time>.dump.age`,
        `rehearsal/${site}/${site}-<time>.manifest.json.age`,
      ]),
    );
    assert.deepEqual(r.rows, { solo: 20_000, mall: 10_000, legacy: 5_000 });
    log(`\n${rehearsalTable(r.seconds)}`);
    recordMeasurements({ rebuild: r.seconds });
  });
});
