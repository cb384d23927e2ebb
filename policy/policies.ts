/** The rules as the engine's policy pack runs them: one mandatory resource policy per rule. */
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { RULES } from "./rules";

export const policies: ResourceValidationPolicy[] = RULES.map((rule) => ({
  name: rule.name,
  description: rule.description,
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) => {
    if (!rule.types.includes(args.type)) return;
    // The engine does not show retainOnDelete to policies: that rule decides in `npm run policy`,
    // which the workflows run before every preview and update.
    const message = rule.check({
      type: args.type,
      name: args.name,
      urn: args.urn,
      props: args.props,
    });
    if (message !== undefined) reportViolation(message);
  },
}));
