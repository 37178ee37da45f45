//! Records drover keeps on the hosts and in the files: a job's stop mark
//! (`drover stop` leaves its tasks stopped through `up` until `start`), and
//! the image reference `update` writes where the job's `image` is set.

use std::sync::Arc;

use drover_apply::lock::{operator, stop_mark_labels};
use drover_apply::markers::create_marker;
use drover_engine::{Engine, EngineError};
use drover_plan::{labels, stop_mark_name, ROLE_STOPPED};
use drover_spec::{edit, ImageRef, Origin};

use crate::{now_rfc3339, Connections, Fleet, FleetError};

/// Where `update` writes a job's image, and what is there now. Nothing is
/// written until the change is confirmed and the job's lock is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEdit {
    pub origin: Origin,
    pub old: String,
    pub new: String,
    /// The image was set for other jobs too (a profile or the defaults), so
    /// it goes into the job's own file instead.
    pub moved_to_job_file: bool,
    pub edit: edit::Edit,
}

impl Fleet {
    /// Marks `job` as stopped by drover on each of `hosts`.
    pub async fn mark_stopped(
        &self,
        hosts: &[(String, Arc<dyn Engine>)],
        job: &str,
    ) -> Vec<(String, EngineError)> {
        let mut errors = Vec::new();
        let (by, at) = (operator(), now_rfc3339());
        for (host, engine) in hosts {
            let name = stop_mark_name(&self.env.name, job, host);
            match create_marker(
                engine.as_ref(),
                &name,
                stop_mark_labels(&self.env.name, job, host, &by, &at),
            )
            .await
            {
                Ok(_) | Err(EngineError::Conflict(_)) => {}
                Err(e) => errors.push((host.clone(), e)),
            }
        }
        errors
    }

    /// Removes `job`'s stop marks from every connected host.
    pub async fn unmark_stopped(
        &self,
        connections: &Connections,
        job: &str,
    ) -> Vec<(String, EngineError)> {
        let mut errors = Vec::new();
        for (host, engine) in &connections.engines {
            let name = stop_mark_name(&self.env.name, job, host);
            match engine.inspect_container(&name).await {
                Ok(Some(mark))
                    if mark.labels.get(labels::ROLE).map(String::as_str) == Some(ROLE_STOPPED) =>
                {
                    if let Err(e) = engine.remove_container(&mark.id).await {
                        errors.push((host.clone(), e));
                    }
                }
                Ok(_) => {}
                Err(e) => errors.push((host.clone(), e)),
            }
        }
        errors
    }

    /// Where and how `image` would be written for `job`: where its image is
    /// set, changing nothing else in the file. When that place (a profile,
    /// the defaults) also gives other jobs their image, the job's own file
    /// gets the key instead, so the update changes this job only. Writes nothing.
    pub fn image_edit(&self, job: &str, image: &ImageRef) -> Result<ImageEdit, FleetError> {
        let spec = self.job(job)?;
        let origin = &spec.image_origin;
        let shared = !origin.table.is_empty()
            && self
                .env
                .jobs
                .values()
                .any(|other| other.name != spec.name && other.image_origin == *origin);
        let target = if shared {
            Origin {
                file: spec.file.clone(),
                table: Vec::new(),
            }
        } else {
            origin.clone()
        };
        let edit = edit::set_string(&self.env.dir, &target, "image", image.as_str())?;
        Ok(ImageEdit {
            origin: target,
            old: spec.image.to_string(),
            new: image.to_string(),
            moved_to_job_file: shared,
            edit,
        })
    }
}
