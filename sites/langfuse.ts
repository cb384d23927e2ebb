import { defineSite } from "../core/site";

// Langfuse. The seed gives it 3002, which it also gives stepperslife: that was a host-port clash.
// Routing by container name removes it; the image listens on 3000 inside.
export default defineSite({
  name: "langfuse",
  kind: "service",
  domains: ["langfuse.agistaffers.com"],
  upstream: { host: "langfuse", port: 3000 },
  dns: { provider: "cloudflare", zone: "agistaffers.com", proxied: true },
});
