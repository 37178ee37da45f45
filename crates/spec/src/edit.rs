//! Rewriting one value of a file in place, for `drover update`: the chosen
//! image goes where the job's `image` is written, and nothing else in the
//! file changes (comments, order, spacing and the value's own trailing
//! comment stay as they were).

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::model::Origin;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: there is no table [{table}] to write `{key}` into", path.display())]
    NoTable {
        path: PathBuf,
        table: String,
        key: String,
    },
}

/// Sets `key` to the string `value` in `origin`'s table of `origin`'s file
/// under `dir`, adding the key if the table lacks it. The file is replaced
/// atomically (written beside it, then renamed over it).
pub fn set_string(dir: &Path, origin: &Origin, key: &str, value: &str) -> Result<(), EditError> {
    let path = dir.join(&origin.file);
    let text = std::fs::read_to_string(&path).map_err(|source| EditError::Read {
        path: path.clone(),
        source,
    })?;
    let updated = set_string_in(&text, &origin.table, key, value).map_err(|e| match e {
        InText::Parse(message) => EditError::Parse {
            path: path.clone(),
            message,
        },
        InText::NoTable => EditError::NoTable {
            path: path.clone(),
            table: origin.table.join("."),
            key: key.to_string(),
        },
    })?;
    let temporary = path.with_file_name(format!(
        ".{}.drover-edit",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let write = |source| EditError::Write {
        path: path.clone(),
        source,
    };
    std::fs::write(&temporary, updated).map_err(write)?;
    if let Ok(meta) = std::fs::metadata(&path) {
        let _ = std::fs::set_permissions(&temporary, meta.permissions());
    }
    std::fs::rename(&temporary, &path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        write(e)
    })
}

enum InText {
    Parse(String),
    NoTable,
}

fn set_string_in(
    text: &str,
    table_path: &[String],
    key: &str,
    value: &str,
) -> Result<String, InText> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| InText::Parse(e.message().to_string()))?;
    let mut table: &mut Table = doc.as_table_mut();
    for part in table_path {
        table = match table.get_mut(part) {
            Some(Item::Table(t)) => t,
            _ => return Err(InText::NoTable),
        };
    }
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            let mut new = Value::from(value);
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        _ => {
            table.insert(key, toml_edit::value(value));
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_one_value_keeping_comments() {
        let text = "# the web job\nimage = \"reg/app:1\"   # pinned\nhosts = [\"a\"]\n\n[health]\ncmd = [\"true\"]\n";
        let out = set_string_in(text, &[], "image", "reg/app:2").ok().unwrap();
        assert_eq!(out, text.replace("reg/app:1", "reg/app:2"));
    }

    #[test]
    fn rewrites_inside_a_profile() {
        let text =
            "name = \"x\"\n\n[profiles.jre8]  # java\nimage = \"base:1\"\nenv = { A = \"1\" }\n";
        let path = ["profiles".to_string(), "jre8".to_string()];
        let out = set_string_in(text, &path, "image", "base:2").ok().unwrap();
        assert_eq!(out, text.replace("base:1", "base:2"));
    }

    #[test]
    fn adds_a_missing_key() {
        let text = "hosts = [\"a\"]\nprofile = \"p\"\n";
        let out = set_string_in(text, &[], "image", "x:1").ok().unwrap();
        assert!(out.contains("image = \"x:1\""), "{out}");
        assert!(out.starts_with("hosts = [\"a\"]\nprofile = \"p\"\n"));
    }
}
