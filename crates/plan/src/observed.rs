//! What actually runs, as plain data read from each host's engine.

use std::collections::BTreeMap;

use crate::config::TaskConfig;

/// What was found on every host that was asked.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub hosts: BTreeMap<String, HostObservation>,
}

/// One host: either what its engine said, or why it could not be asked.
#[derive(Debug, Clone)]
pub enum HostObservation {
    Reachable(HostState),
    Unreachable { address: String, error: String },
}

#[derive(Debug, Clone, Default)]
pub struct HostState {
    /// drover containers of this environment on the host's engine.
    pub containers: Vec<ObservedContainer>,
    /// Image references present on the host (normalized, see [`normalize_image_ref`]) → image ID.
    pub images: BTreeMap<String, String>,
}

/// One drover container, as `docker inspect` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    pub state: String,
    pub exit_code: i64,
    /// `healthy`, `unhealthy`, `starting`, or empty when there is no health check.
    pub health: String,
    pub started_at: String,
    pub created: String,
    pub restarts: i64,
    /// The image ID the container runs.
    pub image_id: String,
    /// Read back from the container; `command` is the container's `Cmd` as is
    /// and `env` is the whole of it, the image's own variables included.
    pub config: TaskConfig,
    /// The container image's own `Env` and `Cmd`, to tell them from drover's.
    pub image_env: BTreeMap<String, String>,
    pub image_cmd: Option<Vec<String>>,
}

impl ObservedContainer {
    pub fn job(&self) -> Option<&str> {
        self.labels.get(crate::labels::JOB).map(String::as_str)
    }

    pub fn host_label(&self) -> Option<&str> {
        self.labels.get(crate::labels::HOST).map(String::as_str)
    }

    pub fn task(&self) -> Option<u32> {
        self.labels
            .get(crate::labels::TASK)
            .and_then(|t| t.parse().ok())
    }

    pub fn spec_hash(&self) -> Option<&str> {
        self.labels.get(crate::labels::SPEC).map(String::as_str)
    }

    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "restarting")
    }
}

/// `busybox` → `busybox:latest`; `docker.io/library/x:1` → `x:1`: the form
/// Docker lists in `RepoTags`, so a job's image can be looked up there.
pub fn normalize_image_ref(reference: &str) -> String {
    let mut r = reference;
    for prefix in [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ] {
        if let Some(rest) = r.strip_prefix(prefix) {
            r = rest;
            break;
        }
    }
    if r.contains('@') {
        return r.to_string();
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_image_ref;

    #[test]
    fn image_refs_normalize_like_repo_tags() {
        assert_eq!(normalize_image_ref("busybox"), "busybox:latest");
        assert_eq!(
            normalize_image_ref("docker.io/library/busybox:1"),
            "busybox:1"
        );
        assert_eq!(
            normalize_image_ref("127.0.0.1:5000/app"),
            "127.0.0.1:5000/app:latest"
        );
        assert_eq!(
            normalize_image_ref("127.0.0.1:5000/app:2"),
            "127.0.0.1:5000/app:2"
        );
        assert_eq!(normalize_image_ref("app@sha256:abc"), "app@sha256:abc");
    }
}
