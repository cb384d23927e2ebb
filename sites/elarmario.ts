import { defineSite } from "../core/site";

// Planned client site: reserved (name, domains, database name), nothing is created until "active".
// It gets its own PostgreSQL container instead of a port on the host and the shared password.
export default defineSite({
  name: "elarmario",
  kind: "website",
  status: "planned",
  domains: ["elarmario.com.do", "www.elarmario.com.do"],
  app: {
    // Pinned reference in the organisation's GitHub container registry; its CI publishes the tag.
    image: "ghcr.io/agistaffers/elarmario:0.1.0",
    port: 3000,
    env: { NODE_ENV: "production" },
    healthcheck: { path: "/api/health" },
  },
  database: { mode: "dedicated", name: "elarmario", resources: { memory: "256Mi" } },
  dns: { provider: "cloudflare", zone: "elarmario.com.do", proxied: true },
  repo: "agistaffers/elarmario",
});
