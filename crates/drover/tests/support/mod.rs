//! A `Test` builder in the manner of casey/just's: write an environment
//! into a temp directory, run the real `drover` binary, compare what it printed.

#![allow(dead_code)]

pub mod hosts;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
}

impl Test {
    pub fn new() -> Self {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Writes `contents` (un-indented) to `path` inside the environment.
    pub fn file(self, path: &str, contents: &str) -> Self {
        let full = self.dir.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&full, unindent(contents)).expect("write file");
        self
    }

    pub fn remove(self, path: &str) -> Self {
        std::fs::remove_file(self.dir.path().join(path)).expect("remove file");
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Arguments for the next run; `-C DIR` is added unless `in_dir` was used.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs from this subdirectory of the environment, without `-C`.
    pub fn in_dir(mut self, sub: &str) -> Self {
        let dir = self.dir.path().join(sub);
        std::fs::create_dir_all(&dir).expect("create dir");
        self.cwd = Some(dir);
        self
    }

    pub fn run(&self) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
        match &self.cwd {
            Some(cwd) => {
                cmd.current_dir(cwd);
            }
            None => {
                cmd.arg("-C").arg(self.dir.path());
            }
        }
        cmd.args(&self.args)
            .env_remove("DROVER_DIR")
            .env_remove("DROVER_SECRETS_FILE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run drover");
        drop(child.stdin.take());
        let output = child.wait_with_output().expect("wait for drover");
        Run::from(output)
    }
}

/// What one run of drover printed, and how it exited.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn status(&self, expected: i32) -> &Self {
        assert_eq!(
            self.status, expected,
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout(&self, expected: &str) -> &Self {
        assert_eq!(
            self.stdout,
            unindent(expected),
            "stdout (stderr:\n{})",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr(&self, expected: &str) -> &Self {
        assert_eq!(
            self.stderr,
            unindent(expected),
            "stderr (stdout:\n{})",
            self.stdout
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, part: &str) -> &Self {
        assert!(
            self.stdout.contains(part),
            "stdout lacks {part:?}:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, part: &str) -> &Self {
        assert!(
            self.stderr.contains(part),
            "stderr lacks {part:?}:\n{}\nstdout:\n{}",
            self.stderr,
            self.stdout
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Removes the indentation common to all non-empty lines, and a leading newline,
/// so expected output reads as it prints.
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

pub fn write_stdin(child: &mut std::process::Child, input: &str) {
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
}
