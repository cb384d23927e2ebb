import { defineSite } from "../core/site";

// Planned client site: reserved (name, domains, database name), nothing is created until "active".
// It gets its own PostgreSQL container instead of a port on the host and the shared password.
export default defineSite({
  name: "gangrunprinting",
  kind: "website",
  status: "planned",
  domains: ["gangrunprinting.com", "www.gangrunprinting.com"],
  app: {
    // Pinned reference in the organisation's GitHub container registry; its CI publishes the tag.
    image: "ghcr.io/agistaffers/gangrunprinting:0.1.0",
    port: 3000,
    env: { NODE_ENV: "production" },
    healthcheck: { path: "/api/health" },
  },
  database: { mode: "dedicated", name: "gangrunprinting", resources: { memory: "256Mi" } },
  dns: { provider: "cloudflare", zone: "gangrunprinting.com", proxied: true },
  repo: "agistaffers/gangrunprinting",
});
