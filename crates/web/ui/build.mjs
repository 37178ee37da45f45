// Bundles the dashboard's browser side (app.js, app.css) into the directory
// DROVER_UI_OUT names (build.rs passes its OUT_DIR/ui; `npm run build` by
// hand writes dist/), which the Rust crate compiles into the binary.
import { build } from "esbuild";

const out = process.env.DROVER_UI_OUT || "dist";

const common = {
  bundle: true,
  minify: true,
  legalComments: "none",
  logLevel: "warning",
};

await build({
  ...common,
  entryPoints: ["src/main.ts"],
  outfile: `${out}/app.js`,
  format: "esm",
  target: ["es2020"],
  sourcemap: false,
});

await build({
  ...common,
  entryPoints: ["src/app.css"],
  outfile: `${out}/app.css`,
});
