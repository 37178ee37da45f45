//! What every command starts from: the loaded environment, the selected jobs
//! and hosts, connections to those hosts, and what runs on them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use drover_apply::Engines;
use drover_engine::{observe, DockerEngine, Engine, EngineError};
use drover_plan::{render_job, DesiredTask, HostObservation, Observed, Scope, Secrets};
use drover_spec::{Environment, Job};
use futures::future::join_all;

use crate::cli::Global;

pub struct Context {
    pub env: Environment,
    pub global: Global,
}

/// Hosts connected to, and the ones that could not be reached.
pub struct Connections {
    pub engines: Engines,
    pub unreachable: BTreeMap<String, EngineError>,
}

impl Context {
    pub fn load(global: &Global) -> Result<Self> {
        let dir = match &global.dir {
            Some(dir) => {
                if !dir.join("drover.toml").is_file() {
                    bail!("no drover.toml in {}", dir.display());
                }
                dir.clone()
            }
            None => {
                let cwd = std::env::current_dir().context("cannot read the current directory")?;
                drover_spec::find_dir(&cwd)?
            }
        };
        let env = drover_spec::load(&dir, global.stage.as_deref())?;
        for host in &global.hosts {
            if !env.hosts.contains_key(host) {
                bail!(
                    "unknown host {host:?} given to --host (hosts in the environment: {})",
                    names(env.hosts.keys())
                );
            }
        }
        Ok(Context {
            env,
            global: global.clone(),
        })
    }

    /// The named jobs, or all of them; an unknown name is an error.
    pub fn jobs(&self, wanted: &[String]) -> Result<Vec<&Job>> {
        if wanted.is_empty() {
            return Ok(self.env.jobs.values().collect());
        }
        wanted
            .iter()
            .map(|name| {
                self.env.jobs.get(name).with_context(|| {
                    format!(
                        "unknown job {name:?} (jobs in {}: {})",
                        self.env.dir.join("jobs").display(),
                        names(self.env.jobs.keys())
                    )
                })
            })
            .collect()
    }

    pub fn scope(&self, names: &[String]) -> Scope {
        if names.is_empty() {
            Scope::All
        } else {
            Scope::Jobs(names.iter().cloned().collect())
        }
    }

    /// Hosts to ask: those the jobs run on (or all, for the whole
    /// environment), narrowed by `--host`.
    pub fn hosts_for(&self, jobs: Option<&[&Job]>) -> BTreeSet<String> {
        let mut hosts: BTreeSet<String> = match jobs {
            Some(jobs) => jobs.iter().flat_map(|j| j.hosts.iter().cloned()).collect(),
            None => self.env.hosts.keys().cloned().collect(),
        };
        if !self.global.hosts.is_empty() {
            hosts.retain(|h| self.global.hosts.contains(h));
        }
        hosts
    }

    /// The jobs' tasks, on the selected hosts.
    pub fn desired(&self, jobs: &[&Job], hosts: &BTreeSet<String>) -> Result<Vec<DesiredTask>> {
        let needed: BTreeSet<&str> = jobs
            .iter()
            .flat_map(|j| j.secret_env.iter().map(String::as_str))
            .collect();
        let secrets = load_secrets(&self.env.dir, &needed)?;
        let mut tasks = Vec::new();
        for job in jobs {
            tasks.extend(
                render_job(&self.env, job, &secrets)?
                    .into_iter()
                    .filter(|t| hosts.contains(&t.host)),
            );
        }
        Ok(tasks)
    }

    /// `(job, host, task)` of the jobs' tasks on the selected hosts: what
    /// `status` expects to find, with no secret needed.
    pub fn desired_without_secrets(
        &self,
        jobs: &[&Job],
        hosts: &BTreeSet<String>,
    ) -> Vec<(String, String, u32)> {
        jobs.iter()
            .flat_map(|job| {
                job.tasks()
                    .map(|(host, task)| (job.name.clone(), host.to_string(), task))
            })
            .filter(|(_, host, _)| hosts.contains(host))
            .collect()
    }

