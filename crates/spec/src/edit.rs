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
    #[error("{} changed since drover read it (another command, or an editor): nothing was written; run the command again", path.display())]
    ChangedBeforeWrite { path: PathBuf },
    #[error("{} changed since drover wrote it: it is left as it is now", path.display())]
    ChangedBeforeUndo { path: PathBuf },
}

/// A file as it is, and as an edit would make it: nothing is written until
/// [`Edit::write`], and [`Edit::undo`] puts the text back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The file as named in the environment (it may be a symbolic link).
    pub path: PathBuf,
    pub before: String,
    pub after: String,
}

/// Computes setting `key` to the string `value` in `origin`'s table of
/// `origin`'s file under `dir`, adding the key if the table lacks it.
/// Reads the file; writes nothing.
pub fn set_string(dir: &Path, origin: &Origin, key: &str, value: &str) -> Result<Edit, EditError> {
    let path = dir.join(&origin.file);
    let before = std::fs::read_to_string(&path).map_err(|source| EditError::Read {
        path: path.clone(),
        source,
    })?;
    let after = set_string_in(&before, &origin.table, key, value).map_err(|e| match e {
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
    Ok(Edit {
        path,
        before,
        after,
    })
}

impl Edit {
    /// Whether the edit changes the file at all.
    pub fn changes(&self) -> bool {
        self.before != self.after
    }

    /// Writes the edited text, atomically, if the file still reads as it
    /// did: an edit computed from an older text would undo what changed it.
    pub fn write(&self) -> Result<(), EditError> {
        if self.current()? != self.before {
            return Err(EditError::ChangedBeforeWrite {
                path: self.path.clone(),
            });
        }
        write_atomically(&self.path, &self.after)
    }

    /// Puts the text as it was before back, atomically, if the file still
    /// reads as [`Edit::write`] left it.
    pub fn undo(&self) -> Result<(), EditError> {
        if self.current()? != self.after {
            return Err(EditError::ChangedBeforeUndo {
                path: self.path.clone(),
            });
        }
        write_atomically(&self.path, &self.before)
    }

    fn current(&self) -> Result<String, EditError> {
        std::fs::read_to_string(&self.path).map_err(|source| EditError::Read {
            path: self.path.clone(),
            source,
        })
    }
}

/// Replaces the file at `path` with `text` atomically: written beside the
/// file's real target (a symbolic link is followed, and stays a link), with
/// the target's permissions, flushed, then renamed over it. A reader sees
/// the old text or the new one, never a part.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), EditError> {
    let write = |source| EditError::Write {
        path: path.to_path_buf(),
        source,
    };
    let target = std::fs::canonicalize(path).map_err(write)?;
    let temporary = target.with_file_name(format!(
        ".{}.drover-edit-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        if let Ok(meta) = std::fs::metadata(&target) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()?;
        std::fs::rename(&temporary, &target)
    })();
    result.map_err(|e| {
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
    fn an_edit_of_a_file_changed_since_it_was_read_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.toml");
        std::fs::write(&path, "image = \"a:1\"\n").unwrap();
        let edit = Edit {
            path: path.clone(),
            before: "image = \"a:1\"\n".to_string(),
            after: "image = \"a:2\"\n".to_string(),
        };
        std::fs::write(&path, "image = \"a:3\"\n").unwrap();
        assert!(matches!(
            edit.write(),
            Err(EditError::ChangedBeforeWrite { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "image = \"a:3\"\n");
        assert!(matches!(
            edit.undo(),
            Err(EditError::ChangedBeforeUndo { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "image = \"a:3\"\n");

        std::fs::write(&path, "image = \"a:1\"\n").unwrap();
        edit.write().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "image = \"a:2\"\n");
        edit.undo().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "image = \"a:1\"\n");
    }

    #[test]
    fn adds_a_missing_key() {
        let text = "hosts = [\"a\"]\nprofile = \"p\"\n";
        let out = set_string_in(text, &[], "image", "x:1").ok().unwrap();
        assert!(out.contains("image = \"x:1\""), "{out}");
        assert!(out.starts_with("hosts = [\"a\"]\nprofile = \"p\"\n"));
    }
}
