//! The JSON a Docker engine 20.10 (API 1.41) answers with, field for field
//! as captured from a real one (`docker inspect`, `/containers/json`,
//! `/images/json`, one-shot stats, `/version`, `/info`, events), filled
//! from the simulated state.

use std::time::SystemTime;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::clock::{self, rfc3339, rfc3339_or_zero, unix_secs};
use super::engine::{Container, Engine, Image, Sample, State, MEM_TOTAL, NCPU};

pub const ENGINE_VERSION: &str = "20.10.24+dfsg1";
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.12";
/// The daemon's default log driver, for a container that names none.
const DEFAULT_LOG_DRIVER: &str = "json-file";

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `HostConfig` as the engine stores it: the request over the daemon's
/// defaults, normalized as the daemon does.
pub fn host_config(request: &Value) -> Map<String, Value> {
    let mut hc = object(json!({
        "Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": "default", "PortBindings": null,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null, "CapAdd": null, "CapDrop": null,
        "CgroupnsMode": "host", "Dns": null, "DnsOptions": null, "DnsSearch": null, "ExtraHosts": null,
        "GroupAdd": null, "IpcMode": "private", "Cgroup": "", "Links": null, "OomScoreAdj": 0, "PidMode": "",
        "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null,
        "UTSMode": "", "UsernsMode": "", "ShmSize": 67_108_864, "Runtime": "runc", "ConsoleSize": [0, 0],
        "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
        "BlkioWeightDevice": null, "BlkioDeviceReadBps": null, "BlkioDeviceWriteBps": null,
        "BlkioDeviceReadIOps": null, "BlkioDeviceWriteIOps": null, "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": null,
        "DeviceCgroupRules": null, "DeviceRequests": null, "KernelMemory": 0, "KernelMemoryTCP": 0,
        "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": null, "OomKillDisable": false,
        "PidsLimit": null, "Ulimits": null, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
        "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    }));
    if let Some(request) = request.as_object() {
        for (key, value) in request {
            if !value.is_null() {
                hc.insert(key.clone(), value.clone());
            }
        }
    }
    let text = |hc: &Map<String, Value>, key: &str| {
        hc.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    for (key, default) in [
        ("NetworkMode", "default"),
        ("CgroupnsMode", "host"),
        ("IpcMode", "private"),
        ("Runtime", "runc"),
    ] {
        if text(&hc, key).is_empty() {
            hc.insert(key.to_string(), json!(default));
        }
    }
    let mut log = object(hc.get("LogConfig").cloned().unwrap_or_default());
    if log
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        log.insert("Type".to_string(), json!(DEFAULT_LOG_DRIVER));
        log.insert("Config".to_string(), json!({}));
    }
    if log.get("Config").is_none_or(Value::is_null) {
        log.insert("Config".to_string(), json!({}));
    }
    hc.insert("LogConfig".to_string(), Value::Object(log));
    let mut restart = object(hc.get("RestartPolicy").cloned().unwrap_or_default());
    if restart
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        restart.insert("Name".to_string(), json!("no"));
    }
    if restart.get("MaximumRetryCount").is_none_or(Value::is_null) {
        restart.insert("MaximumRetryCount".to_string(), json!(0));
    }
    hc.insert("RestartPolicy".to_string(), Value::Object(restart));
    let number =
        |hc: &Map<String, Value>, key: &str| hc.get(key).and_then(Value::as_i64).unwrap_or(0);
    if number(&hc, "ShmSize") <= 0 {
        hc.insert("ShmSize".to_string(), json!(67_108_864));
    }
    let memory = number(&hc, "Memory");
    if memory > 0 && number(&hc, "MemorySwap") == 0 {
        hc.insert("MemorySwap".to_string(), json!(memory.saturating_mul(2)));
    }
    if number(&hc, "PidsLimit") <= 0 {
        hc.insert("PidsLimit".to_string(), Value::Null);
    }
    if hc.get("Privileged").and_then(Value::as_bool) == Some(true) {
        hc.insert("MaskedPaths".to_string(), Value::Null);
        hc.insert("ReadonlyPaths".to_string(), Value::Null);
    }
    hc
}

/// `Config` as the engine stores it: the request's, with the image's env,
/// command, labels and health check where the request has none.
pub fn container_config(request: &Value, image: &Image, hostname: &str) -> Map<String, Value> {
    let mut config = object(json!({
        "Hostname": hostname, "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": null,
        "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "", "Entrypoint": null, "OnBuild": null,
        "Labels": {},
    }));
    if let Some(request) = request.as_object() {
        for (key, value) in request {
            if !value.is_null() && key != "HostConfig" && key != "NetworkingConfig" {
                config.insert(key.clone(), value.clone());
            }
        }
    }
    if config
        .get("Hostname")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        config.insert("Hostname".to_string(), json!(hostname));
    }
    let mut env = strings(config.get("Env"));
    for line in &image.env {
        let key = line.split('=').next().unwrap_or_default();
        if !env.iter().any(|e| e.split('=').next() == Some(key)) {
            env.push(line.clone());
        }
    }
    config.insert("Env".to_string(), json!(env));
    let empty = |config: &Map<String, Value>, key: &str| strings(config.get(key)).is_empty();
    if empty(&config, "Cmd") && empty(&config, "Entrypoint") {
        config.insert("Cmd".to_string(), json!(image.cmd));
    }
    let mut labels = object(config.get("Labels").cloned().unwrap_or_default());
    for (k, v) in &image.labels {
        labels.entry(k.clone()).or_insert_with(|| json!(v));
    }
    config.insert("Labels".to_string(), Value::Object(labels));
    if let Some(Value::Object(health)) = config.get_mut("Healthcheck") {
        // Zero durations and retries are left out, as Go's omitempty does.
        health
            .retain(|key, value| key == "Test" || !(value.is_null() || value.as_i64() == Some(0)));
    }
    config
}

/// Names of the volumes the container's binds and mounts name.
pub fn named_volumes(hc: &Map<String, Value>) -> Vec<String> {
    let mut names = Vec::new();
    for bind in strings(hc.get("Binds")) {
        let source = bind.split(':').next().unwrap_or_default();
        if !source.is_empty() && !source.starts_with('/') {
            names.push(source.to_string());
        }
    }
    for mount in hc
        .get("Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if mount["Type"] == "volume" {
            if let Some(name) = mount["Source"].as_str().filter(|n| !n.is_empty()) {
                names.push(name.to_string());
            }
        }
    }
    names
}

