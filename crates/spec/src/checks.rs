//! Checks across jobs: what no single job can see on its own.

use std::collections::{BTreeMap, HashMap};

use toml::Spanned;

use crate::load::Loader;
use crate::merge::Layer;
use crate::model::Job;
use crate::raw::RawJob;
use crate::source::Loc;

impl Loader {
    /// Two tasks on one host binding the same port is an error at the second
    /// binding's `ports` list. Jobs are checked in name order, tasks in index order.
    pub(crate) fn check_ports(
        &mut self,
        jobs: &BTreeMap<String, (Job, usize, RawJob)>,
        defaults: Option<&Layer<'_>>,
        profiles: &BTreeMap<String, Spanned<RawJob>>,
        env_file: usize,
    ) {
        let mut bound: HashMap<(String, u16), (String, u32)> = HashMap::new();
        for (name, (job, file, raw)) in jobs {
            // Where the job's ports list was written: the job, its profile or the defaults.
            let written = |file: usize, ports: &Spanned<Vec<Spanned<i64>>>| Loc {
                file,
                span: ports.span(),
            };
            let ports_loc = raw
                .ports
                .as_ref()
                .map(|p| written(*file, p))
                .or_else(|| {
                    job.profile
                        .as_ref()
                        .and_then(|p| profiles.get(p))
                        .and_then(|p| p.get_ref().ports.as_ref())
                        .map(|p| written(env_file, p))
                })
                .or_else(|| defaults.and_then(|d| d.job.ports.as_ref().map(|p| written(d.file, p))))
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
