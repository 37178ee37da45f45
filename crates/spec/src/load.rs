//! Loading an environment: read the files ([`crate::read`]), overlay the
//! stage, build hosts and registry, merge each job ([`crate::merge`],
//! [`crate::job`]), check across jobs ([`crate::checks`]), and report every
//! problem found with its `file:line:col`, in reading order.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use crate::job::names_of;
use crate::merge::Layer;
use crate::model::*;
use crate::raw::*;
use crate::source::{Diagnostic, Loc, Sources};
use crate::units::{duration_at_most, MAX_DURATION};
use crate::values::{check_name, split_host_port};
use crate::SpecError;

/// Loads and validates the environment in `dir`, overlaid with `drover.STAGE.toml`.
pub fn load(dir: &Path, stage: Option<&str>) -> Result<Environment, SpecError> {
    load_with(dir, stage, &BTreeMap::new())
}

/// Like [`load`], with some files' contents given instead of read: `files`
/// maps a path relative to `dir` (`drover.toml`, `jobs/web.toml`) to the
/// text it would hold. A job file given here need not exist. `drover adopt`
/// checks the files it would write this way, before it writes any.
pub fn load_with(
    dir: &Path,
    stage: Option<&str>,
    files: &BTreeMap<String, String>,
) -> Result<Environment, SpecError> {
    if let Some(stage) = stage {
        check_name("stage", stage).map_err(|message| SpecError::BadStage { message })?;
    }
    if !dir.join("drover.toml").is_file() {
        return Err(SpecError::NoEnvironment {
            dir: dir.to_path_buf(),
        });
    }
    let mut loader = Loader {
        given: files.clone(),
        ..Loader::default()
    };
    let env = loader.load(dir, stage)?;
    if loader.diagnostics.is_empty() {
        if let Some(env) = env {
            return Ok(env);
        }
    }
    // Reported in reading order, whatever order the checks ran in; each once.
    let order = loader.sources.paths();
    loader.diagnostics.sort_by_key(|d| {
        (
            order
                .iter()
                .position(|p| *p == d.file)
                .unwrap_or(usize::MAX),
            d.file.clone(),
            d.position,
        )
    });
    loader.diagnostics.dedup();
    Err(SpecError::Invalid(loader.diagnostics))
}

#[derive(Default)]
pub(crate) struct Loader {
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
    /// Hosts declared with an error already reported: a job listing one is
    /// not told the host is unknown on top of it.
    pub broken_hosts: std::collections::BTreeSet<String>,
    /// Files whose text is given rather than read ([`load_with`]).
    pub given: BTreeMap<String, String>,
}

/// A key of drover.toml that the stage may replace, and the file it came from.
struct FromFile<T> {
    file: usize,
    value: T,
}