fn volume_mount(name: &str, destination: &str, rw: bool) -> Value {
    json!({
        "Type": "volume", "Name": name, "Source": format!("/var/lib/docker/volumes/{name}/_data"),
        "Destination": destination, "Driver": "local", "Mode": "z", "RW": rw, "Propagation": "",
    })
}

/// The top-level `Mounts` of inspect (and of the list).
pub fn mount_points(hc: &Map<String, Value>) -> Vec<Value> {
    let mut out = Vec::new();
    for bind in strings(hc.get("Binds")) {
        let mut parts = bind.splitn(3, ':');
        let source = parts.next().unwrap_or_default();
        let destination = parts.next().unwrap_or_default();
        let mode = parts.next().unwrap_or_default();
        let rw = !mode.split(',').any(|m| m == "ro");
        if source.starts_with('/') {
            out.push(json!({
                "Type": "bind", "Source": source, "Destination": destination, "Mode": mode,
                "RW": rw, "Propagation": "rprivate",
            }));
        } else {
            out.push(volume_mount(source, destination, rw));
        }
    }
    for mount in hc
        .get("Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let source = mount["Source"].as_str().unwrap_or_default();
        let target = mount["Target"].as_str().unwrap_or_default();
        let rw = mount["ReadOnly"].as_bool() != Some(true);
        out.push(match mount["Type"].as_str().unwrap_or("volume") {
            "bind" => json!({
                "Type": "bind", "Source": source, "Destination": target, "Mode": "", "RW": rw,
                "Propagation": "rprivate",
            }),
            "volume" => volume_mount(source, target, rw),
            kind => json!({
                "Type": kind, "Source": source, "Destination": target, "Mode": "", "RW": rw,
                "Propagation": "",
            }),
        });
    }
    out
}

