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
//! ID, and the same digest in the registry, wherever the artifact lay.
//!
//! The layer is exactly the artifact's files: names byte for byte (not
//! UTF-8 ones too), types (files, directories, symlinks, hard links, fifos,
//! devices), and every mode bit, setuid, setgid and sticky included — a
//! `chmod 600` key stays 600. Only what no layer can hold, a socket, is left
//! out, and said so.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use drover_engine::RegistryAuth;
use drover_registry::Credentials;
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
    /// Sockets in the artifact, which the image cannot hold.
    pub sockets_left_out: Vec<PathBuf>,
}

/// What `package` says while it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageNote<'a> {
    /// A stage begins.
    Stage(&'a str),
    /// A file of the artifact the image cannot hold, and what to do.
    Warning(&'a str),
}

fn error(message: impl Into<String>) -> FleetError {
    FleetError::Other(message.into())
}

impl Fleet {
    /// Builds and pushes `job`'s image with `artifact`; `notes` hears each
    /// stage, and what the image leaves out (a socket).
    pub async fn package(
        &self,
        connections: &Connections,
        job: &str,
        artifact: &Path,
        tag: Option<&str>,
        host: Option<&str>,
        notes: &(dyn Fn(PackageNote<'_>) + Sync),
    ) -> Result<Packaged, FleetError> {
        let progress = |stage: &str| notes(PackageNote::Stage(stage));
        let spec = self.job(job)?;
        let Some(base) = &spec.base else {
            return Err(error(format!("job {job} has no `base`: set base = \"REGISTRY/IMAGE:TAG\" (the image the artifact goes onto) in {} or its profile", spec.file)));
        };
        let Some(repository) = spec.image.written_repository() else {
            return Err(error(format!("job {job}'s image is an image ID: name it by repository (image = \"REGISTRY/NAME:TAG\") so package knows where to push")));
        };
        check_artifact(artifact)?;
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
        let (image_id, sockets) = tokio::task::spawn_blocking(move || {
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
        for socket in &sockets {
            notes(PackageNote::Warning(&socket_left_out(socket)));
        }

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
        let registry = reference.registry().unwrap_or("docker.io").to_string();
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
            sockets_left_out: sockets,
        })
    }
}

/// The artifact is a file or a directory, or a symlink to one (followed).
fn check_artifact(artifact: &Path) -> Result<(), FleetError> {
    match std::fs::metadata(artifact) {
        Ok(meta) if meta.is_dir() || meta.is_file() => Ok(()),
        Ok(meta) => Err(error(format!(
            "artifact {} is {}, not a file or a directory",
            artifact.display(),
            kind_words(&meta.file_type())
        ))),
        Err(e) => match std::fs::read_link(artifact) {
            Ok(target) => Err(error(format!(
                "artifact {} is a symlink to {}, which cannot be read: {}",
                artifact.display(),
                target.display(),
                io_words(&e)
            ))),
            Err(_) => Err(read_error(artifact, &e)),
        },
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
    match crate::commit::git_commit(dir) {
        Some(commit) => format!(
            "{stamp}-{}{}",
            commit.short,
            if commit.dirty {
                crate::commit::DIRTY
            } else {
                ""
            }
        ),
        None => stamp,
    }
}

/// Writes `image_tar` (a `docker save` tar): the base's layers, one layer
/// with the artifact, and a config with `command`. Returns the image ID and
/// the sockets the layer left out.
fn compose(
    base_tar: &Path,
    image_tar: &Path,
    artifact: &Path,
    artifact_path: &str,
    command: Option<&[String]>,
    base: &str,
    reference: &str,
) -> Result<(String, Vec<PathBuf>), FleetError> {
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
    let sockets = write_layer(&layer_file, artifact, artifact_path)?;
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
    // Nothing of where the artifact lay on this machine: the same files from
    // `build-1/` and `build-2/` are the same image.
    let step = json!({"created": created, "created_by": format!("drover package: the artifact at {artifact_path}"), "comment": "drover package"});
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
    Ok((format!("sha256:{config_id}"), sockets))
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

/// The artifact's layer: the directories of `artifact_path` (root's, 0755,
/// as a Dockerfile's `COPY` makes them), then the artifact under it (a
/// directory's contents, or the file by the name it was given), in sorted
/// order. Each entry keeps its name byte for byte, its type, its mode bits
/// (setuid, setgid and sticky included) and its links; owners and times are
/// fixed, so nothing of the machine that packages enters the layer. Returns
/// the sockets left out: a layer cannot hold one.
fn write_layer(
    out: &Path,
    artifact: &Path,
    artifact_path: &str,
) -> Result<Vec<PathBuf>, FleetError> {
    let file = File::create(out).map_err(|e| write_error(&e))?;
    let mut layer = Layer {
        builder: tar::Builder::new(BufWriter::new(file)),
        first_names: HashMap::new(),
        sockets: Vec::new(),
    };
    let root = PathBuf::from(artifact_path.trim_matches('/'));
    let mut parent = PathBuf::new();
    for part in root.iter() {
        parent.push(part);
        layer.append(
            &fixed_header(tar::EntryType::Directory, 0o755, 0),
            &directory_name(&parent),
            std::io::empty(),
        )?;
    }
    // A symlink given as the artifact is followed: `current -> releases/v42`
    // packages what `current` points to.
    let meta = std::fs::metadata(artifact).map_err(|e| read_error(artifact, &e))?;
    if meta.is_dir() {
        layer.add_contents(artifact, &root)?;
    } else {
        let name = artifact.file_name().unwrap_or(OsStr::new("artifact"));
        layer.add(artifact, &root.join(name), &meta)?;
    }
    let Layer {
        builder, sockets, ..
    } = layer;
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| write_error(&e))?;
    Ok(sockets)
}

fn read_error(path: &Path, e: &std::io::Error) -> FleetError {
    error(format!("artifact {}: {}", path.display(), io_words(e)))
}

fn write_error(e: &std::io::Error) -> FleetError {
    error(format!("writing the artifact's layer: {}", io_words(e)))
}

/// What a file that is neither a regular file nor a directory is, in words.
fn kind_words(kind: &std::fs::FileType) -> &'static str {
    if kind.is_symlink() {
        "a symlink"
    } else if kind.is_fifo() {
        "a fifo"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "of an unknown kind"
    }
}

/// The warning for a socket in the artifact: what, where, what to do.
fn socket_left_out(path: &Path) -> String {
    format!(
        "artifact {}: a socket cannot be stored in an image layer, so the image has no such file; remove it from the artifact, or have the program that listens on it create it when it starts",
        path.display()
    )
}

/// A directory's name in a tar: its path and a `/`.
fn directory_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push("/");
    PathBuf::from(name)
}

/// The artifact's layer as it is written.
struct Layer<W: Write> {
    builder: tar::Builder<W>,
    /// The name a file with more links than one was stored under first, by
    /// (device, inode): its other names become hard links to it.
    first_names: HashMap<(u64, u64), PathBuf>,
    sockets: Vec<PathBuf>,
}

impl<W: Write> Layer<W> {
    fn append(
        &mut self,
        header: &tar::Header,
        name: &Path,
        data: impl Read,
    ) -> Result<(), FleetError> {
        let mut header = header.clone();
        self.builder
            .append_data(&mut header, name, data)
            .map_err(|e| write_error(&e))
    }

    /// The entries of directory `dir`, sorted by name, at `at`.
    fn add_contents(&mut self, dir: &Path, at: &Path) -> Result<(), FleetError> {
        let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
            .and_then(|entries| entries.collect())
            .map_err(|e| read_error(dir, &e))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let source = entry.path();
            let meta = std::fs::symlink_metadata(&source).map_err(|e| read_error(&source, &e))?;
            self.add(&source, &at.join(entry.file_name()), &meta)?;
        }
        Ok(())
    }

    /// One file of the artifact (a directory with its contents) at `name`.
    fn add(
        &mut self,
        source: &Path,
        name: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<(), FleetError> {
        use tar::EntryType;
        if name
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(b".wh."))
        {
            return Err(error(format!(
                "artifact {}: a name that starts with `.wh.` marks a deletion in an image layer (a whiteout), so the image cannot have this file; rename it",
                source.display()
            )));
        }
        let kind = meta.file_type();
        let mode = meta.mode() & 0o7777;
        if kind.is_dir() {
            self.append(
                &fixed_header(EntryType::Directory, mode, 0),
                &directory_name(name),
                std::io::empty(),
            )?;
            return self.add_contents(source, name);
        }
        if kind.is_file() {
            if meta.nlink() > 1 {
                let inode = (meta.dev(), meta.ino());
                if let Some(first) = self.first_names.get(&inode).cloned() {
                    return self.append_link(
                        fixed_header(EntryType::Link, mode, 0),
                        name,
                        first.as_os_str().as_bytes(),
                    );
                }
                self.first_names.insert(inode, name.to_path_buf());
            }
            let file = File::open(source).map_err(|e| read_error(source, &e))?;
            let mut contents = Contents {
                file,
                left: meta.len(),
                failed: None,
            };
            let written = self.append(
                &fixed_header(EntryType::Regular, mode, meta.len()),
                name,
                &mut contents,
            );
            return match (written, contents.failed) {
                (_, Some(why)) => Err(error(format!("artifact {}: {why}", source.display()))),
                (written, None) => written,
            };
        }
        if kind.is_symlink() {
            let target = std::fs::read_link(source).map_err(|e| read_error(source, &e))?;
            return self.append_link(
                fixed_header(EntryType::Symlink, mode, 0),
                name,
                target.as_os_str().as_bytes(),
            );
        }
        if kind.is_fifo() {
            return self.append(
                &fixed_header(EntryType::Fifo, mode, 0),
                name,
                std::io::empty(),
            );
        }
        if kind.is_char_device() || kind.is_block_device() {
            let entry = if kind.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            };
            let mut header = fixed_header(entry, mode, 0);
            let device = meta.rdev();
            header
                .set_device_major(rustix::fs::major(device))
                .map_err(|e| write_error(&e))?;
            header
                .set_device_minor(rustix::fs::minor(device))
                .map_err(|e| write_error(&e))?;
            return self.append(&header, name, std::io::empty());
        }
        if kind.is_socket() {
            self.sockets.push(source.to_path_buf());
            return Ok(());
        }
        Err(error(format!(
            "artifact {} is {}, which an image layer cannot hold",
            source.display(),
            kind_words(&kind)
        )))
    }

    /// A symlink or hard link to `target`, kept byte for byte (tar's own
    /// link writer tidies `./` and `//` away); a target longer than the
    /// header's field goes before it as a GNU long link name.
    fn append_link(
        &mut self,
        mut header: tar::Header,
        name: &Path,
        target: &[u8],
    ) -> Result<(), FleetError> {
        let field = header.as_old().linkname.len();
        if target.len() > field {
            let mut long = tar::Header::new_gnu();
            let marker = b"././@LongLink";
            long.as_old_mut().name[..marker.len()].copy_from_slice(marker);
            long.set_mode(0o644);
            long.set_uid(0);
            long.set_gid(0);
            long.set_mtime(0);
            long.set_size(target.len() as u64 + 1);
            long.set_entry_type(tar::EntryType::GNULongLink);
            long.set_cksum();
            self.builder
                .append(&long, target.chain(&[0u8][..]))
                .map_err(|e| write_error(&e))?;
            header
                .as_old_mut()
                .linkname
                .copy_from_slice(&target[..field]);
        } else {
            header
                .set_link_name_literal(target)
                .map_err(|e| write_error(&e))?;
        }
        self.append(&header, name, std::io::empty())
    }
}

