//! Builds the dashboard's browser side (`ui/`) into `ui/dist/` with npm,
//! when the bundle is missing or older than its sources, so that
//! `cargo build` alone turns a fresh clone into a binary that serves the
//! page. Nothing npm fetches is committed: `ui/node_modules/` and
//! `ui/dist/` are ignored by git.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn main() {
    let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui");
    for path in [
        "src",
        "package.json",
        "package-lock.json",
        "build.mjs",
        "dist",
    ] {
        println!("cargo:rerun-if-changed=ui/{path}");
    }
    let sources = newest(&[
        ui.join("src"),
        ui.join("package.json"),
        ui.join("package-lock.json"),
        ui.join("build.mjs"),
    ]);
    let bundle = oldest(&[ui.join("dist/app.js"), ui.join("dist/app.css")]);
    if matches!((bundle, sources), (Some(b), Some(s)) if b >= s) {
        return;
    }
    if Command::new("npm").arg("--version").output().is_err() {
        fail("building the dashboard's page needs npm (Node.js 18 or newer) on PATH: install it (Debian: apt-get install nodejs npm) and build again");
    }
    let installed = modified(&ui.join("node_modules/.package-lock.json"));
    let locked = modified(&ui.join("package-lock.json"));
    if installed.is_none() || installed < locked {
        run(&ui, &["ci", "--no-audit", "--no-fund"]);
    }
    run(&ui, &["run", "build"]);
}

fn run(dir: &Path, args: &[&str]) {
    let status = Command::new("npm").args(args).current_dir(dir).status();
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

/// The newest modification time of the files under `paths`.
fn newest(paths: &[PathBuf]) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&path) {
            stack.extend(entries.flatten().map(|e| e.path()));
        } else if let Some(time) = modified(&path) {
            newest = newest.max(Some(time));
        }
    }
    newest
}

/// The oldest modification time of `paths`; `None` if any is missing.
fn oldest(paths: &[PathBuf]) -> Option<SystemTime> {
    paths
        .iter()
        .map(|p| modified(p))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
}
