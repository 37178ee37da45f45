//! Which commit of the environment runs where.
//!
//! Every container drover creates carries `drover.commit`: the git commit
//! of the environment directory it was deployed from, the full 40-digit
//! hash (a short one can become ambiguous as history grows; the full one
//! never does), with `-dirty` when the directory had uncommitted changes,
//! and absent outside git. It is not part of `drover.spec`, so a new commit
//! alone replaces nothing. `status`, `history` and `diff` show its first 7
//! digits, and `diff` counts how far each running commit is behind the
//! directory's own.
//!
//! git is asked as a subprocess, as `drover package` asks it for its
//! default tag: the one way drover reads a commit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use drover_plan::{belongs_to, Observed, Role};
use serde::Serialize;

/// The suffix of a commit deployed from a directory with uncommitted changes.
pub const DIRTY: &str = "-dirty";

/// The environment directory's commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// 40 hex digits.
    pub full: String,
    /// As `git rev-parse --short` gives it: unique in the repository today.
    pub short: String,
    /// The directory has changes not committed (untracked files too; ignored ones not).
    pub dirty: bool,
}

impl Commit {
    /// The `drover.commit` label's value.
    pub fn label(&self) -> String {
        format!("{}{}", self.full, if self.dirty { DIRTY } else { "" })
    }

    /// As shown: short, with `-dirty`.
    pub fn shown(&self) -> String {
        short(&self.label())
    }
}

/// Runs `git -C dir ARGS…`; its trimmed output when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Keeps a secrets file drover just wrote out of git: inside a git work
/// tree, where no rule ignores it yet and git does not track it, its name
/// is added to the `.gitignore` beside it (one `git add -A` would commit
/// the values otherwise, and the untracked file would mark every deploy
/// `-dirty`). Returns the `.gitignore` written, as the output names it, or
/// a warning when git tracks the file already (the values just written go
/// into the next commit).
pub fn keep_out_of_git(file: &Path) -> Option<Result<String, String>> {
    let dir = file.parent()?;
    let name = file.file_name()?.to_str()?;
    git(dir, &["rev-parse", "--is-inside-work-tree"]).filter(|inside| inside == "true")?;
    let ignored = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["check-ignore", "-q", "--", name])
        .status()
        .ok()?
        .success();
    let tracked = git(dir, &["ls-files", "--error-unmatch", "--", name]).is_some();
    if tracked {
        return Some(Err(format!(
            "git tracks {}: the secret values just written go into your next commit; run `git rm --cached {name}` in {} and add `/{name}` to its .gitignore",
            file.display(),
            dir.display()
        )));
    }
    if ignored {
        return None;
    }
    let ignore = dir.join(".gitignore");
    let before = std::fs::read(&ignore).unwrap_or_default();
    let mut text = String::new();
    if before.last().is_some_and(|b| *b != b'\n') {
        text.push('\n');
    }
    text.push_str(&format!("/{name}\n"));
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&ignore)
        .ok()?;
    std::io::Write::write_all(&mut out, text.as_bytes()).ok()?;
    Some(Ok(format!(
        "{} (/{name} added: secret values stay out of git)",
        ignore.display()
    )))
}

/// The commit `dir` is at, or `None` outside git (or without git).
pub fn git_commit(dir: &Path) -> Option<Commit> {
    let out = git(dir, &["rev-parse", "HEAD", "--short", "HEAD"])?;
    let mut lines = out.lines();
    let full = lines.next()?.trim().to_string();
    let short = lines.next()?.trim().to_string();
    if full.is_empty() || short.is_empty() {
        return None;
    }
    let dirty = git(dir, &["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
    Some(Commit { full, short, dirty })
}

/// A `drover.commit` value as shown: its first 7 digits, `-dirty` kept.
pub fn short(label: &str) -> String {
    let (hash, dirty) = match label.strip_suffix(DIRTY) {
        Some(hash) => (hash, DIRTY),
        None => (label, ""),
    };
    format!("{}{dirty}", hash.get(..7).unwrap_or(hash))
}

/// How a running commit stands to the directory's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Distance {
    /// Commits the directory has that it lacks.
    pub behind: u64,
    /// Commits it has that the directory lacks (deployed from another branch).
    pub ahead: u64,
}

/// How `running` (a `drover.commit` value) stands to the commit `dir` is
/// at; `None` when git does not know it there.
pub fn distance(dir: &Path, running: &str) -> Option<Distance> {
    let hash = running.strip_suffix(DIRTY).unwrap_or(running);
    if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let range = format!("HEAD...{hash}");
    let out = git(dir, &["rev-list", "--left-right", "--count", &range])?;
    let mut counts = out.split_whitespace().map(|n| n.parse::<u64>().ok());
    Some(Distance {
        behind: counts.next()??,
        ahead: counts.next()??,
    })
}

/// One commit running in a job, on how many of its tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Running {
    /// The `drover.commit` value; `None` for tasks that record none
    /// (created before drover recorded commits, outside git, or adopted).
    pub commit: Option<String>,
    pub tasks: usize,
    /// Against the directory's commit, where git knows it.
    pub distance: Option<Distance>,
}

