//! One job: its layers merged and every value checked.
//!
//! The rule throughout: what this accepts, the engine takes and reports back
//! the same way, so a second `diff` after `up` is empty. What the engine
//! would reinterpret is rejected here with its place.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::load::Loader;
use crate::merge::{pick, pick_in, tables, Layer, Picked};
use crate::model::*;
use crate::source::Loc;
use crate::units::{duration_at_most, size_at_most, MAX_DURATION, MAX_SIZE};
use crate::values::check_abs_path;

const DEFAULT_HOST_FILES: &[&str] = &["/etc/localtime"];
/// The engine refuses health durations below this (other than 0 where 0 means none).
const MIN_HEALTH_DURATION: Duration = Duration::from_millis(1);
/// The engine refuses less.
const MIN_MEMORY: u64 = 6 << 20;
/// 1024t: more than any machine has; above it the engine's own arithmetic overflows.
pub(crate) const MAX_MEMORY: u64 = 1 << 50;
/// A day: a stop that may take longer is a bug, not a policy.
const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Variables drover sets itself in every task.
pub const RESERVED_ENV_PREFIX: &str = "DROVER_";

impl Loader {
    pub(crate) fn job(
        &mut self,
        name: &str,
        file: usize,
        layers: &[Layer<'_>],
        profile: Option<String>,
        hosts: &BTreeMap<String, Host>,
        hosts_file: &str,
    ) -> Option<Job> {
        let errors_before = self.diagnostics.len();
        let top = Loc { file, span: 0..0 };

        let (image, image_origin) = match pick(layers, |j| j.image.as_ref()) {
            Some(Picked { loc, origin, value }) => match value.parse::<ImageRef>() {
                Ok(image) => (Some(image), origin),
                Err(message) => {
                    self.error(&loc, message);
                    (None, origin)
                }
            },
            None => {
                self.error(&top, format!("job {name:?} has no image: set `image` here, in its profile or in [defaults]"));
                (
                    None,
                    Origin {
                        file: String::new(),
                        table: Vec::new(),
                    },
                )
            }
        };

        let job_hosts = self.job_hosts(name, &top, layers, hosts, hosts_file);

        let instances = match pick(layers, |j| j.instances.as_ref()) {
            Some(Picked { loc, value, .. }) => match u32::try_from(*value) {
                Ok(n) if n <= 1000 => n,
                _ => {
                    self.error(
                        &loc,
                        format!("instances must be between 0 and 1000, got {value}"),
                    );
                    0
                }
            },
            None => 1,
        };

        let command = pick(layers, |j| j.command.as_ref()).map(|Picked { loc, value, .. }| {
            if value.is_empty() {
                self.error(
                    &loc,
                    "command must not be empty: leave it out to use the image's own",
                );
            }
            self.strings_without_nul(value, loc.file, "command")
        });

        let env = self.env(layers);
        let (secret_env, secret_env_places) = self.secret_env(layers, &env);
        let volumes = self.volumes(layers);
        let ports = self.ports(layers);
        let memory = self.memory(layers);

        let network = match pick(layers, |j| j.network.as_ref()) {
            Some(Picked { loc, value, .. }) => value.parse().unwrap_or_else(|message| {
                self.error(&loc, message);
                Network::Host
            }),
            None => Network::Host,
        };

        let init = pick(layers, |j| j.init.as_ref()).is_none_or(|p| *p.value);

        let restart = match pick(layers, |j| j.restart.as_ref()) {
            Some(Picked { loc, value, .. }) => value.parse().unwrap_or_else(|message| {
                self.error(&loc, message);
                RestartPolicy::UnlessStopped
            }),
            None => RestartPolicy::UnlessStopped,
        };

        let stop_timeout = match pick(layers, |j| j.stop_timeout.as_ref()) {
            Some(Picked { loc, value, .. }) => {
                match duration_at_most("stop_timeout", value, MAX_STOP_TIMEOUT) {
                    Ok(d) if d.subsec_nanos() != 0 => {
                        self.error(&loc, format!("stop_timeout {value:?} is not a whole number of seconds: the engine counts it in seconds (write e.g. \"2s\")"));
                        d
                    }
                    Ok(d) => d,
                    Err(message) => {
                        self.error(&loc, message);
                        Duration::ZERO
                    }
                }
            }
            None => Duration::from_secs(30),
        };

        let host_files = self.host_files(layers, &volumes);
        let settings = self.settings(layers, &volumes, &host_files);
        let log = self.log(layers);
        let health = self.health(layers);
        let update = self.update(layers);
        let release = self.release(layers);

        let base = pick(layers, |j| j.base.as_ref()).and_then(|Picked { loc, value, .. }| {
            value
                .parse::<ImageRef>()
                .map_err(|m| self.error(&loc, m))
                .ok()
        });
        let artifact_path = match pick(layers, |j| j.artifact_path.as_ref()) {
            Some(Picked { loc, value, .. }) => {
                if let Err(message) = check_abs_path("artifact_path", value) {
                    self.error(&loc, message);
                } else if value == "/" {
                    self.error(&loc, "artifact_path must not be \"/\": name the directory the artifact goes into, e.g. \"/app\"");
                }
                value.clone()
            }
            None => "/app".to_string(),
        };

        if self.diagnostics.len() > errors_before {
            return None;
        }
        Some(Job {
            name: name.to_string(),
            file: self.sources.file(file).path.clone(),
            image: image?,
            image_origin,
            hosts: job_hosts,
            instances,
            command,
            env,
            secret_env,
            secret_env_places,
            volumes,
            ports,
            memory,
            profile,
            network,
            init,
            restart,
            stop_timeout,
            host_files,
            log,
            health,
            update,
            release,
            base,
            artifact_path,
            entrypoint: settings.entrypoint,
            user: settings.user,
            workdir: settings.workdir,
            cpus: settings.cpus,
            ulimits: settings.ulimits,
            cap_add: settings.cap_add,
            cap_drop: settings.cap_drop,
            labels: settings.labels,
            extra_hosts: settings.extra_hosts,
            tmpfs: settings.tmpfs,
            shm_size: settings.shm_size,
            privileged: settings.privileged,
            devices: settings.devices,
        })
    }

    fn job_hosts(
        &mut self,
        name: &str,
        top: &Loc,
        layers: &[Layer<'_>],
        hosts: &BTreeMap<String, Host>,
        hosts_file: &str,
    ) -> Vec<String> {
        let Some(Picked {
            loc, value: list, ..
        }) = pick(layers, |j| j.hosts.as_ref())
        else {
            self.error(
                top,
                format!("job {name:?} has no hosts: set `hosts = [\"...\"]` to place it"),
            );
            return Vec::new();
        };
        if list.is_empty() {
            self.error(
                &loc,
                format!(
                    "job {name:?} lists no hosts: name at least one of the hosts in {hosts_file}"
                ),
            );
        }
        let mut seen: Vec<String> = Vec::new();
        for host in list {
            let hloc = Loc {
                file: loc.file,
                span: host.span(),
            };
            let host = host.get_ref();
            if self.broken_hosts.contains(host) {
                // Its own error is reported where it is declared.
                continue;
            }
            if !hosts.contains_key(host) {
                let known: Vec<&str> = hosts.keys().map(String::as_str).collect();
                self.error(
                    &hloc,
                    format!(
                        "unknown host {host:?} (hosts in {hosts_file}: {})",
                        list_or_none(&known)
                    ),
                );
            } else if seen.contains(host) {
                self.error(
                    &hloc,
                    format!(
                        "host {host:?} is listed twice: use `instances` for more tasks per host"
                    ),
                );
            } else {
                seen.push(host.clone());
            }
        }
        seen
    }

    pub(crate) fn strings_without_nul(
        &mut self,
        list: &[toml::Spanned<String>],
        file: usize,
        what: &str,
    ) -> Vec<String> {
        for item in list {
            if item.get_ref().contains('\0') {
                self.error(
                    &Loc {
                        file,
                        span: item.span(),
                    },
                    format!("{what} contains a NUL character"),
                );
            }
        }
        list.iter().map(|s| s.get_ref().clone()).collect()
    }

    fn env(&mut self, layers: &[Layer<'_>]) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for layer in layers.iter().rev() {
            for (key, value) in layer.job.env.iter().flat_map(|e| e.get_ref()) {
                let loc = Loc {
                    file: layer.file,
                    span: value.span(),
                };
                if let Err(message) = check_env_name(key) {
                    self.error(&loc, message);
                    continue;
                }
                let text = value.get_ref().to_text();
                if text.contains('\0') {
                    self.error(&loc, format!("the value of {key} contains a NUL character"));
                }
                env.insert(key.clone(), text);
            }
        }
        env
    }

    fn secret_env(
        &mut self,
        layers: &[Layer<'_>],
        env: &BTreeMap<String, String>,
    ) -> (Vec<String>, BTreeMap<String, Place>) {
        let mut secret_env = Vec::new();
        let mut places = BTreeMap::new();
        let Some(Picked {
            loc, value: names, ..
        }) = pick(layers, |j| j.secret_env.as_ref())
        else {
            return (secret_env, places);
        };
        for secret in names {
            let sloc = Loc {
                file: loc.file,
                span: secret.span(),
            };
            let secret = secret.get_ref();
            if let Err(message) = check_env_name(secret) {
                self.error(&sloc, format!("{message} (in secret_env)"));
            } else if env.contains_key(secret) {
                self.error(&sloc, format!("{secret:?} is both in env and in secret_env: a secret's value must not be written in the files"));
            } else if secret_env.contains(secret) {
                self.error(&sloc, format!("{secret:?} is listed twice in secret_env"));
            } else {
                secret_env.push(secret.clone());
                places.insert(secret.clone(), self.sources.place(&sloc));
            }
        }
        (secret_env, places)
    }

    fn volumes(&mut self, layers: &[Layer<'_>]) -> Vec<Volume> {
        let mut volumes: Vec<Volume> = Vec::new();
        let Some(Picked {
            loc, value: list, ..
        }) = pick(layers, |j| j.volumes.as_ref())
        else {
            return volumes;
        };
        for volume in list {
            let vloc = Loc {
                file: loc.file,
                span: volume.span(),
            };
            match volume.get_ref().parse::<Volume>() {
                Ok(v) => {
                    if let Some(other) = volumes.iter().find(|o| o.container == v.container) {
                        self.error(&vloc, format!("two volumes are mounted at {:?} in the container ({other} and {v}): each container path takes one", v.container));
                    } else {
                        volumes.push(v);
                    }
                }
                Err(message) => self.error(&vloc, message),
            }
        }
        volumes
    }

    fn ports(&mut self, layers: &[Layer<'_>]) -> Vec<u16> {
        let mut ports = Vec::new();
        let Some(Picked {
            loc, value: list, ..
        }) = pick(layers, |j| j.ports.as_ref())
        else {
            return ports;
        };
        for port in list {
            let ploc = Loc {
                file: loc.file,
                span: port.span(),
            };
            match u16::try_from(*port.get_ref()) {
                Ok(p) if p > 0 => {
                    if ports.contains(&p) {
                        self.error(&ploc, format!("port {p} is listed twice"));
                    }
                    ports.push(p);
                }
                _ => self.error(
                    &ploc,
                    format!("invalid port {}: expected 1 to 65535", port.get_ref()),
                ),
            }
        }
        ports
    }

    fn memory(&mut self, layers: &[Layer<'_>]) -> Option<u64> {
        let Picked {
            loc, value: text, ..
        } = pick(layers, |j| j.memory.as_ref())?;
        match size_at_most("memory", text, MAX_MEMORY) {
            Ok(bytes) if bytes < MIN_MEMORY => {
                self.error(
                    &loc,
                    format!("memory {text:?} is below the engine's minimum of 6m"),
                );
                None
            }
            Ok(bytes) => Some(bytes),
            Err(message) => {
                self.error(&loc, message);
                None
            }
        }
    }

    fn host_files(&mut self, layers: &[Layer<'_>], volumes: &[Volume]) -> Vec<String> {
        let Some(Picked {
            loc, value: list, ..
        }) = pick(layers, |j| j.host_files.as_ref())
        else {
            return DEFAULT_HOST_FILES
                .iter()
                .filter(|f| !volumes.iter().any(|v| v.container == **f))
                .map(|s| s.to_string())
                .collect();
        };
        let mut files: Vec<String> = Vec::new();
        for path in list {
            let ploc = Loc {
                file: loc.file,
                span: path.span(),
            };
            let path = path.get_ref();
            if let Err(message) = check_abs_path("host file", path) {
                self.error(&ploc, message);
            } else if path == "/" {
                self.error(
                    &ploc,
                    "host file \"/\" would bind the host's whole root over the container's",
                );
            } else if let Some(v) = volumes.iter().find(|v| &v.container == path) {
                self.error(&ploc, format!("{path:?} is both a host file and the container path of volume {v}: drop one of them"));
            } else if !files.contains(path) {
                files.push(path.clone());
            }
        }
        files
    }

    fn log(&mut self, layers: &[Layer<'_>]) -> LogConfig {
        let logs = tables(layers, |j| j.log.as_ref());
        let driver = match pick_in(&logs, |l| l.driver.as_ref()) {
            Some((loc, d)) => d.parse().unwrap_or_else(|message| {
                self.error(&loc, message);
                LogDriver::Local
            }),
            None => LogDriver::Local,
        };
        let max_size = match pick_in(&logs, |l| l.max_size.as_ref()) {
            Some((loc, text)) => match size_at_most("log max_size", text, MAX_SIZE) {
                Ok(0) => {
                    self.error(
                        &loc,
                        "log max_size must be above 0: logs are always bounded",
                    );
                    0
                }
                Ok(bytes) => bytes,
                Err(message) => {
                    self.error(&loc, message);
                    0
                }
            },
            None => 20 << 20,
        };
        let max_files = match pick_in(&logs, |l| l.max_files.as_ref()) {
            Some((loc, n)) => match u32::try_from(*n) {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    self.error(
                        &loc,
                        format!("log max_files must be between 1 and 100, got {n}"),
                    );
                    1
                }
            },
            None => 5,
        };
        LogConfig {
            driver,
            max_size,
            max_files,
        }
    }

    fn health(&mut self, layers: &[Layer<'_>]) -> Option<Health> {
        let healths = tables(layers, |j| j.health.as_ref());
        let (first_file, first) = *healths.first()?;
        let cmd = match pick_in(&healths, |h| h.cmd.as_ref()) {
            Some((loc, cmd)) => {
                if cmd.is_empty() {
                    self.error(&loc, "health cmd must not be empty");
                }
                self.strings_without_nul(cmd, loc.file, "health cmd")
            }
            None => {
                self.error(
                    &Loc {
                        file: first_file,
                        span: first.span(),
                    },
                    "[health] needs `cmd`, the command whose success means healthy",
                );
                Vec::new()
            }
        };
        let retries = match pick_in(&healths, |h| h.retries.as_ref()) {
            Some((loc, n)) => match u32::try_from(*n) {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    self.error(&loc, format!("health retries must be between 1 and 100, got {n} (the engine reads 0 as its default of 3)"));
                    1
                }
            },
            None => 3,
        };
        let positive =
            |me: &mut Self, picked: Option<(Loc, &String)>, default: Duration, key: &str| {
                let d = me.duration(&format!("health {key}"), picked.clone(), default);
                if d.is_zero() {
                    if let Some((loc, _)) = picked {
                        me.error(
                            &loc,
                            format!(
                            "health {key} must be above 0 (the engine reads 0 as its own default)"
                        ),
                        );
                    }
                } else if d < MIN_HEALTH_DURATION {
                    if let Some((loc, text)) = picked {
                        me.error(
                            &loc,
                            format!("health {key} {text:?} is below the engine's minimum of 1ms"),
                        );
                    }
                }
                d
            };
        let interval = positive(
            self,
            pick_in(&healths, |h| h.interval.as_ref()),
            Duration::from_secs(10),
            "interval",
        );
        let timeout = positive(
            self,
            pick_in(&healths, |h| h.timeout.as_ref()),
            Duration::from_secs(5),
            "timeout",
        );
        let picked = pick_in(&healths, |h| h.start_period.as_ref());
        let start_period = self.duration("health start_period", picked.clone(), Duration::ZERO);
        if let Some((loc, text)) =
            picked.filter(|_| !start_period.is_zero() && start_period < MIN_HEALTH_DURATION)
        {
            self.error(
                &loc,
                format!(
                    "health start_period {text:?} is below the engine's minimum of 1ms (0s: none)"
                ),
            );
        }
        Some(Health {
            cmd,
            interval,
            timeout,
            retries,
            start_period,
        })
    }

    fn update(&mut self, layers: &[Layer<'_>]) -> UpdatePolicy {
        let updates = tables(layers, |j| j.update.as_ref());
        let parallel = match pick_in(&updates, |u| u.parallel.as_ref()) {
            Some((loc, n)) => match u32::try_from(*n) {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    self.error(
                        &loc,
                        format!("update parallel must be between 1 and 1000, got {n}"),
                    );
                    1
                }
            },
            None => 1,
        };
        let keep = match pick_in(&updates, |u| u.keep.as_ref()) {
            Some((loc, n)) => match u32::try_from(*n) {
                Ok(n) if n <= 100 => n,
                _ => {
                    self.error(
                        &loc,
                        format!("update keep must be between 0 and 100, got {n}"),
                    );
                    0
                }
            },
            None => DEFAULT_KEEP,
        };
        UpdatePolicy {
            parallel,
            delay: self.duration(
                "update delay",
                pick_in(&updates, |u| u.delay.as_ref()),
                Duration::ZERO,
            ),
            auto_rollback: pick_in(&updates, |u| u.auto_rollback.as_ref()).is_none_or(|(_, v)| *v),
            keep,
        }
    }

    /// The duration at `value`, or `default`; `what` names the key in messages.
    pub(crate) fn duration(
        &mut self,
        what: &str,
        value: Option<(Loc, &String)>,
        default: Duration,
    ) -> Duration {
        match value {
            Some((loc, text)) => {
                duration_at_most(what, text, MAX_DURATION).unwrap_or_else(|message| {
                    self.error(&loc, message);
                    default
                })
            }
            None => default,
        }
    }
}

/// An environment variable name the engine and a shell both take, and not
/// one drover sets itself.
fn check_env_name(key: &str) -> Result<(), String> {
    if key.is_empty()
        || key.contains('=')
        || key.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "invalid environment variable name {key:?}: no '=', spaces or control characters"
        ));
    }
    if key.starts_with(RESERVED_ENV_PREFIX) {
        return Err(format!("environment variable {key} is reserved: drover sets DROVER_ENV, DROVER_JOB, DROVER_HOST and DROVER_TASK in every task, and names starting with {RESERVED_ENV_PREFIX} are its own"));
    }
    Ok(())
}

pub(crate) fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Names of every profile, for messages.
pub(crate) fn names_of<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let list: BTreeSet<&str> = keys.map(String::as_str).collect();
    list_or_none(&list.into_iter().collect::<Vec<_>>())
}
