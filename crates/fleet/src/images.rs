//! `images JOB`: the tags of the job's image repository, from the registry
//! and from each host, newest first, marking which hosts have each and which
//! tasks run it. What `update` offers to pick from.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use drover_plan::views::{status_rows, Presence};
use drover_registry::RegistryClient;
use futures::future::join_all;
use serde::Serialize;

use crate::{Connections, Fleet, FleetError};
use drover_plan::time;

/// How long one registry request may take.
pub(crate) const REGISTRY_TIMEOUT: Duration = Duration::from_secs(15);

/// One tag of the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRow {
    pub tag: String,
    /// `REPOSITORY:TAG` as the job would write it.
    pub reference: String,
    /// When the image was built (RFC 3339), from the registry or a host.
    pub created: Option<String>,
    #[serde(skip)]
    pub created_unix: Option<i64>,
    /// The manifest digest in the registry.
    pub digest: Option<String>,
    /// The image ID (the config digest).
    pub image_id: Option<String>,
    pub in_registry: bool,
    /// Hosts that have it.
    pub hosts: Vec<String>,
    /// Tasks running it, as `HOST/TASK`.
    pub running: Vec<String>,
    /// The spec names this tag.
    pub in_spec: bool,
    /// Why the registry could not tell more about it.
    pub error: Option<String>,
}

pub struct ImagesReport {
    /// The repository as the job's image names it (`reg:5000/team/app`).
    pub repository: String,
    pub rows: Vec<ImageRow>,
    /// Why the registry could not be read (the hosts' tags are still listed).
    pub registry_error: Option<String>,
    pub unreachable: Vec<(String, String, String)>,
}

impl Fleet {
    /// The tags of `job`'s image repository, newest first.
    pub async fn images(
        &self,
        connections: &Connections,
        job: &str,
    ) -> Result<ImagesReport, FleetError> {
        let spec = self.job(job)?;
        let Some(written) = spec.image.written_repository() else {
            return Err(FleetError::Other(format!("job {job}'s image is an image ID ({}): it has no repository to list tags of; name it by tag in {}", spec.image, spec.image_origin.describe())));
        };
        let repository = written.to_string();
        let path = spec.image.path().unwrap_or_default().to_string();

        let registry = async {
            let Some(registry) = &self.env.registry else {
                return Err("drover.toml has no [registry] (add `[registry] url = \"http://HOST:PORT\"` to list its tags)".to_string());
            };
            let client =
                RegistryClient::with_credentials_from_environment(&registry.url, REGISTRY_TIMEOUT)
                    .map_err(|e| e.to_string())?;
            client
                .tags_newest_first(&path)
                .await
                .map_err(|e| e.to_string())
        };
        let hosts = join_all(
            connections
                .engines
                .iter()
                .map(|(name, engine)| async move { (name.clone(), engine.list_images().await) }),
        );
        let scope = Fleet::scope(&[job.to_string()]);
        let observed = self.observe(connections, &scope);
        let (registry, hosts, observed) = tokio::join!(registry, hosts, observed);

        let mut rows: BTreeMap<String, ImageRow> = BTreeMap::new();
        let row = |rows: &mut BTreeMap<String, ImageRow>, tag: &str| -> ImageRow {
            rows.remove(tag).unwrap_or_else(|| ImageRow {
                tag: tag.to_string(),
                reference: format!("{repository}:{tag}"),
                created: None,
                created_unix: None,
                digest: None,
                image_id: None,
                in_registry: false,
                hosts: Vec::new(),
                running: Vec::new(),
                in_spec: spec.image.tag() == Some(tag),
                error: None,
            })
        };
        let registry_error = match registry {
            Ok(tags) => {
                for info in tags {
                    let mut r = row(&mut rows, &info.tag);
                    r.in_registry = true;
                    r.created.clone_from(&info.created);
                    r.created_unix = info.created_unix;
                    r.digest = info.digest;
                    r.image_id = info.config_digest;
                    r.error = info.error;
                    rows.insert(info.tag, r);
                }
                None
            }
            Err(e) => Some(e),
        };
        let prefix = format!("{}:", spec.image.repository().unwrap_or(&repository));
        let mut unreachable = Vec::new();
        for (host, images) in hosts {
            let images = match images {
                Ok(images) => images,
                Err(e) => {
                    let address = self
                        .env
                        .hosts
                        .get(&host)
                        .map(|h| h.docker.to_string())
                        .unwrap_or_default();
                    unreachable.push((host, address, e.to_string()));
                    continue;
                }
            };
            for image in images {
                let tags: BTreeSet<&str> = image
                    .repo_tags
                    .iter()
                    .filter_map(|t| t.strip_prefix(&prefix))
                    .collect();
                // Present by tag, or as the very image a registry tag names.
                let by_id: Vec<String> = rows
                    .values()
                    .filter(|r| r.in_registry && r.image_id.as_deref() == Some(image.id.as_str()))
                    .map(|r| r.tag.clone())
                    .collect();
                for tag in tags.iter().map(|t| t.to_string()).chain(by_id) {
                    let mut r = row(&mut rows, &tag);
                    if !r.hosts.contains(&host) {
                        r.hosts.push(host.clone());
                    }
                    if r.created_unix.is_none() && image.created > 0 {
                        r.created_unix = Some(image.created);
                        r.created = time::from_unix_secs(image.created).map(time::format);
                    }
                    if r.image_id.is_none() {
                        r.image_id = Some(image.id.clone());
                    }
                    rows.insert(tag, r);
                }
            }
        }
        // Which task runs which tag (by the tag it was created from, or its image ID).
        let keys = self.task_keys(&[spec]);
        for task in status_rows(
            &self.env.name,
            &keys,
            &observed,
            &scope,
            &self.known_hosts(),
        ) {
            let (Some(c), Presence::Found) = (task.container, task.presence) else {
                continue;
            };
            let name = format!(
                "{}/{}",
                task.host,
                task.task.map_or("?".to_string(), |t| t.to_string())
            );
            let by_tag = c
                .config
                .image
                .strip_prefix(&format!("{repository}:"))
                .map(str::to_string);
            let tag = by_tag.or_else(|| {
                rows.values()
                    .find(|r| r.image_id.as_deref() == Some(c.image_id.as_str()))
                    .map(|r| r.tag.clone())
            });
            if let Some(tag) = tag {
                let mut r = row(&mut rows, &tag);
                r.running.push(name);
                rows.insert(tag, r);
            }
        }
        let mut rows: Vec<ImageRow> = rows.into_values().collect();
        for r in &mut rows {
            if r.created_unix.is_none() {
                r.created_unix = r
                    .created
                    .as_deref()
                    .and_then(time::parse)
                    .map(time::unix_secs);
            }
            r.hosts.sort();
            r.running.sort();
        }
        rows.sort_by(|a, b| {
            b.created_unix
                .cmp(&a.created_unix)
                .then_with(|| b.tag.cmp(&a.tag))
        });
        for (host, address, error) in observed.hosts.iter().filter_map(|(h, o)| match o {
            drover_plan::HostObservation::Unreachable { address, error } => {
                Some((h, address, error))
            }
            drover_plan::HostObservation::Reachable(_) => None,
        }) {
            if !unreachable.iter().any(|(h, _, _)| h == host) {
                unreachable.push((host.clone(), address.clone(), error.clone()));
            }
        }
        Ok(ImagesReport {
            repository,
            rows,
            registry_error,
            unreachable,
        })
    }
}
