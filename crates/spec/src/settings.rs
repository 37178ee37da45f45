//! The container settings hand-run fleets use (`entrypoint`, `user`,
//! `workdir`, `cpus`, `ulimits`, `cap_add`, `cap_drop`, `labels`,
//! `extra_hosts`, `tmpfs`, `shm_size`, `privileged`, `devices`), merged and
//! checked like every other job key.
//!
//! They live apart from [`crate::job`] because they are many and alike: each
//! is what `docker run` takes, refused here with its place where the engine,
//! runc or the kernel would refuse it at create or start, so that a job
//! `validate` accepts is one `up` makes and `diff` then calls unchanged.

use std::collections::BTreeMap;

use toml::Spanned;

use crate::job::MAX_MEMORY;
use crate::load::Loader;
use crate::merge::{pick, Layer, Picked};
use crate::model::*;
use crate::raw::{EnvScalar, RawJob};
use crate::source::Loc;
use crate::units::size_at_most;
use crate::values::{check_abs_path, check_label_key, check_user};

/// The settings of one job, merged from its layers.
pub(crate) struct Settings {
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub cpus: Option<Cpus>,
    pub ulimits: BTreeMap<String, Ulimit>,
    pub cap_add: Vec<Capability>,
    pub cap_drop: Vec<Capability>,
    pub labels: BTreeMap<String, String>,
    pub extra_hosts: Vec<ExtraHost>,
    pub tmpfs: Vec<Tmpfs>,
    pub shm_size: Option<u64>,
    pub privileged: bool,
    pub devices: Vec<Device>,
}

type List = Spanned<Vec<Spanned<String>>>;

