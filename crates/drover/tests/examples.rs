//! The environments under `examples/` are documentation: they must stay valid.

use std::process::Command;

fn validate(example: &str) -> (i32, String, String) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["-C", &format!("{dir}/{example}"), "validate"])
        .output()
        .expect("run drover");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_is_valid() {
    assert_eq!(
        validate("demo"),
        (
            0,
            "demo: valid (1 host(s), 2 job(s), 3 task(s))\n".to_string(),
            String::new()
        )
    );
}

#[test]
fn reference_is_valid() {
    assert_eq!(
        validate("reference"),
        (
            0,
            "prod: valid (2 host(s), 1 job(s), 2 task(s))\n".to_string(),
            String::new()
        )
    );
}

/// The keys a line of TOML sets at its start: `key = …` or `[table]`.
fn keys_written(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let key = match line.strip_prefix('[') {
                Some(table) => table.split(']').next()?.rsplit('.').next()?,
                None => line.split_once(" = ")?.0,
            };
            key.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
                .then(|| key.to_string())
        })
        .collect()
}

#[test]
fn reference_shows_every_job_key() {
    // The keys a job takes, as drover lists them for an unknown one.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("jobs")).expect("jobs dir");
    std::fs::write(dir.path().join("drover.toml"), "name = \"x\"\n").expect("write");
    std::fs::write(dir.path().join("jobs/web.toml"), "bogus = 1\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["-C", &dir.path().display().to_string(), "validate"])
        .output()
        .expect("run drover");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let valid: Vec<&str> = stderr
        .split_once("valid keys here: ")
        .map(|(_, keys)| keys.trim().split(", ").collect())
        .unwrap_or_default();
    assert!(valid.len() > 20, "{stderr}");

    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/reference");
    let read = |path: &str| std::fs::read_to_string(format!("{reference}/{path}")).expect("read");
    let mut shown = keys_written(&read("jobs/coding-mart.toml"));
    shown.extend(keys_written(&read("drover.toml")));
    let missing: Vec<&str> = valid
        .into_iter()
        .filter(|key| !shown.iter().any(|s| s == key))
        .collect();
    assert_eq!(
        missing,
        Vec::<&str>::new(),
        "job keys examples/reference does not show"
    );
}