impl Loader {
    pub(crate) fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        let diagnostic = self.sources.diagnostic(loc, message);
        self.diagnostics.push(diagnostic);
    }

    fn load(&mut self, dir: &Path, stage: Option<&str>) -> Result<Option<Environment>, SpecError> {
        let env_file = self.read(dir, "drover.toml");
        let env_raw = env_file.and_then(|f| self.parse::<RawEnvironment>(f).map(|raw| (f, raw)));

        let mut stage_failed = false;
        let stage_raw = match stage {
            Some(stage) => {
                let relative = format!("drover.{stage}.toml");
                if !dir.join(&relative).exists() {
                    return Err(SpecError::MissingStage {
                        stage: stage.to_string(),
                        path: dir.join(relative),
                    });
                }
                let raw = self
                    .read(dir, &relative)
                    .and_then(|file| self.parse::<RawStage>(file).map(|raw| (file, raw)));
                stage_failed = raw.is_none();
                raw
            }
            None => None,
        };

        let mut raw_jobs = Vec::new();
        for job_file in self.job_files(dir)? {
            let Some(file) = self.read(dir, &job_file.relative) else {
                continue;
            };
            if let Err(message) = check_name("job", &job_file.name) {
                self.error(
                    &Loc { file, span: 0..0 },
                    format!("{message}; the job's name is its file name"),
                );
                continue;
            }
            if let Some(raw) = self.parse::<RawJob>(file) {
                raw_jobs.push((job_file.name, file, raw));
            }
        }

        // Without the stage's hosts, jobs would be checked against the wrong ones.
        let Some((env_file, env_raw)) = env_raw.filter(|_| !stage_failed) else {
            return Ok(None);
        };
        Ok(self.build(dir, stage, env_file, env_raw, stage_raw, raw_jobs))
    }

    fn build(
        &mut self,
        dir: &Path,
        stage: Option<&str>,
        env_file: usize,
        env_raw: RawEnvironment,
        stage_raw: Option<(usize, RawStage)>,
        raw_jobs: Vec<(String, usize, RawJob)>,
    ) -> Option<Environment> {
        fn from<T>(file: usize) -> impl Fn(T) -> FromFile<T> {
            move |value| FromFile { file, value }
        }
        let mut name = env_raw.name.map(from(env_file));
        let mut hosts = env_raw.hosts.map(from(env_file));
        let mut defaults = env_raw.defaults.map(from(env_file));
        let mut registry = env_raw.registry.map(from(env_file));
        let mut notify = env_raw.notify.map(from(env_file));
        if let Some((file, stage)) = stage_raw {
            if let Some(v) = stage.name {
                name = Some(FromFile { file, value: v });
            }
            if let Some(v) = stage.hosts {
                hosts = Some(FromFile { file, value: v });
            }
            if let Some(v) = stage.defaults {
                defaults = Some(FromFile { file, value: v });
            }
            if let Some(v) = stage.registry {
                registry = Some(FromFile { file, value: v });
            }
            if let Some(v) = stage.notify {
                notify = Some(FromFile { file, value: v });
            }
        }

        let name = match name {
            Some(FromFile { file, value }) => {
                let loc = Loc {
                    file,
                    span: value.span(),
                };
                let name = value.into_inner();
                if let Err(message) = check_name("environment", &name) {
                    self.error(&loc, message);
                }
                name
            }
            None => {
                self.error(&Loc { file: env_file, span: 0..0 }, "missing key `name`: every environment needs a name (it goes into every container label)");
                String::new()
            }
        };

        let hosts_file = hosts.as_ref().map_or(env_file, |h| h.file);
        let hosts_file_name = self.sources.file(hosts_file).path.clone();
        let hosts = match hosts {
            Some(FromFile { file, value }) => self.hosts(dir, file, value.into_inner()),
            None => BTreeMap::new(),
        };

        let registry = registry.and_then(|FromFile { file, value }| {
            let url = value.into_inner().url;
            let loc = Loc { file, span: url.span() };
            let url = url.into_inner();
            let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            match rest.map(|r| r.trim_end_matches('/')) {
                Some(host) if split_host_port(host).is_some() => {
                    Some(Registry { url: url.trim_end_matches('/').to_string() })
                }
                _ => {
                    self.error(&loc, format!("invalid registry url {url:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"));
                    None
                }
            }
        });

        let notify = notify.and_then(|FromFile { file, value }| self.notify(file, value));

        let defaults_layer = defaults.as_ref().map(|d| Layer {
            file: d.file,
            origin: Origin {
                file: self.sources.file(d.file).path.clone(),
                table: vec!["defaults".to_string()],
            },
            job: d.value.get_ref(),
        });
        for (profile_name, profile) in &env_raw.profiles {
            if let Some(nested) = &profile.get_ref().profile {
                self.error(
                    &Loc {
                        file: env_file,
                        span: nested.span(),
                    },
                    format!("profile {profile_name:?} names another profile: profiles do not nest"),
                );
            }
        }

        let mut jobs = BTreeMap::new();
        for (job_name, file, raw) in &raw_jobs {
            let mut layers = vec![Layer {
                file: *file,
                origin: Origin {
                    file: self.sources.file(*file).path.clone(),
                    table: Vec::new(),
                },
                job: raw,
            }];
            let profile_ref = raw.profile.as_ref().map(|p| (*file, p)).or_else(|| {
                defaults_layer
                    .as_ref()
                    .and_then(|d| d.job.profile.as_ref().map(|p| (d.file, p)))
            });
            let mut profile_name = None;
            if let Some((pfile, pname)) = profile_ref {
                match env_raw.profiles.get(pname.get_ref()) {
                    Some(profile) => {
                        layers.push(Layer {
                            file: env_file,
                            origin: Origin {
                                file: "drover.toml".to_string(),
                                table: vec!["profiles".to_string(), pname.get_ref().clone()],
                            },
                            job: profile.get_ref(),
                        });
                        profile_name = Some(pname.get_ref().clone());
                    }
                    None => {
                        self.error(
                            &Loc {
                                file: pfile,
                                span: pname.span(),
                            },
                            format!(
                                "unknown profile {:?} (profiles in drover.toml: {})",
                                pname.get_ref(),
                                names_of(env_raw.profiles.keys())
                            ),
                        );
                        // What the job lacks may be in the profile it meant: say only this.
                        continue;
                    }
                }
            }
            if let Some(d) = &defaults_layer {
                layers.push(d.clone());
            }
            if let Some(job) = self.job(
                job_name,
                *file,
                &layers,
                profile_name,
                &hosts,
                &hosts_file_name,
            ) {
                jobs.insert(job_name.clone(), (job, *file, raw.clone()));
            }
        }

        self.check_ports(&jobs, defaults_layer.as_ref(), &env_raw.profiles, env_file);

        Some(Environment {
            name,
            dir: dir.to_path_buf(),
            stage: stage.map(str::to_string),
            hosts,
            hosts_file: hosts_file_name,
            registry,
            notify,
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
            if let Err(message) = check_name("host", &name) {
                self.error(&host_loc, message);
                self.broken_hosts.insert(name);
                continue;
            }
            let host = host.into_inner();
            let docker_loc = Loc {
                file,
                span: host.docker.span(),
            };
            let docker: DockerAddress = match host.docker.get_ref().parse() {
                Ok(address) => address,
                Err(message) => {
                    self.error(&docker_loc, message);
                    self.broken_hosts.insert(name);
                    continue;
                }
            };
            let insecure = host.insecure.as_ref().is_some_and(|i| *i.get_ref());
            let tls = host.tls.map(|tls| {
                let tls_loc = Loc {
                    file,
                    span: tls.span(),
                };
                let place = self.sources.place(&tls_loc);
                if !matches!(docker, DockerAddress::Tcp { .. }) {
                    self.error(&tls_loc, "tls applies only to tcp:// hosts");
                }
                let tls = tls.into_inner();
                let mut resolve = |key: &str, p: &Spanned<String>| {
                    let path = dir.join(p.get_ref());
                    if !path.is_file() {
                        let why = if path.is_dir() {
                            "is a directory"
                        } else {
                            "does not exist"
                        };
                        self.error(
                            &Loc {
                                file,
                                span: p.span(),
                            },
                            format!(
                                "tls {key} file {:?} {why} (a relative path starts at the directory holding drover.toml)",
                                p.get_ref()
                            ),
                        );
                    }
                    path
                };
                TlsFiles {
                    ca: resolve("ca", &tls.ca),
                    cert: resolve("cert", &tls.cert),
                    key: resolve("key", &tls.key),
                    place: Some(place),
                }
            });
            let timeout = match &host.timeout {
                Some(t) => {
                    let loc = Loc {
                        file,
                        span: t.span(),
                    };
                    match duration_at_most("host timeout", t.get_ref(), Duration::from_secs(600)) {
                        Ok(d) if d >= Duration::from_millis(100) => d,
                        Ok(_) => {
                            self.error(&loc, "host timeout must be between 100ms and 10m");
                            DEFAULT_HOST_TIMEOUT
                        }
                        Err(message) => {
                            self.error(&loc, message);
                            DEFAULT_HOST_TIMEOUT
                        }
                    }
                }
                None => DEFAULT_HOST_TIMEOUT,
            };
            let pull_stall = match &host.pull_stall {
                Some(t) => {
                    let loc = Loc {
                        file,
                        span: t.span(),
                    };
                    match duration_at_most("pull_stall", t.get_ref(), MAX_DURATION) {
                        Ok(d) if d >= Duration::from_secs(1) => d,
                        Ok(_) => {
                            self.error(&loc, "pull_stall must be at least 1s");
                            DEFAULT_PULL_STALL
                        }
                        Err(message) => {
                            self.error(&loc, message);
                            DEFAULT_PULL_STALL
                        }
                    }
                }
                None => DEFAULT_PULL_STALL,
            };
            let host = Host {
                name: name.clone(),
                docker,
                tls,
                timeout,
                insecure,
                pull_stall,
            };
            // What connecting would refuse, refused here with its place.
            if let Some(why) = host.refusal() {
                self.error(&docker_loc, why);
            }
            hosts.insert(name, host);
        }
        hosts
    }
}
