//! Plain aligned columns for terminal output.

use std::fmt;

/// A column to paint, and the ANSI code to paint it with.
type Paint = Option<(usize, &'static str)>;

pub struct Table<const N: usize> {
    header: [String; N],
    rows: Vec<([String; N], Paint)>,
}

impl<const N: usize> Table<N> {
    pub fn new(header: [&str; N]) -> Self {
        Table {
            header: header.map(str::to_string),
            rows: Vec::new(),
        }
    }

    /// Adds a row; `color` paints one column with an ANSI code.
    pub fn row(&mut self, cells: [String; N], color: Paint) {
        self.rows.push((cells, color));
    }
}

impl<const N: usize> fmt::Display for Table<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths = self.header.clone().map(|h| h.chars().count());
        for (cells, _) in &self.rows {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>,
                    cells: &[String; N],
                    color: Option<(usize, &str)>|
         -> fmt::Result {
            let mut out = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                let pad = " ".repeat(w - cell.chars().count());
                match color {
                    Some((col, code)) if col == i => {
                        out.push_str(&format!("{code}{cell}\x1b[0m{pad}"))
                    }
                    _ => out.push_str(&format!("{cell}{pad}")),
                }
                if i + 1 < N {
                    out.push_str("  ");
                }
            }
            writeln!(f, "{}", out.trim_end())
        };
        line(f, &self.header, None)?;
        for (cells, color) in &self.rows {
            line(f, cells, *color)?;
        }
        Ok(())
    }
}
