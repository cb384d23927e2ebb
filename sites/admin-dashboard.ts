import { defineSite } from "../core/site";

// The management dashboard. The seed gives it the shared cluster's superuser on the `postgres`
// database and mounts the Docker socket; here it gets its own database and role in the shared cluster
// (management data stays next to the other sites' data) and reads Docker state through a read-only
// socket proxy (dockerReadAccess). The seed's host port 3007 is gone: the edge reaches the alias.
export default defineSite({
  name: "admin-dashboard",
  kind: "website",
  status: "active",
  domains: ["admin.agistaffers.com"],
  app: {
    // Pinned reference in the organisation's GitHub container registry; its CI publishes the tag.
    image: "ghcr.io/agistaffers/admin-dashboard:0.1.0",
    port: 3000,
    env: { NODE_ENV: "production" },
    secretEnv: {
      // The site's own secrets: pulumi config set --path --secret 'secrets.admin-dashboard.jwt-secret'
      JWT_SECRET: "jwt-secret",
      ADMIN_EMAIL: "admin-email",
    },
    healthcheck: { path: "/api/status" },
    dockerReadAccess: true,
  },
  database: { mode: "shared", name: "admin_dashboard" },
  dns: { provider: "cloudflare", zone: "agistaffers.com", proxied: true },
  repo: "agistaffers/admin-dashboard",
});
