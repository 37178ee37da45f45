//! The environments under `examples/` are documentation: they must stay valid.

use std::path::Path;
use std::process::Command;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");

/// `drover -C DIR validate` with `env` set: (status, stdout, stderr).
fn validate_in(dir: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drover"));
    command
        .arg("-C")
        .arg(dir)
        .arg("validate")
        .env_remove("DROVER_SECRETS_FILE")
        .env_remove("DB_PASSWORD");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().expect("run drover");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn validate(example: &str) -> (i32, String, String) {
    validate_in(&Path::new(EXAMPLES).join(example), &[])
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
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

/// The reference names what an operator provides beside the files: client
/// certificates for its tcp:// host and a secret. Without them, `validate`
/// says so (as `up` would refuse); with them, it is valid.
#[test]
fn reference_is_valid_with_its_certificates_and_secret() {
    assert_eq!(
        validate("reference"),
        (
            1,
            String::new(),
            concat!(
                "error: drover.toml:8:14: tls ca file \"certs/ca.pem\" does not exist (a relative path starts at the directory holding drover.toml)\n",
                "drover.toml:8:37: tls cert file \"certs/cert.pem\" does not exist (a relative path starts at the directory holding drover.toml)\n",
                "drover.toml:8:61: tls key file \"certs/key.pem\" does not exist (a relative path starts at the directory holding drover.toml)\n",
            )
            .to_string()
        )
    );
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&Path::new(EXAMPLES).join("reference"), dir.path());
    std::fs::create_dir_all(dir.path().join("certs")).expect("certs dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["drover".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    for (name, pem) in [
        ("ca", cert.pem()),
        ("cert", cert.pem()),
        ("key", key.serialize_pem()),
    ] {
        std::fs::write(dir.path().join(format!("certs/{name}.pem")), pem).expect("write");
    }
    assert_eq!(
        validate_in(dir.path(), &[]),
        (
            1,
            String::new(),
            "error: jobs/coding-mart.toml:7:15: job coding-mart: secret DB_PASSWORD has no value: it is not in drover's environment, and there is no secrets.env beside drover.toml: export DB_PASSWORD=... or add the line DB_PASSWORD=... to secrets.env\n".to_string()
        )
    );
    assert_eq!(
        validate_in(dir.path(), &[("DB_PASSWORD", "x")]),
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
