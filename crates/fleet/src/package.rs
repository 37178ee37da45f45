//! `package`: the job's image from three things only — its `base` image,
//! an artifact (a file or a directory) put at `artifact_path`, and its
//! `command` — built on one host through the Engine API and pushed.
//!
//! No Dockerfile and no builder: the engine's classic builder stamps every
//! image with the time it was built, so the same inputs would never give
//! the same image. drover instead exports the base (`docker save`), adds
//! one layer it writes itself — entries sorted, owned by root, every time
//! set to zero — and a config derived from the base's with the command and
//! that layer, dated as the base is, then loads the result (`docker load`)
//! and pushes it. The same base, artifact and command give the same image
//! ID, and the same digest in the registry.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use drover_engine::RegistryAuth;
use drover_registry::{split_reference, Credentials};
use drover_spec::ImageRef;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{Connections, Fleet, FleetError};

/// What `package` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packaged {
    /// `REPOSITORY:TAG`, as pushed.
    pub reference: String,
    /// The image ID (the config's digest).
    pub image_id: String,
    /// The manifest digest the registry confirmed.
    pub digest: String,
    /// The host it was built on.
    pub host: String,
}

fn error(message: impl Into<String>) -> FleetError {
    FleetError::Other(message.into())
}

impl Fleet {
    /// Builds and pushes `job`'s image with `artifact`; `progress` hears each stage.
    pub async fn package(
        &self,
        connections: &Connections,
        job: &str,
        artifact: &Path,
        tag: Option<&str>,
        host: Option<&str>,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Packaged, FleetError> {
        let spec = self.job(job)?;
        let Some(base) = &spec.base else {
            return Err(error(format!("job {job} has no `base`: set base = \"REGISTRY/IMAGE:TAG\" (the image the artifact goes onto) in {} or its profile", spec.file)));
        };
        let Some(repository) = spec.image.written_repository() else {
            return Err(error(format!("job {job}'s image is an image ID: name it by repository (image = \"REGISTRY/NAME:TAG\") so package knows where to push")));
        };
        let meta = std::fs::symlink_metadata(artifact)
            .map_err(|e| error(format!("artifact {}: {}", artifact.display(), io_words(&e))))?;
        if !meta.is_dir() && !meta.is_file() {
            return Err(error(format!(
                "artifact {} is neither a file nor a directory",
                artifact.display()
            )));
        }
        let tag = match tag {
            Some(tag) => tag.to_string(),
            None => default_tag(&self.env.dir),
        };
        let reference: ImageRef = format!("{repository}:{tag}")
            .parse()
            .map_err(|e: String| error(format!("--tag: {e}")))?;
        let host = match host {
            Some(host) => host.to_string(),
            None => spec.hosts.first().cloned().ok_or_else(|| {
                error(format!(
                    "job {job} lists no hosts to build on: pass --host NAME"
                ))
            })?,
        };
        let engine = connections.engines.get(&host).cloned().ok_or_else(|| match connections.unreachable.get(&host) {
            Some(e) => error(format!("cannot build on host {host}: {e}")),
            None => error(format!("host {host} is not connected (is it in drover.toml, and not left out by --host?)")),
        })?;

        if engine
            .inspect_image(base.as_str())
            .await
            .map_err(|e| error(e.to_string()))?
            .is_none()
        {
            progress(&format!("pulling the base {base} on {host}"));
            engine
                .pull_image(base.as_str(), &|_| {})
                .await
                .map_err(|e| {
                    error(format!(
                        "the base image {base} cannot be had on host {host}: {e}"
                    ))
                })?;
        }
        let work = tempfile::Builder::new()
            .prefix("drover-package")
            .tempdir()
            .map_err(|e| error(format!("cannot make a work directory: {e}")))?;
        progress(&format!("exporting the base {base} from {host}"));
        let base_tar = work.path().join("base.tar");
        engine
            .export_image(base.as_str(), &base_tar)
            .await
            .map_err(|e| error(e.to_string()))?;

        progress(&format!(
            "adding {} at {}",
            artifact.display(),
            spec.artifact_path
        ));
        let image_tar = work.path().join("image.tar");
        let (artifact, artifact_path, command, base_text, reference_text) = (
            artifact.to_path_buf(),
            spec.artifact_path.clone(),
            spec.command.clone(),
            base.to_string(),
            reference.to_string(),
        );
        let image_id = tokio::task::spawn_blocking(move || {
            compose(
                &base_tar,
                &image_tar,
                &artifact,
                &artifact_path,
                command.as_deref(),
                &base_text,
                &reference_text,
            )
        })
        .await
        .map_err(|e| error(format!("building the image failed: {e}")))??;

        // Unchanged inputs make the same image: a host that has it already
        // (under this name or another) needs no second copy, only the name.
        let here = |name: &str| {
            let engine = engine.clone();
            let (name, image_id) = (name.to_string(), image_id.clone());
            async move {
                engine
                    .inspect_image(&name)
                    .await
                    .map(|found| found.is_some_and(|image| image.id == image_id))
                    .map_err(|e| error(e.to_string()))
            }
        };
        if here(reference.as_str()).await? {
            progress(&format!("{reference} is already {image_id} on {host}"));
        } else if here(&image_id).await? {
            progress(&format!(
                "{host} has {image_id} already: tagging it {reference}"
            ));
            engine
                .tag_image(&image_id, reference.as_str())
                .await
                .map_err(|e| error(e.to_string()))?;
        } else {
            progress(&format!("loading {reference} on {host}"));
            engine
                .load_image(&work.path().join("image.tar"))
                .await
                .map_err(|e| error(e.to_string()))?;
        }
        match engine.inspect_image(reference.as_str()).await {
            Ok(Some(image)) if image.id == image_id => {}
            Ok(Some(image)) => {
                return Err(error(format!(
                    "host {host} loaded {reference} as {}, not the {image_id} drover built",
                    image.id
                )))
            }
            Ok(None) => {
                return Err(error(format!(
                    "host {host} did not keep {reference} after loading it"
                )))
            }
            Err(e) => return Err(error(e.to_string())),
        }

        progress(&format!("pushing {reference}"));
        let (registry, _, _) = split_reference(reference.as_str());
        let auth = Credentials::lookup(&registry)
            .map_err(|e| error(e.to_string()))?
            .map(|c| {
                let (username, password, identity_token) = c.for_engine();
                RegistryAuth {
                    server: registry.clone(),
                    username,
                    password,
                    identity_token,
                }
            });
        let digest = engine
            .push_image(reference.as_str(), auth.as_ref(), &|_| {})
            .await
            .map_err(|e| error(e.to_string()))?;
        Ok(Packaged {
            reference: reference.to_string(),
            image_id,
            digest,
            host,
        })
    }
}

fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    text.split(" (os error")
        .next()
        .unwrap_or(&text)
        .to_lowercase()
}

