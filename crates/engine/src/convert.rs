//! Between drover's [`TaskConfig`] and Docker's create and inspect bodies.
//!
//! `create_body` and `observed` are inverses on every field drover sets,
//! which is what makes a second `up` change nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, DeviceMapping, HealthConfig as DockerHealth,
    HostConfig, HostConfigLogConfig, Mount, MountType, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use drover_plan::time;
use drover_plan::{
    secret_names_label, EnvValue, HealthConfig, ImageDefaults, ObservedContainer, Resources,
    Secret, Settings, TaskConfig,
};
use drover_plan::{Health, RunState, Runs};
use drover_spec::values::RESERVED_LABEL_PREFIX;
use drover_spec::{Capability, Device, ExtraHost, Tmpfs, Ulimit};

use crate::CreateOptions;

/// The create request for a container of `config`.
pub fn create_body(config: &TaskConfig, options: &CreateOptions) -> ContainerCreateBody {
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
    let s = &config.settings;
    let nonempty = |list: &[String]| (!list.is_empty()).then(|| list.to_vec());
    let host_config = HostConfig {
        nano_cpus: (config.resources.nano_cpus != 0).then_some(config.resources.nano_cpus),
        ulimits: (!s.ulimits.is_empty()).then(|| {
            s.ulimits
                .iter()
                .map(|(name, u)| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        cap_add: nonempty(&s.cap_add),
        cap_drop: nonempty(&s.cap_drop),
        privileged: Some(s.privileged),
        devices: (!s.devices.is_empty()).then(|| {
            s.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.host.clone()),
                    path_in_container: Some(d.container.clone()),
                    cgroup_permissions: Some(d.permissions.clone()),
                })
                .collect()
        }),
        extra_hosts: nonempty(&s.extra_hosts),
        tmpfs: (!s.tmpfs.is_empty()).then(|| {
            s.tmpfs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        shm_size: s.shm_size.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
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
        memory_swap: (config.resources.memory_swap != 0).then_some(config.resources.memory_swap),
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
        entrypoint: s.entrypoint.clone(),
        cmd: config.command.clone(),
        user: s.user.clone(),
        working_dir: s.workdir.clone(),
        env: Some(
            config
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", v.expose()))
                .collect(),
        ),
        // The job's own labels, and drover's (which no job label can shadow).
        labels: Some(
            s.labels
                .iter()
                .chain(&options.labels)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        ),
        stop_timeout: Some(i64::try_from(config.stop_timeout.as_secs()).unwrap_or(i64::MAX)),
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

/// A container as drover sees it, from `docker inspect`. The image's own
/// env and command are filled in by [`crate::observe`].
pub(crate) fn observed(inspect: ContainerInspectResponse) -> ObservedContainer {
    let config = inspect.config.unwrap_or_default();
    let host = inspect.host_config.unwrap_or_default();
    let state = inspect.state.unwrap_or_default();
    let restart = host.restart_policy.clone().unwrap_or_default();
    let restart = match (
        restart.name.map(|n| n.to_string()).unwrap_or_default(),
        restart.maximum_retry_count,
    ) {
        (name, Some(n)) if name == "on-failure" && n > 0 => format!("{name}:{n}"),
        (name, _) if name.is_empty() => "no".to_string(),
        (name, _) => name,
    };
    let log = host.log_config.clone().unwrap_or_default();
    let health = config.healthcheck.and_then(|h| {
        let test = h.test.unwrap_or_default();
        let cmd = match test.split_first() {
            Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
            Some((kind, rest)) if kind == "CMD-SHELL" => ["sh".to_string(), "-c".to_string()]
                .into_iter()
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
    let secret_keys: BTreeSet<String> = secret_names_label(&labels);
    let env = env_map(&config.env.unwrap_or_default())
        .into_iter()
        .map(|(k, v)| {
            let value = if secret_keys.contains(&k) {
                EnvValue::Secret(Secret::new(v))
            } else {
                EnvValue::Plain(v)
            };
            (k, value)
        })
        .collect();
    let resources = Resources {
        nano_cpus: host.nano_cpus.unwrap_or(0),
        cpu_shares: host.cpu_shares.unwrap_or(0),
        cpu_period: host.cpu_period.unwrap_or(0),
        cpu_quota: host.cpu_quota.unwrap_or(0),
        cpu_realtime_period: host.cpu_realtime_period.unwrap_or(0),
        cpu_realtime_runtime: host.cpu_realtime_runtime.unwrap_or(0),
        cpuset_cpus: host.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: host.cpuset_mems.clone().unwrap_or_default(),
        memory_reservation: host.memory_reservation.unwrap_or(0),
        memory_swap: host.memory_swap.unwrap_or(0),
        // null, 0 and -1 all mean no limit.
        pids_limit: host.pids_limit.filter(|p| *p > 0).unwrap_or(0),
        blkio_weight: host.blkio_weight.map_or(0, i64::from),
    };
    let settings = Settings {
        entrypoint: config.entrypoint,
        user: config.user.filter(|u| !u.is_empty()),
        workdir: config.working_dir.filter(|w| !w.is_empty()),
        labels: labels
            .iter()
            .filter(|(k, _)| !k.starts_with(RESERVED_LABEL_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ulimits: host
            .ulimits
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|u| {
                let limit = Ulimit {
                    soft: u.soft.unwrap_or(0),
                    hard: u.hard.unwrap_or(0),
                };
                (u.name.unwrap_or_default(), limit)
            })
            .collect(),
        cap_add: capabilities(host.cap_add.clone()),
        cap_drop: capabilities(host.cap_drop.clone()),
        privileged: host.privileged.unwrap_or(false),
        devices: host
            .devices
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                let on_host = d.path_on_host.unwrap_or_default();
                let in_container = d.path_in_container.unwrap_or_else(|| on_host.clone());
                let permissions = d.cgroup_permissions.unwrap_or_else(|| "rwm".to_string());
                Device::reported(&on_host, &in_container, &permissions)
            })
            .collect(),
        extra_hosts: host
            .extra_hosts
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|h| ExtraHost::canonical(h))
            .collect(),
        tmpfs: host
            .tmpfs
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(path, options)| {
                let options = Tmpfs::canonical_options(&options);
                (path, options)
            })
            .collect(),
        shm_size: host
            .shm_size
            .filter(|b| *b > 0)
            .and_then(|b| u64::try_from(b).ok()),
    };
    let task_config = TaskConfig {
        image: config.image.unwrap_or_default(),
        command: config.cmd,
        env,
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
        resources,
        network: host.network_mode.unwrap_or_default(),
        init: host.init.unwrap_or(false),
        restart,
        // Docker's own default when none was set.
        stop_timeout: Duration::from_secs(
            config
                .stop_timeout
                .and_then(|t| u64::try_from(t).ok())
                .unwrap_or(10),
        ),
        log_driver: log.typ.unwrap_or_default(),
        log_options: log.config.unwrap_or_default().into_iter().collect(),
        health,
        settings,
    };
    let health_state = state.health.clone();
    let last_check = health_state
        .as_ref()
        .and_then(|h| h.log.as_ref())
        .and_then(|log| log.last().cloned());
    let run_state = state
        .status
        .map(|s| s.to_string())
        .and_then(|s| s.parse::<RunState>().ok())
        .unwrap_or(RunState::Dead);
    let finished_at = state.finished_at.as_deref().and_then(time::parse);
    let runs = Runs {
        state: run_state,
        // The engine resets the code when a container starts: it is the
        // last run's only for one that ran and is not running now.
        exit_code: match run_state {
            RunState::Running | RunState::Paused | RunState::Created => None,
            _ => finished_at.and(state.exit_code),
        },
        oom_killed: state.oom_killed.unwrap_or(false),
        restarts: inspect.restart_count.unwrap_or(0),
        started_at: state.started_at.as_deref().and_then(time::parse),
        finished_at,
        health: Health::from_engine(
            &health_state
                .as_ref()
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        ),
        health_output: last_check
            .as_ref()
            .and_then(|l| l.output.clone())
            .map(|o| crate::short_message(&o))
            .unwrap_or_default(),
        health_at: last_check
            .and_then(|l| l.end)
            .as_deref()
            .and_then(time::parse),
    };
    ObservedContainer {
        id: inspect.id.unwrap_or_default(),
        name: inspect
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        labels,
        runs,
        error: state.error.unwrap_or_default(),
        created: inspect.created.as_deref().and_then(time::parse),
        image_id: inspect.image.unwrap_or_default(),
        config: task_config,
        image_env: BTreeMap::new(),
        image_cmd: None,
        image_defaults: ImageDefaults::default(),
    }
}

/// Capabilities as the engine reports them, in drover's spelling and order.
fn capabilities(reported: Option<Vec<String>>) -> Vec<String> {
    let mut caps: Vec<String> = reported
        .unwrap_or_default()
        .iter()
        .map(|c| Capability::canonical(c))
        .collect();
    caps.sort();
    caps
}
