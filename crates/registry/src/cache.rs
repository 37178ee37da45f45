//! An on-disk cache of config blobs, keyed by digest.
//!
//! Listing a repository's tags newest first needs one config blob per tag,
//! and a repository with hundreds of tags would cost hundreds of requests on
//! every `drover images`. A blob is named by the sha256 of its content, so a
//! cached copy can never be stale: it is kept forever and checked against
//! its digest whenever it is read back. The cache is an optimisation only;
//! any failure to read or write it is ignored.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::reference::Digest;

/// The default cache directory: `$XDG_CACHE_HOME/drover/registry-blobs`,
/// else `~/.cache/drover/registry-blobs`; `None` when neither is known.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let absolute = |value: std::ffi::OsString| {
        let path = PathBuf::from(value);
        path.is_absolute().then_some(path)
    };
    std::env::var_os("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|home| home.join(".cache"))
        })
        .map(|base| base.join("drover").join("registry-blobs"))
}

/// The sha256 of `content` as a digest string.
pub(crate) fn sha256_digest(content: &[u8]) -> String {
    let hash = Sha256::digest(content);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in hash {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

fn file_for(dir: &Path, digest: &Digest) -> Option<PathBuf> {
    // Only sha256 blobs are cached: those are the ones we can verify, and
    // the checked hex makes a safe file name.
    digest
        .sha256_hex()
        .map(|hex| dir.join(format!("sha256-{hex}")))
}

/// The cached content of `digest`, if present, at most `limit` bytes and
/// matching its digest.
pub(crate) fn read(dir: &Path, digest: &Digest, limit: usize) -> Option<Vec<u8>> {
    let path = file_for(dir, digest)?;
    let meta = std::fs::metadata(&path).ok()?;
    if meta.len() > limit as u64 {
        return None;
    }
    let content = std::fs::read(&path).ok()?;
    (sha256_digest(&content) == digest.as_str()).then_some(content)
}

/// Stores `content` as `digest`, which the caller has verified, replacing a
/// corrupted copy. Written to a temporary file and renamed, so a reader
/// never sees half a blob.
pub(crate) fn write(dir: &Path, digest: &Digest, content: &[u8]) {
    let Some(path) = file_for(dir, digest) else {
        return;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let Ok((temp_path, mut file)) = tempfile_in(dir) else {
        return;
    };
    use std::io::Write;
    let written = file.write_all(content).is_ok();
    drop(file);
    if !(written && std::fs::rename(&temp_path, &path).is_ok()) {
        let _ = std::fs::remove_file(&temp_path);
    }
}

/// A new file in `dir` with a name no other process picks.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        ".tmp-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    );
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_digest_of_known_content() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn round_trip_and_verification() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("nested/registry-blobs");
        let content = br#"{"created":"2015-10-30T12:34:56Z"}"#;
        let digest = Digest::parse(&sha256_digest(content)).unwrap();
        assert_eq!(read(&cache, &digest, 1024), None);
        write(&cache, &digest, content);
        assert_eq!(read(&cache, &digest, 1024).as_deref(), Some(&content[..]));
        // Over the limit: not returned.
        assert_eq!(read(&cache, &digest, 4), None);
        // No temporary files left behind.
        let names: Vec<String> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [format!("sha256-{}", digest.sha256_hex().unwrap())]);

        // A corrupted file is not trusted.
        let path = cache.join(&names[0]);
        std::fs::write(&path, b"tampered").unwrap();
        assert_eq!(read(&cache, &digest, 1024), None);
    }

    #[test]
    fn unwritable_cache_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let content = b"blob";
        let digest = Digest::parse(&sha256_digest(content)).unwrap();
        // The "directory" is a file: nothing happens, nothing panics.
        write(&file.join("sub"), &digest, content);
        assert_eq!(read(&file.join("sub"), &digest, 1024), None);
    }

    #[test]
    fn only_sha256_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let digest = Digest::parse("sha512:abcd").unwrap();
        write(dir.path(), &digest, b"x");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
