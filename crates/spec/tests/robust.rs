//! No input makes loading panic: every mangled variant of the reference
//! environment either loads or yields located errors.

use std::path::Path;

const FILES: [(&str, &str); 2] = [
    (
        "drover.toml",
        include_str!("../../../examples/reference/drover.toml"),
    ),
    (
        "jobs/coding-mart.toml",
        include_str!("../../../examples/reference/jobs/coding-mart.toml"),
    ),
];

/// xorshift: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "\"",
    "[",
    "]",
    "{",
    "}",
    "=",
    "\n",
    "#",
    "-1",
    "99999999999999999999",
    "\"\"",
    "é",
    "\u{0}",
    "0",
    "1e9",
    "true",
    "[[x]]",
    "\"10x\"",
    "\"1g\"",
    ":",
    "/",
    "\"app9\"",
    ",",
];

fn mangle(text: &str, rng: &mut Rng) -> String {
    let mut bytes: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len());
        match rng.below(3) {
            0 => {
                let end = (at + 1 + rng.below(12)).min(bytes.len());
                bytes.drain(at..end);
            }
            1 => {
                let piece = PIECES[rng.below(PIECES.len())];
                for (i, c) in piece.chars().enumerate() {
                    bytes.insert((at + i).min(bytes.len()), c);
                }
            }
            _ => {
                let from = rng.below(bytes.len());
                let end = (from + rng.below(20)).min(bytes.len());
                let copy: Vec<char> = bytes[from..end].to_vec();
                for (i, c) in copy.into_iter().enumerate() {
                    bytes.insert((at + i).min(bytes.len()), c);
                }
            }
        }
    }
    bytes.into_iter().collect()
}

fn write(dir: &Path, files: &[(&str, String)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

#[test]
fn mangled_environments_load_or_fail_with_located_errors() {
    let mut rng = Rng(0x5eed_d00d);
    let dir = tempfile::tempdir().unwrap();
    // The client certificates drover.toml names exist, as they would.
    for name in ["ca", "cert", "key"] {
        write(dir.path(), &[(&format!("certs/{name}.pem"), String::new())]);
    }
    for round in 0..400 {
        let victim = rng.below(FILES.len());
        let files: Vec<(&str, String)> = FILES
            .iter()
            .enumerate()
            .map(|(i, (path, text))| {
                (
                    *path,
                    if i == victim {
                        mangle(text, &mut rng)
                    } else {
                        text.to_string()
                    },
                )
            })
            .collect();
        write(dir.path(), &files);
        match drover_spec::load(dir.path(), None) {
            Ok(_) => {}
            Err(drover_spec::SpecError::Invalid(diagnostics)) => {
                assert!(
                    !diagnostics.is_empty(),
                    "round {round}: an error with no diagnostics"
                );
                for d in &diagnostics {
                    assert!(
                        matches!(d.position, Some((line, col)) if line >= 1 && col >= 1),
                        "round {round}: {d}"
                    );
                    assert!(
                        FILES.iter().any(|(p, _)| *p == d.file),
                        "round {round}: {d}"
                    );
                }
            }
            Err(other) => panic!("round {round}: {other}"),
        }
    }
}
