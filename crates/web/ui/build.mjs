// Bundles the dashboard's browser side into dist/ (app.js, app.css), which
// the Rust crate compiles into the binary. Run by build.rs via `npm run build`.
import { build } from "esbuild";

const common = {
  bundle: true,
  minify: true,
  legalComments: "none",
  logLevel: "warning",
};

await build({
  ...common,
  entryPoints: ["src/main.ts"],
  outfile: "dist/app.js",
  format: "esm",
  target: ["es2020"],
  sourcemap: false,
});

await build({
  ...common,
  entryPoints: ["src/app.css"],
  outfile: "dist/app.css",
});
