import { defineSite } from "../core/site";

// Ollama: local models for the other services only, no public route.
export default defineSite({
  name: "ollama",
  kind: "service",
  domains: [],
  upstream: { host: "ollama", port: 11434 },
});
