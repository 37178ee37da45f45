//! Reading the environment's files: `drover.toml`, the stage overlay and
//! `jobs/*.toml`, with the hygiene an editor's leftovers need.
//!
//! Only `jobs/NAME.toml` files are jobs. Hidden files (an editor's
//! `.#web.toml` lock link, `.web.toml.swp`) and backups (`web.toml~`,
//! `web.toml.orig`) are not, so they never break a command. Any other file in
//! `jobs/` (`side.tml`, `README.md`) is an error: ignored, it would be a job
//! missing from the spec, and `diff` would plan to remove it. Subdirectories
//! (`jobs/archive/`) hold no jobs and are left alone.
//! A real problem (a directory named like a job file, a file that is not
//! UTF-8) is reported once, with its place.

use std::path::{Path, PathBuf};

use crate::load::Loader;
use crate::raw::toml_words;
use crate::source::{line_col, Diagnostic, Loc};
use crate::SpecError;

/// Looks for `drover.toml` in `start` and its parents, as git looks for `.git`.
pub fn find_dir(start: &Path) -> Result<PathBuf, SpecError> {
    let mut dir = Some(start);
    while let Some(candidate) = dir {
        if candidate.join("drover.toml").is_file() {
            return Ok(candidate.to_path_buf());
        }
        dir = candidate.parent();
    }
    Err(SpecError::NotFound {
        start: start.to_path_buf(),
    })
}

/// A job file found in `jobs/`: its name (the stem) and relative path.
pub(crate) struct JobFile {
    pub name: String,
    pub relative: String,
}

