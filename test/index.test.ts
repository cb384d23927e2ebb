/** The Pulumi entry point itself (index.ts) under mocks: it exports `inventory` and `caddy`. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { resolveOutput } from "../scripts/mock-engine";
import { prepareMocks } from "../scripts/synth";
import type { Inventory } from "../core/inventory";
import { ROOT } from "./helpers";

test("index.ts runs the program on sites/ and exports inventory and caddy", async () => {
  const { engine } = await prepareMocks(ROOT, "local", path.join(ROOT, "sites"), "sites");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const stack = require("../index") as {
    inventory: pulumi.Output<Inventory>;
    caddy: pulumi.Output<Record<string, string>>;
  };
  const inventory = await resolveOutput(stack.inventory);
  const caddy = await resolveOutput(stack.caddy);
  await engine.settle();
  assert.equal(inventory.value.stack, "local");
  assert.deepEqual(Object.keys(inventory.value.sites).sort(), [
    "admin-dashboard",
    "elarmario",
    "flowise",
    "gangrunprinting",
    "langfuse",
    "n8n",
    "neo4j",
    "ollama",
    "open-webui",
    "portainer",
    "searxng",
    "stepperslife",
    "supabase-db",
    "uvcoatedclubflyers",
    "vaina",
  ]);
  assert.deepEqual(Object.keys(inventory.value.hosts), ["local"]);
  assert.equal(Object.keys(caddy.value).length, 10);
  assert.equal(
    engine.byName("local-network").inputs.name,
    "agi-network",
    "local creates agi-network",
  );
  assert.equal(
    engine.resources.filter((r) => r.type.startsWith("cloudflare:")).length,
    0,
    "DNS off on local",
  );
});
