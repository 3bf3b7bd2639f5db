import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The build lands in the Python package, which serves it (`salon serve`).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../src/salon/static",
    emptyOutDir: true,
    assetsInlineLimit: 0, // CSP: no data: scripts or styles
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
