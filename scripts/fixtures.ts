/** Example stack settings and throwaway project directories, for the tests and the benchmark. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";

/** One host with a shared cluster and Cloudflare DNS; `capacity` is the host's budget. */
export function exampleSettings(
  overrides: Record<string, unknown> = {},
  capacity: { memory: string; cpus: number } = { memory: "4Gi", cpus: 4 },
): Record<string, unknown> {
  return {
    hosts: [
      {
        name: "vps1",
        publicIp: "203.0.113.10",
        docker: { connection: "ssh", user: "deploy", address: "203.0.113.10" },
        capacity,
        sharedDatabase: {
          container: "shared-pg",
          adminAddress: "127.0.0.1",
          adminPort: 15432,
          adminPasswordSecret: "sharedDbPassword",
        },
      },
    ],
    edge: { acmeEmail: "ops@example.com" },
    dns: { provider: "cloudflare" },
    // The company's own zone, shared by the test sites; a client's zone would belong to one site.
    sharedZones: ["example.com"],
    ...overrides,
  };
}

/** Writes a project root: Pulumi.<stack>.yaml with the settings, and sites/<name>.ts per site. */
export function writeProject(
  stack: string,
  stackSettings: Record<string, unknown>,
  sites: Record<string, unknown>[],
): { root: string; sitesDir: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "agi-project-"));
  fs.writeFileSync(
    path.join(root, `Pulumi.${stack}.yaml`),
    stringify({ config: { "agi-platform:settings": stackSettings } }),
  );
  const sitesDir = path.join(root, "sites");
  fs.mkdirSync(sitesDir);
  for (const s of sites) {
    fs.writeFileSync(
      path.join(sitesDir, `${String(s.name)}.ts`),
      `export default ${JSON.stringify(s, null, 2)};\n`,
    );
  }
  return { root, sitesDir };
}
