import tseslint from "typescript-eslint";
import pulumi from "@pulumi/eslint-plugin";

export default tseslint.config(
    { ignores: ["node_modules/", "bin/", "coverage/", "rendered/", "**/*.mjs", "policy/bin/"] },
    ...tseslint.configs.strictTypeChecked,
    {
        languageOptions: { parserOptions: { project: "./tsconfig.json", tsconfigRootDir: import.meta.dirname } },
        plugins: { "@pulumi": pulumi },
        rules: {
            "@pulumi/no-output-in-template-literal": "error",
            "@pulumi/no-output-instance-in-template-literal": "error",
            "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
        },
    },
    {
        // Tests read rendered objects through the ESM-only schema packages' types, where the lint's type
        // service and tsc disagree about optional fields; tsc (strict) stays the judge there.
        files: ["tests/**/*.ts"],
        rules: { "@typescript-eslint/no-unnecessary-condition": "off" },
    },
);
