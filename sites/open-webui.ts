import { defineSite } from "../core/site";

// Open WebUI. The seed's 3000 is its host port; the image listens on 8080 inside.
export default defineSite({
  name: "open-webui",
  kind: "service",
  domains: ["chat.agistaffers.com"],
  upstream: { host: "open-webui", port: 8080 },
  dns: { provider: "cloudflare", zone: "agistaffers.com", proxied: true },
});
