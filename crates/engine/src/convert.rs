//! Between drover's [`TaskConfig`] and Docker's create and inspect bodies.
//!
//! `create_body` and `task_config` are inverses on every field drover sets,
//! which is what makes a second `up` change nothing.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HealthConfig as DockerHealth, HostConfig,
    HostConfigLogConfig, Mount, MountType, RestartPolicy, RestartPolicyNameEnum,
};
use drover_plan::{DesiredTask, HealthConfig, ObservedContainer, TaskConfig};

/// The create request for a task's container.
pub fn create_body(env: &str, task: &DesiredTask) -> ContainerCreateBody {
    let config = &task.config;
    let (restart_name, retries) = match config.restart.split_once(':') {
        Some((name, n)) => (name, n.parse::<i64>().ok()),
        None => (config.restart.as_str(), None),
    };
    let restart_name = match restart_name {
        "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::UNLESS_STOPPED,
    };
    let host_config = HostConfig {
        binds: Some(config.volumes.clone()),
        mounts: Some(
            config
                .host_files
                .iter()
                .map(|path| Mount {
                    target: Some(path.clone()),
                    source: Some(path.clone()),
                    typ: Some(MountType::BIND),
                    read_only: Some(true),
                    ..Default::default()
                })
                .collect(),
        ),
        memory: config.memory.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        network_mode: Some(config.network.clone()),
        init: Some(config.init),
        restart_policy: Some(RestartPolicy {
            name: Some(restart_name),
            maximum_retry_count: retries,
        }),
        log_config: Some(HostConfigLogConfig {
            typ: Some(config.log_driver.clone()),
            config: Some(
                config
                    .log_options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(config.image.clone()),
        cmd: config.command.clone(),
        env: Some(config.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(task.labels(env).into_iter().collect::<HashMap<_, _>>()),
        stop_timeout: Some(i64::try_from(config.stop_timeout_secs).unwrap_or(i64::MAX)),
        healthcheck: config.health.as_ref().map(|h| DockerHealth {
            test: Some(
                std::iter::once("CMD".to_string())
                    .chain(h.cmd.iter().cloned())
                    .collect(),
            ),
            interval: Some(nanos(h.interval)),
            timeout: Some(nanos(h.timeout)),
            retries: Some(i64::from(h.retries)),
            start_period: Some(nanos(h.start_period)),
            start_interval: None,
        }),
        host_config: Some(host_config),
        ..Default::default()
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn from_nanos(n: Option<i64>) -> Duration {
    Duration::from_nanos(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

/// Splits `KEY=VALUE` lines; a line without `=` is a key with an empty value.
pub(crate) fn env_map(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .map(|line| match line.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (line.clone(), String::new()),
        })
        .collect()
}

/// A container as drover sees it, from `docker inspect` and its image's config.
/// The image's own env and command are filled in by [`crate::observe`].
pub(crate) fn observed(inspect: ContainerInspectResponse) -> ObservedContainer {
    let config = inspect.config.unwrap_or_default();
    let host = inspect.host_config.unwrap_or_default();
    let state = inspect.state.unwrap_or_default();
    let restart = host.restart_policy.unwrap_or_default();
    let restart = match (
        restart.name.map(|n| n.to_string()).unwrap_or_default(),
        restart.maximum_retry_count,
    ) {
        (name, Some(n)) if name == "on-failure" && n > 0 => format!("{name}:{n}"),
        (name, _) if name.is_empty() => "no".to_string(),
        (name, _) => name,
    };
    let log = host.log_config.unwrap_or_default();
    let health = config.healthcheck.and_then(|h| {
        let test = h.test.unwrap_or_default();
        let cmd = match test.split_first() {
            Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
            Some((kind, rest)) if kind == "CMD-SHELL" => std::iter::once("sh".to_string())
                .chain(std::iter::once("-c".to_string()))
                .chain(rest.iter().cloned())
                .collect(),
            _ => return None,
        };
        Some(HealthConfig {
            cmd,
            interval: from_nanos(h.interval),
            timeout: from_nanos(h.timeout),
            retries: h.retries.and_then(|r| u32::try_from(r).ok()).unwrap_or(0),
            start_period: from_nanos(h.start_period),
        })
    });
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    let secret_keys = labels
        .get(drover_plan::labels::SECRETS)
        .map(|names| {
            names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let task_config = TaskConfig {
        image: config.image.unwrap_or_default(),
        command: config.cmd,
        env: env_map(&config.env.unwrap_or_default()),
        secret_keys,
        volumes: host.binds.unwrap_or_default(),
        host_files: host
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| {
                m.typ == Some(MountType::BIND) && m.read_only == Some(true) && m.source == m.target
            })
            .filter_map(|m| m.source)
            .collect(),
        memory: host
            .memory
            .filter(|m| *m > 0)
            .and_then(|m| u64::try_from(m).ok()),
        network: host.network_mode.unwrap_or_default(),
        init: host.init.unwrap_or(false),
        restart,
        // Docker's own default when none was set
        stop_timeout_secs: config
            .stop_timeout
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(10),
        log_driver: log.typ.unwrap_or_default(),
        log_options: log.config.unwrap_or_default().into_iter().collect(),
        health,
    };
    ObservedContainer {
        id: inspect.id.unwrap_or_default(),
        name: inspect
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        labels,
        state: state.status.map(|s| s.to_string()).unwrap_or_default(),
        exit_code: state.exit_code.unwrap_or(0),
        health: state
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| s != "none")
            .unwrap_or_default(),
        started_at: state.started_at.unwrap_or_default(),
        created: inspect.created.unwrap_or_default(),
        restarts: inspect.restart_count.unwrap_or(0),
        image_id: inspect.image.unwrap_or_default(),
        config: task_config,
        image_env: BTreeMap::new(),
        image_cmd: None,
    }
}
