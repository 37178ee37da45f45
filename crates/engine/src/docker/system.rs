//! The engine itself: version, info, disk use.

use async_trait::async_trait;

use super::DockerEngine;
use crate::{DiskUsage, EngineError, EngineInfo, EngineVersion, System};

#[async_trait]
impl System for DockerEngine {
    async fn version(&self) -> Result<EngineVersion, EngineError> {
        let v = self
            .call(
                "read the engine version",
                self.timeout,
                self.docker.version(),
            )
            .await?;
        Ok(EngineVersion {
            version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
        })
    }

    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let info = self
            .call("read the engine info", self.timeout, self.docker.info())
            .await?;
        Ok(EngineInfo {
            name: info.name.unwrap_or_default(),
            data_root: info.docker_root_dir.unwrap_or_default(),
            log_driver: info.logging_driver.unwrap_or_default(),
            containers: info.containers.unwrap_or(0),
            images: info.images.unwrap_or(0),
        })
    }

    async fn disk_usage(&self) -> Result<DiskUsage, EngineError> {
        // Engines before API 1.52 answer with lists; bollard's model has only the newer totals.
        let df = self
            .get_json("read disk use", "/system/df", self.timeout * 6)
            .await?;
        let sum = |list: &str, field: &dyn Fn(&serde_json::Value) -> i64| -> i64 {
            df[list]
                .as_array()
                .map_or(0, |items| items.iter().map(field).map(|n| n.max(0)).sum())
        };
        let total = |usage: &str| df[usage]["TotalSize"].as_i64().unwrap_or(0);
        let images = df["LayersSize"]
            .as_i64()
            .unwrap_or_else(|| total("ImageUsage"));
        let containers = if df["Containers"].is_array() {
            sum("Containers", &|c| c["SizeRw"].as_i64().unwrap_or(0))
        } else {
            total("ContainerUsage")
        };
        let volumes = if df["Volumes"].is_array() {
            sum("Volumes", &|v| v["UsageData"]["Size"].as_i64().unwrap_or(0))
        } else {
            total("VolumeUsage")
        };
        let build_cache = if df["BuildCache"].is_array() {
            sum("BuildCache", &|b| b["Size"].as_i64().unwrap_or(0))
        } else {
            total("BuildCacheUsage")
        };
        Ok(DiskUsage {
            images,
            containers,
            volumes,
            build_cache,
        })
    }
}