fn network_name(mode: &str) -> &str {
    match mode {
        "default" | "bridge" | "" => "bridge",
        other => other,
    }
}

/// A stable number from an ID, for addresses.
fn octet(id: &str) -> u8 {
    u8::from_str_radix(id.get(..2).unwrap_or("00"), 16).unwrap_or(0) % 250 + 2
}

fn endpoint(c: &Container, engine: &Engine) -> (String, Value) {
    let mode = c
        .host_config
        .get("NetworkMode")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = network_name(mode).to_string();
    let running = c.running && !c.restarting;
    let network_id = engine
        .network_ids
        .get(name.as_str())
        .cloned()
        .unwrap_or_else(|| c.id.chars().rev().collect());
    let endpoint_id = if running {
        format!("{}{}", &c.id[32..], &c.id[..32])
    } else {
        String::new()
    };
    let bridge = name == "bridge" && running;
    let n = octet(&c.id);
    (
        name,
        json!({
            "IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": network_id,
            "EndpointID": endpoint_id,
            "Gateway": if bridge { "172.17.0.1" } else { "" },
            "IPAddress": if bridge { format!("172.17.0.{n}") } else { String::new() },
            "IPPrefixLen": if bridge { 16 } else { 0 },
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": if bridge { format!("02:42:ac:11:00:{n:02x}") } else { String::new() },
            "DriverOpts": null,
        }),
    )
}

fn network_settings(c: &Container, engine: &Engine) -> Value {
    let (name, ep) = endpoint(c, engine);
    let running = c.running && !c.restarting;
    let (sandbox_id, sandbox_key) = match (running, name.as_str()) {
        (false, _) => (String::new(), String::new()),
        (true, "host") => (
            c.id.chars().rev().collect(),
            "/var/run/docker/netns/default".to_string(),
        ),
        (true, _) => {
            let sandbox: String = c.id.chars().rev().collect();
            let key = format!("/var/run/docker/netns/{}", &sandbox[..12]);
            (sandbox, key)
        }
    };
    let bridge = name == "bridge";
    let pick = |key: &str, empty: Value| if bridge { ep[key].clone() } else { empty };
    json!({
        "Bridge": "", "SandboxID": sandbox_id, "HairpinMode": false, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": sandbox_key,
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": pick("EndpointID", json!("")), "Gateway": pick("Gateway", json!("")),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": pick("IPAddress", json!("")),
        "IPPrefixLen": pick("IPPrefixLen", json!(0)), "IPv6Gateway": "",
        "MacAddress": pick("MacAddress", json!("")),
        "Networks": {name: ep},
    })
}

fn state(c: &Container) -> Value {
    let mut state = json!({
        "Status": c.state_string(), "Running": c.running, "Paused": c.paused,
        "Restarting": c.restarting, "OOMKilled": c.oom_killed, "Dead": c.dead, "Pid": c.pid,
        "ExitCode": c.exit_code, "Error": c.error,
        "StartedAt": rfc3339_or_zero(c.started_at), "FinishedAt": rfc3339_or_zero(c.finished_at),
    });
    if let Some(health) = &c.health {
        let log: Vec<Value> = health
            .log
            .iter()
            .map(|p| {
                json!({"Start": rfc3339(p.start), "End": rfc3339(p.end), "ExitCode": p.exit_code, "Output": p.output})
            })
            .collect();
        state["Health"] = json!({
            "Status": health.status, "FailingStreak": health.failing_streak,
            "Log": if log.is_empty() { Value::Null } else { json!(log) },
        });
    }
    state
}

