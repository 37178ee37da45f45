//! Manifests: what a tag points at.
//!
//! A tag names either an image manifest (Docker schema 2 or OCI), which
//! names the config blob, or a manifest list / OCI index with one manifest
//! per platform. drover's hosts are linux/amd64 unless proven otherwise, so
//! from a list we follow linux/amd64, else the first real image (skipping
//! BuildKit's attestation entries, which are not images at all).

use serde::Deserialize;

use crate::error::one_line;

pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Every manifest type we read. A registry that gets no `Accept` for a type
/// may convert it (distribution rewrites lists to one schema 1 manifest),
/// so all four are always asked for.
pub(crate) const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json";

/// A parsed manifest, reduced to what drover needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Manifest {
    Image {
        config_digest: String,
        config_size: Option<u64>,
    },
    Index {
        entries: Vec<IndexEntry>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct IndexEntry {
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
    #[serde(default)]
    pub(crate) annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    manifests: Option<Vec<IndexEntry>>,
}

#[derive(Deserialize)]
struct RawDescriptor {
    digest: String,
    size: Option<u64>,
}

/// Why a manifest could not be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ManifestProblem {
    /// Not JSON of a manifest's shape.
    Json(String),
    /// A manifest, but not one drover reads.
    Unsupported(String),
}

/// Parses a manifest body; `content_type` is the response's `Content-Type`.
pub(crate) fn parse(body: &[u8], content_type: Option<&str>) -> Result<Manifest, ManifestProblem> {
    let raw: RawManifest =
        serde_json::from_slice(body).map_err(|error| ManifestProblem::Json(error.to_string()))?;
    let header_type = content_type
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|value| !value.is_empty());
    let media_type = raw.media_type.clone().or(header_type);
    let media_type = media_type.as_deref();

    if raw.schema_version == Some(1)
        || matches!(media_type, Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED))
    {
        return Err(ManifestProblem::Unsupported(
            "docker image manifest schema 1 is deprecated: push the image again with a current docker".into(),
        ));
    }
    let image = |config: Option<RawDescriptor>| match config {
        Some(config) => Ok(Manifest::Image {
            config_digest: config.digest,
            config_size: config.size,
        }),
        None => Err(ManifestProblem::Json(
            "the image manifest has no config".into(),
        )),
    };
    let index = |manifests: Option<Vec<IndexEntry>>| match manifests {
        Some(entries) if !entries.is_empty() => Ok(Manifest::Index { entries }),
        _ => Err(ManifestProblem::Unsupported(
            "the manifest list is empty".into(),
        )),
    };
    match media_type {
        Some(DOCKER_MANIFEST | OCI_MANIFEST) => image(raw.config),
        Some(DOCKER_MANIFEST_LIST | OCI_INDEX) => index(raw.manifests),
        // OCI made `mediaType` optional and some registries answer
        // `application/json`: go by shape.
        _ if raw.manifests.is_some() => index(raw.manifests),
        _ if raw.config.is_some() => image(raw.config),
        Some(other) => Err(ManifestProblem::Unsupported(format!(
            "media type {}",
            one_line(other)
        ))),
        None => Err(ManifestProblem::Json(
            "neither an image manifest nor a manifest list".into(),
        )),
    }
}

/// The entry of a manifest list drover follows: linux/amd64 (without a
/// variant, or v1, before amd64 v2/v3 builds), else the first entry that is
/// an image and not an attestation, else the first entry.
pub(crate) fn pick_platform(entries: &[IndexEntry]) -> Option<&IndexEntry> {
    let is = |entry: &IndexEntry, os: &str, architecture: &str| {
        entry
            .platform
            .as_ref()
            .is_some_and(|p| p.os == os && p.architecture == architecture)
    };
    let baseline = |entry: &IndexEntry| {
        entry.platform.as_ref().is_none_or(|p| {
            p.variant
                .as_deref()
                .is_none_or(|v| v.is_empty() || v == "v1")
        })
    };
    let attestation = |entry: &IndexEntry| {
        is(entry, "unknown", "unknown")
            || entry.annotations.as_ref().is_some_and(|a| {
                a.get("vnd.docker.reference.type").map(String::as_str)
                    == Some("attestation-manifest")
            })
    };
    entries
        .iter()
        .find(|e| is(e, "linux", "amd64") && baseline(e))
        .or_else(|| entries.iter().find(|e| is(e, "linux", "amd64")))
        .or_else(|| entries.iter().find(|e| !attestation(e)))
        .or_else(|| entries.first())
}

