//! The registry client against real registries (Debian's `docker-registry`,
//! distribution v2.8) that each test starts, fills and stops itself.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt as _;

use drover_registry::{Credentials, RegistryClient, RegistryError};
use support::{
    created_at, html_server, paginating_proxy, silent_server, Auth, Pusher, Registry, TokenServer,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn client(url: &str, credentials: Option<Credentials>) -> RegistryClient {
    RegistryClient::new(url, credentials, TIMEOUT)
        .expect("client")
        .with_blob_cache_dir(None)
}

/// An error line fit for an operator: one line, short, no markup.
fn assert_short(message: &str) {
    assert!(
        message.len() < 300,
        "too long ({} chars): {message}",
        message.len()
    );
    assert!(!message.contains('\n'), "not one line: {message}");
    assert!(!message.contains('<'), "markup in: {message}");
    assert!(
        message.starts_with(|c: char| c.is_lowercase()),
        "not lowercase: {message}"
    );
    assert!(!message.ends_with('.'), "trailing period: {message}");
}

#[tokio::test]
async fn lists_250_tags_across_pages_newest_first() {
    let registry = Registry::start(Auth::Anonymous).await;
    let pusher = Pusher::new(&registry.url, None);
    // Creation times in an order unrelated to the names: tag i was built at
    // minute (i * 97) % 250, so name order is never time order.
    let count = 250u32;
    pusher
        .ensure_blob("team/app", &support::EMPTY_LAYER_GZ)
        .await;
    let pushed: Vec<(String, support::Pushed)> = futures::stream::iter(0..count)
        .map(|i| {
            let pusher = pusher.clone();
            async move {
                let tag = format!("build-{i:03}");
                let image = pusher
                    .image(
                        "team/app",
                        Some(&tag),
                        &created_at((i * 97) % count),
                        "amd64",
                        false,
                    )
                    .await;
                (tag, image)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;

    let (proxy, log) = paginating_proxy(&registry.url, false).await;
    let client = client(&proxy.url(), None);

    let tags = client.tags("team/app").await.expect("tags");
    assert_eq!(tags.len(), 250, "every tag, each once");
    let expected_names: BTreeSet<&str> = pushed.iter().map(|(tag, _)| tag.as_str()).collect();
    assert_eq!(
        tags.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        expected_names
    );
    let pages = log.tag_pages.lock().expect("log").clone();
    assert_eq!(
        pages,
        [
            (Some("100".into()), None),
            (Some("100".into()), Some("build-099".into())),
            (Some("100".into()), Some("build-199".into())),
        ],
        "three pages of 100, following the Link header"
    );

    let infos = client
        .tags_newest_first("team/app")
        .await
        .expect("tags newest first");
    let mut expected = pushed.clone();
    expected.sort_by(|a, b| b.1.created.cmp(&a.1.created));
    let got: Vec<(&str, Option<&str>)> = infos
        .iter()
        .map(|i| (i.tag.as_str(), i.created.as_deref()))
        .collect();
    let want: Vec<(&str, Option<&str>)> = expected
        .iter()
        .map(|(tag, image)| (tag.as_str(), Some(image.created.as_str())))
        .collect();
    assert_eq!(got, want);
    for info in &infos {
        let (_, image) = pushed
            .iter()
            .find(|(tag, _)| *tag == info.tag)
            .expect("pushed tag");
        assert_eq!(info.error, None);
        assert_eq!(
            info.digest.as_deref(),
            Some(image.manifest_digest.as_str()),
            "{}",
            info.tag
        );
        assert_eq!(
            info.config_digest.as_deref(),
            Some(image.config_digest.as_str()),
            "{}",
            info.tag
        );
        assert!(info.created_unix.is_some());
    }
    // Newest is minute 249 of 2024-01-01, 1704067200 + 249 * 60.
    assert_eq!(infos[0].created_unix, Some(1_704_067_200 + 249 * 60));
    let max = log.max_in_flight_manifests.load(Ordering::SeqCst);
    assert!(
        (2..=8).contains(&max),
        "manifest requests in flight at once: {max}"
    );
}

#[tokio::test]
async fn manifest_lists_and_oci_indexes_resolve_to_linux_amd64() {
    let registry = Registry::start(Auth::Anonymous).await;
    let pusher = Pusher::new(&registry.url, None);
    // The arm64 image is newer and listed first: picking it would be wrong.
    let arm = pusher
        .image("team/multi", None, "2024-05-02T00:00:00Z", "arm64", false)
        .await;
    let amd = pusher
        .image("team/multi", None, "2024-05-01T00:00:00Z", "amd64", false)
        .await;
    let list_digest = pusher
        .list(
            "team/multi",
            "both",
            false,
            &[
                (&arm.manifest_digest, "linux", "arm64"),
                (&amd.manifest_digest, "linux", "amd64"),
            ],
        )
        .await;
    // An OCI index of OCI images with no amd64: the first entry is used.
    let oci_arm = pusher
        .image("team/multi", None, "2024-06-01T00:00:00Z", "arm64", true)
        .await;
    let oci_s390x = pusher
        .image("team/multi", None, "2024-06-02T00:00:00Z", "s390x", true)
        .await;
    let index_digest = pusher
        .list(
            "team/multi",
            "no-amd64",
            true,
            &[
                (&oci_arm.manifest_digest, "linux", "arm64"),
                (&oci_s390x.manifest_digest, "linux", "s390x"),
            ],
        )
        .await;
    // A plain OCI image manifest.
    let oci_plain = pusher
        .image(
            "team/multi",
            Some("oci"),
            "2024-04-01T00:00:00Z",
            "amd64",
            true,
        )
        .await;

    let client = client(&registry.url, None);
    let both = client
        .tag_info("team/multi", "both")
        .await
        .expect("list tag");
    assert_eq!(
        both.digest.as_deref(),
        Some(list_digest.as_str()),
        "the list's own digest"
    );
    assert_eq!(
        both.config_digest.as_deref(),
        Some(amd.config_digest.as_str())
    );
    assert_eq!(both.created.as_deref(), Some("2024-05-01T00:00:00Z"));

    let index = client
        .tag_info("team/multi", "no-amd64")
        .await
        .expect("index tag");
    assert_eq!(index.digest.as_deref(), Some(index_digest.as_str()));
    assert_eq!(
        index.config_digest.as_deref(),
        Some(oci_arm.config_digest.as_str())
    );
    assert_eq!(index.created.as_deref(), Some("2024-06-01T00:00:00Z"));

    let plain = client.tag_info("team/multi", "oci").await.expect("oci tag");
    assert_eq!(
        plain.digest.as_deref(),
        Some(oci_plain.manifest_digest.as_str())
    );
    assert_eq!(
        plain.config_digest.as_deref(),
        Some(oci_plain.config_digest.as_str())
    );

    let order: Vec<String> = client
        .tags_newest_first("team/multi")
        .await
        .expect("newest first")
        .into_iter()
        .map(|info| info.tag)
        .collect();
    assert_eq!(order, ["no-amd64", "both", "oci"]);
}

#[tokio::test]
async fn basic_auth_with_htpasswd() {
    let registry = Registry::start(Auth::Htpasswd {
        username: "deployer".into(),
        password: "correct horse".into(),
    })
    .await;
    let pusher = Pusher::new(
        &registry.url,
        Some(support::basic("deployer", "correct horse")),
    );
    let pushed = pusher
        .image(
            "team/app",
            Some("1.0"),
            "2024-02-01T10:00:00Z",
            "amd64",
            false,
        )
        .await;
    pusher
        .image(
            "team/app",
            Some("1.1"),
            "2024-02-02T10:00:00Z",
            "amd64",
            false,
        )
        .await;

    let good = client(
        &registry.url,
        Some(Credentials::new("deployer", "correct horse")),
    );
    let infos = good
        .tags_newest_first("team/app")
        .await
        .expect("with the right password");
    let tags: Vec<&str> = infos.iter().map(|i| i.tag.as_str()).collect();
    assert_eq!(tags, ["1.1", "1.0"]);
    assert_eq!(
        infos[1].config_digest.as_deref(),
        Some(pushed.config_digest.as_str())
    );

    let error = client(&registry.url, None)
        .tags("team/app")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::CredentialsRequired { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "registry {host} requires credentials to read team/app: set DROVER_REGISTRY_USERNAME and \
             DROVER_REGISTRY_PASSWORD, or run `docker login {host}`",
            host = registry.host
        )
    );

    let wrong = Credentials::new("deployer", "wrong-password-xyz")
        .with_source("DROVER_REGISTRY_USERNAME and DROVER_REGISTRY_PASSWORD");
    let error = client(&registry.url, Some(wrong))
        .tags("team/app")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::CredentialsRejected { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "registry {host} rejected the credentials from DROVER_REGISTRY_USERNAME and DROVER_REGISTRY_PASSWORD: \
             check them, or run `docker login {host}` again",
            host = registry.host
        )
    );
    assert!(
        !message.contains("wrong-password-xyz")
            && !format!("{error:?}").contains("wrong-password-xyz")
    );
}

#[tokio::test]
async fn token_auth_with_a_token_server() {
    let tokens = TokenServer::start("deployer", "s3cret-pass").await;
    let registry = Registry::start(tokens.registry_auth()).await;
    let pusher = Pusher::new(&registry.url, Some(tokens.push_authorization("team/app")));
    for (i, tag) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        pusher
            .image("team/app", Some(tag), &created_at(i as u32), "amd64", false)
            .await;
    }
    let before = tokens.requests.load(Ordering::SeqCst);

    let good = client(
        &registry.url,
        Some(Credentials::new("deployer", "s3cret-pass")),
    );
    let infos = good
        .tags_newest_first("team/app")
        .await
        .expect("with the right password");
    let tags: Vec<&str> = infos.iter().map(|i| i.tag.as_str()).collect();
    assert_eq!(tags, ["e", "d", "c", "b", "a"]);
    assert!(
        infos
            .iter()
            .all(|i| i.error.is_none() && i.created.is_some()),
        "{infos:?}"
    );
    assert_eq!(
        tokens.requests.load(Ordering::SeqCst) - before,
        1,
        "one token for the tag list, five manifests and five configs"
    );

    // An identity token from `docker login` (OAuth2 refresh-token grant).
    let identity = client(
        &registry.url,
        Some(Credentials::identity_token(support::IDENTITY_TOKEN)),
    );
    let info = identity
        .tag_info("team/app", "c")
        .await
        .expect("with an identity token");
    assert_eq!(info.created.as_deref(), Some(created_at(2).as_str()));
    let stale = client(
        &registry.url,
        Some(Credentials::identity_token("expired-refresh-token")),
    );
    let error = stale.tag_info("team/app", "c").await.unwrap_err();
    assert!(
        matches!(error, RegistryError::CredentialsRejected { .. }),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains("expired-refresh-token"));

    // Known, but not allowed to read this repository.
    let error = good.tags("forbidden/app").await.unwrap_err();
    assert!(
        matches!(error, RegistryError::AccessDenied { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "registry {} denied pull access to forbidden/app for the credentials from the given username \
             and password: the token server granted no pull access",
            registry.host
        )
    );

    // Anonymous: the token server hands out a token that grants nothing.
    let error = client(&registry.url, None)
        .tags("team/app")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::CredentialsRequired { .. }),
        "{error:?}"
    );
    assert_short(&error.to_string());
    assert!(
        error.to_string().contains("DROVER_REGISTRY_USERNAME"),
        "{error}"
    );

    let wrong = Credentials::new("deployer", "not-the-password")
        .with_source("/root/.docker/config.json (auths)");
    let error = client(&registry.url, Some(wrong))
        .tag_info("team/app", "a")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::CredentialsRejected { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "registry {host} rejected the credentials from /root/.docker/config.json (auths): check them, \
             or run `docker login {host}` again",
            host = registry.host
        )
    );
    assert!(!format!("{error} {error:?}").contains("not-the-password"));
}