fn graph_driver(layer: &str) -> Value {
    let dir = format!("/var/lib/docker/overlay2/{layer}");
    json!({
        "Data": {
            "LowerDir": format!("{dir}-init/diff"), "MergedDir": format!("{dir}/merged"),
            "UpperDir": format!("{dir}/diff"), "WorkDir": format!("{dir}/work"),
        },
        "Name": "overlay2",
    })
}

/// The parts of `GET /containers/{id}/json` that never change after the
/// create, serialized once (`"Id":…,"Config":{…},…`, without braces): most
/// of the answer, and the costly part to write.
pub fn inspect_fixed(c: &Container) -> Bytes {
    let id = &c.id;
    let log_driver = c.host_config["LogConfig"]["Type"]
        .as_str()
        .unwrap_or_default();
    let fixed = json!({
        "Id": id, "Created": rfc3339(c.created), "Path": c.path, "Args": c.args, "Image": c.image_id,
        "ResolvConfPath": format!("/var/lib/docker/containers/{id}/resolv.conf"),
        "HostnamePath": format!("/var/lib/docker/containers/{id}/hostname"),
        "HostsPath": format!("/var/lib/docker/containers/{id}/hosts"),
        "LogPath": if log_driver == "json-file" { format!("/var/lib/docker/containers/{id}/{id}-json.log") } else { String::new() },
        "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "HostConfig": c.host_config, "GraphDriver": graph_driver(id), "Mounts": mount_points(&c.host_config),
        "Config": c.config,
    });
    let bytes = serde_json::to_vec(&fixed).unwrap_or_default();
    Bytes::copy_from_slice(
        bytes
            .get(1..bytes.len().saturating_sub(1))
            .unwrap_or_default(),
    )
}

/// `GET /containers/{id}/json`: what changes (state, name, restarts, execs,
/// network) written now, around [`inspect_fixed`].
pub fn inspect(c: &Container, engine: &Engine, st: &State) -> Vec<u8> {
    let execs: Vec<&str> = st
        .execs
        .values()
        .filter(|e| e.container == c.id && e.running)
        .map(|e| e.id.as_str())
        .collect();
    let changing = json!({
        "State": state(c), "Name": format!("/{}", c.name), "RestartCount": c.restart_count,
        "ExecIDs": if execs.is_empty() { Value::Null } else { json!(execs) },
        "NetworkSettings": network_settings(c, engine),
    });
    let mut out = serde_json::to_vec(&changing).unwrap_or_default();
    out.pop();
    out.push(b',');
    out.extend_from_slice(&c.fixed_json);
    out.push(b'}');
    out
}

/// `docker ps`'s COMMAND: arguments with spaces quoted.
fn command(c: &Container) -> String {
    if c.args.is_empty() {
        return c.path.clone();
    }
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect();
    format!("{} {}", c.path, args.join(" "))
}

/// One element of `GET /containers/json`.
pub fn list_entry(c: &Container, engine: &Engine, now: SystemTime) -> Value {
    let (name, ep) = endpoint(c, engine);
    json!({
        "Id": c.id, "Names": [format!("/{}", c.name)],
        "Image": c.config.get("Image").cloned().unwrap_or_default(), "ImageID": c.image_id,
        "Command": command(c), "Created": unix_secs(c.created), "Ports": [], "Labels": c.labels,
        "State": c.state_string(), "Status": c.status_string(now),
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode").cloned().unwrap_or_default()},
        "NetworkSettings": {"Networks": {name: ep}}, "Mounts": mount_points(&c.host_config),
    })
}

fn labels_or_null(image: &Image) -> Value {
    if image.labels.is_empty() {
        Value::Null
    } else {
        json!(image.labels)
    }
}

/// One element of `GET /images/json` (and of `/system/df`'s images).
pub fn image_summary(image: &Image, containers: i64) -> Value {
    let dangling = image.repo_tags.is_empty();
    json!({
        "Containers": containers, "Created": unix_secs(image.created), "Id": image.id,
        "Labels": labels_or_null(image), "ParentId": "",
        "RepoDigests": if image.repo_digests.is_empty() { if dangling { json!(["<none>@<none>"]) } else { Value::Null } } else { json!(image.repo_digests) },
        "RepoTags": if dangling { json!(["<none>:<none>"]) } else { json!(image.repo_tags) },
        "SharedSize": -1, "Size": image.size, "VirtualSize": image.size,
    })
}

