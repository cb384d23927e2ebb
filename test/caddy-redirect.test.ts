/**
 * Redirects on an edge that listens off the standard ports (the local stack's 8443), on a real Caddy:
 * Caddy 2.6's own HTTP->HTTPS redirect drops the port, so the fragment says it, for every domain,
 * and the alias redirect names it too. Exact text first, then the answers of a running Caddy.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderSiteFragment, renderMainCaddyfile } from "../core/caddy";
import { SiteSchema } from "../core/site";
import { StackSettingsSchema } from "../stacks/settings";
import { caddyAvailable, freePort, request, startCaddy, stubUpstream } from "./caddy-server";
import { settings, tempDir, website } from "./helpers";

const skip = !caddyAvailable() && !process.env.CI ? "caddy not installed" : false;

const site = SiteSchema.parse(
  website("shop", {
    domains: ["shop.localhost", "www.shop.localhost"],
    dns: { provider: "external" },
  }),
);

test("off port 443 the fragment names the port in both redirects; on 443 it adds nothing", () => {
  const upstream = "127.0.0.1:3000";
  const on443 = renderSiteFragment(site, { logDir: "/data/logs", httpsPort: 443, upstream });
  assert.ok(!on443.includes("http://"), on443);
  assert.ok(on443.includes("\tredir https://shop.localhost{uri} permanent\n"));
  const local = renderSiteFragment(site, { logDir: "/data/logs", httpsPort: 8443, upstream });
  assert.ok(local.includes("\tredir https://shop.localhost:8443{uri} permanent\n"));
  assert.ok(
    local.endsWith(
      "\nhttp://shop.localhost, http://www.shop.localhost {\n\tredir https://{host}:8443{uri} permanent\n}\n",
    ),
    local,
  );
});

test(
  "a real Caddy on high ports sends HTTP and the alias to the HTTPS port it listens on",
  { skip },
  async () => {
    const [httpPort, httpsPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const dir = tempDir("edge-redirect");
    const upstream = await stubUpstream("shop");
    const stack = StackSettingsSchema.parse(
      settings({
        edge: {
          localCerts: true,
          httpPort,
          httpsPort,
          adminAddress: `localhost:${adminPort}`,
          logDir: path.join(dir, "logs"),
        },
      }),
    );
    fs.mkdirSync(path.join(dir, "sites.d"));
    fs.writeFileSync(path.join(dir, "Caddyfile"), renderMainCaddyfile(stack));
    fs.writeFileSync(
      path.join(dir, "sites.d", "shop.caddy"),
      renderSiteFragment(site, {
        logDir: path.join(dir, "logs"),
        httpsPort,
        upstream: `127.0.0.1:${upstream.port}`,
      }),
    );
    const caddy = await startCaddy(
      path.join(dir, "Caddyfile"),
      tempDir("caddy-home"),
      `localhost:${adminPort}`,
    );
    try {
      const plain = await request("http", httpPort, "shop.localhost", "/a?b=1");
      assert.equal(plain.headers.location, `https://shop.localhost:${httpsPort}/a?b=1`);
      const www = await request("http", httpPort, "www.shop.localhost", "/c");
      assert.equal(www.headers.location, `https://www.shop.localhost:${httpsPort}/c`);
      const alias = await request("https", httpsPort, "www.shop.localhost", "/d", caddy.ca);
      assert.equal(alias.status, 301);
      assert.equal(alias.headers.location, `https://shop.localhost:${httpsPort}/d`);
      const served = await request("https", httpsPort, "shop.localhost", "/", caddy.ca);
      assert.deepEqual([served.status, served.body], [200, "upstream shop saw shop.localhost"]);
    } finally {
      await caddy.stop();
      await upstream.close();
    }
  },
);