/// `YYYYMMDDHHMMSS`, then the environment directory's short git commit (and
/// `-dirty` when it has changes), when it is in git.
pub fn default_tag(dir: &Path) -> String {
    let now = crate::now_rfc3339();
    let stamp: String = now.chars().filter(char::is_ascii_digit).take(14).collect();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) if !commit.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
            format!("{stamp}-{commit}{}", if dirty { "-dirty" } else { "" })
        }
        _ => stamp,
    }
}

/// Writes `image_tar` (a `docker save` tar): the base's layers, one layer
/// with the artifact, and a config with `command`. Returns the image ID.
fn compose(
    base_tar: &Path,
    image_tar: &Path,
    artifact: &Path,
    artifact_path: &str,
    command: Option<&[String]>,
    base: &str,
    reference: &str,
) -> Result<String, FleetError> {
    let io = |what: &str, e: std::io::Error| error(format!("{what}: {}", io_words(&e)));
    let work = image_tar
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));

    // The base's manifest and config.
    let (manifest, config) = {
        let mut archive = tar::Archive::new(BufReader::new(
            File::open(base_tar).map_err(|e| io("reading the base", e))?,
        ));
        let mut manifest: Option<Value> = None;
        let mut configs: std::collections::BTreeMap<String, Vec<u8>> =
            std::collections::BTreeMap::new();
        for entry in archive.entries().map_err(|e| io("reading the base", e))? {
            let mut entry = entry.map_err(|e| io("reading the base", e))?;
            let path = entry
                .path()
                .map_err(|e| io("reading the base", e))?
                .display()
                .to_string();
            if path == "manifest.json" {
                let mut text = Vec::new();
                entry
                    .read_to_end(&mut text)
                    .map_err(|e| io("reading the base", e))?;
                manifest = serde_json::from_slice(&text).ok();
            } else if path.ends_with(".json") && !path.contains('/') {
                let mut text = Vec::new();
                entry
                    .read_to_end(&mut text)
                    .map_err(|e| io("reading the base", e))?;
                configs.insert(path, text);
            }
        }
        let manifest = manifest
            .and_then(|m| m.get(0).cloned())
            .ok_or_else(|| error(format!("the exported base {base} has no manifest.json")))?;
        let config_name = manifest["Config"].as_str().unwrap_or_default().to_string();
        let config = configs
            .remove(&config_name)
            .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
            .ok_or_else(|| error(format!("the exported base {base} has no readable config")))?;
        (manifest, config)
    };

    // The artifact's layer.
    let layer_file = work.join("layer.tar");
    write_layer(&layer_file, artifact, artifact_path)
        .map_err(|e| io("writing the artifact's layer", e))?;
    let diff_id = sha256_file(&layer_file).map_err(|e| io("reading the artifact's layer", e))?;

    // The config: the base's, with the layer, the command, and the base's date.
    let mut config = config;
    let created = config["created"].clone();
    if let Some(cmd) = command {
        config["config"]["Cmd"] = json!(cmd);
    }
    match config["rootfs"]["diff_ids"].as_array_mut() {
        Some(ids) => ids.push(json!(format!("sha256:{diff_id}"))),
        None => {
            config["rootfs"] = json!({"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]})
        }
    }
    let step = json!({"created": created, "created_by": format!("drover package: {} at {artifact_path}", artifact.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()), "comment": "drover package"});
    match config["history"].as_array_mut() {
        Some(history) => history.push(step),
        None => config["history"] = json!([step]),
    }
    if let Some(labels) = config["config"]["Labels"].as_object_mut() {
        labels.insert(
            "org.opencontainers.image.base.name".to_string(),
            json!(base),
        );
    } else {
        config["config"]["Labels"] = json!({"org.opencontainers.image.base.name": base});
    }
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| error(format!("writing the config: {e}")))?;
    let config_id = hex(&Sha256::digest(&config_bytes));

    // The image tar: the base's entries but its manifest, then ours.
    let layer_name = format!("{diff_id}/layer.tar");
    let mut layers: Vec<Value> = manifest["Layers"].as_array().cloned().unwrap_or_default();
    layers.push(json!(layer_name));
    let new_manifest = serde_json::to_vec(&json!([{"Config": format!("{config_id}.json"), "RepoTags": [reference], "Layers": layers}])).map_err(|e| error(format!("writing the manifest: {e}")))?;
    let out = File::create(image_tar).map_err(|e| io("writing the image", e))?;
    let mut builder = tar::Builder::new(BufWriter::new(out));
    let mut archive = tar::Archive::new(BufReader::new(
        File::open(base_tar).map_err(|e| io("reading the base", e))?,
    ));
    for entry in archive.entries().map_err(|e| io("reading the base", e))? {
        let mut entry = entry.map_err(|e| io("reading the base", e))?;
        let path = entry
            .path()
            .map_err(|e| io("reading the base", e))?
            .display()
            .to_string();
        if path == "manifest.json" || path == "repositories" {
            continue;
        }
        let mut header = entry.header().clone();
        builder
            .append_data(&mut header, &path, &mut entry)
            .map_err(|e| io("writing the image", e))?;
    }
    let mut append = |name: &str, bytes: &[u8]| {
        let mut header = fixed_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        builder.append_data(&mut header, name, bytes)
    };
    append(&format!("{config_id}.json"), &config_bytes).map_err(|e| io("writing the image", e))?;
    append("manifest.json", &new_manifest).map_err(|e| io("writing the image", e))?;
    let mut layer = File::open(&layer_file).map_err(|e| io("reading the artifact's layer", e))?;
    let size = layer
        .metadata()
        .map_err(|e| io("reading the artifact's layer", e))?
        .len();
    let mut dir_header = fixed_header(tar::EntryType::Directory, 0o755, 0);
    builder
        .append_data(&mut dir_header, format!("{diff_id}/"), std::io::empty())
        .map_err(|e| io("writing the image", e))?;
    let mut header = fixed_header(tar::EntryType::Regular, 0o644, size);
    builder
        .append_data(&mut header, &layer_name, &mut layer)
        .map_err(|e| io("writing the image", e))?;
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| io("writing the image", e))?;
    Ok(format!("sha256:{config_id}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A header owned by root, dated zero: the same bytes every time.
fn fixed_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    let _ = header.set_username("root");
    let _ = header.set_groupname("root");
    header
}

/// The artifact's layer: the directories of `artifact_path`, then the
/// artifact under it (a directory's contents, or the file by its name),
/// in sorted order, with fixed owners, times and modes.
fn write_layer(out: &Path, artifact: &Path, artifact_path: &str) -> std::io::Result<()> {
    let mut builder = tar::Builder::new(BufWriter::new(File::create(out)?));
    builder.follow_symlinks(false);
    let root = artifact_path.trim_matches('/');
    let mut prefix = String::new();
    for part in root.split('/').filter(|p| !p.is_empty()) {
        prefix = if prefix.is_empty() {
            part.to_string()
        } else {
            format!("{prefix}/{part}")
        };
        let mut header = fixed_header(tar::EntryType::Directory, 0o755, 0);
        builder.append_data(&mut header, format!("{prefix}/"), std::io::empty())?;
    }
    let meta = std::fs::symlink_metadata(artifact)?;
    if meta.is_dir() {
        add_tree(&mut builder, artifact, root)?;
    } else {
        let name = artifact
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "artifact".to_string());
        add_file(&mut builder, artifact, &format!("{root}/{name}"), &meta)?;
    }
    builder.into_inner()?.flush()
}

