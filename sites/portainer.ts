import { defineSite } from "../core/site";

// Portainer.
export default defineSite({
  name: "portainer",
  kind: "service",
  domains: ["portainer.agistaffers.com"],
  upstream: { host: "portainer", port: 9000 },
  dns: { provider: "cloudflare", zone: "agistaffers.com", proxied: true },
});
