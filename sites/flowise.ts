import { defineSite } from "../core/site";

// Flowise. The seed's 3001 is its host port; the image listens on 3000 inside.
export default defineSite({
  name: "flowise",
  kind: "service",
  domains: ["flowise.agistaffers.com"],
  upstream: { host: "flowise", port: 3000 },
  dns: { provider: "cloudflare", zone: "agistaffers.com", proxied: true },
});
