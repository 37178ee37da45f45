//! Reading the environment's files: `drover.toml`, the stage overlay and
//! `jobs/*.toml`, with the hygiene an editor's leftovers need.
//!
//! Only `jobs/NAME.toml` files are jobs. Hidden files (an editor's
//! `.#web.toml` lock link, `.web.toml.swp`) and backups (`web.toml~`) are
//! not, so they never break a command. A real problem (a directory named
//! like a job file, a file that is not UTF-8) is reported once, with its place.

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
                let message = toml_words(err.message());
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
            let Some(stem) = file_name.strip_suffix(".toml") else {
                continue;
            };
            files.push(JobFile {
                name: stem.to_string(),
                relative: format!("jobs/{file_name}"),
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

/// Hidden files and backups editors leave beside the files they edit.
fn is_editor_leftover(file_name: &str) -> bool {
    file_name.starts_with('.')
        || file_name.starts_with('#')
        || file_name.ends_with('~')
        || file_name.ends_with(".swp")
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
        for name in [".#web.toml", ".web.toml.swp", "web.toml~", "#web.toml#"] {
            assert!(is_editor_leftover(name), "{name}");
        }
        assert!(!is_editor_leftover("web.toml"));
    }
}
