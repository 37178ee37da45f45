//! Reading an environment directory: parse, merge (job > profile > defaults),
//! check, and report every problem found with its `file:line:col`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::model::*;
use crate::raw::*;
use crate::source::{Diagnostic, Loc, Sources};
use crate::units::{parse_duration, parse_size};
use crate::SpecError;

const DEFAULT_HOST_FILES: &[&str] = &["/etc/localtime"];

/// Looks for `drover.toml` in `start` and its parents, as git looks for `.git`.
pub fn find_dir(start: &Path) -> Result<PathBuf, SpecError> {
    let mut dir = Some(start);
    while let Some(candidate) = dir {
        if candidate.join("drover.toml").is_file() {
            return Ok(candidate.to_path_buf());
        }
        dir = candidate.parent();
    }
    Err(SpecError::NotFound {
        start: start.to_path_buf(),
    })
}

/// Loads and validates the environment in `dir`, overlaid with `drover.STAGE.toml`.
pub fn load(dir: &Path, stage: Option<&str>) -> Result<Environment, SpecError> {
    let mut loader = Loader {
        sources: Sources::default(),
        diagnostics: Vec::new(),
    };
    let env = loader.load(dir, stage)?;
    if loader.diagnostics.is_empty() {
        if let Some(env) = env {
            return Ok(env);
        }
    }
    // Reported in reading order, whatever order the checks ran in.
    let order: Vec<String> = loader.sources_order();
    loader
        .diagnostics
        .sort_by_key(|d| (order.iter().position(|p| *p == d.file), d.line, d.col));
    Err(SpecError::Invalid(loader.diagnostics))
}

struct Loader {
    sources: Sources,
    diagnostics: Vec<Diagnostic>,
}

/// One layer of job keys and the file it came from.
#[derive(Clone, Copy)]
struct Layer<'a> {
    file: usize,
    job: &'a RawJob,
}

impl Loader {
    /// File paths in the order they were read: drover.toml, the stage, jobs.
    fn sources_order(&self) -> Vec<String> {
        (0..self.sources.count())
            .map(|i| self.sources.file(i).path.clone())
            .collect()
    }

    fn read(&mut self, dir: &Path, relative: &str) -> Result<usize, SpecError> {
        let path = dir.join(relative);
        let text =
            std::fs::read_to_string(&path).map_err(|source| SpecError::Io { path, source })?;
        Ok(self.sources.add(relative.to_string(), text))
    }

    fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        let diagnostic = self.sources.diagnostic(loc, message);
        self.diagnostics.push(diagnostic);
    }

    fn parse<T: serde::de::DeserializeOwned>(&mut self, file: usize) -> Option<T> {
        match toml::from_str::<T>(&self.sources.file(file).text) {
            Ok(value) => Some(value),
            Err(err) => {
                let span = err.span().unwrap_or(0..0);
                let message = err.message().trim().replace('\n', " ");
                self.error(&Loc { file, span }, message);
                None
            }
        }
    }

    fn load(&mut self, dir: &Path, stage: Option<&str>) -> Result<Option<Environment>, SpecError> {
        let env_file = self.read(dir, "drover.toml")?;
        let env_raw = self.parse::<RawEnvironment>(env_file);

        let stage_raw = match stage {
            Some(stage) => {
                let relative = format!("drover.{stage}.toml");
                if !dir.join(&relative).is_file() {
                    return Err(SpecError::MissingStage {
                        stage: stage.to_string(),
                        path: dir.join(relative),
                    });
                }
                let file = self.read(dir, &relative)?;
                self.parse::<RawStage>(file).map(|raw| (file, raw))
            }
            None => None,
        };

        let mut job_files = Vec::new();
        let jobs_dir = dir.join("jobs");
        if jobs_dir.is_dir() {
            let entries = std::fs::read_dir(&jobs_dir).map_err(|source| SpecError::Io {
                path: jobs_dir.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| SpecError::Io {
                    path: jobs_dir.clone(),
                    source,
                })?;
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if let Some(stem) = file_name.strip_suffix(".toml") {
                    job_files.push((stem.to_string(), format!("jobs/{file_name}")));
                }
            }
        }
        job_files.sort();
        let mut raw_jobs = Vec::new();
        for (name, relative) in job_files {
            let file = self.read(dir, &relative)?;
            if let Some(raw) = self.parse::<RawJob>(file) {
                raw_jobs.push((name, file, raw));
            }
        }

        let Some(env_raw) = env_raw else {
            return Ok(None);
        };
        Ok(self.build(dir, env_file, env_raw, stage_raw, raw_jobs))
    }

    fn build(
        &mut self,
        dir: &Path,
        env_file: usize,
        env_raw: RawEnvironment,
        stage: Option<(usize, RawStage)>,
        raw_jobs: Vec<(String, usize, RawJob)>,
    ) -> Option<Environment> {
        // The stage file replaces whole keys; remember which file each came from.
        let (mut name, mut hosts, mut defaults, mut registry) = (
            env_raw.name.map(|v| (env_file, v)),
            env_raw.hosts.map(|v| (env_file, v)),
            env_raw.defaults.map(|v| (env_file, v)),
            env_raw.registry.map(|v| (env_file, v)),
        );
        if let Some((file, stage)) = stage {
            if let Some(v) = stage.name {
                name = Some((file, v));
            }
            if let Some(v) = stage.hosts {
                hosts = Some((file, v));
            }
            if let Some(v) = stage.defaults {
                defaults = Some((file, v));
            }
            if let Some(v) = stage.registry {
                registry = Some((file, v));
            }
        }

        let name = match name {
            Some((file, name)) => {
                let loc = Loc {
                    file,
                    span: name.span(),
                };
                let name = name.into_inner();
                if !is_valid_name(&name) {
                    self.error(&loc, format!("invalid environment name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"));
                }
                name
            }
            None => {
                self.error(&Loc { file: env_file, span: 0..0 }, "missing key `name`: every environment needs a name (it goes into every container label)");
                String::new()
            }
        };

        let hosts = match hosts {
            Some((file, hosts)) => self.hosts(dir, file, hosts.into_inner()),
            None => BTreeMap::new(),
        };

        let registry = registry.and_then(|(file, registry)| {
            let url = registry.into_inner().url;
            let loc = Loc { file, span: url.span() };
            let url = url.into_inner();
            if url.starts_with("http://") || url.starts_with("https://") {
                Some(Registry { url: url.trim_end_matches('/').to_string() })
            } else {
                self.error(&loc, format!("invalid registry url {url:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"));
                None
            }
        });

        let defaults_layer = defaults.as_ref().map(|(file, job)| Layer {
            file: *file,
            job: job.get_ref(),
        });
        for (profile_name, profile) in &env_raw.profiles {
            if let Some(nested) = &profile.get_ref().profile {
                let loc = Loc {
                    file: env_file,
                    span: nested.span(),
                };
                self.error(
                    &loc,
                    format!("profile {profile_name:?} names another profile: profiles do not nest"),
                );
            }
        }

        let mut jobs = BTreeMap::new();
        for (job_name, file, raw) in &raw_jobs {
            let job_loc = Loc {
                file: *file,
                span: 0..0,
            };
            if !is_valid_name(job_name) {
                self.error(&job_loc, format!("invalid job name {job_name:?} (from the file name): use letters, digits, '_', '.' and '-', starting with a letter or digit"));
                continue;
            }
            let mut layers = vec![Layer {
                file: *file,
                job: raw,
            }];
            let profile_ref = raw.profile.as_ref().map(|p| (*file, p)).or_else(|| {
                defaults_layer.and_then(|d| d.job.profile.as_ref().map(|p| (d.file, p)))
            });
            let mut profile_name = None;
            if let Some((pfile, pname)) = profile_ref {
                match env_raw.profiles.get(pname.get_ref()) {
                    Some(profile) => {
                        layers.push(Layer {
                            file: env_file,
                            job: profile.get_ref(),
                        });
                        profile_name = Some(pname.get_ref().clone());
                    }
                    None => {
                        let known: Vec<&str> =
                            env_raw.profiles.keys().map(String::as_str).collect();
                        let loc = Loc {
                            file: pfile,
                            span: pname.span(),
                        };
                        self.error(
                            &loc,
                            format!(
                                "unknown profile {:?} (profiles in drover.toml: {})",
                                pname.get_ref(),
                                list_or_none(&known)
                            ),
                        );
                        // What the job lacks may be in the profile it meant: say only this.
                        continue;
                    }
                }
            }
            if let Some(d) = defaults_layer {
                layers.push(d);
            }
            if let Some(job) = self.job(job_name, *file, &layers, profile_name, &hosts) {
                jobs.insert(job_name.clone(), (job, *file, raw.clone()));
            }
        }

        self.check_ports(&jobs, defaults_layer, &env_raw.profiles, env_file);

        Some(Environment {
            name,
            dir: dir.to_path_buf(),
            hosts,
            registry,
            jobs: jobs
                .into_iter()
                .map(|(name, (job, _, _))| (name, job))
                .collect(),
        })
    }

    fn hosts(
        &mut self,
        dir: &Path,
        file: usize,
        raw: BTreeMap<String, Spanned<RawHost>>,
    ) -> BTreeMap<String, Host> {
        let mut hosts = BTreeMap::new();
        for (name, host) in raw {
            let host_loc = Loc {
                file,
                span: host.span(),
            };
            if !is_valid_name(&name) {
                self.error(&host_loc, format!("invalid host name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"));
                continue;
            }
            let host = host.into_inner();
            let docker_loc = Loc {
                file,
                span: host.docker.span(),
            };
            let docker = match parse_docker_address(host.docker.get_ref()) {
                Ok(address) => address,
                Err(message) => {
                    self.error(&docker_loc, message);
                    continue;
                }
            };
            let tls = host.tls.map(|tls| {
                let tls_loc = Loc {
                    file,
                    span: tls.span(),
                };
                if !matches!(docker, DockerAddress::Tcp { .. }) {
                    self.error(&tls_loc, "tls applies only to tcp:// hosts");
                }
                let tls = tls.into_inner();
                let resolve = |p: &Spanned<String>| dir.join(p.get_ref());
                TlsFiles {
                    ca: resolve(&tls.ca),
                    cert: resolve(&tls.cert),
                    key: resolve(&tls.key),
                }
            });
            hosts.insert(name.clone(), Host { name, docker, tls });
        }
        hosts
    }

    fn job(
        &mut self,
        name: &str,
        file: usize,
        layers: &[Layer<'_>],
        profile: Option<String>,
        hosts: &BTreeMap<String, Host>,
    ) -> Option<Job> {
        let errors_before = self.diagnostics.len();
        let top = Loc { file, span: 0..0 };

        let image = match pick(layers, |j| j.image.as_ref()) {
            Some((loc, image)) if image.trim().is_empty() => {
                self.error(&loc, "image must not be empty");
                String::new()
            }
            Some((_, image)) => image.clone(),
            None => {
                self.error(&top, format!("job {name:?} has no image: set `image` here, in its profile or in [defaults]"));
                String::new()
            }
        };

        let job_hosts = match pick(layers, |j| j.hosts.as_ref()) {
            Some((loc, list)) => {
                if list.is_empty() {
                    self.error(
                        &loc,
                        format!(
                            "job {name:?} lists no hosts: name at least one of drover.toml's hosts"
                        ),
                    );
                }
                let mut seen = Vec::new();
                for host in list {
                    let hloc = Loc {
                        file: loc.file,
                        span: host.span(),
                    };
                    let host = host.get_ref();
                    if !hosts.contains_key(host) {
                        let known: Vec<&str> = hosts.keys().map(String::as_str).collect();
                        self.error(
                            &hloc,
                            format!(
                                "unknown host {host:?} (hosts in drover.toml: {})",
                                list_or_none(&known)
                            ),
                        );
                    } else if seen.contains(host) {
                        self.error(&hloc, format!("host {host:?} is listed twice: use `instances` for more tasks per host"));
                    } else {
                        seen.push(host.clone());
                    }
                }
                seen
            }
            None => {
                self.error(
                    &top,
                    format!("job {name:?} has no hosts: set `hosts = [\"...\"]` to place it"),
                );
                Vec::new()
            }
        };

        let instances = match pick(layers, |j| j.instances.as_ref()) {
            Some((loc, n)) => match u32::try_from(*n) {
                Ok(n) if n <= 1000 => n,
                _ => {
                    self.error(
                        &loc,
                        format!("instances must be between 0 and 1000, got {n}"),
                    );
                    0
                }
            },
            None => 1,
        };

        let command = pick(layers, |j| j.command.as_ref()).map(|(loc, cmd)| {
            if cmd.is_empty() {
                self.error(
                    &loc,
                    "command must not be empty: leave it out to use the image's own",
                );
            }
            cmd.clone()
        });

        let mut env = BTreeMap::new();
        for layer in layers.iter().rev() {
            for (key, value) in layer.job.env.iter().flatten() {
                let loc = Loc {
                    file: layer.file,
                    span: value.span(),
                };
                if !is_valid_env_key(key) {
                    self.error(&loc, format!("invalid environment variable name {key:?}"));
                }
                env.insert(key.clone(), value.get_ref().to_text());
            }
        }

        let mut secret_env = Vec::new();
        if let Some((loc, names)) = pick(layers, |j| j.secret_env.as_ref()) {
            for secret in names {
                let sloc = Loc {
                    file: loc.file,
                    span: secret.span(),
                };
                let secret = secret.get_ref();
                if !is_valid_env_key(secret) {
                    self.error(
                        &sloc,
                        format!("invalid environment variable name {secret:?} in secret_env"),
                    );
                } else if env.contains_key(secret) {
                    self.error(&sloc, format!("{secret:?} is both in env and in secret_env: a secret's value must not be written in the files"));
                } else if !secret_env.contains(secret) {
                    secret_env.push(secret.clone());
                }
            }
        }

        let mut volumes = Vec::new();
        if let Some((loc, list)) = pick(layers, |j| j.volumes.as_ref()) {
            for volume in list {
                let vloc = Loc {
                    file: loc.file,
                    span: volume.span(),
                };
                match parse_volume(volume.get_ref()) {
                    Ok(v) => volumes.push(v),
                    Err(message) => self.error(&vloc, message),
                }
            }
        }

        let mut ports = Vec::new();
        if let Some((loc, list)) = pick(layers, |j| j.ports.as_ref()) {
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
        }

        let memory =
            pick(layers, |j| j.memory.as_ref()).and_then(|(loc, text)| match parse_size(text) {
                Ok(bytes) if bytes < 6 << 20 => {
                    self.error(
                        &loc,
                        format!("memory {text:?} is below Docker's minimum of 6m"),
                    );
                    None
                }
                Ok(bytes) => Some(bytes),
                Err(message) => {
                    self.error(&loc, message);
                    None
                }
            });

        let network = match pick(layers, |j| j.network.as_ref()) {
            Some((loc, n)) if n.is_empty() => {
                self.error(&loc, "network must not be empty (default: \"host\")");
                String::new()
            }
            Some((_, n)) => n.clone(),
            None => "host".to_string(),
        };

        let init = pick(layers, |j| j.init.as_ref()).is_none_or(|(_, v)| *v);

        let restart = match pick(layers, |j| j.restart.as_ref()) {
            Some((loc, policy)) => {
                if !is_valid_restart(policy) {
                    self.error(&loc, format!("invalid restart policy {policy:?}: expected \"no\", \"always\", \"unless-stopped\", \"on-failure\" or \"on-failure:N\""));
                }
                policy.clone()
            }
            None => "unless-stopped".to_string(),
        };

        let stop_timeout = self.duration(
            pick(layers, |j| j.stop_timeout.as_ref()),
            Duration::from_secs(30),
        );

        let host_files = match pick(layers, |j| j.host_files.as_ref()) {
            Some((loc, list)) => {
                let mut files = Vec::new();
                for path in list {
                    let ploc = Loc {
                        file: loc.file,
                        span: path.span(),
                    };
                    if !path.get_ref().starts_with('/') {
                        self.error(
                            &ploc,
                            format!("host file {:?} must be an absolute path", path.get_ref()),
                        );
                    } else if !files.contains(path.get_ref()) {
                        files.push(path.get_ref().clone());
                    }
                }
                files
            }
            None => DEFAULT_HOST_FILES.iter().map(|s| s.to_string()).collect(),
        };

        let log_layers: Vec<(usize, &RawLog)> = layers
            .iter()
            .filter_map(|l| l.job.log.as_ref().map(|log| (l.file, log)))
            .collect();
        let driver = match pick_in(&log_layers, |l| l.driver.as_ref()) {
            Some((loc, d)) if d == "none" => {
                self.error(&loc, "log driver \"none\" discards logs: drover keeps bounded logs instead (\"local\" or \"json-file\" with max_size and max_files)");
                d.clone()
            }
            Some((_, d)) => d.clone(),
            None => "local".to_string(),
        };
        let max_size = match pick_in(&log_layers, |l| l.max_size.as_ref()) {
            Some((loc, text)) => match parse_size(text) {
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
        let max_files = match pick_in(&log_layers, |l| l.max_files.as_ref()) {
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
        let log = LogConfig {
            driver,
            max_size,
            max_files,
        };

        let health_layers: Vec<(usize, &RawHealth)> = layers
            .iter()
            .filter_map(|l| l.job.health.as_ref().map(|h| (l.file, h.get_ref())))
            .collect();
        let health = if health_layers.is_empty() {
            None
        } else {
            let cmd = match pick_in(&health_layers, |h| h.cmd.as_ref()) {
                Some((loc, cmd)) if cmd.is_empty() => {
                    self.error(&loc, "health cmd must not be empty");
                    Vec::new()
                }
                Some((_, cmd)) => cmd.clone(),
                None => {
                    let (file, _) = health_layers[0];
                    let span = layers
                        .iter()
                        .find(|l| l.file == file)
                        .and_then(|l| l.job.health.as_ref())
                        .map_or(0..0, |h| h.span());
                    self.error(
                        &Loc { file, span },
                        "[health] needs `cmd`, the command whose success means healthy",
                    );
                    Vec::new()
                }
            };
            let retries = match pick_in(&health_layers, |h| h.retries.as_ref()) {
                Some((loc, n)) => u32::try_from(*n).unwrap_or_else(|_| {
                    self.error(&loc, format!("health retries must be 0 or more, got {n}"));
                    0
                }),
                None => 3,
            };
            Some(Health {
                cmd,
                interval: self.duration(
                    pick_in(&health_layers, |h| h.interval.as_ref()),
                    Duration::from_secs(10),
                ),
                timeout: self.duration(
                    pick_in(&health_layers, |h| h.timeout.as_ref()),
                    Duration::from_secs(5),
                ),
                retries,
                start_period: self.duration(
                    pick_in(&health_layers, |h| h.start_period.as_ref()),
                    Duration::ZERO,
                ),
            })
        };

        let update_layers: Vec<(usize, &RawUpdate)> = layers
            .iter()
            .filter_map(|l| l.job.update.as_ref().map(|u| (l.file, u)))
            .collect();
        let parallel = match pick_in(&update_layers, |u| u.parallel.as_ref()) {
            Some((loc, n)) => match u32::try_from(*n) {
                Ok(n) if n >= 1 => n,
                _ => {
                    self.error(&loc, format!("update parallel must be 1 or more, got {n}"));
                    1
                }
            },
            None => 1,
        };
        let update = UpdatePolicy {
            parallel,
            delay: self.duration(
                pick_in(&update_layers, |u| u.delay.as_ref()),
                Duration::ZERO,
            ),
            auto_rollback: pick_in(&update_layers, |u| u.auto_rollback.as_ref())
                .is_none_or(|(_, v)| *v),
        };

        if self.diagnostics.len() > errors_before {
            return None;
        }
        Some(Job {
            name: name.to_string(),
            file: self.sources.file(file).path.clone(),
            image,
            hosts: job_hosts,
            instances,
            command,
            env,
            secret_env,
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
        })
    }

    fn duration(&mut self, value: Option<(Loc, &String)>, default: Duration) -> Duration {
        match value {
            Some((loc, text)) => parse_duration(text).unwrap_or_else(|message| {
                self.error(&loc, message);
                default
            }),
            None => default,
        }
    }

    /// Two tasks on one host binding the same port is an error at the second
    /// binding's `ports` list. Jobs are checked in name order, tasks in index order.
    fn check_ports(
        &mut self,
        jobs: &BTreeMap<String, (Job, usize, RawJob)>,
        defaults: Option<Layer<'_>>,
        profiles: &BTreeMap<String, Spanned<RawJob>>,
        env_file: usize,
    ) {
        let mut bound: HashMap<(String, u16), (String, u32)> = HashMap::new();
        for (name, (job, file, raw)) in jobs {
            // Where the job's ports list was written: the job, its profile or the defaults.
            let ports_loc = raw
                .ports
                .as_ref()
                .map(|p| Loc {
                    file: *file,
                    span: p.span(),
                })
                .or_else(|| {
                    job.profile
                        .as_ref()
                        .and_then(|p| profiles.get(p))
                        .and_then(|p| p.get_ref().ports.as_ref())
                        .map(|p| Loc {
                            file: env_file,
                            span: p.span(),
                        })
                })
                .or_else(|| {
                    defaults.and_then(|d| {
                        d.job.ports.as_ref().map(|p| Loc {
                            file: d.file,
                            span: p.span(),
                        })
                    })
                })
                .unwrap_or(Loc {
                    file: *file,
                    span: 0..0,
                });
            for (host, task) in job.tasks() {
                for &port in &job.ports {
                    let key = (host.to_string(), port);
                    if let Some((other_job, other_task)) = bound.get(&key) {
                        let what = if other_job == name {
                            format!("port {port} on host {host:?} is bound by two instances of job {name:?} (tasks {other_task} and {task}): with host networking each task on a host needs its own ports")
                        } else {
                            format!("port {port} on host {host:?} is already bound by job {other_job:?} (task {other_task})")
                        };
                        self.error(&ports_loc, what);
                    } else {
                        bound.insert(key, (name.clone(), task));
                    }
                }
            }
        }
    }
}

/// The first layer (job, then profile, then defaults) that sets a key.
fn pick<'a, T>(
    layers: &[Layer<'a>],
    get: impl Fn(&'a RawJob) -> Option<&'a Spanned<T>>,
) -> Option<(Loc, &'a T)> {
    layers.iter().find_map(|layer| {
        get(layer.job).map(|v| {
            (
                Loc {
                    file: layer.file,
                    span: v.span(),
                },
                v.get_ref(),
            )
        })
    })
}

/// Like [`pick`], inside a table that merges key by key (`log`, `health`, `update`).
fn pick_in<'a, R, T>(
    layers: &[(usize, &'a R)],
    get: impl Fn(&'a R) -> Option<&'a Spanned<T>>,
) -> Option<(Loc, &'a T)> {
    layers.iter().find_map(|(file, table)| {
        get(table).map(|v| {
            (
                Loc {
                    file: *file,
                    span: v.span(),
                },
                v.get_ref(),
            )
        })
    })
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Names go into container names and labels: keep them to Docker's alphabet.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_valid_env_key(key: &str) -> bool {
    !key.is_empty()
        && !key.contains('=')
        && !key.contains('\0')
        && !key.chars().any(char::is_whitespace)
}

fn is_valid_restart(policy: &str) -> bool {
    match policy {
        "no" | "always" | "unless-stopped" | "on-failure" => true,
        other => other
            .strip_prefix("on-failure:")
            .is_some_and(|n| n.parse::<u32>().is_ok()),
    }
}

fn parse_volume(text: &str) -> Result<Volume, String> {
    let expected = || {
        format!("invalid volume {text:?}: expected \"HOST:CONTAINER\" or \"HOST:CONTAINER:ro\" with absolute paths")
    };
    let parts: Vec<&str> = text.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [host, container] => (*host, *container, false),
        [host, container, "ro"] => (*host, *container, true),
        [host, container, "rw"] => (*host, *container, false),
        _ => return Err(expected()),
    };
    if !host.starts_with('/') || !container.starts_with('/') {
        return Err(expected());
    }
    Ok(Volume {
        host: host.to_string(),
        container: container.to_string(),
        read_only,
    })
}

pub fn parse_docker_address(text: &str) -> Result<DockerAddress, String> {
    let expected = || {
        format!("invalid docker address {text:?}: expected unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]")
    };
    if let Some(path) = text.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(expected());
        }
        return Ok(DockerAddress::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = text.strip_prefix("tcp://") {
        let (host, port) = rest.rsplit_once(':').ok_or_else(expected)?;
        let port: u16 = port.parse().map_err(|_| expected())?;
        if host.is_empty() || host.contains('/') || port == 0 {
            return Err(expected());
        }
        return Ok(DockerAddress::Tcp {
            host: host.to_string(),
            port,
        });
    }
    if let Some(rest) = text.strip_prefix("ssh://") {
        let (user, host_port) = match rest.split_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user.to_string()), rest),
            Some(_) => return Err(expected()),
            None => (None, rest),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| expected())?),
            None => (host_port, 22),
        };
        if host.is_empty() || host.contains('/') || port == 0 {
            return Err(expected());
        }
        return Ok(DockerAddress::Ssh {
            user,
            host: host.to_string(),
            port,
        });
    }
    Err(expected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_addresses() {
        assert_eq!(
            parse_docker_address("unix:///var/run/docker.sock"),
            Ok(DockerAddress::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            parse_docker_address("tcp://10.0.0.12:2376"),
            Ok(DockerAddress::Tcp {
                host: "10.0.0.12".into(),
                port: 2376
            })
        );
        assert_eq!(
            parse_docker_address("ssh://ops@app1:2222"),
            Ok(DockerAddress::Ssh {
                user: Some("ops".into()),
                host: "app1".into(),
                port: 2222
            })
        );
        assert_eq!(
            parse_docker_address("ssh://app1"),
            Ok(DockerAddress::Ssh {
                user: None,
                host: "app1".into(),
                port: 22
            })
        );
        for bad in [
            "/var/run/docker.sock",
            "unix://relative",
            "tcp://host",
            "tcp://host:99999",
            "http://x:1",
            "ssh://@h",
        ] {
            assert!(
                parse_docker_address(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn volumes() {
        assert_eq!(
            parse_volume("/data/x:/data"),
            Ok(Volume {
                host: "/data/x".into(),
                container: "/data".into(),
                read_only: false
            })
        );
        assert_eq!(parse_volume("/a:/b:ro").map(|v| v.read_only), Ok(true));
        for bad in [
            "data:/data",
            "/a",
            "/a:b",
            "/a:/b:rx",
            "/a:/b:ro:x",
            "named:/data",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn restart_policies() {
        for good in [
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:3",
        ] {
            assert!(is_valid_restart(good));
        }
        for bad in ["never", "on-failure:", "on-failure:x", ""] {
            assert!(!is_valid_restart(bad));
        }
    }
}
