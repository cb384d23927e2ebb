/**
 * Origin only through Cloudflare, with the client's address for the app: a proxied site's blocks
 * refuse every client outside Cloudflare's ranges and trust X-Forwarded-For from those ranges only.
 * Exact text first, then a real Caddy (2.6.2) where loopback plays Cloudflare for one site (its
 * ranges are 127.0.0.1/32 there) and is an outsider for another (the real ranges). What this cannot
 * show: Cloudflare's own addresses connecting (the test has none).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type * as net from "node:net";
import * as path from "node:path";
import { fragmentOptions, renderMainCaddyfile, renderSiteFragment } from "../core/caddy";
import { CLOUDFLARE_RANGES, cidrProblem, cloudflareRanges } from "../core/cloudflare";
import { SiteSchema } from "../core/site";
import { StackSettingsSchema } from "../stacks/settings";
import { caddyAvailable, caddyValidate, freePort, startCaddy } from "./caddy-server";
import { settings, tempDir, website } from "./helpers";

const skip = !caddyAvailable() && !process.env.CI ? "caddy not installed" : false;

const cloudflareSite = (name: string, proxied: boolean) =>
  SiteSchema.parse(
    website(name, {
      domains: [`${name}.example.localhost`, `www.${name}.example.localhost`],
      dns: { provider: "cloudflare", zone: "example.localhost", proxied },
    }),
  );

test("Cloudflare's ranges are kept with their source and every entry is an aligned CIDR block", () => {
  assert.deepEqual(CLOUDFLARE_RANGES.sources, [
    "https://www.cloudflare.com/ips-v4",
    "https://www.cloudflare.com/ips-v6",
  ]);
  assert.match(CLOUDFLARE_RANGES.listed, /^\d{4}-\d{2}-\d{2}$/);
  assert.ok(CLOUDFLARE_RANGES.ipv4.length >= 10 && CLOUDFLARE_RANGES.ipv6.length >= 5);
  for (const r of CLOUDFLARE_RANGES.ipv4) assert.ok(r.includes(".") && !cidrProblem(r), r);
  for (const r of CLOUDFLARE_RANGES.ipv6) assert.ok(r.includes(":") && !cidrProblem(r), r);
  assert.equal(new Set(cloudflareRanges()).size, cloudflareRanges().length, "a range twice");
  // The parser refuses what it should.
  for (const [bad, why] of [
    ["104.16.0.1/13", /host bits/],
    ["104.16.0.0/33", /prefix longer than 32/],
    ["256.1.1.0/24", /no valid/],
    ["104.16.0.0", /address\/prefix/],
    ["2400:cb00::1/32", /host bits/],
    ["2400:cb00:::/32", /no valid/],
    ["1:2:3:4:5:6:7:8:9/64", /no valid/],
    ["2400:cb00::/129", /prefix longer than 128/],
    ["010.0.0.0/8", /no valid/],
  ] as const) {
    assert.match(cidrProblem(bad) ?? "", why, bad);
  }
});

test("a proxied site on a Cloudflare stack refuses outsiders and trusts Cloudflare's forwarded address", () => {
  const stack = StackSettingsSchema.parse(settings({ dns: { provider: "cloudflare" } }));
  // The app container of the current version is what a website proxies to.
  const options = { ...fragmentOptions(stack), upstream: "shop-app-0123abcd:3000" };
  assert.deepEqual(options.proxyRanges, cloudflareRanges());
  const ranges = cloudflareRanges().join(" ");
  const text = renderSiteFragment(cloudflareSite("shop", true), options);
  assert.ok(
    text.includes(
      `shop.example.localhost {\n\t@outside_proxy not remote_ip ${ranges}\n\trespond @outside_proxy "This origin answers through Cloudflare only." 403 {\n\t\tclose\n\t}\n`,
    ),
    text,
  );
  assert.ok(text.includes(`\t\ttrusted_proxies ${ranges}\n`), text);
  assert.ok(
    text.includes(
      `www.shop.example.localhost {\n\t@outside_proxy not remote_ip ${ranges}\n\troute {\n\t\trespond @outside_proxy`,
    ),
    text,
  );
  // Not proxied: anyone may connect, and nobody's X-Forwarded-For is trusted.
  const direct = renderSiteFragment(cloudflareSite("shop", false), options);
  assert.ok(!direct.includes("remote_ip") && !direct.includes("trusted_proxies"), direct);
  // A stack without Cloudflare (local): nothing, whatever the site file says.
  const local = StackSettingsSchema.parse(settings({ dns: { provider: "none" } }));
  assert.equal(fragmentOptions(local).proxyRanges, undefined);
  const plain = renderSiteFragment(cloudflareSite("shop", true), {
    ...fragmentOptions(local),
    upstream: "shop-app-0123abcd:3000",
  });
  assert.ok(!plain.includes("remote_ip") && !plain.includes("trusted_proxies"), plain);
  assert.equal(plain, direct);
  // A range reaches Caddy only as an aligned CIDR block.
  for (const bad of ["127.0.0.1/32 }", "0.0.0.0/0\n\timport x", "10.0.0.1/8"]) {
    assert.throws(
      () => renderSiteFragment(cloudflareSite("shop", true), { ...options, proxyRanges: [bad] }),
      /proxy range/,
    );
  }
});

/** A request to the edge on loopback with extra headers; the answer's status and body. */
function ask(
  port: number,
  host: string,
  ca: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        servername: host,
        path: "/",
        headers: { host, ...headers },
        ca,
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

test(
  "a real Caddy: outsiders are refused on proxied sites; the app sees the address the proxy forwards",
  { skip },
  async () => {
    const [httpPort, httpsPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const dir = tempDir("edge-origin");
    // The app: answers with the X-Forwarded-For it was given.
    const app = http.createServer((req, res) =>
      res.end(`xff=${String(req.headers["x-forwarded-for"])}`),
    );
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
    const upstream = `127.0.0.1:${(app.address() as net.AddressInfo).port}`;
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
    const base = { logDir: path.join(dir, "logs"), httpsPort, upstream };
    fs.mkdirSync(path.join(dir, "sites.d"));
    fs.writeFileSync(path.join(dir, "Caddyfile"), renderMainCaddyfile(stack));
    const fragments: [string, string][] = [
      // Loopback plays Cloudflare for this one.
      [
        "viacf",
        renderSiteFragment(cloudflareSite("viacf", true), {
          ...base,
          proxyRanges: ["127.0.0.1/32"],
        }),
      ],
      // Loopback is an outsider for this one: Cloudflare's real ranges.
      [
        "guarded",
        renderSiteFragment(cloudflareSite("guarded", true), {
          ...base,
          proxyRanges: cloudflareRanges(),
        }),
      ],
      // Not proxied.
      [
        "open",
        renderSiteFragment(cloudflareSite("open", false), {
          ...base,
          proxyRanges: cloudflareRanges(),
        }),
      ],
    ];
    for (const [name, text] of fragments) {
      fs.writeFileSync(path.join(dir, "sites.d", `${name}.caddy`), text);
    }
    const home = tempDir("caddy-home");
    const check = caddyValidate(path.join(dir, "Caddyfile"), home);
    assert.equal(check.code, 0, check.output);
    const caddy = await startCaddy(path.join(dir, "Caddyfile"), home, `localhost:${adminPort}`);
    try {
      const cfClient = { "x-forwarded-for": "203.0.113.7" };
      // Through "Cloudflare": the app sees the client's address first, then the proxy's.
      assert.deepEqual(await ask(httpsPort, "viacf.example.localhost", caddy.ca, cfClient), {
        status: 200,
        body: "xff=203.0.113.7, 127.0.0.1",
      });
      // An outsider is refused on the proxied site and its alias, whatever address it claims.
      for (const host of ["guarded.example.localhost", "www.guarded.example.localhost"]) {
        for (const headers of [{}, { "x-forwarded-for": "173.245.48.1" }, cfClient]) {
          const res = await ask(httpsPort, host, caddy.ca, headers);
          assert.deepEqual(
            [res.status, res.body],
            [403, "This origin answers through Cloudflare only."],
            `${host} ${JSON.stringify(headers)}`,
          );
        }
      }
      // Not proxied: served, and a forged X-Forwarded-For is replaced by the connecting address.
      assert.deepEqual(await ask(httpsPort, "open.example.localhost", caddy.ca, cfClient), {
        status: 200,
        body: "xff=127.0.0.1",
      });
      const alias = await ask(httpsPort, "www.open.example.localhost", caddy.ca);
      assert.equal(alias.status, 301);
    } finally {
      await caddy.stop();
      await new Promise<void>((r) => app.close(() => r()));
    }
  },
);