#[tokio::test]
async fn unreachable_registry_names_the_url_and_the_cause() {
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let error = client(&url, None).tags("team/app").await.unwrap_err();
    assert!(
        matches!(error, RegistryError::Unreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert_short(&message);
    assert!(
        message.starts_with(&format!("cannot reach registry {url}: ")),
        "{message}"
    );
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );

    let (addr, silent) = silent_server().await;
    let slow = RegistryClient::new(&format!("http://{addr}"), None, Duration::from_millis(300))
        .expect("client")
        .with_blob_cache_dir(None);
    let started = std::time::Instant::now();
    let error = slow.tags("team/app").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout was not applied"
    );
    assert_eq!(
        error.to_string(),
        format!("registry http://{addr} did not answer within 300ms")
    );
    silent.abort();
}

#[tokio::test]
async fn a_web_server_that_is_not_a_registry_gives_short_errors() {
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body>{}</body></html>\n",
        "<p>This is not the registry you are looking for.</p>\n".repeat(20_000)
    );
    assert!(page.len() > 1_000_000);

    // 200 with a big HTML page.
    let ok = html_server(200, page.clone()).await;
    let error = client(&ok.url(), None).tags("team/app").await.unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::InvalidJson {
                registry_api: false,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert_short(&message);
    assert!(
        message.contains("does not look like a docker registry"),
        "{message}"
    );
    assert!(message.contains(&ok.url()), "{message}");

    // 404 with an HTML page.
    let missing = html_server(404, page.clone()).await;
    let error = client(&missing.url(), None)
        .tags("team/app")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::NotARegistry { .. }),
        "{error:?}"
    );
    assert_short(&error.to_string());
    assert!(error.to_string().contains("is http://"), "{error}");

    // 502 from a proxy: its title, not its page.
    let bad_gateway = html_server(502, page.clone()).await;
    let error = client(&bad_gateway.url(), None)
        .tags("team/app")
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::Status { .. }), "{error:?}");
    assert_short(&error.to_string());
    assert_eq!(
        error.to_string(),
        format!(
            "registry {host} answered 502 Bad Gateway for http://{host}/v2/team/app/tags/list?n=100: Welcome to nginx!",
            host = bad_gateway.addr
        )
    );

    // More than a tag list may be: refused without reading it all.
    let huge = html_server(200, "x".repeat(17 * 1024 * 1024)).await;
    let error = client(&huge.url(), None)
        .tags("team/app")
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::TooLarge { .. }), "{error:?}");
    assert_short(&error.to_string());
    assert!(
        error
            .to_string()
            .ends_with("is larger than the 16 MiB limit"),
        "{error}"
    );
}

