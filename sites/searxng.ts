import { defineSite } from "../core/site";

// SearXNG.
export default defineSite({
  name: "searxng",
  kind: "service",
  domains: ["searxng.agistaffers.com"],
  upstream: { host: "searxng", port: 8080 },
  dns: { provider: "cloudflare", zone: "agistaffers.com", proxied: true },
});
