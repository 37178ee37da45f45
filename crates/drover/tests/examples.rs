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