impl Loader {
    /// Reads a file of the environment. A file that cannot be read or is not
    /// UTF-8 is a diagnostic (returns `None`); `drover.toml` itself missing
    /// is the caller's concern.
    pub(crate) fn read(&mut self, dir: &Path, relative: &str) -> Option<usize> {
        if let Some(text) = self.given.get(relative) {
            return Some(self.sources.add(relative.to_string(), text.clone()));
        }
        let path = dir.join(relative);
        if path.is_dir() {
            self.diagnostics.push(Diagnostic::whole_file(
                relative,
                "is a directory, expected a TOML file",
            ));
            return None;
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                let hint = if path.symlink_metadata().is_ok() && !path.exists() {
                    " (a symbolic link to nothing?)"
                } else {
                    ""
                };
                self.diagnostics.push(Diagnostic::whole_file(
                    relative,
                    format!("cannot read: {}{hint}", io_words(&e)),
                ));
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => Some(self.sources.add(relative.to_string(), text)),
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
                let (line, col) = line_col(&prefix, prefix.len());
                self.diagnostics.push(Diagnostic {
                    file: relative.to_string(),
                    position: Some((line, col)),
                    message:
                        "not valid UTF-8: TOML files must be UTF-8 text (re-save the file as UTF-8)"
                            .to_string(),
                });
                None
            }
        }
    }

    /// Parses a file read with [`Loader::read`]; a syntax or type error is a
    /// diagnostic in the words of TOML.
    pub(crate) fn parse<T: serde::de::DeserializeOwned>(&mut self, file: usize) -> Option<T> {
        match toml::from_str::<T>(&self.sources.file(file).text) {
            Ok(value) => Some(value),
            Err(err) => {
                let span = err.span().unwrap_or(0..0);
                let mut message = toml_words(err.message());
                if let Some(datetime) = datetime_at(&self.sources.file(file).text, &span) {
                    // TOML hands a date-time to serde as a table: say what it is.
                    message = match message.strip_prefix("expected ").and_then(|m| m.split_once(", found")) {
                        Some((expected, _)) if !expected.contains("spanned") => {
                            format!("expected {expected}, found the date-time {datetime}")
                        }
                        _ => format!("found the date-time {datetime}: no key of drover takes a date or a time"),
                    };
                }
                if message == "duplicate key" {
                    // The parser points at the key but does not name it.
                    let text = &self.sources.file(file).text;
                    if let Some(key) = text.get(span.clone()).map(str::trim) {
                        message = format!("duplicate key `{key}`: {}", duplicate_hint(text, &span));
                    }
                }
                self.error(&Loc { file, span }, message);
                None
            }
        }
    }

    /// The job files in `dir/jobs`, sorted by name. A missing `jobs/` is an
    /// error: without it, a wrong `-C` would plan to remove every container.
    pub(crate) fn job_files(&mut self, dir: &Path) -> Result<Vec<JobFile>, SpecError> {
        let jobs_dir = dir.join("jobs");
        if !jobs_dir.is_dir() {
            return Err(SpecError::NoJobsDir {
                dir: dir.to_path_buf(),
            });
        }
        let entries = std::fs::read_dir(&jobs_dir).map_err(|source| SpecError::Io {
            path: jobs_dir.clone(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| SpecError::Io {
                path: jobs_dir.clone(),
                source,
            })?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                self.diagnostics.push(Diagnostic::whole_file(
                    format!("jobs/{}", entry.file_name().to_string_lossy()),
                    "the file name is not valid UTF-8: rename it",
                ));
                continue;
            };
            if is_editor_leftover(file_name) {
                continue;
            }
            let relative = format!("jobs/{file_name}");
            let Some(stem) = file_name.strip_suffix(".toml") else {
                // Ignored, the file would be a job missing from the spec, and
                // `diff` would plan to remove it. A directory holds no jobs.
                if !entry.path().is_dir() {
                    self.diagnostics.push(Diagnostic::whole_file(
                        relative,
                        "is not a job file: a job is a file jobs/NAME.toml (rename it to end in .toml, or move it out of jobs/)",
                    ));
                }
                continue;
            };
            files.push(JobFile {
                name: stem.to_string(),
                relative,
            });
        }
        for relative in self.given.keys() {
            let Some(stem) = relative
                .strip_prefix("jobs/")
                .and_then(|name| name.strip_suffix(".toml"))
            else {
                continue;
            };
            if !files.iter().any(|f| &f.relative == relative) {
                files.push(JobFile {
                    name: stem.to_string(),
                    relative: relative.clone(),
                });
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }
}

/// Hidden files and the backups editors and merge tools leave beside the
/// files they edit (`web.toml~`, `#web.toml#`, `web.toml.swp`, `web.toml.orig`).
fn is_editor_leftover(file_name: &str) -> bool {
    const BACKUP_SUFFIXES: &[&str] = &[
        "~", ".swp", ".swo", ".swx", ".bak", ".orig", ".rej", ".old", ".tmp",
    ];
    file_name.starts_with('.')
        || file_name.starts_with('#')
        || BACKUP_SUFFIXES.iter().any(|s| file_name.ends_with(s))
}

/// The TOML date-time written at `span`, if one is.
fn datetime_at<'a>(text: &'a str, span: &std::ops::Range<usize>) -> Option<&'a str> {
    text.get(span.clone())
        .map(str::trim)
        .filter(|t| t.parse::<toml::value::Datetime>().is_ok())
}

/// What to do about a key set twice: a table header (`[hosts.app1]`) given
/// twice is a table defined twice.
fn duplicate_hint(text: &str, span: &std::ops::Range<usize>) -> &'static str {
    let before = text.get(..span.start).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    if before[line_start..].trim_start().starts_with('[') {
        "this table is already defined above (write each table once)"
    } else {
        "this key is already set in this table (keep one of them)"
    }
}

/// An I/O error without Rust's `(os error 2)` suffix.
fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_editor_leftover;

    #[test]
    fn editor_leftovers_are_not_jobs() {
        for name in [
            ".#web.toml",
            ".web.toml.swp",
            "web.toml~",
            "#web.toml#",
            "web.toml.orig",
            "web.toml.bak",
        ] {
            assert!(is_editor_leftover(name), "{name}");
        }
        for name in [
            "web.toml",
            "side.tml",
            "web.TOML",
            "README.md",
            "web.toml.disabled",
        ] {
            assert!(!is_editor_leftover(name), "{name}");
        }
    }
}
