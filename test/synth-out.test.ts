/** `synth --out` writes only into a directory it created, an empty one, or one it marked before. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { OUT_MARK, writeSynth, type SynthResult } from "../scripts/synth";
import { tempDir } from "./helpers";

const result: SynthResult = {
  manifest: { stack: "test", resources: [] },
  inventory: { stack: "test", sites: {}, hosts: {} },
  caddy: { Caddyfile: "# main\n", "sites.d/shop.caddy": "# shop\n" },
};
const FILES = ["manifest.json", "inventory.json", "caddy/Caddyfile", "caddy/sites.d/shop.caddy"];

test("a new directory is created and marked; a marked one is replaced file by file", () => {
  const out = path.join(tempDir("synth-out"), "a", "b");
  assert.deepEqual(writeSynth(out, result), FILES);
  assert.ok(fs.existsSync(path.join(out, OUT_MARK)));
  fs.writeFileSync(path.join(out, "caddy", "sites.d", "gone.caddy"), "# a site since removed\n");
  assert.deepEqual(writeSynth(out, result), FILES);
  assert.deepEqual(fs.readdirSync(path.join(out, "caddy", "sites.d")), ["shop.caddy"]);
});

test("an empty directory is taken; one with other files, a file or a link is refused untouched", () => {
  const empty = tempDir("synth-empty");
  assert.deepEqual(writeSynth(empty, result), FILES);

  const home = tempDir("synth-home");
  fs.mkdirSync(path.join(home, "caddy"));
  fs.writeFileSync(path.join(home, "caddy", "keep"), "mine");
  fs.writeFileSync(path.join(home, "notes.txt"), "mine");
  assert.throws(() => writeSynth(home, result), {
    message: `synth: --out ${home} holds files synth did not write; give a new or empty directory, or remove it if it is an older synth output (nothing written)`,
  });
  assert.deepEqual(fs.readdirSync(home).sort(), ["caddy", "notes.txt"]);
  assert.equal(fs.readFileSync(path.join(home, "caddy", "keep"), "utf8"), "mine");

  const file = path.join(tempDir("synth-file"), "out");
  fs.writeFileSync(file, "x");
  assert.throws(() => writeSynth(file, result), {
    message: `synth: --out ${file} is not a directory; nothing written`,
  });
  const link = path.join(tempDir("synth-link"), "out");
  fs.symlinkSync(empty, link);
  assert.throws(() => writeSynth(link, result), {
    message: `synth: --out ${link} is not a directory; nothing written`,
  });
});

test("a link planted inside synth's own directory is replaced, never written through", () => {
  const out = tempDir("synth-planted");
  writeSynth(out, result);
  const victim = path.join(tempDir("synth-victim"), "precious");
  fs.writeFileSync(victim, "precious");
  fs.rmSync(path.join(out, "manifest.json"));
  fs.symlinkSync(victim, path.join(out, "manifest.json"));
  writeSynth(out, result);
  assert.equal(fs.readFileSync(victim, "utf8"), "precious");
  assert.equal(fs.lstatSync(path.join(out, "manifest.json")).isSymbolicLink(), false);
});
