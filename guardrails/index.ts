import { guardrails } from "./program";

export const { environments } = guardrails();
