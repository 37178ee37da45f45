//! Images: list, inspect, pull (with a stall deadline), import, remove.

use std::time::Duration;

use async_trait::async_trait;
use bollard::query_parameters::{
    CreateImageOptions, ListImagesOptions, RemoveImageOptions, TagImageOptions,
};
use drover_plan::ImageDefaults;
use futures::StreamExt;

use super::DockerEngine;
use crate::{EngineError, ImageDetails, ImageRemoval, ImageSummary, Images, PullProgress};

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
                    defaults: ImageDefaults {
                        entrypoint: config.entrypoint,
                        user: config.user.unwrap_or_default(),
                        workdir: config.working_dir.unwrap_or_default(),
                        labels: config.labels.unwrap_or_default().into_iter().collect(),
                    },
                    volumes: config.volumes.unwrap_or_default(),
                    stop_signal: config.stop_signal.filter(|s| !s.is_empty()),
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

    async fn remove_image_reference(&self, reference: &str) -> Result<ImageRemoval, EngineError> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            ..Default::default()
        };
        match self
            .call(
                "remove image",
                self.timeout * 3 + Duration::from_secs(10),
                self.docker.remove_image(reference, Some(options), None),
            )
            .await
        {
            Ok(items) => Ok(ImageRemoval {
                untagged: items.iter().filter_map(|i| i.untagged.clone()).collect(),
                deleted: items.iter().filter_map(|i| i.deleted.clone()).collect(),
            }),
            Err(EngineError::NotFound(_)) => Ok(ImageRemoval::default()),
            Err(e) => Err(e),
        }
    }

    async fn export_image(&self, reference: &str, to: &std::path::Path) -> Result<(), EngineError> {
        self.export_to(reference, to).await
    }

    async fn load_image(&self, from: &std::path::Path) -> Result<(), EngineError> {
        self.load_from(from).await
    }

    async fn tag_image(&self, id: &str, reference: &str) -> Result<(), EngineError> {
        let (repo, tag) = split_tag(reference);
        let options = TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
        };
        self.call(
            "tag image",
            self.timeout,
            self.docker.tag_image(id, Some(options)),
        )
        .await
    }

    async fn push_image(
        &self,
        reference: &str,
        auth: Option<&crate::RegistryAuth>,
        progress: &(dyn for<'p> Fn(&'p PullProgress) + Sync),
    ) -> Result<String, EngineError> {
        self.push(reference, auth, progress).await
    }
}

/// `REPOSITORY:TAG` → (repository, tag); `latest` when no tag is written
/// (a `:` before the last `/` belongs to a registry's port).
fn split_tag(reference: &str) -> (&str, &str) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (
            &reference[..name_start + i],
            &reference[name_start + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

/// Image transfer: export (`docker save`), load, push. Files, not memory:
/// images may be large.
impl DockerEngine {
    pub(crate) async fn export_to(
        &self,
        reference: &str,
        to: &std::path::Path,
    ) -> Result<(), EngineError> {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| EngineError::Other(format!("cannot write {}: {e}", to.display())))?;
        let mut stream = self.docker.export_image(reference);
        loop {
            let next = match tokio::time::timeout(self.pull_stall, stream.next()).await {
                Ok(next) => next,
                Err(_) => return Err(self.timeout_error("export an image", self.pull_stall)),
            };
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| self.err(e))?;
            file.write_all(&chunk)
                .await
                .map_err(|e| EngineError::Other(format!("cannot write {}: {e}", to.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| EngineError::Other(format!("cannot write {}: {e}", to.display())))
    }

    pub(crate) async fn load_from(&self, from: &std::path::Path) -> Result<(), EngineError> {
        let file = tokio::fs::File::open(from)
            .await
            .map_err(|e| EngineError::Other(format!("cannot read {}: {e}", from.display())))?;
        let body = tokio_util::io::ReaderStream::new(file);
        let options = bollard::query_parameters::ImportImageOptions {
            quiet: true,
            ..Default::default()
        };
        let mut events = self.docker.import_image_stream(options, body, None);
        loop {
            let next = match tokio::time::timeout(self.pull_stall, events.next()).await {
                Ok(next) => next,
                Err(_) => return Err(self.timeout_error("load an image", self.pull_stall)),
            };
            let Some(event) = next else { return Ok(()) };
            let event = event.map_err(|e| self.err(e))?;
            if let Some(error) = event.error_detail.and_then(|d| d.message) {
                return Err(EngineError::Other(format!(
                    "loading the image failed: {}",
                    crate::short_message(&error)
                )));
            }
        }
    }

    pub(crate) async fn push(
        &self,
        reference: &str,
        auth: Option<&crate::RegistryAuth>,
        progress: &(dyn for<'p> Fn(&'p PullProgress) + Sync),
    ) -> Result<String, EngineError> {
        let failed = |reason: String| EngineError::Push {
            host: self.host.clone(),
            image: reference.to_string(),
            reason,
        };
        let (name, tag) = match reference.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag.to_string())),
            _ => (reference, None),
        };
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: a.username.clone(),
            password: a.password.clone(),
            identitytoken: a.identity_token.clone(),
            serveraddress: Some(a.server.clone()),
            ..Default::default()
        });
        let options = bollard::query_parameters::PushImageOptions {
            tag,
            platform: None,
        };
        let mut events = self.docker.push_image(name, Some(options), credentials);
        let mut digest = None;
        loop {
            let next = match tokio::time::timeout(self.pull_stall, events.next()).await {
                Ok(next) => next,
                Err(_) => {
                    return Err(failed(format!(
                        "no progress for {}s",
                        self.pull_stall.as_secs()
                    )))
                }
            };
            let Some(event) = next else { break };
            let event = event.map_err(|e| match self.err(e) {
                e @ EngineError::Unreachable { .. } => e,
                other => failed(other.to_string()),
            })?;
            if let Some(error) = event.error_detail.and_then(|d| d.message) {
                return Err(failed(crate::short_message(&error)));
            }
            let status = event.status.unwrap_or_default();
            if let Some(rest) = status.split("digest: ").nth(1) {
                digest = rest.split_whitespace().next().map(str::to_string);
            }
            let detail = event.progress_detail.unwrap_or_default();
            let step = PullProgress {
                status,
                current: detail.current.unwrap_or(0),
                total: detail.total.unwrap_or(0),
            };
            progress(&step);
        }
        digest.ok_or_else(|| {
            failed("the registry did not confirm the push with a digest".to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn a_reference_splits_at_its_tag_not_at_a_registry_port() {
        assert_eq!(
            split_tag("127.0.0.1:5000/web:v2"),
            ("127.0.0.1:5000/web", "v2")
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/web"),
            ("127.0.0.1:5000/web", "latest")
        );
        assert_eq!(split_tag("busybox:1"), ("busybox", "1"));
    }
}
