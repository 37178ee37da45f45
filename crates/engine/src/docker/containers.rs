//! Containers: list, inspect, create, start, stop, remove, rename, stats, logs, exec.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, RenameContainerOptions, StatsOptions, StopContainerOptions,
};
use drover_plan::{labels, ObservedContainer, TaskConfig};
use futures::StreamExt;

use super::{DockerEngine, STOP_MARGIN};
use crate::convert::{create_body, hand_run, observed};
use crate::{
    Attachment, ContainerSummary, Containers, CreateOptions, EngineError, ExecOutput, HandRun,
    HostContainer, UsageSample,
};

/// Most output [`Containers::exec_output`] keeps, per stream.
const EXEC_OUTPUT_LIMIT: usize = 1 << 20;

#[async_trait]
impl Containers for DockerEngine {
    async fn list_containers(&self, env: &str) -> Result<Vec<ContainerSummary>, EngineError> {
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{}={env}", labels::ENV)])]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .call(
                "list containers",
                self.timeout,
                self.docker.list_containers(Some(options)),
            )
            .await?;
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
                state: c
                    .state
                    .and_then(|s| s.to_string().parse().ok())
                    .unwrap_or(drover_plan::RunState::Dead),
                image: c.image.unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ObservedContainer>, EngineError> {
        match self
            .call(
                "inspect container",
                self.timeout,
                self.docker
                    .inspect_container(id, None::<InspectContainerOptions>),
            )
            .await
        {
            Ok(inspect) => Ok(Some(observed(inspect))),
            Err(EngineError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_container(
        &self,
        name: &str,
        config: &TaskConfig,
        options: &CreateOptions,
    ) -> Result<String, EngineError> {
        let create = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let created = self
            .call(
                "create container",
                self.timeout * 2,
                self.docker
                    .create_container(Some(create), create_body(config, options)),
            )
            .await?;
        Ok(created.id)
    }

    async fn create_attached(
        &self,
        name: &str,
        config: &TaskConfig,
        options: &CreateOptions,
        attachment: Attachment,
    ) -> Result<String, EngineError> {
        let create = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let mut body = create_body(config, options);
        // As `docker run` sets them: -t a terminal, -i an open stdin that
        // closes when the client detaches, the output attached either way.
        body.tty = Some(attachment.tty);
        body.open_stdin = Some(attachment.stdin);
        body.stdin_once = Some(attachment.stdin);
        body.attach_stdin = Some(attachment.stdin);
        body.attach_stdout = Some(true);
        body.attach_stderr = Some(true);
        let created = self
            .call(
                "create container",
                self.timeout * 2,
                self.docker.create_container(Some(create), body),
            )
            .await?;
        Ok(created.id)
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        match self
            .call(
                "start container",
                self.timeout * 3,
                self.docker.start_container(id, None),
            )
            .await
        {
            // 304: already running
            Ok(()) | Err(EngineError::Api { status: 304, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn unpause_container(&self, id: &str) -> Result<(), EngineError> {
        self.call(
            "unpause container",
            self.timeout,
            self.docker.unpause_container(id),
        )
        .await
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), EngineError> {
        let t = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptions {
            t: Some(t),
            signal: None,
        };
        // The engine answers only once the container is down: wait its stop timeout, and then some.
        let deadline = timeout + STOP_MARGIN.max(self.timeout);
        match self
            .call(
                "stop container",
                deadline,
                self.docker.stop_container(id, Some(options)),
            )
            .await
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
            .call(
                "remove container",
                self.timeout * 3,
                self.docker.remove_container(id, Some(options)),
            )
            .await
        {
            Ok(()) | Err(EngineError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn rename_container(&self, id: &str, name: &str) -> Result<(), EngineError> {
        let options = RenameContainerOptions {
            name: name.to_string(),
        };
        self.call(
            "rename container",
            self.timeout,
            self.docker.rename_container(id, options),
        )
        .await
    }

    async fn usage(&self, id: &str) -> Result<UsageSample, EngineError> {
        let options = StatsOptions {
            stream: false,
            one_shot: self.has_one_shot_stats(),
        };
        let request = async {
            let mut stream = self.docker.stats(id, Some(options));
            stream.next().await.transpose()
        };
        let Some(stats) = self
            .call_sample("read container stats", self.timeout, request)
            .await?
        else {
            return Ok(UsageSample::default());
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
        let cpu = stats.cpu_stats.unwrap_or_default();
        Ok(UsageSample {
            memory_bytes: memory.usage.unwrap_or(0).saturating_sub(cache),
            cpu_total_ns: cpu
                .cpu_usage
                .as_ref()
                .and_then(|u| u.total_usage)
                .unwrap_or(0),
            system_total_ns: cpu.system_cpu_usage.unwrap_or(0),
            online_cpus: cpu.online_cpus.unwrap_or(1).max(1),
        })
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, EngineError> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let request = async {
            let mut stream = self.docker.logs(id, Some(options));
            let mut text = Vec::new();
            while let Some(chunk) = stream.next().await {
                text.extend_from_slice(chunk?.as_ref());
                if text.len() > EXEC_OUTPUT_LIMIT {
                    break;
                }
            }
            Ok(text)
        };
        let text = self
            .call("read container logs", self.timeout, request)
            .await?;
        let text = String::from_utf8_lossy(&text);
        let mut out: Vec<String> = text
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect();
        let skip = out.len().saturating_sub(lines);
        out.drain(..skip);
        Ok(out)
    }

    async fn exec_output(&self, id: &str, cmd: &[String]) -> Result<ExecOutput, EngineError> {
        let create = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let request = async {
            let exec = self.docker.create_exec(id, create).await?;
            let mut output = ExecOutput::default();
            if let StartExecResults::Attached {
                output: mut stream, ..
            } = self
                .docker
                .start_exec(
                    &exec.id,
                    Some(StartExecOptions {
                        detach: false,
                        tty: false,
                        output_capacity: None,
                    }),
                )
                .await?
            {
                while let Some(chunk) = stream.next().await {
                    match chunk? {
                        bollard::container::LogOutput::StdErr { message }
                            if output.stderr.len() < EXEC_OUTPUT_LIMIT =>
                        {
                            output.stderr.extend_from_slice(&message)
                        }
                        bollard::container::LogOutput::StdOut { message }
                            if output.stdout.len() < EXEC_OUTPUT_LIMIT =>
                        {
                            output.stdout.extend_from_slice(&message)
                        }
                        _ => {}
                    }
                }
            }
            let inspect = self.docker.inspect_exec(&exec.id).await?;
            output.exit_code = inspect.exit_code.unwrap_or(-1);
            Ok(output)
        };
        self.call("run a command in the container", self.timeout * 3, request)
            .await
    }

    async fn list_all_containers(&self) -> Result<Vec<HostContainer>, EngineError> {
        // As JSON: mount types newer than bollard's model must not fail the list.
        let list = self
            .get_json(
                "list all containers",
                "/containers/json?all=1",
                self.timeout,
            )
            .await?;
        Ok(list
            .as_array()
            .map(|items| items.iter().map(host_container).collect())
            .unwrap_or_default())
    }

    async fn inspect_hand_run(&self, id: &str) -> Result<Option<HandRun>, EngineError> {
        // As JSON: settings bollard's model lacks must still be seen.
        let path = format!("/containers/{id}/json");
        match self
            .get_json("inspect container", &path, self.timeout)
            .await
        {
            Ok(inspect) => hand_run(inspect).map(Some).map_err(EngineError::Other),
            Err(EngineError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn host_container(c: &serde_json::Value) -> HostContainer {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    HostContainer {
        id: text(&c["Id"]),
        name: c["Names"]
            .as_array()
            .and_then(|names| names.first())
            .and_then(|n| n.as_str())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        labels: c["Labels"]
            .as_object()
            .map(|labels| labels.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default(),
        state: text(&c["State"]),
        image_id: text(&c["ImageID"]),
        volumes: c["Mounts"]
            .as_array()
            .map(|mounts| {
                mounts
                    .iter()
                    .filter(|m| m["Type"].as_str() == Some("volume"))
                    .filter_map(|m| m["Name"].as_str())
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
}