fn empty_config(env: Value, cmd: Value, labels: Value) -> Value {
    json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": env, "Cmd": cmd,
        "Image": "", "Volumes": null, "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": labels,
    })
}

/// `GET /images/{name}/json`.
pub fn image_inspect(image: &Image) -> Value {
    let hex = image.id.trim_start_matches("sha256:");
    let env = if image.env.is_empty() {
        Value::Null
    } else {
        json!(image.env)
    };
    json!({
        "Id": image.id, "RepoTags": image.repo_tags, "RepoDigests": image.repo_digests, "Parent": "",
        "Comment": image.comment, "Created": rfc3339(image.created), "Container": "",
        "ContainerConfig": empty_config(Value::Null, Value::Null, Value::Null),
        "DockerVersion": ENGINE_VERSION, "Author": "",
        "Config": empty_config(env, json!(image.cmd), labels_or_null(image)),
        "Architecture": "amd64", "Os": "linux", "Size": image.size, "VirtualSize": image.size,
        "GraphDriver": graph_driver(hex),
        "RootFS": {"Type": "layers", "Layers": [format!("sha256:{}", hex.chars().rev().collect::<String>())]},
        "Metadata": {"LastTagTime": rfc3339(image.created)},
    })
}

fn cpu_stats(sample: Option<&Sample>) -> Value {
    let throttling = json!({"periods": 0, "throttled_periods": 0, "throttled_time": 0});
    match sample {
        Some(s) if s.running => {
            let per_cpu = s.cpu_total / NCPU;
            json!({
                "cpu_usage": {
                    "total_usage": s.cpu_total,
                    "percpu_usage": [per_cpu, s.cpu_total - per_cpu],
                    "usage_in_kernelmode": s.cpu_total / 3 / 10_000_000 * 10_000_000,
                    "usage_in_usermode": s.cpu_total * 2 / 3 / 10_000_000 * 10_000_000,
                },
                "system_cpu_usage": s.system, "online_cpus": NCPU, "throttling_data": throttling,
            })
        }
        _ => json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": throttling,
        }),
    }
}

