//! What drover's tests share: environments written into temporary
//! directories, the standard fixtures, a `just`-style runner for the real
//! binary, and the suite's own Docker hosts.
//!
//! Each crate's tests used to paste the same `drover.toml`; they take it
//! from [`fixtures`] now.

// The engine simulator writes the engine's large JSON shapes with `json!`.
#![recursion_limit = "512"]

pub mod binary;
pub mod cli;
pub mod endpoints;
pub mod fixtures;
pub mod hosts;
pub mod normalize;
pub mod proxy;
pub mod sim;
pub mod tmux;
pub mod webhook;

pub use normalize::{normalize, Normalizer};

use std::path::Path;

/// Writes `files` (path, un-indented contents) under `dir`.
pub fn tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&full, unindent(text)).expect("write file");
    }
}

/// Removes the indentation common to all non-empty lines, and a leading
/// newline, so expected output and files read as they print.
pub fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: String = text
        .lines()
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if text.ends_with('\n') || !out.is_empty() {
        out.push('\n');
    }
    // Trailing indentation before the closing quote is not content.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Loads an environment from `files` written into a fresh temporary directory.
pub fn load_env(files: &[(&str, &str)]) -> drover_spec::Environment {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("jobs")).expect("jobs dir");
    tree(dir.path(), files);
    match drover_spec::load(dir.path(), None) {
        Ok(env) => env,
        Err(e) => panic!("the fixture environment does not load:\n{e}"),
    }
}
