//! [`Engine`] over a real Docker engine, through bollard.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListImagesOptions,
    RemoveContainerOptions, RenameContainerOptions, StatsOptions, StopContainerOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use drover_plan::{labels, DesiredTask, ObservedContainer};
use drover_spec::{DockerAddress, Host};
use futures::StreamExt;

use crate::convert::{create_body, observed};
use crate::transport;
use crate::{
    ContainerSummary, Engine, EngineError, EngineVersion, ImageDetails, ImageSummary, Usage,
};

/// Requests that take longer than this fail (a stop waits its own timeout on top).
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// How long reaching a host may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct DockerEngine {
    host: String,
    address: String,
    docker: Docker,
}

impl DockerEngine {
    /// Connects to `host` and agrees on an API version with its engine, so
    /// drover works with engines older and newer than bollard's default.
    pub async fn connect(host: &Host) -> Result<Self, EngineError> {
        let address = host.docker.to_string();
        let unreachable = |reason: String| EngineError::Unreachable {
            host: host.name.clone(),
            address: address.clone(),
            reason,
        };
        let docker = match &host.docker {
            DockerAddress::Unix(path) => transport::unix(
                &path.to_string_lossy(),
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            ),
            DockerAddress::Tcp {
                host: tcp_host,
                port,
            } => {
                if host.tls.is_some() {
                    return Err(unreachable(
                        "TLS to tcp:// hosts is not supported yet".to_string(),
                    ));
                }
                transport::tcp(tcp_host, *port, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
            }
            DockerAddress::Ssh { .. } => {
                return Err(unreachable(
                    "ssh:// hosts are not supported yet".to_string(),
                ))
            }
        }
        .map_err(|e| EngineError::from_bollard(e, &host.name, &address))?;
        let docker = match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Ok(Ok(docker)) => docker,
            Ok(Err(e)) => {
                return Err(match EngineError::from_bollard(e, &host.name, &address) {
                    unreachable @ EngineError::Unreachable { .. } => unreachable,
                    other => unreachable(other.to_string()),
                })
            }
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
        };
        Ok(DockerEngine {
            host: host.name.clone(),
            address,
            docker,
        })
    }

    fn err(&self, e: bollard::errors::Error) -> EngineError {
        EngineError::from_bollard(e, &self.host, &self.address)
    }
}

#[async_trait]
impl Engine for DockerEngine {
    fn host(&self) -> &str {
        &self.host
    }

    fn address(&self) -> &str {
        &self.address
    }

    async fn version(&self) -> Result<EngineVersion, EngineError> {
        let v = self.docker.version().await.map_err(|e| self.err(e))?;
        Ok(EngineVersion {
            version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
        })
    }

    async fn list_containers(&self, env: &str) -> Result<Vec<ContainerSummary>, EngineError> {
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{}={env}", labels::ENV)])]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.err(e))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                labels: c.labels.unwrap_or_default().into_iter().collect(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                image: c.image.unwrap_or_default(),
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ObservedContainer>, EngineError> {
        let inspect = match self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| self.err(e))
        {
            Ok(inspect) => inspect,
            Err(EngineError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(observed(inspect)))
    }

    async fn list_images(&self) -> Result<Vec<ImageSummary>, EngineError> {
        let list = self
            .docker
            .list_images(Some(ListImagesOptions::default()))
            .await
            .map_err(|e| self.err(e))?;
        Ok(list
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id,
                repo_tags: i.repo_tags,
            })
            .collect())
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageDetails>, EngineError> {
        match self
            .docker
            .inspect_image(reference)
            .await
            .map_err(|e| self.err(e))
        {
            Ok(image) => {
                let config = image.config.unwrap_or_default();
                Ok(Some(ImageDetails {
                    id: image.id.unwrap_or_default(),
                    env: config.env.unwrap_or_default(),
                    cmd: config.cmd,
                }))
            }
            Err(EngineError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn pull_image(&self, reference: &str) -> Result<(), EngineError> {
        let options = CreateImageOptions {
            from_image: Some(reference.to_string()),
            ..Default::default()
        };
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(event) = progress.next().await {
            let event = event.map_err(|e| self.err(e))?;
            if let Some(error) = event.error_detail.and_then(|d| d.message) {
                return Err(EngineError::Other(format!("pulling {reference}: {error}")));
            }
        }
        Ok(())
    }

    async fn create_container(
        &self,
        env: &str,
        name: &str,
        task: &DesiredTask,
    ) -> Result<String, EngineError> {
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), create_body(env, task))
            .await
            .map_err(|e| self.err(e))?;
        Ok(created.id)
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        match self
            .docker
            .start_container(id, None)
            .await
            .map_err(|e| self.err(e))
        {
            // 304: already running
            Ok(()) | Err(EngineError::Api { status: 304, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn unpause_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker
            .unpause_container(id)
            .await
            .map_err(|e| self.err(e))
    }

    async fn stop_container(&self, id: &str, timeout_secs: u64) -> Result<(), EngineError> {
        let t = i32::try_from(timeout_secs).unwrap_or(i32::MAX);
        let options = StopContainerOptions {
            t: Some(t),
            signal: None,
        };
        match self
            .docker
            .stop_container(id, Some(options))
            .await
            .map_err(|e| self.err(e))
        {
            // 304: already stopped
            Ok(()) | Err(EngineError::Api { status: 304, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptions {
            v: true,
            force: true,
            link: false,
        };
        match self
            .docker
            .remove_container(id, Some(options))
            .await
            .map_err(|e| self.err(e))
        {
            Ok(()) | Err(EngineError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn rename_container(&self, id: &str, name: &str) -> Result<(), EngineError> {
        let options = RenameContainerOptions {
            name: name.to_string(),
        };
        self.docker
            .rename_container(id, options)
            .await
            .map_err(|e| self.err(e))
    }

    async fn usage(&self, id: &str) -> Result<Usage, EngineError> {
        let options = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let mut stream = self.docker.stats(id, Some(options));
        let stats = match stream.next().await {
            Some(stats) => stats.map_err(|e| self.err(e))?,
            None => return Ok(Usage::default()),
        };
        let memory = stats.memory_stats.unwrap_or_default();
        // As `docker stats` shows it: page cache that can be reclaimed is not counted.
        let cache = memory
            .stats
            .as_ref()
            .and_then(|s| {
                s.get("inactive_file")
                    .or_else(|| s.get("total_inactive_file"))
                    .copied()
            })
            .unwrap_or(0);
        let memory_bytes = memory.usage.unwrap_or(0).saturating_sub(cache);
        let cpu = stats.cpu_stats.unwrap_or_default();
        let precpu = stats.precpu_stats.unwrap_or_default();
        let total = |c: &bollard::models::ContainerCpuStats| {
            c.cpu_usage
                .as_ref()
                .and_then(|u| u.total_usage)
                .unwrap_or(0)
        };
        let cpu_delta = total(&cpu).saturating_sub(total(&precpu)) as f64;
        let system_delta = cpu
            .system_cpu_usage
            .unwrap_or(0)
            .saturating_sub(precpu.system_cpu_usage.unwrap_or(0)) as f64;
        let cpus = f64::from(cpu.online_cpus.unwrap_or(1).max(1));
        let cpu_percent = if system_delta > 0.0 {
            cpu_delta / system_delta * cpus * 100.0
        } else {
            0.0
        };
        Ok(Usage {
            memory_bytes,
            cpu_percent,
        })
    }
}
