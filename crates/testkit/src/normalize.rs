//! Masks what differs from one run of a command to the next — container
//! IDs, times, durations, sizes, temporary paths — so a test can compare a
//! command's whole output with a literal, as casey/just's tests do, instead
//! of picking substrings out of it.
//!
//! ```text
//! 13:29:51 web h1b/0: done: replaced 4955425f9ac9 with 51b61c5cdb81 (2.1MiB, 350ms)
//! <time> web h1b/0: done: replaced <id> with <id> (<size>, <duration>)
//! ```

/// What masks a run's output: literal texts (an environment's directory, an
/// operator's name) first, then the patterns every run varies in.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    literals: Vec<(String, String)>,
    columns: bool,
}

/// `text` with the standard masks: see [`Normalizer::apply`].
pub fn normalize(text: &str) -> String {
    Normalizer::new().apply(text)
}

impl Normalizer {
    pub fn new() -> Self {
        Normalizer::default()
    }

    /// Also replaces every `text` with `mask` (longest texts first).
    pub fn literal(mut self, text: &str, mask: &str) -> Self {
        if !text.is_empty() {
            self.literals.push((text.to_string(), mask.to_string()));
            self.literals
                .sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        }
        self
    }

    /// Also squeezes each run of two or more spaces to two, and drops
    /// trailing spaces: a table's columns, whatever the widths of the masked
    /// values made them.
    pub fn columns(mut self) -> Self {
        self.columns = true;
        self
    }

    /// Masks, where each starts at a word boundary:
    ///
    /// - `<time>`: `2026-12-07T13:29:42.136Z` (RFC 3339, or with a space for
    ///   the `T`, offset optional) and a clock `13:29:42`;
    /// - `<id>`: 12 or 64 lowercase hex digits alone (a short or full
    ///   container or image ID; `sha256:<id>`, `kept-<id>`);
    /// - `<size>`: `512B`, `2.1MiB`, `9.5 MB`…;
    /// - `<duration>`: `350ms`, `2s`, `1.5s`, `3m2s`, `1h1m`, `2d3h` (not a
    ///   bare `20m`, which is as often a size);
    /// - `<tmp>`: the first component under `/tmp/` (a temporary directory).
    pub fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (literal, mask) in &self.literals {
            text = text.replace(literal.as_str(), mask);
        }
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            let boundary = i == 0 || !is_word(chars[i - 1]);
            let found = if boundary {
                [
                    (timestamp as fn(&[char]) -> Option<usize>, "<time>"),
                    (clock, "<time>"),
                    (id, "<id>"),
                    (size, "<size>"),
                    (duration, "<duration>"),
                    (temporary, "<tmp>"),
                ]
                .into_iter()
                .find_map(|(matcher, mask)| matcher(&chars[i..]).map(|len| (len, mask)))
            } else {
                None
            };
            match found {
                Some((len, mask)) => {
                    out.push_str(mask);
                    i += len;
                }
                None => {
                    out.push(chars[i]);
                    i += 1;
                }
            }
        }
        if self.columns {
            out = squeeze(&out);
        }
        out
    }
}