/// The `created` field of an image config blob, when it has one that is a
/// string. Other fields are not looked at, so artifacts with JSON configs
/// are listed too, just without a time.
pub(crate) fn config_created(body: &[u8]) -> Result<Option<String>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| error.to_string())?;
    Ok(value
        .get("created")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn parses_image_manifests() {
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":42,"digest":"{CONFIG}"}},"layers":[]}}"#
        );
        let expected = Manifest::Image {
            config_digest: CONFIG.into(),
            config_size: Some(42),
        };
        assert_eq!(
            parse(docker.as_bytes(), Some(DOCKER_MANIFEST)),
            Ok(expected.clone())
        );
        // OCI without mediaType in the body, typed by the header only.
        let oci = format!(
            r#"{{"schemaVersion":2,"config":{{"size":42,"digest":"{CONFIG}"}},"layers":[]}}"#
        );
        assert_eq!(
            parse(
                oci.as_bytes(),
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8")
            ),
            Ok(expected.clone())
        );
        // No type at all: by shape.
        assert_eq!(parse(oci.as_bytes(), None), Ok(expected));
    }

    #[test]
    fn parses_lists_and_indexes() {
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"sha256:aa","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#
        );
        let Ok(Manifest::Index { entries }) = parse(list.as_bytes(), Some("application/json"))
        else {
            panic!("not an index");
        };
        assert_eq!(entries[0].digest, "sha256:aa");
        assert_eq!(
            entries[0]
                .platform
                .as_ref()
                .map(|p| p.architecture.as_str()),
            Some("arm64")
        );
        let empty = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        assert_eq!(
            parse(empty.as_bytes(), None),
            Err(ManifestProblem::Unsupported(
                "the manifest list is empty".into()
            ))
        );
    }

    #[test]
    fn rejects_schema1_junk_and_unknown_types() {
        let schema1 = br#"{"schemaVersion":1,"name":"a","tag":"1","fsLayers":[]}"#;
        assert!(
            matches!(parse(schema1, Some(DOCKER_SCHEMA1_SIGNED)), Err(ManifestProblem::Unsupported(m)) if m.contains("schema 1"))
        );
        assert!(matches!(
            parse(b"<html>", None),
            Err(ManifestProblem::Json(_))
        ));
        assert!(matches!(parse(b"[]", None), Err(ManifestProblem::Json(_))));
        assert_eq!(
            parse(
                br#"{"schemaVersion":2}"#,
                Some("application/vnd.example.thing")
            ),
            Err(ManifestProblem::Unsupported(
                "media type application/vnd.example.thing".into()
            ))
        );
        assert!(matches!(
            parse(
                format!(r#"{{"mediaType":"{DOCKER_MANIFEST}"}}"#).as_bytes(),
                None
            ),
            Err(ManifestProblem::Json(_))
        ));
    }

    fn entry(digest: &str, os: &str, architecture: &str, variant: Option<&str>) -> IndexEntry {
        IndexEntry {
            digest: digest.into(),
            platform: Some(Platform {
                architecture: architecture.into(),
                os: os.into(),
                variant: variant.map(str::to_string),
            }),
            annotations: None,
        }
    }

    #[test]
    fn picks_linux_amd64_else_the_first_image() {
        let pick = |entries: &[IndexEntry]| pick_platform(entries).map(|e| e.digest.clone());
        let arm = entry("arm", "linux", "arm64", Some("v8"));
        let amd = entry("amd", "linux", "amd64", None);
        let amd_v3 = entry("amd-v3", "linux", "amd64", Some("v3"));
        let windows = entry("win", "windows", "amd64", None);
        let attest = entry("att", "unknown", "unknown", None);
        assert_eq!(
            pick(&[arm.clone(), windows.clone(), amd.clone()]).as_deref(),
            Some("amd")
        );
        assert_eq!(pick(&[amd_v3.clone(), amd.clone()]).as_deref(), Some("amd"));
        assert_eq!(
            pick(&[amd_v3.clone(), arm.clone()]).as_deref(),
            Some("amd-v3")
        );
        assert_eq!(pick(&[attest.clone(), arm.clone()]).as_deref(), Some("arm"));
        assert_eq!(pick(&[windows.clone(), arm]).as_deref(), Some("win"));
        assert_eq!(pick(&[attest]).as_deref(), Some("att"));
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn reads_created_from_configs() {
        assert_eq!(
            config_created(
                br#"{"architecture":"amd64","os":"linux","created":"2015-10-30T12:34:56Z"}"#
            ),
            Ok(Some("2015-10-30T12:34:56Z".into()))
        );
        assert_eq!(config_created(br#"{"created":12}"#), Ok(None));
        assert_eq!(config_created(br#"{}"#), Ok(None));
        assert!(config_created(b"not json").is_err());
    }
}
