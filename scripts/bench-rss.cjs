// Preloaded by the synth benchmark: reports the process's peak resident memory when it exits.
process.on("exit", () => {
  process.stderr.write(`bench-maxrss-kib=${process.resourceUsage().maxRSS}\n`);
});