/// One stats answer: `sample` at the collector's tick, `pre` the one before
/// (none for a one-shot read).
pub fn stats(id: &str, sample: &Sample, pre: Option<&Sample>) -> Value {
    let blkio = json!({
        "io_service_bytes_recursive": [], "io_serviced_recursive": [], "io_queue_recursive": [],
        "io_service_time_recursive": [], "io_wait_time_recursive": [], "io_merged_recursive": [],
        "io_time_recursive": [], "sectors_recursive": [],
    });
    let read = |s: Option<&Sample>| match s {
        Some(s) if s.running => rfc3339(s.read),
        _ => clock::ZERO_TIME.to_string(),
    };
    if !sample.running {
        return json!({
            "read": clock::ZERO_TIME, "preread": clock::ZERO_TIME, "pids_stats": {},
            "blkio_stats": {
                "io_service_bytes_recursive": null, "io_serviced_recursive": null, "io_queue_recursive": null,
                "io_service_time_recursive": null, "io_wait_time_recursive": null, "io_merged_recursive": null,
                "io_time_recursive": null, "sectors_recursive": null,
            },
            "num_procs": 0, "storage_stats": {}, "cpu_stats": cpu_stats(None), "precpu_stats": cpu_stats(None),
            "memory_stats": {}, "name": format!("/{}", sample.name), "id": id,
        });
    }
    // As `docker stats` reads it: usage minus inactive file cache is the memory figure.
    let active_file = sample.memory / 16;
    let inactive_file = sample.memory / 4;
    let rss = sample.memory - active_file;
    let cache = active_file + inactive_file;
    let usage = rss + cache;
    let limit = 9_223_372_036_854_771_712u64;
    let mut memory = serde_json::Map::new();
    for (key, value) in [
        ("active_anon", rss / 2),
        ("active_file", active_file),
        ("cache", cache),
        ("dirty", 0),
        ("hierarchical_memory_limit", sample.limit.min(limit)),
        ("hierarchical_memsw_limit", limit),
        ("inactive_anon", rss - rss / 2),
        ("inactive_file", inactive_file),
        ("mapped_file", active_file / 2),
        ("pgfault", usage / 40),
        ("pgmajfault", 2),
        ("pgpgin", usage / 48),
        ("pgpgout", usage / 50),
        ("rss", rss),
        ("rss_huge", 0),
        ("unevictable", 0),
        ("writeback", 0),
    ] {
        memory.insert(key.to_string(), json!(value));
        memory.insert(format!("total_{key}"), json!(value));
    }
    memory.remove("total_hierarchical_memory_limit");
    memory.remove("total_hierarchical_memsw_limit");
    json!({
        "read": read(Some(sample)), "preread": read(pre), "pids_stats": {"current": sample.pids},
        "blkio_stats": blkio, "num_procs": 0, "storage_stats": {},
        "cpu_stats": cpu_stats(Some(sample)), "precpu_stats": cpu_stats(pre),
        "memory_stats": {"usage": usage, "max_usage": usage + usage / 5, "stats": memory, "limit": sample.limit},
        "name": format!("/{}", sample.name), "id": id,
    })
}

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "Platform": {"Name": ""},
        "Components": [
            {"Name": "Engine", "Version": ENGINE_VERSION, "Details": {
                "ApiVersion": API_VERSION, "Arch": "amd64", "BuildTime": "2026-05-07T21:09:36.000000000+00:00",
                "Experimental": "false", "GitCommit": "5d6db84", "GoVersion": "go1.19.8",
                "KernelVersion": "6.18.44-engine-sim", "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}},
            {"Name": "containerd", "Version": "1.6.20~ds1", "Details": {"GitCommit": "1.6.20~ds1-1+deb12u3"}},
            {"Name": "runc", "Version": "1.1.5+ds1", "Details": {"GitCommit": "1.1.5+ds1-1+deb12u1"}},
            {"Name": "docker-init", "Version": "0.19.0", "Details": {"GitCommit": ""}},
        ],
        "Version": ENGINE_VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "5d6db84", "GoVersion": "go1.19.8", "Os": "linux", "Arch": "amd64",
        "KernelVersion": "6.18.44-engine-sim", "BuildTime": "2026-05-07T21:09:36.000000000+00:00",
    })
}