/// The commits running per job, against the directory's own: what `diff` begins with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commits {
    /// The directory's commit (`drover.commit` form); `None` outside git.
    pub files: Option<String>,
    pub jobs: BTreeMap<String, Vec<Running>>,
}

impl Commits {
    /// The commits the task containers of `jobs` (all jobs when empty) run, counted.
    pub fn of(
        dir: &Path,
        env: &str,
        jobs: &BTreeSet<String>,
        observed: &Observed,
        known_hosts: &BTreeSet<String>,
    ) -> Commits {
        let files = git_commit(dir);
        let mut counted: BTreeMap<String, BTreeMap<Option<String>, usize>> = BTreeMap::new();
        for (host, state) in observed.reachable() {
            for c in &state.containers {
                if !belongs_to(c, host, known_hosts) {
                    continue;
                }
                if let Role::Current(key) = c.role(env) {
                    if jobs.is_empty() || jobs.contains(&key.job) {
                        *counted
                            .entry(key.job)
                            .or_default()
                            .entry(c.commit().map(str::to_string))
                            .or_default() += 1;
                    }
                }
            }
        }
        let jobs = counted
            .into_iter()
            .map(|(job, commits)| {
                let mut running: Vec<Running> = commits
                    .into_iter()
                    .map(|(commit, tasks)| Running {
                        distance: match (&commit, &files) {
                            (Some(commit), Some(_)) => distance(dir, commit),
                            _ => None,
                        },
                        commit,
                        tasks,
                    })
                    .collect();
                running.sort_by(|a, b| b.tasks.cmp(&a.tasks).then(a.commit.cmp(&b.commit)));
                (job, running)
            })
            .collect();
        Commits {
            files: files.map(|c| c.label()),
            jobs,
        }
    }

    /// One line per job, as `diff` begins: `web: running a1b2c3d (3 commits
    /// behind), files at 9f8e7d6`. Nothing outside git.
    pub fn lines(&self) -> Vec<String> {
        let Some(files) = &self.files else {
            return Vec::new();
        };
        self.jobs
            .iter()
            .map(|(job, running)| {
                let several = running.len() > 1;
                let parts: Vec<String> = running
                    .iter()
                    .map(|r| {
                        let what = match &r.commit {
                            Some(commit) => {
                                format!("{} ({})", short(commit), standing(r, files))
                            }
                            None => "no recorded commit".to_string(),
                        };
                        if several {
                            let tasks = if r.tasks == 1 { "task" } else { "tasks" };
                            format!("{what} on {} {tasks}", r.tasks)
                        } else {
                            what
                        }
                    })
                    .collect();
                format!(
                    "{job}: running {}, files at {}",
                    parts.join(", "),
                    short(files)
                )
            })
            .collect()
    }
}

/// How a running commit stands, in words.
fn standing(running: &Running, files: &str) -> String {
    let Some(d) = running.distance else {
        return "not in this directory's history".to_string();
    };
    let commits = |n: u64| if n == 1 { "commit" } else { "commits" };
    let same_files = running.commit.as_deref() == Some(files);
    match (d.behind, d.ahead) {
        (0, 0) if same_files => "up to date".to_string(),
        (0, 0) => "the files' commit, with other uncommitted changes".to_string(),
        (behind, 0) => format!("{behind} {} behind", commits(behind)),
        (0, ahead) => format!("{ahead} {} ahead", commits(ahead)),
        (behind, ahead) => format!(
            "diverged: {behind} {} behind, {ahead} ahead",
            commits(behind)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keeps_dirty() {
        let full = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
        assert_eq!(short(full), "9f8e7d6");
        assert_eq!(short(&format!("{full}-dirty")), "9f8e7d6-dirty");
        assert_eq!(short("abc"), "abc");
    }

    #[test]
    fn lines_per_job() {
        let files = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432".to_string();
        let old = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678".to_string();
        let commits = Commits {
            files: Some(files.clone()),
            jobs: BTreeMap::from([
                (
                    "web".to_string(),
                    vec![Running {
                        commit: Some(old.clone()),
                        tasks: 2,
                        distance: Some(Distance {
                            behind: 3,
                            ahead: 0,
                        }),
                    }],
                ),
                (
                    "api".to_string(),
                    vec![
                        Running {
                            commit: Some(files.clone()),
                            tasks: 2,
                            distance: Some(Distance {
                                behind: 0,
                                ahead: 0,
                            }),
                        },
                        Running {
                            commit: None,
                            tasks: 1,
                            distance: None,
                        },
                    ],
                ),
                (
                    "db".to_string(),
                    vec![Running {
                        commit: Some(format!("{old}-dirty")),
                        tasks: 1,
                        distance: None,
                    }],
                ),
            ]),
        };
        assert_eq!(
            commits.lines(),
            [
                "api: running 9f8e7d6 (up to date) on 2 tasks, no recorded commit on 1 task, files at 9f8e7d6",
                "db: running a1b2c3d-dirty (not in this directory's history), files at 9f8e7d6",
                "web: running a1b2c3d (3 commits behind), files at 9f8e7d6",
            ]
        );
        let outside = Commits {
            files: None,
            jobs: commits.jobs.clone(),
        };
        assert!(outside.lines().is_empty());
    }
}