/// A file's contents as its header announced them: exactly the size read
/// before (a file that grows meanwhile is cut there; one that shrinks is an
/// error, not a corrupt layer), with a read error kept to name the file by.
struct Contents {
    file: File,
    left: u64,
    failed: Option<String>,
}

impl Read for Contents {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let most = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.file.read(&mut buf[..most]) {
            Ok(0) => {
                self.failed = Some("it became shorter while it was being packaged".to_string());
                Err(std::io::Error::other("the file became shorter"))
            }
            Ok(n) => {
                self.left -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed = Some(io_words(&e));
                Err(e)
            }
        }
    }
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

/// The layer holds exactly the artifact's files, whatever they are: trees
/// are generated (names of any bytes and lengths, every type, every mode)
/// and each one's layer read back entry by entry.
#[cfg(test)]
mod round_trip {
    use std::collections::BTreeMap;
    use std::os::unix::ffi::OsStringExt;
    use std::os::unix::fs::PermissionsExt;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Node {
        File {
            contents: Vec<u8>,
            mode: u32,
        },
        Dir {
            mode: u32,
            children: BTreeMap<Vec<u8>, Node>,
        },
        Symlink(Vec<u8>),
        Fifo {
            mode: u32,
        },
        /// Another name for the n-th regular file made (modulo their number).
        HardLink(usize),
    }

