import { defineSite } from "../core/site";

// The live site. Its database already exists in the host's shared (Supabase) cluster, so it stays
// there ("shared" mode) with its own role instead of the shared superuser password.
// The seed lists port 3002: that was the host port. The app is reached through its network alias and
// listens on the Next.js default, 3000, inside the container; nothing is published on the host.
export default defineSite({
  name: "stepperslife",
  kind: "website",
  status: "active",
  domains: ["stepperslife.com", "www.stepperslife.com"],
  app: {
    // No registry reference was recorded for the running image: this names the organisation's GitHub
    // container registry, pinned to a tag the app's CI must publish before the first `pulumi up`.
    image: "ghcr.io/agistaffers/stepperslife:1.0.0",
    port: 3000,
    env: { NODE_ENV: "production" },
    healthcheck: { path: "/" },
  },
  // The tables predate the platform (adopted): components/adopt-database.sql hands them to the derived
  // role stepperslife_owner (run once before the first deployment); the app role is made a member.
  database: { mode: "shared", name: "stepperslife", ownerRole: true },
  dns: { provider: "cloudflare", zone: "stepperslife.com", proxied: true },
  repo: "agistaffers/stepperslife",
});