/// Runs of two or more spaces as two; no trailing spaces.
fn squeeze(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let mut spaces = 0;
        for c in body.trim_end().chars() {
            if c == ' ' {
                spaces += 1;
                continue;
            }
            out.push_str(if spaces >= 2 {
                "  "
            } else if spaces == 1 {
                " "
            } else {
                ""
            });
            spaces = 0;
            out.push(c);
        }
        out.push_str(end);
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// A match of `len` chars ends at a word boundary.
fn ends(s: &[char], len: usize) -> Option<usize> {
    match s.get(len) {
        Some(&c) if c.is_ascii_alphanumeric() || c == '_' => None,
        _ => Some(len),
    }
}

fn digits(s: &[char], at: usize, count: usize) -> bool {
    s.len() >= at + count && s[at..at + count].iter().all(char::is_ascii_digit)
}

/// A run of digits at `at`: its length.
fn number(s: &[char], at: usize) -> usize {
    s[at.min(s.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count()
}

/// `\d+(\.\d+)?` at `at`: its length.
fn decimal(s: &[char], at: usize) -> usize {
    let whole = number(s, at);
    if whole == 0 {
        return 0;
    }
    if s.get(at + whole) == Some(&'.') {
        let fraction = number(s, at + whole + 1);
        if fraction > 0 {
            return whole + 1 + fraction;
        }
    }
    whole
}

fn literal(s: &[char], at: usize, text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    s.len() >= at + text.len() && s[at..at + text.len()] == text[..]
}

fn clock(s: &[char]) -> Option<usize> {
    let ok = digits(s, 0, 2)
        && s.get(2) == Some(&':')
        && digits(s, 3, 2)
        && s.get(5) == Some(&':')
        && digits(s, 6, 2);
    if !ok {
        return None;
    }
    let mut len = 8;
    if s.get(len) == Some(&'.') && number(s, len + 1) > 0 {
        len += 1 + number(s, len + 1);
    }
    ends(s, len)
}

fn timestamp(s: &[char]) -> Option<usize> {
    let date = digits(s, 0, 4)
        && s.get(4) == Some(&'-')
        && digits(s, 5, 2)
        && s.get(7) == Some(&'-')
        && digits(s, 8, 2)
        && matches!(s.get(10), Some('T' | ' '));
    if !date {
        return None;
    }
    let time = clock(&s[11..]).or_else(|| {
        // `…:05Z` and `…:05+02:00` end on a letter or a sign, not a boundary.
        (digits(&s[11..], 0, 2) && digits(&s[11..], 3, 2) && digits(&s[11..], 6, 2)).then(|| {
            let mut len = 8;
            if s.get(11 + len) == Some(&'.') {
                len += 1 + number(s, 11 + len + 1);
            }
            len
        })
    })?;
    let mut len = 11 + time;
    if s.get(len) == Some(&'Z') {
        len += 1;
    } else if matches!(s.get(len), Some('+' | '-'))
        && digits(s, len + 1, 2)
        && s.get(len + 3) == Some(&':')
        && digits(s, len + 4, 2)
    {
        len += 6;
    }
    ends(s, len)
}

fn id(s: &[char]) -> Option<usize> {
    let len = s
        .iter()
        .take_while(|c| c.is_ascii_digit() || ('a'..='f').contains(*c))
        .count();
    if (len == 12 || len == 64) && ends(s, len).is_some() {
        Some(len)
    } else {
        None
    }
}

fn size(s: &[char]) -> Option<usize> {
    let value = decimal(s, 0);
    if value == 0 {
        return None;
    }
    let space = usize::from(s.get(value) == Some(&' '));
    [
        "KiB", "MiB", "GiB", "TiB", "kB", "KB", "MB", "GB", "TB", "B",
    ]
    .iter()
    .find(|unit| literal(s, value + space, unit))
    .and_then(|unit| ends(s, value + space + unit.len()))
}

fn duration(s: &[char]) -> Option<usize> {
    let value = decimal(s, 0);
    if value == 0 {
        return None;
    }
    if literal(s, value, "ms") {
        return ends(s, value + 2);
    }
    if literal(s, value, "s") {
        return ends(s, value + 1);
    }
    // Two units: 3m2s, 1h1m, 2d3h.
    for (first, second) in [('m', 's'), ('h', 'm'), ('d', 'h')] {
        if s.get(value) == Some(&first) {
            let more = number(s, value + 1);
            if more > 0 && s.get(value + 1 + more) == Some(&second) {
                return ends(s, value + 2 + more);
            }
        }
    }
    None
}

fn temporary(s: &[char]) -> Option<usize> {
    if !literal(s, 0, "/tmp/") {
        return None;
    }
    let name = s[5..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .count();
    (name > 0).then_some(5 + name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_what_varies_and_nothing_else() {
        for (text, masked) in [
            (
                "13:29:51 web h1b/0: done: replaced 4955425f9ac9 with 51b61c5cdb81 (kept 4955425f9ac9 for rollback)",
                "<time> web h1b/0: done: replaced <id> with <id> (kept <id> for rollback)",
            ),
            (
                "rp.web.h1.0.kept-a89eac89fff7 deployed 2026-12-07T13:29:42.136406577Z by root@vm",
                "rp.web.h1.0.kept-<id> deployed <time> by root@vm",
            ),
            ("at 2026-12-07 13:29:42+02:00.", "at <time>."),
            (
                &format!("image sha256:{}", "0a".repeat(32)),
                "image sha256:<id>",
            ),
            (
                "waiting for health 0s/9s, 350ms, 1.5s, 3m2s, 1h1m, 2d3h",
                "waiting for health <duration>/<duration>, <duration>, <duration>, <duration>, <duration>, <duration>",
            ),
            ("reclaimed 9.5MiB (512B, 140 KB)", "reclaimed <size> (<size>, <size>)"),
            (
                "error: /tmp/.tmpAb12_x/jobs/web.toml:3:9: bad",
                "error: <tmp>/jobs/web.toml:3:9: bad",
            ),
            // Not masked: names, counts, sizes without a unit, a bare `20m`.
            (
                "1 failed, 3 not started (of 5 step(s)); memory 20m; h1/0; exit 137; v1.2s3",
                "1 failed, 3 not started (of 5 step(s)); memory 20m; h1/0; exit 137; v1.2s3",
            ),
            // Hex of another length, or inside a word, is not an ID.
            ("deadbeef cafe0123456789abc x4955425f9ac9", "deadbeef cafe0123456789abc x4955425f9ac9"),
        ] {
            assert_eq!(normalize(text), masked, "{text}");
        }
    }

    #[test]
    fn columns_are_squeezed_to_two_spaces() {
        let table = "TASK      CONTAINER     STATE\napp h1/0  4955425f9ac9  running   \n";
        assert_eq!(
            Normalizer::new().columns().apply(table),
            "TASK  CONTAINER  STATE\napp h1/0  <id>  running\n"
        );
    }

    #[test]
    fn literals_are_masked_first_longest_first() {
        let normalizer = Normalizer::new()
            .literal("/work/env", "<dir>")
            .literal("/work/env/jobs", "<jobs>");
        assert_eq!(
            normalizer.apply("/work/env/jobs/a.toml and /work/env/drover.toml"),
            "<jobs>/a.toml and <dir>/drover.toml"
        );
    }
}
