// Lint: typescript-eslint's type-aware rules plus the Pulumi rules against Outputs in template literals.
import tseslint from "typescript-eslint";
import pulumi from "@pulumi/eslint-plugin";

export default tseslint.config(
  { ignores: ["node_modules/**", "build/**", "bin/**", "eslint.config.mjs", "scripts/*.cjs"] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@pulumi": pulumi },
    rules: {
      "@pulumi/no-output-in-template-literal": "error",
      "@pulumi/no-output-instance-in-template-literal": "error",
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            {
              from: "package",
              package: "node:test",
              name: ["test", "it", "describe", "before", "after"],
            },
          ],
        },
      ],
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowBoolean: true },
      ],
    },
  },
  {
    // The core is pure data -> data: no Pulumi SDK and nothing from the components. The commands that
    // only read (validate, restore, tunnel, policy) stand on the core alone, so they load no provider.
    files: ["core/**/*.ts", "stacks/**/*.ts", "scripts/{args,stack,validate,restore,tunnel}.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["@pulumi/*"], message: "core modules are pure: no Pulumi SDK import" },
            { group: ["**/components/*"], message: "core modules never import components" },
          ],
        },
      ],
    },
  },
  {
    // Tests compare unknown JSON and mock payloads.
    files: ["test/**/*.ts", "scripts/mock-engine.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-call": "off",
    },
  },
);
