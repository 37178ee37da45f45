//! Runs the real `drover` binary the way casey/just's tests run `just`:
//! expectations (exit status, stdout, stderr) are set before the run; by
//! default the run must exit 0 with an empty stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::normalize::Normalizer;
use crate::unindent;

#[must_use = "a test does nothing until .run()"]
pub struct Drover {
    bin: PathBuf,
    dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    stdin: Option<String>,
    status: i32,
    stdout: Option<String>,
    stdout_has: Vec<String>,
    stdout_lacks: Vec<String>,
    stderr: Option<String>,
    stderr_has: Vec<String>,
    normalizer: Option<Normalizer>,
}

/// What one run printed, and how it exited.
#[derive(Debug)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
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

impl Drover {
    /// `bin` run with `-C dir` (unless [`Drover::in_dir`] is used).
    pub fn new(bin: &str, dir: &Path, args: &[&str]) -> Self {
        Drover {
            bin: PathBuf::from(bin),
            dir: dir.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            cwd: None,
            stdin: None,
            status: 0,
            stdout: None,
            stdout_has: Vec::new(),
            stdout_lacks: Vec::new(),
            stderr: Some(String::new()),
            stderr_has: Vec::new(),
            normalizer: None,
        }
    }

    /// Compares outputs (whole, and the parts `…_has` and `…_lacks` name)
    /// with IDs, times, durations, sizes and temporary paths masked, and the
    /// environment's directory shown as `<dir>` ([`crate::normalize`]).
    pub fn normalized(mut self) -> Self {
        let dir = self.dir.display().to_string();
        self.normalizer = Some(Normalizer::new().literal(&dir, "<dir>"));
        self
    }

    /// [`Drover::normalized`], with each run of two or more spaces squeezed
    /// to two: tables compare whatever widths the masked values gave them.
    pub fn normalized_table(self) -> Self {
        let mut test = self.normalized();
        test.normalizer = test.normalizer.map(Normalizer::columns);
        test
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs from this subdirectory of the environment, without `-C`.
    pub fn in_dir(mut self, sub: &str) -> Self {
        let dir = self.dir.join(sub);
        std::fs::create_dir_all(&dir).expect("create dir");
        self.cwd = Some(dir);
        self
    }

    pub fn stdin(mut self, input: &str) -> Self {
        self.stdin = Some(input.to_string());
        self
    }

    pub fn status(mut self, status: i32) -> Self {
        self.status = status;
        self
    }

    /// The whole of stdout, un-indented.
    pub fn stdout(mut self, expected: &str) -> Self {
        self.stdout = Some(unindent(expected));
        self
    }

    pub fn stdout_has(mut self, part: &str) -> Self {
        self.stdout_has.push(part.to_string());
        self
    }

    pub fn stdout_lacks(mut self, part: &str) -> Self {
        self.stdout_lacks.push(part.to_string());
        self
    }

    /// The whole of stderr, un-indented.
    pub fn stderr(mut self, expected: &str) -> Self {
        self.stderr = Some(unindent(expected));
        self
    }

    /// Part of stderr; stderr is then not required to be empty.
    pub fn stderr_has(mut self, part: &str) -> Self {
        self.stderr = None;
        self.stderr_has.push(part.to_string());
        self
    }

    /// Any stderr at all (progress, notes).
    pub fn any_stderr(mut self) -> Self {
        self.stderr = None;
        self
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        match &self.cwd {
            Some(cwd) => {
                cmd.current_dir(cwd);
            }
            None => {
                cmd.arg("-C").arg(&self.dir);
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
        cmd
    }

    /// Runs drover and checks every expectation.
    #[track_caller]
    pub fn run(self) -> Output {
        let mut child = self.command().spawn().expect("run drover");
        if let Some(mut stdin) = child.stdin.take() {
            if let Some(input) = &self.stdin {
                stdin.write_all(input.as_bytes()).expect("write stdin");
            }
        }
        let out = child.wait_with_output().expect("wait for drover");
        let output = Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let context = || {
            format!(
                "drover {}\n--- stdout:\n{}--- stderr:\n{}",
                self.args.join(" "),
                output.stdout,
                output.stderr
            )
        };
        assert_eq!(output.status, self.status, "exit status of {}", context());
        let shown = |text: &str| match &self.normalizer {
            Some(normalizer) => normalizer.apply(text),
            None => text.to_string(),
        };
        let (stdout, stderr) = (shown(&output.stdout), shown(&output.stderr));
        if let Some(expected) = &self.stdout {
            assert_eq!(&stdout, expected, "stdout of {}", context());
        }
        for part in &self.stdout_has {
            assert!(
                stdout.contains(part.as_str()),
                "stdout lacks {part:?} in {}",
                context()
            );
        }
        for part in &self.stdout_lacks {
            assert!(
                !stdout.contains(part.as_str()),
                "stdout has {part:?} in {}",
                context()
            );
        }
        if let Some(expected) = &self.stderr {
            assert_eq!(&stderr, expected, "stderr of {}", context());
        }
        for part in &self.stderr_has {
            assert!(
                stderr.contains(part.as_str()),
                "stderr lacks {part:?} in {}",
                context()
            );
        }
        assert!(
            !output.stderr.contains("panicked"),
            "drover panicked: {}",
            context()
        );
        output
    }
}

/// An environment in a temporary directory, for tests that touch no host.
pub struct Env {
    pub dir: tempfile::TempDir,
    bin: String,
}

impl Env {
    /// An empty directory (with `jobs/`), for drover at `bin`.
    pub fn new(bin: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("jobs")).expect("jobs dir");
        Env {
            dir,
            bin: bin.to_string(),
        }
    }

    pub fn file(self, path: &str, contents: &str) -> Self {
        crate::tree(self.dir.path(), &[(path, contents)]);
        self
    }

    pub fn remove(self, path: &str) -> Self {
        let full = self.dir.path().join(path);
        if full.is_dir() {
            std::fs::remove_dir_all(full).expect("remove dir");
        } else {
            std::fs::remove_file(full).expect("remove file");
        }
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn drover(&self, args: &[&str]) -> Drover {
        Drover::new(&self.bin, self.dir.path(), args)
    }
}
