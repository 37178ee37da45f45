//! Where a value came from, so every spec error can name `file:line:col`.
//!
//! The TOML parser hands out byte spans; operators want lines and columns of
//! the file they edit. [`Sources`] keeps the text of every file read so a span
//! turns into a position only when an error is reported.

use std::fmt;
use std::ops::Range;

/// One file of the environment, as read.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the operator should see it, relative to the environment directory.
    pub path: String,
    pub text: String,
}

/// A span inside one of the [`Sources`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: usize,
    pub span: Range<usize>,
}

/// Every file read while loading an environment.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, path: String, text: String) -> usize {
        self.files.push(SourceFile { path, text });
        self.files.len() - 1
    }

    /// File paths in the order they were read.
    pub fn paths(&self) -> Vec<String> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }

    pub fn file(&self, id: usize) -> &SourceFile {
        &self.files[id]
    }

    /// An error at `loc`, with its line and column worked out.
    pub fn diagnostic(&self, loc: &Loc, message: impl Into<String>) -> Diagnostic {
        self.place(loc).error(message)
    }

    /// `loc` as the operator finds it: file, line and column.
    pub fn place(&self, loc: &Loc) -> Place {
        let file = &self.files[loc.file];
        let (line, col) = line_col(&file.text, loc.span.start);
        Place {
            file: file.path.clone(),
            line,
            col,
        }
    }
}

/// Where a value was written (`jobs/web.toml:4:15`), kept in the model for
/// problems only found after loading, such as a secret with no value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Place {
    /// Relative to the environment directory.
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl Place {
    /// An error at this place.
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            position: Some((self.line, self.col)),
            message: message.into(),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// One problem in the spec, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Relative to the environment directory, as the operator edits it.
    pub file: String,
    /// Line and column, 1-based; `None` for a problem with the file itself
    /// (a directory where a file should be, a file that cannot be read).
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl Diagnostic {
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            position: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let text = "a = 1\nbé = x\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'x' follows a two-byte 'é': column counts characters, not bytes
        assert_eq!(line_col(text, text.find('x').unwrap()), (2, 6));
    }
}
