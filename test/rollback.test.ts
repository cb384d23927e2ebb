/**
 * `npm run rollback`: in a scratch git repository whose site file went through three images, the
 * command makes a branch whose one commit puts the previous image back, without touching the work
 * tree or HEAD; and it refuses what it cannot do safely.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { imageOf, main, withImage } from "../scripts/rollback";
import { runInProcess, tempDir } from "./helpers";

const site = (image: string) => `import { defineSite } from "../core/site";

export default defineSite({
  name: "shop",
  kind: "website",
  domains: ["shop.example.com"],
  app: { image: "${image}", port: 3000 },
  database: { mode: "dedicated" },
  dns: { provider: "none" },
});
`;

function repo(images: string[]): { dir: string; git: (...a: string[]) => string } {
  const dir = tempDir("rollback");
  const git = (...a: string[]) =>
    execFileSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", ...a], {
      encoding: "utf8",
    }).trim();
  git("init", "-q", "-b", "main");
  fs.mkdirSync(path.join(dir, "sites"));
  for (const image of images) {
    fs.writeFileSync(path.join(dir, "sites", "shop.ts"), site(image));
    git("add", "-A");
    git("commit", "-q", "-m", `shop ${image}`);
  }
  return { dir, git };
}

test("rollback makes a branch with the previous image, leaving the checkout as it was", async () => {
  const { dir, git } = repo([
    "ghcr.io/acme/shop:1.0.0",
    "ghcr.io/acme/shop:1.1.0",
    "ghcr.io/acme/shop:1.2.0",
  ]);
  const head = git("rev-parse", "HEAD");
  const r = await runInProcess(main, ["--site", "shop", "--branch", "rollback/shop"], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /shop: ghcr\.io\/acme\/shop:1\.2\.0 -> ghcr\.io\/acme\/shop:1\.1\.0, committed on branch rollback\/shop/,
  );
  assert.equal(git("rev-parse", "HEAD"), head, "HEAD did not move");
  assert.equal(git("status", "--porcelain"), "", "the work tree is untouched");
  assert.equal(git("rev-parse", "rollback/shop^"), head);
  const after = git("show", "rollback/shop:sites/shop.ts");
  assert.equal(after, site("ghcr.io/acme/shop:1.1.0").trim());
  assert.deepEqual(git("diff", "--name-only", "HEAD", "rollback/shop").split("\n"), [
    "sites/shop.ts",
  ]);
  assert.equal(
    git("log", "-1", "--format=%s", "rollback/shop"),
    "Roll back shop to ghcr.io/acme/shop:1.1.0",
  );
  // --to names any image; an existing branch is not overwritten.
  const again = await runInProcess(main, ["--site", "shop", "--branch", "rollback/shop"], {
    cwd: dir,
  });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /rollback: .*already exists/);
  const to = await runInProcess(
    main,
    ["--site", "shop", "--to", "ghcr.io/acme/shop:1.0.0", "--branch", "rb2"],
    { cwd: dir },
  );
  assert.equal(to.code, 0, to.stderr);
  assert.match(git("show", "rb2:sites/shop.ts"), /shop:1\.0\.0/);
});

test("rollback refuses: no earlier image, uncommitted changes, a bad site or image", async () => {
  const { dir } = repo(["ghcr.io/acme/shop:1.0.0"]);
  const none = await runInProcess(main, ["--site", "shop"], { cwd: dir });
  assert.equal(none.code, 1);
  assert.match(
    none.stderr,
    /no earlier app\.image in its history than ghcr\.io\/acme\/shop:1\.0\.0/,
  );
  fs.appendFileSync(path.join(dir, "sites", "shop.ts"), "\n");
  const dirty = await runInProcess(main, ["--site", "shop", "--to", "ghcr.io/acme/shop:0.9.0"], {
    cwd: dir,
  });
  assert.equal(dirty.code, 1);
  assert.match(dirty.stderr, /uncommitted changes/);
  for (const argv of [
    ["--site", "../x"],
    ["--site", "shop", "--to", "x:latest"],
    ["--site", "shop", "--branch", "-f"],
    [],
  ]) {
    const r = await runInProcess(main, argv, { cwd: dir });
    assert.equal(r.code, 2, argv.join(" "));
    assert.match(r.stderr, /usage: npm run rollback/);
  }
});

test("the image literal is replaced only where it is exactly one", () => {
  assert.equal(imageOf(site("a/b:1"), "x.ts"), "a/b:1");
  assert.equal(withImage(site("a/b:1"), "a/b:1", "a/b:0"), site("a/b:0"));
  assert.throws(
    () => withImage(`${site("a/b:1")}// "a/b:1"\n`, "a/b:1", "a/b:0"),
    /names "a\/b:1" 2 times/,
  );
});
