//! The engine itself: version, info, disk use.

use async_trait::async_trait;

use super::DockerEngine;
use crate::{
    DiskUsage, EngineError, EngineInfo, EngineVersion, FilesystemSpace, ItemSpace, System,
};

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

    async fn item_space(&self) -> Result<ItemSpace, EngineError> {
        // API 1.42 can measure images and volumes alone; older engines measure everything.
        let path = if self.api >= (1, 42) {
            "/system/df?type=image&type=volume&verbose=1"
        } else {
            "/system/df"
        };
        let df = self
            .get_json("read image and volume sizes", path, self.timeout * 6)
            .await?;
        // Engines before API 1.52 answer with lists, newer ones with `…Usage.Items`.
        let items = |list: &str, usage: &str| -> Vec<serde_json::Value> {
            df[list]
                .as_array()
                .or_else(|| df[usage]["Items"].as_array())
                .cloned()
                .unwrap_or_default()
        };
        let bytes = |v: &serde_json::Value| u64::try_from(v.as_i64()?).ok();
        let images = items("Images", "ImageUsage")
            .iter()
            .filter_map(|image| {
                let id = image["Id"].as_str()?;
                // -1: not computed.
                let shared = bytes(&image["SharedSize"])?;
                let size = bytes(&image["Size"])?;
                Some((id.to_string(), size.saturating_sub(shared)))
            })
            .collect();
        let volumes = items("Volumes", "VolumeUsage")
            .iter()
            .filter_map(|v| {
                let name = v["Name"].as_str()?;
                // -1: not measured.
                Some((name.to_string(), bytes(&v["UsageData"]["Size"])?))
            })
            .collect();
        Ok(ItemSpace { images, volumes })
    }

    async fn data_root_space(
        &self,
        data_root: &str,
    ) -> Result<Option<FilesystemSpace>, EngineError> {
        // Only an engine on this machine has its data root here; a path of
        // the same name behind any other transport is another filesystem.
        if !self.address.starts_with("unix://") || !data_root.starts_with('/') {
            return Ok(None);
        }
        let path = data_root.to_string();
        let read = tokio::task::spawn_blocking(move || statvfs(&path));
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(space)) => Ok(space),
            Ok(Err(_)) => Ok(None),
            Err(_) => Err(self.timeout_error("read the data root's free space", self.timeout)),
        }
    }
}

/// `statvfs(2)` of `path`; `None` when this machine cannot see it.
// The field types differ between targets (u32 on some, u64 on others).
#[allow(clippy::useless_conversion)]
fn statvfs(path: &str) -> Option<FilesystemSpace> {
    let c_path = std::ffi::CString::new(path).ok()?;
    // SAFETY: statvfs writes into the zeroed struct it is given, and reads
    // the NUL-terminated path only.
    let stat = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut stat) != 0 {
            return None;
        }
        stat
    };
    let fragment = u64::from(stat.f_frsize).max(1);
    Some(FilesystemSpace {
        total_bytes: u64::from(stat.f_blocks).saturating_mul(fragment),
        free_bytes: u64::from(stat.f_bavail).saturating_mul(fragment),
        total_inodes: u64::from(stat.f_files),
        free_inodes: u64::from(stat.f_favail),
    })
}
