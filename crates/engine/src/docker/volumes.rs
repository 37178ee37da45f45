//! Volumes: list, remove, sizes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bollard::query_parameters::RemoveVolumeOptions;

use super::DockerEngine;
use crate::{EngineError, VolumeSummary, Volumes};

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
                    .map(|v| VolumeSummary {
                        name: text(&v["Name"]),
                        driver: text(&v["Driver"]),
                        labels: v["Labels"]
                            .as_object()
                            .map(|labels| {
                                labels.iter().map(|(k, v)| (k.clone(), text(v))).collect()
                            })
                            .unwrap_or_default(),
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

    async fn volume_sizes(&self) -> Result<BTreeMap<String, u64>, EngineError> {
        // API 1.42 can measure volumes alone; older engines measure everything.
        let path = if self.api >= (1, 42) {
            "/system/df?type=volume&verbose=1"
        } else {
            "/system/df"
        };
        let df = self
            .get_json("read volume sizes", path, self.timeout * 6)
            .await?;
        let list = df["Volumes"]
            .as_array()
            .or_else(|| df["VolumeUsage"]["Items"].as_array());
        Ok(list
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| {
                        let name = v["Name"].as_str()?;
                        // -1: not measured.
                        let size = u64::try_from(v["UsageData"]["Size"].as_i64()?).ok()?;
                        Some((name.to_string(), size))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}
