import { defineSite } from "../core/site";

// Neo4j's browser (HTTP, 7474). Bolt (7687) stays on agi-network: it is not HTTP and gets no route.
export default defineSite({
  name: "neo4j",
  kind: "service",
  domains: ["neo4j.agistaffers.com"],
  upstream: { host: "neo4j", port: 7474 },
  dns: { provider: "cloudflare", zone: "agistaffers.com", proxied: true },
});
