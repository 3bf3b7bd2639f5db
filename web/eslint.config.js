import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

// Components and hooks never touch the WebSocket or RTCPeerConnection: those live in
// src/signaling and src/rtc, framework-free, and the UI subscribes to them.
const NO_TRANSPORT_IN_UI = {
  "no-restricted-globals": [
    "error",
    { name: "WebSocket", message: "Use src/signaling; the UI never opens sockets." },
    { name: "RTCPeerConnection", message: "Use src/rtc; the UI never builds peer connections." },
  ],
  "no-restricted-syntax": [
    "error",
    {
      selector: "NewExpression[callee.name=/^(WebSocket|RTCPeerConnection)$/]",
      message: "Transports belong to src/signaling and src/rtc.",
    },
    {
      selector: "JSXAttribute[name.name='dangerouslySetInnerHTML']",
      message: "Render user text as text.",
    },
  ],
};

export default tseslint.config(
  { ignores: ["dist", "node_modules", "src/protocol/generated.ts"] },
  {
    files: ["**/*.{ts,tsx}"],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: { ecmaVersion: 2023, globals: { ...globals.browser, ...globals.node } },
    plugins: { "react-hooks": reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  { files: ["src/ui/**/*.{ts,tsx}", "src/main.tsx"], rules: NO_TRANSPORT_IN_UI },
  { files: ["scripts/**/*.mjs"], languageOptions: { globals: globals.node } },
);
