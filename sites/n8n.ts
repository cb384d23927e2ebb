import { defineSite } from "../core/site";

// n8n workflow automation.
export default defineSite({
  name: "n8n",
  kind: "service",
  domains: ["n8n.agistaffers.com"],
  upstream: { host: "n8n", port: 5678 },
  dns: { provider: "cloudflare", zone: "agistaffers.com", proxied: true },
});
