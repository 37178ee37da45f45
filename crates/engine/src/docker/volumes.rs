//! Volumes: list, remove.

use async_trait::async_trait;
use bollard::query_parameters::RemoveVolumeOptions;

use super::DockerEngine;
use crate::{is_anonymous_volume, EngineError, VolumeSummary, Volumes};

#[async_trait]
impl Volumes for DockerEngine {
    async fn list_volumes(&self) -> Result<Vec<VolumeSummary>, EngineError> {
        // As JSON: older engines send `null` where bollard's model wants a map.
        let list = self
            .get_json("list volumes", "/volumes", self.timeout)
            .await?;
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        Ok(list["Volumes"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|v| {
                        let name = text(&v["Name"]);
                        let labels = v["Labels"]
                            .as_object()
                            .map(|labels| {
                                labels.iter().map(|(k, v)| (k.clone(), text(v))).collect()
                            })
                            .unwrap_or_default();
                        VolumeSummary {
                            anonymous: is_anonymous_volume(
                                &name,
                                &labels,
                                self.marks_anonymous_volumes(),
                            ),
                            name,
                            driver: text(&v["Driver"]),
                            labels,
                            by_mark: self.marks_anonymous_volumes(),
                        }
                    })
                    .filter(|v| !v.name.is_empty())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        match self
            .call(
                "remove volume",
                self.timeout * 3,
                self.docker
                    .remove_volume(name, Some(RemoveVolumeOptions { force: false })),
            )
            .await
        {
            Ok(()) | Err(EngineError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
