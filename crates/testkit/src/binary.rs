//! The `drover` binary for tests of crates other than `drover` itself,
//! which have no `CARGO_BIN_EXE_drover`: built (once per test process, a
//! no-op when it is up to date) into the same target directory.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Path of a `drover` binary built from the sources as they are.
pub fn drover() -> String {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/<test binary>
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir: PathBuf = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test runs from target/<profile>/deps")
            .to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "drover", "--bin", "drover"]);
        if release {
            build.arg("--release");
        }
        if let Some(target) = profile_dir.parent() {
            build.env("CARGO_TARGET_DIR", target);
        }
        let status = build.status().expect("run cargo build -p drover");
        assert!(status.success(), "cargo build -p drover failed");
        profile_dir.join("drover").to_string_lossy().into_owned()
    })
    .clone()
}
