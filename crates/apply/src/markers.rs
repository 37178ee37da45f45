//! drover's marker containers: a job's lock on a host, and its stop mark.
//!
//! A marker is a container that is created and never started: creating a
//! container under a fixed name is atomic on an engine (a second create
//! answers 409), and its labels carry the record (who, when, why). It is
//! made from a tiny image drover imports on each host from a few bytes, so
//! no host ever needs a registry for it.

use std::collections::BTreeMap;
use std::time::Duration;

use drover_engine::{CreateOptions, Engine, EngineError};
use drover_plan::{labels, Resources, TaskConfig, MARKER_IMAGE};

/// The root filesystem of the marker image: one file saying what it is.
fn marker_rootfs() -> Vec<u8> {
    let content = b"drover marker image: containers of it are never started\n";
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    // Appending to a Vec cannot fail.
    let _ = builder.append_data(&mut header, "drover-marker", &content[..]);
    builder.into_inner().unwrap_or_default()
}

/// Makes sure the host has the marker image.
pub async fn ensure_marker_image(engine: &dyn Engine) -> Result<(), EngineError> {
    if engine.inspect_image(MARKER_IMAGE).await?.is_some() {
        return Ok(());
    }
    engine.import_image(MARKER_IMAGE, marker_rootfs()).await
}

/// The configuration of a marker container: never run, so the barest one.
fn marker_config() -> TaskConfig {
    TaskConfig {
        image: MARKER_IMAGE.to_string(),
        command: Some(vec!["/drover-marker".to_string()]),
        env: BTreeMap::new(),
        volumes: Vec::new(),
        host_files: Vec::new(),
        memory: None,
        resources: Resources::default(),
        network: "none".to_string(),
        init: false,
        restart: "no".to_string(),
        stop_timeout: Duration::ZERO,
        log_driver: "none".to_string(),
        log_options: BTreeMap::new(),
        health: None,
        settings: Default::default(),
    }
}

/// Creates a marker container named `name` and returns its ID; one that
/// exists already is an [`EngineError::Conflict`].
pub async fn create_marker(
    engine: &dyn Engine,
    name: &str,
    marker_labels: BTreeMap<String, String>,
) -> Result<String, EngineError> {
    ensure_marker_image(engine).await?;
    engine
        .create_container(
            name,
            &marker_config(),
            &CreateOptions {
                labels: marker_labels,
            },
        )
        .await
}

/// The labels every marker of `job` on `host` carries.
pub fn marker_labels(env: &str, job: &str, host: &str, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::ENV.to_string(), env.to_string()),
        (labels::JOB.to_string(), job.to_string()),
        (labels::HOST.to_string(), host.to_string()),
        (labels::ROLE.to_string(), role.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_marker_rootfs_is_a_tar_with_one_file() {
        let tar = super::marker_rootfs();
        let mut archive = tar::Archive::new(&tar[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["drover-marker"]);
    }
}