    fn name() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[a-z][a-z0-9._-]{0,8}".prop_map(String::into_bytes),
            // Not UTF-8, mostly.
            proptest::collection::vec(any::<u8>(), 1..12),
            // Past the 100 bytes of a tar header's name field.
            proptest::collection::vec(b'a'..=b'z', 95..140),
        ]
        .prop_map(|bytes| {
            bytes
                .into_iter()
                .filter(|b| *b != 0 && *b != b'/')
                .collect::<Vec<u8>>()
        })
        .prop_filter("a name a directory can hold", |n| {
            !n.is_empty() && n != b"." && n != b".." && !n.starts_with(b".wh.")
        })
    }

    fn node() -> impl Strategy<Value = Node> {
        let mode = 0u32..0o10000;
        let leaf = prop_oneof![
            (proptest::collection::vec(any::<u8>(), 0..600), mode.clone()).prop_map(
                |(contents, mode)| Node::File {
                    contents,
                    mode: mode | 0o400
                }
            ),
            prop_oneof![
                proptest::collection::vec(1u8..=255, 1..150),
                Just(b"./a//b/../c/".to_vec()),
                Just(b"/etc/passwd".to_vec()),
            ]
            .prop_map(Node::Symlink),
            mode.clone().prop_map(|mode| Node::Fifo { mode }),
            any::<usize>().prop_map(Node::HardLink),
        ];
        leaf.prop_recursive(3, 24, 6, move |inner| {
            (
                0u32..0o10000,
                proptest::collection::btree_map(name(), inner, 0..6),
            )
                .prop_map(|(mode, children)| Node::Dir {
                    mode: mode | 0o700,
                    children,
                })
        })
    }

    fn make(
        at: &Path,
        children: &BTreeMap<Vec<u8>, Node>,
        files: &mut Vec<PathBuf>,
        links: &mut Vec<(PathBuf, usize)>,
    ) {
        for (name, node) in children {
            let path = at.join(OsStr::from_bytes(name));
            match node {
                Node::File { contents, mode } => {
                    std::fs::write(&path, contents).unwrap();
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                        .unwrap();
                    files.push(path);
                }
                Node::Dir { mode, children } => {
                    std::fs::create_dir(&path).unwrap();
                    make(&path, children, files, links);
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                        .unwrap();
                }
                Node::Symlink(target) => {
                    std::os::unix::fs::symlink(OsStr::from_bytes(target), &path).unwrap()
                }
                Node::Fifo { mode } => {
                    rustix::fs::mknodat(
                        rustix::fs::CWD,
                        &path,
                        rustix::fs::FileType::Fifo,
                        rustix::fs::Mode::from_raw_mode(0o600),
                        0,
                    )
                    .unwrap();
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                        .unwrap();
                }
                Node::HardLink(n) => links.push((path, *n)),
            }
        }
    }

    /// One entry as the layer should have it, or has it.
    #[derive(Debug, PartialEq, Eq)]
    struct Entry {
        name: Vec<u8>,
        kind: tar::EntryType,
        mode: u32,
        /// A file's contents, a link's target.
        data: Vec<u8>,
    }

    /// The artifact `dir` as its layer at `root` must hold it, read from the
    /// disk by another walk than the layer writer's.
    fn expected(dir: &Path, root: &[u8], first: &mut HashMap<u64, Vec<u8>>, out: &mut Vec<Entry>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for file_name in names {
            let path = dir.join(&file_name);
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mut name = root.to_vec();
            name.push(b'/');
            name.extend_from_slice(file_name.as_bytes());
            let mode = meta.permissions().mode() & 0o7777;
            let kind = meta.file_type();
            if kind.is_dir() {
                let mut dir_name = name.clone();
                dir_name.push(b'/');
                out.push(Entry {
                    name: dir_name,
                    kind: tar::EntryType::Directory,
                    mode,
                    data: vec![],
                });
                expected(&path, &name, first, out);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_vec();
                out.push(Entry {
                    name,
                    kind: tar::EntryType::Symlink,
                    mode: 0o777,
                    data: target,
                });
            } else if kind.is_fifo() {
                out.push(Entry {
                    name,
                    kind: tar::EntryType::Fifo,
                    mode,
                    data: vec![],
                });
            } else if let Some(stored) = first.get(&meta.ino()) {
                out.push(Entry {
                    name,
                    kind: tar::EntryType::Link,
                    mode,
                    data: stored.clone(),
                });
            } else {
                first.insert(meta.ino(), name.clone());
                out.push(Entry {
                    name,
                    kind: tar::EntryType::Regular,
                    mode,
                    data: std::fs::read(&path).unwrap(),
                });
            }
        }
    }

    fn entries(layer: &Path) -> Vec<Entry> {
        let mut archive = tar::Archive::new(File::open(layer).unwrap());
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let header = entry.header();
                assert_eq!(
                    (
                        header.uid().unwrap(),
                        header.gid().unwrap(),
                        header.mtime().unwrap()
                    ),
                    (0, 0, 0)
                );
                let kind = header.entry_type();
                let mode = header.mode().unwrap();
                let name = entry.path_bytes().into_owned();
                let data = match kind {
                    tar::EntryType::Symlink | tar::EntryType::Link => {
                        entry.link_name_bytes().unwrap().into_owned()
                    }
                    _ => {
                        let mut data = Vec::new();
                        entry.read_to_end(&mut data).unwrap();
                        data
                    }
                };
                Entry {
                    name,
                    kind,
                    mode,
                    data,
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn the_layer_holds_every_name_type_mode_and_link_of_the_artifact(
            children in proptest::collection::btree_map(name(), node(), 0..8),
            mode in 0u32..0o10000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let artifact = dir.path().join("artifact");
            std::fs::create_dir(&artifact).unwrap();
            let (mut files, mut links) = (Vec::new(), Vec::new());
            make(&artifact, &children, &mut files, &mut links);
            for (path, n) in links {
                match files.get(n % files.len().max(1)) {
                    Some(file) => std::fs::hard_link(file, &path).unwrap(),
                    None => std::fs::write(&path, b"no file to link to").unwrap(),
                }
            }
            // The artifact directory's own mode is not the layer's: its
            // contents go into `artifact_path`.
            std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(mode | 0o700)).unwrap();

            let layer = dir.path().join("layer.tar");
            let sockets = write_layer(&layer, &artifact, "/srv/www").unwrap();
            prop_assert!(sockets.is_empty());
            let mut want = vec![
                Entry { name: b"srv/".to_vec(), kind: tar::EntryType::Directory, mode: 0o755, data: vec![] },
                Entry { name: b"srv/www/".to_vec(), kind: tar::EntryType::Directory, mode: 0o755, data: vec![] },
            ];
            expected(&artifact, b"srv/www", &mut HashMap::new(), &mut want);
            prop_assert_eq!(entries(&layer), want);
        }
    }

    #[test]
    fn a_socket_is_left_out_and_named_and_the_rest_stays() {
        let dir = tempfile::Builder::new()
            .prefix("s")
            .tempdir_in("/tmp")
            .unwrap();
        let artifact = dir.path().join("a");
        std::fs::create_dir_all(artifact.join("run")).unwrap();
        let _listener =
            std::os::unix::net::UnixListener::bind(artifact.join("run/app.sock")).unwrap();
        std::fs::write(artifact.join("run/pid"), "1").unwrap();
        let layer = dir.path().join("layer.tar");
        let sockets = write_layer(&layer, &artifact, "/app").unwrap();
        assert_eq!(sockets, [artifact.join("run/app.sock")]);
        let names: Vec<Vec<u8>> = entries(&layer).into_iter().map(|e| e.name).collect();
        assert_eq!(names, [&b"app/"[..], b"app/run/", b"app/run/pid"]);
        assert_eq!(
            socket_left_out(&artifact.join("run/app.sock")),
            format!("artifact {}/run/app.sock: a socket cannot be stored in an image layer, so the image has no such file; remove it from the artifact, or have the program that listens on it create it when it starts", artifact.display())
        );
    }

    #[test]
    fn a_whiteout_name_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = dir.path().join("a");
        std::fs::create_dir_all(artifact.join("lib")).unwrap();
        std::fs::write(artifact.join("lib/.wh.config"), "").unwrap();
        let Err(e) = write_layer(&dir.path().join("l.tar"), &artifact, "/app") else {
            panic!("a whiteout name was packaged");
        };
        assert_eq!(
            e.to_string(),
            format!("artifact {}/lib/.wh.config: a name that starts with `.wh.` marks a deletion in an image layer (a whiteout), so the image cannot have this file; rename it", artifact.display())
        );
    }

    #[test]
    fn a_symlink_given_as_the_artifact_is_followed_and_those_inside_stay_links() {
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().join("releases/v42");
        std::fs::create_dir_all(&release).unwrap();
        std::fs::write(release.join("app.conf"), "x").unwrap();
        std::os::unix::fs::symlink("app.conf", release.join("current.conf")).unwrap();
        std::os::unix::fs::symlink("releases/v42", dir.path().join("current")).unwrap();
        std::os::unix::fs::symlink("releases/v42/app.conf", dir.path().join("app.conf")).unwrap();
        check_artifact(&dir.path().join("current")).unwrap();
        let layer = dir.path().join("l.tar");
        write_layer(&layer, &dir.path().join("current"), "/app").unwrap();
        let got: Vec<(Vec<u8>, tar::EntryType)> = entries(&layer)
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect();
        assert_eq!(
            got,
            [
                (b"app/".to_vec(), tar::EntryType::Directory),
                (b"app/app.conf".to_vec(), tar::EntryType::Regular),
                (b"app/current.conf".to_vec(), tar::EntryType::Symlink),
            ]
        );
        // A single file through a link goes in under the name it was given.
        write_layer(&layer, &dir.path().join("app.conf"), "/app").unwrap();
        let got: Vec<(Vec<u8>, tar::EntryType, Vec<u8>)> = entries(&layer)
            .into_iter()
            .map(|e| (e.name, e.kind, e.data))
            .collect();
        assert_eq!(
            got[1],
            (
                b"app/app.conf".to_vec(),
                tar::EntryType::Regular,
                b"x".to_vec()
            )
        );

        std::os::unix::fs::symlink("releases/v43", dir.path().join("next")).unwrap();
        let Err(e) = check_artifact(&dir.path().join("next")) else {
            panic!("a dangling symlink passed");
        };
        assert_eq!(
            e.to_string(),
            format!("artifact {}/next is a symlink to releases/v43, which cannot be read: no such file or directory", dir.path().display())
        );
    }

    /// A `docker save` tar of an empty base image.
    fn base(path: &Path) {
        let mut builder = tar::Builder::new(File::create(path).unwrap());
        let config = br#"{"created":"2024-01-01T00:00:00Z","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let manifest = br#"[{"Config":"base.json","RepoTags":["base:1"],"Layers":[]}]"#;
        for (name, bytes) in [("base.json", &config[..]), ("manifest.json", &manifest[..])] {
            let mut header = fixed_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
            builder.append_data(&mut header, name, bytes).unwrap();
        }
        builder.into_inner().unwrap();
    }

    #[test]
    fn the_same_files_from_two_folders_make_the_same_image() {
        let dir = tempfile::tempdir().unwrap();
        let base_tar = dir.path().join("base.tar");
        base(&base_tar);
        let mut ids = Vec::new();
        for folder in ["build-1", "build-2"] {
            let artifact = dir.path().join(folder);
            std::fs::create_dir_all(artifact.join("bin")).unwrap();
            std::fs::write(artifact.join("bin/run"), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(
                artifact.join("bin/run"),
                std::fs::Permissions::from_mode(0o4750),
            )
            .unwrap();
            let work = dir.path().join(format!("work-{folder}"));
            std::fs::create_dir(&work).unwrap();
            let image = work.join("image.tar");
            let (id, _) = compose(
                &base_tar,
                &image,
                &artifact,
                "/app",
                Some(&["/app/bin/run".to_string()]),
                "base:1",
                "r/app:1",
            )
            .unwrap();
            let mut archive = tar::Archive::new(File::open(&image).unwrap());
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                if entry
                    .path()
                    .unwrap()
                    .extension()
                    .is_some_and(|e| e == "json")
                {
                    let mut text = String::new();
                    entry.read_to_string(&mut text).unwrap();
                    assert!(!text.contains("build-"), "{text}");
                }
            }
            ids.push(id);
        }
        assert_eq!(ids[0], ids[1]);
    }
}
