//! Secret values: the operator's environment first, then the secrets file
//! (`DROVER_SECRETS_FILE`, or `secrets.env` beside drover.toml), `KEY=VALUE`
//! per line. Values become [`Secret`]s at once, so nothing can print them.
//!
//! `validate` and every command that renders tasks go through [`resolve`]:
//! a secret with no value is refused before any host is touched, at the
//! place its name was written, saying where drover looked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use drover_plan::{Secret, Secrets};
use drover_spec::{Diagnostic, Job, SpecError};

use crate::FleetError;

/// The secrets file drover reads, and how to name it to the operator.
struct SecretsFile {
    path: PathBuf,
    /// Set by `DROVER_SECRETS_FILE` (then it must exist), not the default.
    chosen: bool,
    /// As messages name it: `secrets.env` or the path `DROVER_SECRETS_FILE` gives.
    shown: String,
}

impl SecretsFile {
    fn locate(dir: &Path) -> SecretsFile {
        match std::env::var_os("DROVER_SECRETS_FILE").filter(|v| !v.is_empty()) {
            Some(path) => {
                let path = PathBuf::from(path);
                SecretsFile {
                    shown: path.display().to_string(),
                    path,
                    chosen: true,
                }
            }
            None => SecretsFile {
                path: dir.join("secrets.env"),
                chosen: false,
                shown: "secrets.env".to_string(),
            },
        }
    }

    /// Its values; an absent default file has none. A file that is there
    /// but cannot be used is an error, never taken as absent.
    fn read(&self) -> Result<Option<BTreeMap<String, Secret>>, FleetError> {
        let fail = |why: String| FleetError::Secrets(why);
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.chosen => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(fail(format!(
                    "DROVER_SECRETS_FILE names {}, which does not exist",
                    self.shown
                )))
            }
            Err(e) => {
                return Err(fail(format!(
                    "cannot read the secrets file {}: {}",
                    self.path.display(),
                    io_words(&e)
                )))
            }
        };
        if meta.is_dir() {
            return Err(fail(format!(
                "the secrets file {} is a directory: secrets are KEY=VALUE lines in a file",
                self.path.display()
            )));
        }
        let bytes = std::fs::read(&self.path).map_err(|e| {
            fail(format!(
                "cannot read the secrets file {}: {}",
                self.path.display(),
                io_words(&e)
            ))
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            fail(format!(
                "the secrets file {} is not valid UTF-8 text",
                self.path.display()
            ))
        })?;
        parse_secrets(&text).map(Some).map_err(|(line, why)| {
            FleetError::Spec(SpecError::Invalid(vec![Diagnostic {
                file: self.shown.clone(),
                position: Some((line, 1)),
                message: why,
            }]))
        })
    }
}

/// The values of every secret `jobs` name. The secrets file is checked even
/// when no job needs it, so a broken one is found at once.
pub(crate) fn resolve(dir: &Path, jobs: &[&Job]) -> Result<Secrets, FleetError> {
    let file = SecretsFile::locate(dir);
    let from_file = file.read()?;
    let needed: BTreeSet<&str> = jobs
        .iter()
        .flat_map(|j| j.secret_env.iter().map(String::as_str))
        .collect();
    let secrets = values(&needed, from_file.as_ref())?;
    let mut missing = Vec::new();
    for job in jobs {
        for name in job.secret_env.iter().filter(|n| !secrets.contains_key(*n)) {
            let looked = if from_file.is_some() {
                format!(
                    "it is neither in drover's environment nor in {}",
                    file.shown
                )
            } else {
                format!(
                    "it is not in drover's environment, and there is no {} beside drover.toml",
                    file.shown
                )
            };
            let message = format!(
                "job {}: secret {name} has no value: {looked}: export {name}=... or add the line {name}=... to {}",
                job.name, file.shown
            );
            missing.push(match job.secret_env_places.get(name) {
                Some(place) => place.error(message),
                None => Diagnostic::whole_file(job.file.clone(), message),
            });
        }
    }
    if missing.is_empty() {
        Ok(secrets)
    } else {
        Err(FleetError::Spec(SpecError::Invalid(missing)))
    }
}

/// The values at hand of the secrets `needed` names, from drover's
/// environment or the secrets file; one with no value is left out. For a
/// watcher, which masks them in what it posts and needs none to run.
pub fn load_secrets(dir: &Path, needed: &BTreeSet<&str>) -> Result<Secrets, FleetError> {
    let from_file = SecretsFile::locate(dir).read()?;
    values(needed, from_file.as_ref())
}

/// Each of `needed` that has a value: drover's environment first, then the file.
fn values(
    needed: &BTreeSet<&str>,
    from_file: Option<&BTreeMap<String, Secret>>,
) -> Result<Secrets, FleetError> {
    let mut secrets = Secrets::new();
    for name in needed {
        if let Some(value) = std::env::var_os(name) {
            let value = value.into_string().map_err(|_| {
                FleetError::Secrets(format!(
                    "secret {name} in drover's environment is not valid UTF-8"
                ))
            })?;
            secrets.insert(name.to_string(), Secret::new(value));
        } else if let Some(value) = from_file.and_then(|f| f.get(*name)) {
            secrets.insert(name.to_string(), value.clone());
        }
    }
    Ok(secrets)
}

/// Where secret values are kept: `DROVER_SECRETS_FILE`, or `secrets.env`
/// beside drover.toml (what `adopt` appends to).
pub fn secrets_file(dir: &Path) -> PathBuf {
    SecretsFile::locate(dir).path
}

/// `KEY=VALUE` lines; an error is its line number and what is wrong.
pub(crate) fn parse_secrets(text: &str) -> Result<BTreeMap<String, Secret>, (usize, String)> {
    let mut values = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err((number, "expected KEY=VALUE".to_string()));
        };
        let key = key.trim();
        if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c == '\0') {
            return Err((
                number,
                format!("invalid variable name {key:?}: expected KEY=VALUE with no spaces in KEY"),
            ));
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        if value.contains('\0') {
            return Err((number, "the value contains a NUL character".to_string()));
        }
        values.insert(key.to_string(), Secret::new(value));
    }
    Ok(values)
}

/// An I/O error without Rust's `(os error 13)` suffix.
fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_secrets;

    #[test]
    fn secrets_file_lines() {
        let parsed =
            parse_secrets("# comment\nA=1\nexport B = \"two words\"\n\nC='x=y'\n").unwrap();
        assert_eq!(parsed["A"].expose(), "1");
        assert_eq!(parsed["B"].expose(), "two words");
        assert_eq!(parsed["C"].expose(), "x=y");
        assert_eq!(
            parse_secrets("A=1\nNOEQUALS\n").err(),
            Some((2, "expected KEY=VALUE".to_string()))
        );
        assert!(parse_secrets("=x\n").is_err());
        assert!(parse_secrets("A B=x\n").is_err());
    }
}