impl Loader {
    /// `volumes` and `host_files` are the job's own, already checked: a
    /// tmpfs cannot share a container path with either.
    pub(crate) fn settings(
        &mut self,
        layers: &[Layer<'_>],
        volumes: &[Volume],
        host_files: &[String],
    ) -> Settings {
        let entrypoint = pick(layers, |j| j.entrypoint.as_ref()).map(|Picked { loc, value, .. }| {
            if let Some(program) = value.first().filter(|p| p.get_ref().is_empty()) {
                self.error(
                    &Loc { file: loc.file, span: program.span() },
                    "the entrypoint's program must not be empty (entrypoint = [] runs none, not even the image's)",
                );
            }
            self.strings_without_nul(value, loc.file, "entrypoint")
        });
        let user = self.checked(layers, |j| j.user.as_ref(), check_user);
        let workdir = self.checked(
            layers,
            |j| j.workdir.as_ref(),
            |w| check_abs_path("workdir", w),
        );
        let cpus = pick(layers, |j| j.cpus.as_ref()).and_then(|Picked { loc, value, .. }| {
            let parsed = match value {
                EnvScalar::Bool(b) => Err(format!(
                    "invalid cpus {b}: expected a number of CPUs, e.g. \"0.5\", \"1.5\" or \"2\""
                )),
                other => other.to_text().parse::<Cpus>(),
            };
            parsed.map_err(|message| self.error(&loc, message)).ok()
        });
        let ulimits = self.ulimits(layers);

        let cap_add = self.capabilities(layers, |j| j.cap_add.as_ref(), "cap_add");
        let cap_drop = self.capabilities(layers, |j| j.cap_drop.as_ref(), "cap_drop");
        for (cap, loc) in &cap_drop {
            if cap_add.iter().any(|(added, _)| added == cap) {
                self.error(
                    loc,
                    format!("capability {cap} is both in cap_add and in cap_drop"),
                );
            }
        }
        let privileged = pick(layers, |j| j.privileged.as_ref());
        if let Some(Picked { loc, .. }) = privileged.as_ref().filter(|p| *p.value) {
            if !cap_add.is_empty() || !cap_drop.is_empty() {
                self.error(loc, "privileged = true grants every capability: cap_add and cap_drop would have no effect (set them to [] here, or drop privileged)");
            }
        }

        let labels = self.labels(layers);
        let extra_hosts = self.extra_hosts(layers);
        let tmpfs = self.tmpfs(layers, volumes, host_files);
        let shm_size = self.shm_size(layers);
        let devices = self.devices(layers);

        let sorted = |mut caps: Vec<(Capability, Loc)>| {
            caps.sort_by(|a, b| a.0.cmp(&b.0));
            caps.into_iter().map(|(cap, _)| cap).collect()
        };
        Settings {
            entrypoint,
            user,
            workdir,
            cpus,
            ulimits,
            cap_add: sorted(cap_add),
            cap_drop: sorted(cap_drop),
            labels,
            extra_hosts,
            tmpfs,
            shm_size,
            privileged: privileged.is_some_and(|p| *p.value),
            devices,
        }
    }

    /// A single text value, `check`ed where it was written.
    fn checked<'a>(
        &mut self,
        layers: &[Layer<'a>],
        get: impl Fn(&'a RawJob) -> Option<&'a Spanned<String>>,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let Picked { loc, value, .. } = pick(layers, get)?;
        match check(value) {
            Ok(()) => Some(value.clone()),
            Err(message) => {
                self.error(&loc, message);
                None
            }
        }
    }

    /// Every item of a list key parsed, with its place; bad items reported.
    fn parsed<'a, T: std::str::FromStr<Err = String>>(
        &mut self,
        layers: &[Layer<'a>],
        get: impl Fn(&'a RawJob) -> Option<&'a List>,
    ) -> Vec<(T, Loc)> {
        let Some(Picked { loc, value, .. }) = pick(layers, get) else {
            return Vec::new();
        };
        let mut items = Vec::new();
        for item in value {
            let iloc = Loc {
                file: loc.file,
                span: item.span(),
            };
            match item.get_ref().parse::<T>() {
                Ok(parsed) => items.push((parsed, iloc)),
                Err(message) => self.error(&iloc, message),
            }
        }
        items
    }

    fn capabilities<'a>(
        &mut self,
        layers: &[Layer<'a>],
        get: impl Fn(&'a RawJob) -> Option<&'a List>,
        key: &str,
    ) -> Vec<(Capability, Loc)> {
        let mut caps: Vec<(Capability, Loc)> = Vec::new();
        for (cap, loc) in self.parsed::<Capability>(layers, get) {
            if caps.iter().any(|(c, _)| *c == cap) {
                self.error(&loc, format!("capability {cap} is listed twice in {key}"));
            } else {
                caps.push((cap, loc));
            }
        }
        caps
    }

    /// Merged entry by entry, like `env`: the job's limit for a name wins.
    fn ulimits(&mut self, layers: &[Layer<'_>]) -> BTreeMap<String, Ulimit> {
        let mut ulimits = BTreeMap::new();
        for layer in layers.iter().rev() {
            for (name, value) in layer.job.ulimits.iter().flat_map(|u| u.get_ref()) {
                let loc = Loc {
                    file: layer.file,
                    span: value.span(),
                };
                let parsed = match value.get_ref() {
                    EnvScalar::String(text) => Ulimit::parse(name, text),
                    EnvScalar::Integer(n) => Ulimit::parse(name, &n.to_string()),
                    other => Err(format!("invalid ulimit {name} {}: expected a limit or \"SOFT:HARD\", each a whole number, or -1 for unlimited", other.to_text())),
                };
                match parsed {
                    Ok(ulimit) => {
                        ulimits.insert(name.clone(), ulimit);
                    }
                    Err(message) => self.error(&loc, message),
                }
            }
        }
        ulimits
    }

    /// Merged entry by entry, like `env`.
    fn labels(&mut self, layers: &[Layer<'_>]) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        for layer in layers.iter().rev() {
            for (key, value) in layer.job.labels.iter().flat_map(|l| l.get_ref()) {
                let loc = Loc {
                    file: layer.file,
                    span: value.span(),
                };
                let text = value.get_ref().to_text();
                if let Err(message) = check_label_key(key) {
                    self.error(&loc, message);
                } else if text.contains('\0') {
                    self.error(
                        &loc,
                        format!("the value of label {key:?} contains a NUL character"),
                    );
                } else {
                    labels.insert(key.clone(), text);
                }
            }
        }
        labels
    }

    fn extra_hosts(&mut self, layers: &[Layer<'_>]) -> Vec<ExtraHost> {
        let mut hosts: Vec<ExtraHost> = Vec::new();
        for (host, loc) in self.parsed::<ExtraHost>(layers, |j| j.extra_hosts.as_ref()) {
            if hosts.contains(&host) {
                self.error(&loc, format!("extra host \"{host}\" is listed twice"));
            } else {
                hosts.push(host);
            }
        }
        hosts
    }

    fn tmpfs(
        &mut self,
        layers: &[Layer<'_>],
        volumes: &[Volume],
        host_files: &[String],
    ) -> Vec<Tmpfs> {
        let mut mounts: Vec<Tmpfs> = Vec::new();
        for (tmpfs, loc) in self.parsed::<Tmpfs>(layers, |j| j.tmpfs.as_ref()) {
            let path = &tmpfs.path;
            if mounts.iter().any(|t| &t.path == path) {
                self.error(
                    &loc,
                    format!("two tmpfs are mounted at {path:?}: each container path takes one"),
                );
            } else if let Some(v) = volumes.iter().find(|v| &v.container == path) {
                self.error(&loc, format!("{path:?} is both a tmpfs and the container path of volume {v}: drop one of them"));
            } else if host_files.contains(path) {
                self.error(
                    &loc,
                    format!("{path:?} is both a tmpfs and a host file: drop one of them"),
                );
            } else {
                mounts.push(tmpfs);
            }
        }
        mounts
    }

    fn shm_size(&mut self, layers: &[Layer<'_>]) -> Option<u64> {
        let Picked {
            loc, value: text, ..
        } = pick(layers, |j| j.shm_size.as_ref())?;
        match size_at_most("shm_size", text, MAX_MEMORY) {
            Ok(0) => {
                self.error(
                    &loc,
                    "shm_size must be above 0: leave it out for the engine's default (64m)",
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

    fn devices(&mut self, layers: &[Layer<'_>]) -> Vec<Device> {
        let mut devices: Vec<Device> = Vec::new();
        for (device, loc) in self.parsed::<Device>(layers, |j| j.devices.as_ref()) {
            if let Some(other) = devices.iter().find(|d| d.container == device.container) {
                self.error(&loc, format!("two devices are at {:?} in the container (\"{other}\" and \"{device}\"): each container path takes one", device.container));
            } else {
                devices.push(device);
            }
        }
        devices
    }
}
