//! Builds the dashboard's browser side (`ui/`) with npm into `OUT_DIR`, so
//! that `cargo build` alone turns a fresh clone into a binary that serves
//! the page, and the source tree gets nothing but npm's own
//! `ui/node_modules/` (ignored by git). Cargo runs this again whenever a
//! file of `ui/` that goes into the bundle changes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn main() {
    let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui");
    for path in ["src", "package.json", "package-lock.json", "build.mjs"] {
        println!("cargo:rerun-if-changed=ui/{path}");
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        fail("cargo did not set OUT_DIR");
    };
    let dist = out.join("ui");
    if Command::new("npm").arg("--version").output().is_err() {
        fail("building the dashboard's page needs npm (Node.js 18 or newer) on PATH: install it (Debian: apt-get install nodejs npm) and build again");
    }
    let installed = modified(&ui.join("node_modules/.package-lock.json"));
    let locked = modified(&ui.join("package-lock.json"));
    if installed.is_none() || installed < locked {
        run(&ui, &["ci", "--no-audit", "--no-fund"], &dist);
    }
    run(&ui, &["run", "build"], &dist);
}

fn run(dir: &Path, args: &[&str], dist: &Path) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .env("DROVER_UI_OUT", dist)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!(
            "`npm {}` in {} failed ({status})",
            args.join(" "),
            dir.display()
        )),
        Err(e) => fail(&format!("cannot run npm: {e}")),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: drover-web: {message}");
    std::process::exit(1);
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