#[tokio::test]
async fn missing_repositories_tags_and_blobs_are_named() {
    let registry = Registry::start(Auth::Anonymous).await;
    let pusher = Pusher::new(&registry.url, None);
    pusher
        .image(
            "team/app",
            Some("good"),
            "2024-03-01T00:00:00Z",
            "amd64",
            false,
        )
        .await;
    let broken = pusher
        .image(
            "team/app",
            Some("broken"),
            "2024-03-02T00:00:00Z",
            "amd64",
            false,
        )
        .await;
    pusher.delete_blob("team/app", &broken.config_digest).await;
    let client = client(&registry.url, None);

    let error = client.tags("team/missing").await.unwrap_err();
    assert!(
        matches!(error, RegistryError::RepositoryNotFound { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "repository team/missing not found on registry {}",
            registry.host
        )
    );

    let error = client.tag_info("team/app", "nope").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "tag nope not found in repository team/app on registry {}",
            registry.host
        )
    );

    // One broken tag does not hide the others.
    let infos = client.tags_newest_first("team/app").await.expect("listing");
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].tag, "good");
    assert_eq!(infos[0].error, None);
    assert_eq!(infos[1].tag, "broken");
    assert_eq!(infos[1].created, None);
    assert_eq!(
        infos[1].error.as_deref(),
        Some(
            format!(
                "blob {} of team/app not found on registry {}",
                broken.config_digest, registry.host
            )
            .as_str()
        )
    );

    let error = client.tags("Team/App").await.unwrap_err();
    assert!(
        matches!(error, RegistryError::InvalidName { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn config_blobs_are_cached_on_disk_and_verified() {
    let registry = Registry::start(Auth::Anonymous).await;
    let pusher = Pusher::new(&registry.url, None);
    let pushed = pusher
        .image(
            "team/app",
            Some("1"),
            "2024-07-01T00:00:00Z",
            "amd64",
            false,
        )
        .await;
    let cache = tempfile::tempdir().expect("cache dir");
    let cache_dir = cache.path().join("drover/registry-blobs");
    let cached_client = |url: &str| {
        RegistryClient::new(url, None, TIMEOUT)
            .expect("client")
            .with_blob_cache_dir(Some(cache_dir.clone()))
    };

    // A registry that corrupts blobs: refused, and nothing is cached.
    let (corrupting, _) = paginating_proxy(&registry.url, true).await;
    let error = cached_client(&corrupting.url())
        .tag_info("team/app", "1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::DigestMismatch { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&pushed.config_digest), "{error}");
    assert!(!cache_dir.exists() || std::fs::read_dir(&cache_dir).expect("dir").next().is_none());

    let info = cached_client(&registry.url)
        .tag_info("team/app", "1")
        .await
        .expect("tag info");
    assert_eq!(info.created.as_deref(), Some("2024-07-01T00:00:00Z"));
    let file = cache_dir.join(pushed.config_digest.replace(':', "-"));
    assert_eq!(
        support::sha256(&std::fs::read(&file).expect("cached blob")),
        pushed.config_digest
    );

    // With the blob gone from the registry, only the cache can answer.
    pusher.delete_blob("team/app", &pushed.config_digest).await;
    let info = cached_client(&registry.url)
        .tag_info("team/app", "1")
        .await
        .expect("from the cache");
    assert_eq!(info.created.as_deref(), Some("2024-07-01T00:00:00Z"));
    let error = client(&registry.url, None)
        .tag_info("team/app", "1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::BlobNotFound { .. }),
        "{error:?}"
    );

    // A tampered cache entry is not trusted.
    std::fs::write(&file, br#"{"created":"1999-01-01T00:00:00Z"}"#).expect("tamper");
    let error = cached_client(&registry.url)
        .tag_info("team/app", "1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::BlobNotFound { .. }),
        "{error:?}"
    );
}

/// What `gc` asks before it removes an image: does the registry still hold
/// this exact manifest, so that the image can be pulled again?
#[tokio::test]
async fn a_manifest_is_found_by_digest_and_a_missing_one_is_none() {
    let registry = Registry::start(Auth::Anonymous).await;
    let pusher = Pusher::new(&registry.url, None);
    let pushed = pusher
        .image(
            "team/app",
            Some("1"),
            "2024-03-01T00:00:00Z",
            "amd64",
            false,
        )
        .await;
    let client = client(&registry.url, None);

    assert_eq!(
        client
            .find_manifest("team/app", &pushed.manifest_digest)
            .await
            .expect("asked"),
        Some(pushed.manifest_digest.clone())
    );
    let absent = format!("sha256:{}", "0".repeat(64));
    assert_eq!(
        client
            .find_manifest("team/app", &absent)
            .await
            .expect("asked"),
        None
    );
    assert_eq!(
        client
            .find_manifest("team/gone", &absent)
            .await
            .expect("asked"),
        None
    );
    let error = client.tag_info("team/app", "nope").await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    let error = client
        .find_manifest("team/app", "latest")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::InvalidDigest { .. }),
        "{error:?}"
    );
}