fn add_tree(
    builder: &mut tar::Builder<BufWriter<File>>,
    dir: &Path,
    at: &str,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{at}/{name}");
        let meta = std::fs::symlink_metadata(entry.path())?;
        if meta.is_dir() {
            let mut header = fixed_header(tar::EntryType::Directory, 0o755, 0);
            builder.append_data(&mut header, format!("{path}/"), std::io::empty())?;
            add_tree(builder, &entry.path(), &path)?;
        } else {
            add_file(builder, &entry.path(), &path, &meta)?;
        }
    }
    Ok(())
}

fn add_file(
    builder: &mut tar::Builder<BufWriter<File>>,
    source: &Path,
    path: &str,
    meta: &std::fs::Metadata,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(source)?;
        let mut header = fixed_header(tar::EntryType::Symlink, 0o777, 0);
        builder.append_link(&mut header, path, target)?;
    } else if meta.is_file() {
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        let mut header = fixed_header(tar::EntryType::Regular, mode, meta.len());
        builder.append_data(&mut header, path, File::open(source)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_is_the_same_bytes_whatever_the_files_times() {
        let dir = tempfile::tempdir().unwrap();
        let art = dir.path().join("site");
        std::fs::create_dir_all(art.join("b")).unwrap();
        std::fs::write(art.join("b/z.txt"), "z").unwrap();
        std::fs::write(art.join("a.txt"), "a").unwrap();
        let one = dir.path().join("one.tar");
        write_layer(&one, &art, "/srv/www").unwrap();
        // Touch the files: new times, same contents.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(art.join("a.txt"), "a").unwrap();
        let two = dir.path().join("two.tar");
        write_layer(&two, &art, "/srv/www").unwrap();
        assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
        let mut archive = tar::Archive::new(File::open(&one).unwrap());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "srv/",
                "srv/www/",
                "srv/www/a.txt",
                "srv/www/b/",
                "srv/www/b/z.txt"
            ]
        );
    }

    #[test]
    fn a_single_file_goes_under_the_artifact_path_by_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let jar = dir.path().join("app.jar");
        std::fs::write(&jar, "PK").unwrap();
        let out = dir.path().join("l.tar");
        write_layer(&out, &jar, "/app").unwrap();
        let mut archive = tar::Archive::new(File::open(&out).unwrap());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["app/", "app/app.jar"]);
    }
}