    /// Connects to every host at once.
    pub async fn connect(&self, hosts: &BTreeSet<String>) -> Connections {
        let attempts = hosts
            .iter()
            .filter_map(|name| self.env.hosts.get(name))
            .map(|host| async move {
                (
                    host.name.clone(),
                    DockerEngine::connect(host)
                        .await
                        .map(|e| Arc::new(e) as Arc<dyn Engine>),
                )
            });
        let mut connections = Connections {
            engines: BTreeMap::new(),
            unreachable: BTreeMap::new(),
        };
        for (name, result) in join_all(attempts).await {
            match result {
                Ok(engine) => {
                    connections.engines.insert(name, engine);
                }
                Err(e) => {
                    connections.unreachable.insert(name, e);
                }
            }
        }
        connections
    }

    /// Reads every connected host at once; unreachable ones are recorded as such.
    pub async fn observe(&self, connections: &Connections, scope: &Scope) -> Observed {
        let env = self.env.name.as_str();
        let reads = connections.engines.iter().map(|(name, engine)| async move {
            let observation = match observe(engine.as_ref(), env, scope).await {
                Ok(state) => HostObservation::Reachable(state),
                Err(e) => HostObservation::Unreachable {
                    address: engine.address().to_string(),
                    error: e.to_string(),
                },
            };
            (name.clone(), observation)
        });
        let mut hosts: BTreeMap<String, HostObservation> =
            join_all(reads).await.into_iter().collect();
        for (name, error) in &connections.unreachable {
            let address = self
                .env
                .hosts
                .get(name)
                .map(|h| h.docker.to_string())
                .unwrap_or_default();
            let error = match error {
                EngineError::Unreachable { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            hosts.insert(
                name.clone(),
                HostObservation::Unreachable { address, error },
            );
        }
        Observed { hosts }
    }

    /// Whether to use colors on stdout.
    pub fn color(&self) -> bool {
        !self.global.no_color
            && !self.global.json
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stdout().is_terminal()
    }

    /// Asks before changing anything: on a terminal, a y/N question; without
    /// one, only `--yes` lets a change through.
    pub fn confirm(&self, question: &str) -> Result<bool> {
        if self.global.yes {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            bail!("not changing anything without confirmation: there is no terminal to ask on, pass --yes");
        }
        eprint!("{question} [y/N] ");
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
    }
}

/// Secret values: the operator's environment first, then the secrets file
/// (`DROVER_SECRETS_FILE`, or `secrets.env` beside drover.toml), `KEY=VALUE` per line.
fn load_secrets(dir: &Path, needed: &BTreeSet<&str>) -> Result<Secrets> {
    let mut secrets = Secrets::new();
    if needed.is_empty() {
        return Ok(secrets);
    }
    let file = std::env::var_os("DROVER_SECRETS_FILE")
        .map(Into::into)
        .unwrap_or_else(|| dir.join("secrets.env"));
    let from_file: BTreeMap<String, String> = if file.is_file() {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read secrets file {}", file.display()))?;
        parse_secrets(&text).with_context(|| format!("in secrets file {}", file.display()))?
    } else {
        BTreeMap::new()
    };
    for name in needed {
        if let Some(value) = std::env::var_os(name) {
            let value = value.into_string().map_err(|_| {
                anyhow::anyhow!("secret {name} in the environment is not valid UTF-8")
            })?;
            secrets.insert(name.to_string(), value);
        } else if let Some(value) = from_file.get(*name) {
            secrets.insert(name.to_string(), value.clone());
        }
    }
    Ok(secrets)
}

fn parse_secrets(text: &str) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            bail!("line {}: expected KEY=VALUE", number + 1);
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        values.insert(key.trim().to_string(), value.to_string());
    }
    Ok(values)
}

pub fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&str> = names.map(String::as_str).collect();
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_secrets;

    #[test]
    fn secrets_file_lines() {
        let parsed =
            parse_secrets("# comment\nA=1\nexport B = \"two words\"\n\nC='x=y'\n").unwrap();
        assert_eq!(parsed["A"], "1");
        assert_eq!(parsed["B"], "two words");
        assert_eq!(parsed["C"], "x=y");
        assert!(parse_secrets("NOEQUALS\n").is_err());
    }
}
