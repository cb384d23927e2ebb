/**
 * Images by digest where a stack requires it (prod): a tag-only image fails validate unless the
 * stack lists it as still to be pinned, which validate then says; the list cannot keep entries
 * nothing uses. And the repository's prod stack passes with every image it names accounted for.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import {
  digestChecks,
  formatProblem,
  loadSiteEntries,
  readStackFile,
  validateAll,
} from "../core/validate";
import { StackSettingsSchema } from "../stacks/settings";
import { checkSites, ROOT, settings, siteEntry, website } from "./helpers";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const stack = (images: Record<string, unknown>) =>
  StackSettingsSchema.parse(settings({ images: { requireDigest: true, ...images } }));
const platform = ["postgres:15.14-bookworm", "caddy:2.6.2-alpine", "haproxy:2.6.12-alpine"];

test("a stack that requires digests refuses a tag-only image it does not list", () => {
  const problems = checkSites([website("shop")], stack({ toPin: platform }));
  assert.deepEqual(problems, [
    'sites/shop.ts: app.image: "ghcr.io/acme/shop:1.2.3" is pinned by tag only; Pulumi.test.yaml requires a digest (name@sha256:<64 hex>, taken from the registry), or list it in images.toPin until one is verified',
  ]);
  // With a digest it passes; so does a listed tag, which is a note instead.
  assert.deepEqual(
    checkSites(
      [website("shop", { app: { image: `ghcr.io/acme/shop:1.2.3@${DIGEST}`, port: 3000 } })],
      stack({ toPin: platform }),
    ),
    [],
  );
  const listed = stack({ toPin: [...platform, "ghcr.io/acme/shop:1.2.3"] });
  const sites = validateAll(
    [siteEntry(website("shop"))],
    [{ file: "Pulumi.test.yaml", settings: listed }],
  );
  assert.deepEqual(sites.problems, []);
  const notes = digestChecks(sites.sites, listed, "Pulumi.test.yaml").notes.map(formatProblem);
  assert.equal(notes.length, 4);
  assert.equal(
    notes[3],
    'sites/shop.ts: app.image: "ghcr.io/acme/shop:1.2.3" is pinned by tag only: to be pinned by digest (listed in Pulumi.test.yaml images.toPin)',
  );
});

test("the platform's images count too, and a stale toPin entry is refused", () => {
  const problems = checkSites(
    [website("shop", { app: { image: `ghcr.io/acme/shop@${DIGEST}`, port: 3000 } })],
    stack({ toPin: ["caddy:2.6.2-alpine", "ghcr.io/acme/gone:1.0.0"] }),
  );
  assert.deepEqual(problems, [
    'Pulumi.test.yaml: agi-platform:settings.images.postgres: "postgres:15.14-bookworm" is pinned by tag only; Pulumi.test.yaml requires a digest (name@sha256:<64 hex>, taken from the registry), or list it in images.toPin until one is verified',
    'Pulumi.test.yaml: agi-platform:settings.images.socketProxy: "haproxy:2.6.12-alpine" is pinned by tag only; Pulumi.test.yaml requires a digest (name@sha256:<64 hex>, taken from the registry), or list it in images.toPin until one is verified',
    'Pulumi.test.yaml: agi-platform:settings.images.toPin.1: "ghcr.io/acme/gone:1.0.0" is not an image this stack runs by tag; remove it from the list',
  ]);
});

test("a stack that does not require digests takes tags", () => {
  assert.deepEqual(checkSites([website("shop")]), []);
});

test("the prod stack requires digests and lists every image it runs by tag as to be pinned", () => {
  const read = readStackFile(path.join(ROOT, "Pulumi.prod.yaml"), "Pulumi.prod.yaml");
  assert.ok(read.settings);
  assert.equal(read.settings.images.requireDigest, true);
  const loaded = loadSiteEntries(path.join(ROOT, "sites"), "sites");
  const checked = validateAll(loaded.entries, [
    { file: "Pulumi.prod.yaml", settings: read.settings },
  ]);
  assert.deepEqual(checked.problems, []);
  const notes = digestChecks(checked.sites, read.settings, "Pulumi.prod.yaml").notes;
  assert.equal(notes.length, read.settings.images.toPin.length);
});
