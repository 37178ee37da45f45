//! Images: list, inspect, pull (with a stall deadline), import, remove.

use std::time::Duration;

use async_trait::async_trait;
use bollard::query_parameters::{CreateImageOptions, ListImagesOptions, RemoveImageOptions};
use futures::StreamExt;

use super::DockerEngine;
use crate::{EngineError, ImageDetails, ImageSummary, Images, PullProgress};

#[async_trait]
impl Images for DockerEngine {
    async fn list_images(&self) -> Result<Vec<ImageSummary>, EngineError> {
        let list = self
            .call(
                "list images",
                self.timeout,
                self.docker.list_images(Some(ListImagesOptions::default())),
            )
            .await?;
        Ok(list
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id,
                repo_tags: i.repo_tags,
                repo_digests: i.repo_digests,
                created: i.created,
                size: i.size,
                labels: i.labels.into_iter().collect(),
            })
            .collect())
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageDetails>, EngineError> {
        match self
            .call(
                "inspect image",
                self.timeout,
                self.docker.inspect_image(reference),
            )
            .await
        {
            Ok(image) => {
                let config = image.config.unwrap_or_default();
                Ok(Some(ImageDetails {
                    id: image.id.unwrap_or_default(),
                    env: config.env.unwrap_or_default(),
                    cmd: config.cmd,
                    repo_tags: image.repo_tags.unwrap_or_default(),
                    repo_digests: image.repo_digests.unwrap_or_default(),
                    created: image.created.unwrap_or_default(),
                }))
            }
            Err(EngineError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A pull may take long on a slow link; it fails only when no progress
    /// arrives for the host's `pull_stall`.
    async fn pull_image(
        &self,
        reference: &str,
        progress: &(dyn for<'p> Fn(&'p PullProgress) + Sync),
    ) -> Result<(), EngineError> {
        let failed = |reason: String| EngineError::Pull {
            host: self.host.clone(),
            image: reference.to_string(),
            reason,
        };
        let options = CreateImageOptions {
            from_image: Some(reference.to_string()),
            ..Default::default()
        };
        let _permit = self.limits.acquire().await;
        let mut events = self.docker.create_image(Some(options), None, None);
        loop {
            let next = match tokio::time::timeout(self.pull_stall, events.next()).await {
                Ok(next) => next,
                Err(_) => {
                    return Err(failed(format!(
                        "no progress for {}s (the host's pull_stall)",
                        self.pull_stall.as_secs()
                    )))
                }
            };
            let Some(event) = next else { return Ok(()) };
            let event = event.map_err(|e| match self.err(e) {
                e @ EngineError::Unreachable { .. } => e,
                EngineError::NotFound(m)
                | EngineError::Api { message: m, .. }
                | EngineError::Other(m)
                | EngineError::Conflict(m) => failed(m),
                other => failed(other.to_string()),
            })?;
            if let Some(error) = event.error_detail.and_then(|d| d.message) {
                return Err(failed(crate::short_message(&error)));
            }
            let detail = event.progress_detail.unwrap_or_default();
            let step = PullProgress {
                status: event.status.unwrap_or_default(),
                current: detail.current.unwrap_or(0),
                total: detail.total.unwrap_or(0),
            };
            progress(&step);
        }
    }

    async fn import_image(&self, reference: &str, rootfs_tar: Vec<u8>) -> Result<(), EngineError> {
        let (repo, tag) = match reference.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag),
            _ => (reference, "latest"),
        };
        let options = CreateImageOptions {
            from_src: Some("-".to_string()),
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            changes: vec!["LABEL drover.internal=true".to_string()],
            ..Default::default()
        };
        let request = async {
            let mut events = self.docker.create_image(
                Some(options),
                Some(bollard::body_full(rootfs_tar.into())),
                None,
            );
            while let Some(event) = events.next().await {
                let event = event?;
                if let Some(error) = event.error_detail.and_then(|d| d.message) {
                    return Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 500,
                        message: error,
                    });
                }
            }
            Ok(())
        };
        self.call("import an image", self.timeout * 3, request)
            .await
    }

    async fn remove_image(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            ..Default::default()
        };
        match self
            .call(
                "remove image",
                self.timeout * 3 + Duration::from_secs(10),
                self.docker.remove_image(id, Some(options), None),
            )
            .await
        {
            Ok(_) | Err(EngineError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