/// `GET /info`.
pub fn info(engine: &Engine, st: &State) -> Value {
    let count = |f: &dyn Fn(&Container) -> bool| st.containers.values().filter(|c| f(c)).count();
    let running = count(&|c| c.running && !c.paused);
    let paused = count(&|c| c.paused);
    json!({
        "ID": engine.id, "Containers": st.containers.len(), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": st.containers.len() - running - paused,
        "Images": st.images.len(), "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"], "Authorization": null,
            "Log": ["awslogs", "fluentd", "gcplogs", "gelf", "journald", "json-file", "local", "logentries", "splunk", "syslog"]},
        "MemoryLimit": true, "SwapLimit": true, "KernelMemory": true, "KernelMemoryTCP": true,
        "CpuCfsPeriod": true, "CpuCfsQuota": true, "CPUShares": true, "CPUSet": true, "PidsLimit": true,
        "IPv4Forwarding": true, "BridgeNfIptables": true, "BridgeNfIp6tables": true, "Debug": false,
        "NFd": 40 + st.containers.len(), "OomKillDisable": true, "NGoroutines": 60 + engine.event_listeners() * 4,
        "SystemTime": rfc3339(SystemTime::now()), "LoggingDriver": DEFAULT_LOG_DRIVER, "CgroupDriver": "cgroupfs",
        "CgroupVersion": "1", "NEventsListener": engine.event_listeners(), "KernelVersion": "6.18.44-engine-sim",
        "OperatingSystem": "Debian GNU/Linux 12 (bookworm)", "OSVersion": "12", "OSType": "linux",
        "Architecture": "x86_64", "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}}, "Mirrors": []},
        "NCPU": NCPU, "MemTotal": MEM_TOTAL, "GenericResources": null, "DockerRootDir": "/var/lib/docker",
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": engine.name, "Labels": [],
        "ExperimentalBuild": false, "ServerVersion": ENGINE_VERSION,
        "Runtimes": {"io.containerd.runc.v2": {"path": "runc"}, "io.containerd.runtime.v1.linux": {"path": "runc"}, "runc": {"path": "runc"}},
        "DefaultRuntime": "runc",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": false, "Isolation": "", "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": "1.6.20~ds1-1+deb12u3", "Expected": "1.6.20~ds1-1+deb12u3"},
        "RuncCommit": {"ID": "1.1.5+ds1-1+deb12u1", "Expected": "1.1.5+ds1-1+deb12u1"},
        "InitCommit": {"ID": "", "Expected": ""}, "SecurityOptions": ["name=seccomp,profile=default"], "Warnings": null,
    })
}

/// `GET /volumes/{name}`, and one element of the list.
pub fn volume(v: &super::engine::Volume) -> Value {
    json!({
        "CreatedAt": rfc3339(v.created), "Driver": "local", "Labels": null,
        "Mountpoint": format!("/var/lib/docker/volumes/{}/_data", v.name), "Name": v.name,
        "Options": null, "Scope": "local",
    })
}

/// `GET /volumes`.
pub fn volumes(st: &State) -> Value {
    let list: Vec<Value> = st.volumes.values().map(volume).collect();
    json!({"Volumes": list, "Warnings": null})
}

/// `GET /system/df` as API 1.41 answers it (lists, not totals).
pub fn disk_usage(engine: &Engine, st: &State) -> Value {
    let now = SystemTime::now();
    let images: Vec<Value> = st
        .images
        .values()
        .map(|i| {
            let mut summary = image_summary(i, st.containers_of_image(&i.id).len() as i64);
            summary["SharedSize"] = json!(0);
            summary
        })
        .collect();
    let containers: Vec<Value> = st
        .containers
        .values()
        .map(|c| {
            let mut entry = list_entry(c, engine, now);
            entry["SizeRootFs"] = json!(1_984_291);
            entry
        })
        .collect();
    let volumes: Vec<Value> = st
        .volumes
        .values()
        .map(|v| {
            let users = st
                .containers
                .values()
                .filter(|c| c.volumes.contains(&v.name))
                .count();
            let mut entry = volume(v);
            entry["UsageData"] = json!({"RefCount": users, "Size": 0});
            entry
        })
        .collect();
    let layers: i64 = st.images.values().map(|i| i.size).sum();
    json!({"LayersSize": layers, "Images": images, "Containers": containers, "Volumes": volumes, "BuildCache": []})
}

/// `GET /networks/{name}` of the three networks every engine has.
pub fn network(engine: &Engine, name: &str) -> Option<Value> {
    let (name, id) = engine
        .network_ids
        .iter()
        .find(|(n, id)| **n == name || (name.len() >= 12 && id.starts_with(name)))?;
    let driver = match *name {
        "bridge" => "bridge",
        "host" => "host",
        _ => "null",
    };
    let config = if *name == "bridge" {
        json!([{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}])
    } else {
        json!([])
    };
    Some(json!({
        "Name": name, "Id": id, "Created": rfc3339(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600)),
        "Scope": "local", "Driver": driver, "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": false, "Attachable": false, "Ingress": false, "ConfigFrom": {"Network": ""},
        "ConfigOnly": false, "Containers": {}, "Options": {}, "Labels": {},
    }))
}
