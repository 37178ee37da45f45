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

use crate::{CreateOptions, Foreign, HandRun};

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
        // A container created without a network mode (by hand) reports
        // `default`, which on Linux is the bridge.
        network: match host.network_mode.unwrap_or_default() {
            mode if mode == "default" => "bridge".to_string(),
            mode => mode,
        },
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
    let mut runs = Runs {
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
    // A health check may print what it was given: never a secret value.
    runs.health_output = task_config.mask_secrets(&runs.health_output);
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
        adopted: None,
    }
}

/// The settings of a container, from its raw `docker inspect`, that no job
/// key expresses: a container made from a job file would run without
/// them. Read from the JSON rather than bollard's model, so a field the
/// model lacks is still seen.
pub(crate) fn foreign_settings(inspect: &serde_json::Value) -> Vec<Foreign> {
    use serde_json::Value;
    let host = &inspect["HostConfig"];
    let config = &inspect["Config"];
    let mut found = Vec::new();
    let mut add = |setting: String, why: &str| {
        found.push(Foreign {
            setting,
            why: why.to_string(),
        })
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| match i.as_str() {
                        Some(s) => s.to_string(),
                        None => i.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let set = |v: &Value| match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    };

    let network = text(&host["NetworkMode"]);
    match network.as_str() {
        "" | "default" | "bridge" | "host" | "none" => {}
        mode if mode.starts_with("container:") => add(
            format!(
                "--network container:{}",
                mode.trim_start_matches("container:")
                    .get(..12)
                    .unwrap_or(mode.trim_start_matches("container:"))
            ),
            "it shares another container's network: a job's network is host, bridge or none",
        ),
        mode => add(
            format!("--network {mode}"),
            "a user-defined network: a job's network is host, bridge or none",
        ),
    }
    let mode_network = match network.as_str() {
        "" | "default" => "bridge",
        other => other,
    };
    if let Some(networks) = inspect["NetworkSettings"]["Networks"].as_object() {
        for name in networks.keys().filter(|n| n.as_str() != mode_network) {
            add(
                format!("--network {name}"),
                "it is connected to another network too: a job has one network",
            );
        }
    }
    if let Some(bindings) = host["PortBindings"].as_object() {
        for (port, to) in bindings {
            for binding in to.as_array().into_iter().flatten() {
                let ip = text(&binding["HostIp"]);
                let host_port = text(&binding["HostPort"]);
                let at = if ip.is_empty() {
                    host_port
                } else {
                    format!("{ip}:{host_port}")
                };
                add(
                    format!("-p {at}:{port}"),
                    "it publishes a port: jobs bind host ports directly (network = \"host\"); no job key maps one",
                );
            }
        }
    }
    if host["PublishAllPorts"].as_bool() == Some(true) {
        add(
            "-P".to_string(),
            "it publishes its ports: no job key maps one",
        );
    }
    for from in list(&host["VolumesFrom"]) {
        add(
            format!("--volumes-from {from}"),
            "it mounts another container's volumes: jobs bind host directories only",
        );
    }
    for link in list(&host["Links"]) {
        add(
            format!("--link {link}"),
            "legacy container links: no job key makes one",
        );
    }
    for bind in list(&host["Binds"]) {
        if bind.parse::<drover_spec::Volume>().is_ok() {
            continue;
        }
        let source = bind.split(':').next().unwrap_or_default();
        let why = if source.starts_with('/') {
            "a bind with options a job's volume cannot carry: jobs take HOST:CONTAINER or HOST:CONTAINER:ro"
        } else {
            "a named volume: jobs bind host directories (HOST:CONTAINER) only"
        };
        add(format!("-v {bind}"), why);
    }
    for mount in host["Mounts"].as_array().into_iter().flatten() {
        let kind = text(&mount["Type"]);
        let source = text(&mount["Source"]);
        let target = text(&mount["Target"]);
        let host_file = kind == "bind"
            && mount["ReadOnly"].as_bool() == Some(true)
            && source == target
            && !set(&mount["BindOptions"]);
        if !host_file {
            add(
                format!("--mount type={kind},source={source},target={target}"),
                "a mount no job key makes: jobs bind host directories as volumes, and host files read-only at the same path",
            );
        }
    }
    for (key, flag, why) in [
        ("Dns", "--dns", "no job key sets DNS servers"),
        ("DnsOptions", "--dns-option", "no job key sets DNS options"),
        (
            "DnsSearch",
            "--dns-search",
            "no job key sets DNS search domains",
        ),
        (
            "SecurityOpt",
            "--security-opt",
            "no job key sets security options",
        ),
        ("GroupAdd", "--group-add", "no job key adds groups"),
        (
            "DeviceCgroupRules",
            "--device-cgroup-rule",
            "no job key sets device cgroup rules",
        ),
    ] {
        for value in list(&host[key]) {
            add(format!("{flag} {value}"), why);
        }
    }
    if let Some(sysctls) = host["Sysctls"].as_object() {
        for (name, value) in sysctls {
            add(
                format!("--sysctl {name}={}", text(value)),
                "no job key sets kernel parameters",
            );
        }
    }
    if set(&host["DeviceRequests"]) {
        add(
            "--gpus".to_string(),
            "device requests (GPUs): no job key makes one",
        );
    }
    for (key, flag, defaults) in [
        ("PidMode", "--pid", &["", "private"][..]),
        ("IpcMode", "--ipc", &["", "private", "shareable"][..]),
        ("UTSMode", "--uts", &[""][..]),
        ("UsernsMode", "--userns", &[""][..]),
        ("Cgroup", "--cgroup", &[""][..]),
        ("CgroupParent", "--cgroup-parent", &[""][..]),
        ("Runtime", "--runtime", &["", "runc"][..]),
        ("Isolation", "--isolation", &["", "default"][..]),
    ] {
        let value = text(&host[key]);
        if !defaults.contains(&value.as_str()) {
            add(
                format!("{flag} {value}"),
                "no job key sets it: a task gets the engine's default",
            );
        }
    }
    for (key, flag) in [
        ("CpuShares", "--cpu-shares"),
        ("CpuPeriod", "--cpu-period"),
        ("CpuQuota", "--cpu-quota"),
        ("CpuRealtimePeriod", "--cpu-rt-period"),
        ("CpuRealtimeRuntime", "--cpu-rt-runtime"),
        ("CpusetCpus", "--cpuset-cpus"),
        ("CpusetMems", "--cpuset-mems"),
        ("MemoryReservation", "--memory-reservation"),
        ("KernelMemory", "--kernel-memory"),
        ("BlkioWeight", "--blkio-weight"),
        ("BlkioWeightDevice", "--blkio-weight-device"),
        ("BlkioDeviceReadBps", "--device-read-bps"),
        ("BlkioDeviceWriteBps", "--device-write-bps"),
        ("BlkioDeviceReadIOps", "--device-read-iops"),
        ("BlkioDeviceWriteIOps", "--device-write-iops"),
        ("OomScoreAdj", "--oom-score-adj"),
    ] {
        if set(&host[key]) {
            let value = match &host[key] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            add(
                format!("{flag} {value}"),
                "no job key sets it (memory and cpus are the limits jobs take)",
            );
        }
    }
    // null, 0 and -1 all mean no limit.
    if host["PidsLimit"].as_i64().is_some_and(|p| p > 0) {
        add(
            format!("--pids-limit {}", host["PidsLimit"]),
            "no job key limits processes",
        );
    }
    if let Some(swappiness) = host["MemorySwappiness"].as_i64().filter(|s| *s >= 0) {
        add(
            format!("--memory-swappiness {swappiness}"),
            "no job key sets swappiness",
        );
    }
    if host["OomKillDisable"].as_bool() == Some(true) {
        add(
            "--oom-kill-disable".to_string(),
            "no job key turns the memory killer off",
        );
    }
    if host["ReadonlyRootfs"].as_bool() == Some(true) {
        add(
            "--read-only".to_string(),
            "no job key makes the root filesystem read-only",
        );
    }
    if host["AutoRemove"].as_bool() == Some(true) {
        add(
            "--rm".to_string(),
            "it is removed when it stops: a task's container stays for its restart policy and for rollback",
        );
    }
    if config["Tty"].as_bool() == Some(true) {
        add(
            "-t".to_string(),
            "it runs on a terminal: a task runs without one (its output would change)",
        );
    }
    if config["OpenStdin"].as_bool() == Some(true) {
        add(
            "-i".to_string(),
            "its standard input is kept open: a task's is closed",
        );
    }
    if set(&config["Domainname"]) {
        add(
            format!("--domainname {}", text(&config["Domainname"])),
            "no job key sets the domain name",
        );
    }
    if set(&config["MacAddress"]) {
        add(
            format!("--mac-address {}", text(&config["MacAddress"])),
            "no job key sets a MAC address",
        );
    }
    // The engine names a container's host after its ID, unless it shares the host's.
    let hostname = text(&config["Hostname"]);
    let id = text(&inspect["Id"]);
    if mode_network != "host"
        && !mode_network.starts_with("container:")
        && !hostname.is_empty()
        && !id.starts_with(&hostname)
    {
        add(
            format!("--hostname {hostname}"),
            "no job key sets the host name",
        );
    }
    if config["Healthcheck"]["Test"]
        .as_array()
        .and_then(|t| t.first())
        .and_then(Value::as_str)
        == Some("NONE")
    {
        add(
            "--no-healthcheck".to_string(),
            "no job key turns its image's health check off",
        );
    }
    found
}

/// What `drover adopt` reads of a container: [`observed`] and the rest,
/// from its raw `docker inspect`.
pub(crate) fn hand_run(inspect: serde_json::Value) -> Result<HandRun, String> {
    let foreign = foreign_settings(&inspect);
    let anonymous_volumes = inspect["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Type"].as_str() == Some("volume"))
        .filter(|m| {
            m["Name"]
                .as_str()
                .is_some_and(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .filter_map(|m| m["Destination"].as_str().map(str::to_string))
        .collect();
    let stop_signal = inspect["Config"]["StopSignal"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let parsed: ContainerInspectResponse = serde_json::from_value(inspect)
        .map_err(|e| format!("the engine's answer is not what a Docker engine sends: {e}"))?;
    Ok(HandRun {
        container: observed(parsed),
        foreign,
        anonymous_volumes,
        stop_signal,
    })
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::foreign_settings;

    fn settings(inspect: serde_json::Value) -> Vec<String> {
        foreign_settings(&inspect)
            .into_iter()
            .map(|f| f.setting)
            .collect()
    }

    const ID: &str = "4036e6bb89b6a872b3c286e69931d32d193b36ee29894a123732818aa07ca6d8";

    #[test]
    fn what_docker_run_leaves_by_default_is_nothing_foreign() {
        let inspect = json!({
            "Id": ID,
            "Config": {"Hostname": "4036e6bb89b6", "Tty": false, "OpenStdin": false, "Domainname": ""},
            "HostConfig": {
                "NetworkMode": "default", "PortBindings": {}, "VolumesFrom": null,
                "Links": null, "Dns": [], "DnsOptions": [], "DnsSearch": [], "IpcMode": "private",
                "PidMode": "", "Runtime": "runc", "Isolation": "", "CpuShares": 0, "PidsLimit": null,
                "MemorySwappiness": null, "OomKillDisable": false, "SecurityOpt": null,
                "Binds": ["/srv/data:/data", "/etc/ssl:/etc/ssl:ro"],
                "Mounts": [{"Type": "bind", "Source": "/etc/localtime", "Target": "/etc/localtime", "ReadOnly": true}]
            },
            "NetworkSettings": {"Networks": {"bridge": {}}}
        });
        assert_eq!(settings(inspect), Vec::<String>::new());
    }

    #[test]
    fn settings_beyond_the_job_keys_are_named_as_docker_run_takes_them() {
        let inspect = json!({
            "Id": ID,
            "Config": {"Hostname": "myhost", "Tty": true, "OpenStdin": true,
                       "Healthcheck": {"Test": ["NONE"]}},
            "HostConfig": {
                "NetworkMode": format!("container:{ID}"),
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                "VolumesFrom": ["data"], "Links": ["/db:/web/db"],
                "Binds": ["pgdata:/var/lib/postgresql/data", "/srv:/srv:z"],
                "Mounts": [{"Type": "volume", "Source": "cache", "Target": "/cache"}],
                "Dns": ["1.1.1.1"], "SecurityOpt": ["seccomp=unconfined"], "Sysctls": {"net.core.somaxconn": "1024"},
                "PidMode": "host", "CpuShares": 512, "PidsLimit": 100, "ReadonlyRootfs": true, "AutoRemove": true
            }
        });
        assert_eq!(
            settings(inspect),
            [
                "--network container:4036e6bb89b6",
                "-p 8080:80/tcp",
                "--volumes-from data",
                "--link /db:/web/db",
                "-v pgdata:/var/lib/postgresql/data",
                "-v /srv:/srv:z",
                "--mount type=volume,source=cache,target=/cache",
                "--dns 1.1.1.1",
                "--security-opt seccomp=unconfined",
                "--sysctl net.core.somaxconn=1024",
                "--pid host",
                "--cpu-shares 512",
                "--pids-limit 100",
                "--read-only",
                "--rm",
                "-t",
                "-i",
                "--no-healthcheck",
            ]
        );
    }

    #[test]
    fn a_host_name_of_its_own_and_another_network() {
        let inspect = json!({
            "Id": ID,
            "Config": {"Hostname": "web01"},
            "HostConfig": {"NetworkMode": "backend"},
            "NetworkSettings": {"Networks": {"backend": {}, "frontend": {}}}
        });
        assert_eq!(
            settings(inspect),
            [
                "--network backend",
                "--network frontend",
                "--hostname web01"
            ]
        );
        // On the host's network, the host name is the host's.
        let host =
            json!({"Id": ID, "Config": {"Hostname": "vm"}, "HostConfig": {"NetworkMode": "host"}});
        assert_eq!(settings(host), Vec::<String>::new());
    }
}
