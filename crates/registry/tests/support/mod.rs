//! Real registries for the integration tests, and the small servers around
//! them.
//!
//! Each test starts its own `docker-registry` (Debian's build of
//! distribution v2.8) on a free loopback port with a temporary storage
//! directory, fills it over plain HTTP the way `docker push` would, and
//! kills it when the [`Registry`] is dropped. Around it: a token server
//! that signs JWTs the registry verifies, a proxy that paginates the tag
//! list (distribution v2.8 itself never does), and servers that are not
//! registries at all.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};

pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An empty tar archive (two zero blocks), gzipped: a real, empty layer.
pub const EMPTY_LAYER_GZ: [u8; 29] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff, 0x63, 0x60, 0x18, 0x05, 0xa3, 0x60,
    0x14, 0x8c, 0x54, 0x00, 0x00, 0x2e, 0xaf, 0xb5, 0xef, 0x00, 0x04, 0x00, 0x00,
];

pub fn sha256(content: &[u8]) -> String {
    let hash = Sha256::digest(content);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// How the registry authenticates.
pub enum Auth {
    Anonymous,
    Htpasswd { username: String, password: String },
    Token(TokenConfig),
}

pub struct TokenConfig {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub root_cert_pem: String,
}

/// A running `docker-registry`, killed on drop.
pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub url: String,
    pub host: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    pub async fn start(auth: Auth) -> Registry {
        assert!(
            Path::new(REGISTRY_BINARY).exists(),
            "{REGISTRY_BINARY} is missing: these tests run a real registry; run scripts/install-deps \
             (Debian package docker-registry)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let auth_yaml = match &auth {
            Auth::Anonymous => String::new(),
            Auth::Htpasswd { username, password } => {
                let hash = bcrypt::hash(password, 4).expect("bcrypt");
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{username}:{hash}\n")).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: drover-test\n    path: {}\n",
                    path.display()
                )
            }
            Auth::Token(token) => {
                let path = dir.path().join("token-root.pem");
                std::fs::write(&path, &token.root_cert_pem).expect("write root cert");
                format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    token.realm,
                    token.service,
                    token.issuer,
                    path.display()
                )
            }
        };
        // The port is free when we look; another process could take it
        // before the registry binds, so try a few times.
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: drover-test-secret\n\
                 {auth_yaml}",
                storage = dir.path().join("storage").display(),
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).expect("write registry config");
            let log_path = dir.path().join("registry.log");
            let log = std::fs::File::create(&log_path).expect("create log");
            let log_err = log.try_clone().expect("clone log");
            let mut child = Command::new(REGISTRY_BINARY)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .expect("spawn docker-registry");
            let url = format!("http://127.0.0.1:{port}");
            if wait_ready(&mut child, &url).await {
                return Registry {
                    child,
                    dir,
                    port,
                    host: format!("127.0.0.1:{port}"),
                    url,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!("docker-registry did not start; its log:\n{last_log}");
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

async fn wait_ready(child: &mut Child, url: &str) -> bool {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(response) = client.get(format!("{url}/v2/")).send().await {
            if response
                .headers()
                .contains_key("docker-distribution-api-version")
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// An `Authorization: Basic` value.
pub fn basic(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Pushes blobs and manifests over the registry API, as `docker push` does.
#[derive(Clone)]
pub struct Pusher {
    http: reqwest::Client,
    base: String,
    authorization: Option<String>,
}

/// What was pushed for one image.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub manifest_digest: String,
    pub config_digest: String,
    pub created: String,
}

impl Pusher {
    pub fn new(base: &str, authorization: Option<String>) -> Pusher {
        Pusher {
            http: reqwest::Client::new(),
            base: base.to_string(),
            authorization,
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        }
    }

    /// A monolithic upload: POST for an upload URL, PUT the content there.
    pub async fn blob(&self, repository: &str, content: &[u8]) -> String {
        let digest = sha256(content);
        let response = self
            .request(
                reqwest::Method::POST,
                &format!("{}/v2/{repository}/blobs/uploads/", self.base),
            )
            .send()
            .await
            .expect("start upload");
        assert_eq!(
            response.status(),
            202,
            "start upload: {:?}",
            response.text().await
        );
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("upload location")
            .to_string();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("{location}{separator}digest={digest}"),
            )
            .header("content-type", "application/octet-stream")
            .body(content.to_vec())
            .send()
            .await
            .expect("finish upload");
        assert_eq!(
            response.status(),
            201,
            "finish upload: {:?}",
            response.text().await
        );
        digest
    }

    /// Uploads a blob unless the registry has it, as `docker push` does:
    /// distribution v2.8 can lose a blob that concurrent uploads of the
    /// same content race to link.
    pub async fn ensure_blob(&self, repository: &str, content: &[u8]) -> String {
        let digest = sha256(content);
        let response = self
            .request(
                reqwest::Method::HEAD,
                &format!("{}/v2/{repository}/blobs/{digest}", self.base),
            )
            .send()
            .await
            .expect("head blob");
        if response.status() == 200 {
            return digest;
        }
        self.blob(repository, content).await
    }

    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("{}/v2/{repository}/manifests/{reference}", self.base),
            )
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("put manifest");
        assert_eq!(
            response.status(),
            201,
            "put manifest {reference}: {:?}",
            response.text().await
        );
        sha256(body)
    }

    pub async fn delete_blob(&self, repository: &str, digest: &str) {
        let response = self
            .request(
                reqwest::Method::DELETE,
                &format!("{}/v2/{repository}/blobs/{digest}", self.base),
            )
            .send()
            .await
            .expect("delete blob");
        assert_eq!(
            response.status(),
            202,
            "delete blob: {:?}",
            response.text().await
        );
    }

    /// An image config blob, an empty layer and a schema 2 (or OCI)
    /// manifest, tagged `tag` (or untagged, by digest, when `tag` is None).
    pub async fn image(
        &self,
        repository: &str,
        tag: Option<&str>,
        created: &str,
        architecture: &str,
        oci: bool,
    ) -> Pushed {
        let layer_digest = self.ensure_blob(repository, &EMPTY_LAYER_GZ).await;
        let diff_id = sha256(&[0u8; 1024]);
        let config = serde_json::json!({
            "architecture": architecture,
            "os": "linux",
            "created": created,
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": format!("drover test {repository}")}],
        });
        let config = serde_json::to_vec(&config).expect("config json");
        let config_digest = self.blob(repository, &config).await;
        let (media_type, config_type, layer_type) = if oci {
            (
                OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (
                DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "size": config.len(), "digest": config_digest},
            "layers": [{"mediaType": layer_type, "size": EMPTY_LAYER_GZ.len(), "digest": layer_digest}],
        });
        let manifest = serde_json::to_vec(&manifest).expect("manifest json");
        let digest = sha256(&manifest);
        let reference = tag.unwrap_or(&digest).to_string();
        let manifest_digest = self
            .manifest(repository, &reference, media_type, &manifest)
            .await;
        Pushed {
            manifest_digest,
            config_digest,
            created: created.to_string(),
        }
    }

    /// A manifest list (or OCI index) of `(manifest digest, os, architecture)`.
    pub async fn list(
        &self,
        repository: &str,
        tag: &str,
        oci: bool,
        entries: &[(&str, &str, &str)],
    ) -> String {
        let (media_type, entry_type) = if oci {
            (OCI_INDEX, OCI_MANIFEST)
        } else {
            (DOCKER_LIST, DOCKER_MANIFEST)
        };
        let mut manifests = Vec::new();
        for (digest, os, architecture) in entries {
            // The registry checks every entry exists; its size is the manifest's.
            let response = self
                .request(
                    reqwest::Method::GET,
                    &format!("{}/v2/{repository}/manifests/{digest}", self.base),
                )
                .header("accept", entry_type)
                .send()
                .await
                .expect("get manifest");
            let size = response.bytes().await.expect("manifest body").len();
            manifests.push(serde_json::json!({
                "mediaType": entry_type,
                "digest": digest,
                "size": size,
                "platform": {"architecture": architecture, "os": os},
            }));
        }
        let list = serde_json::json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
        let body = serde_json::to_vec(&list).expect("list json");
        self.manifest(repository, tag, media_type, &body).await
    }
}

/// A loopback HTTP server running `handler`, stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub type HttpResponse = Response<Full<Bytes>>;

pub async fn serve<H, F>(handler: H) -> Server
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server { addr, task }
}

pub fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).expect("status");
    for (name, value) in headers {
        response.headers_mut().insert(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            hyper::header::HeaderValue::from_str(value).expect("header value"),
        );
    }
    response
}

/// A server that answers every request with the same status and page.
pub async fn html_server(status: u16, body: String) -> Server {
    let body = Bytes::from(body);
    serve(move |_request| {
        let body = body.clone();
        async move {
            respond(
                status,
                &[("content-type", "text/html; charset=utf-8")],
                body,
            )
        }
    })
    .await
}

/// A port that accepts connections and never answers.
pub async fn silent_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// What the paginating proxy saw.
#[derive(Default)]
pub struct ProxyLog {
    /// `(n, last)` of every tag list request.
    pub tag_pages: Mutex<Vec<(Option<String>, Option<String>)>>,
    in_flight: AtomicUsize,
    /// The most manifest requests in flight at once.
    pub max_in_flight_manifests: AtomicUsize,
}

/// A reverse proxy in front of a registry that pages the tag list as
/// distribution v3, Harbor or Docker Hub do (`n`, `last`, `Link: <…>;
/// rel="next"`), and optionally corrupts blobs.
pub async fn paginating_proxy(upstream: &str, corrupt_blobs: bool) -> (Server, Arc<ProxyLog>) {
    let log = Arc::new(ProxyLog::default());
    let upstream = upstream.to_string();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let shared = log.clone();
    let server = serve(move |request: Request<Incoming>| {
        let upstream = upstream.clone();
        let client = client.clone();
        let log = shared.clone();
        async move {
            let path = request.uri().path().to_string();
            let query: BTreeMap<String, String> =
                url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let mut forward = client.get(format!("{upstream}{path}"));
            for name in ["authorization", "accept"] {
                if let Some(value) = request.headers().get(name) {
                    forward = forward.header(name, value.as_bytes());
                }
            }
            let is_manifest = path.contains("/manifests/");
            if is_manifest {
                let now = log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                log.max_in_flight_manifests.fetch_max(now, Ordering::SeqCst);
                // Hold each manifest request a little, so concurrency shows.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let answer = forward.send().await;
            if is_manifest {
                log.in_flight.fetch_sub(1, Ordering::SeqCst);
            }
            let Ok(answer) = answer else {
                return respond(502, &[], "upstream unreachable");
            };
            let status = answer.status().as_u16();
            let headers: Vec<(String, String)> = answer
                .headers()
                .iter()
                .filter(|(name, _)| {
                    matches!(
                        name.as_str(),
                        "content-type"
                            | "docker-content-digest"
                            | "www-authenticate"
                            | "docker-distribution-api-version"
                    )
                })
                .filter_map(|(name, value)| {
                    Some((name.to_string(), value.to_str().ok()?.to_string()))
                })
                .collect();
            let mut body = answer.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            let mut extra: Vec<(String, String)> = Vec::new();

            if path.ends_with("/tags/list") && status == 200 {
                log.tag_pages
                    .lock()
                    .expect("log")
                    .push((query.get("n").cloned(), query.get("last").cloned()));
                let list: serde_json::Value = serde_json::from_slice(&body).expect("tag list json");
                let mut tags: Vec<String> = list["tags"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                tags.sort();
                let n: usize = query
                    .get("n")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(tags.len());
                let after: Vec<String> = match query.get("last") {
                    Some(last) => tags.into_iter().filter(|t| t > last).collect(),
                    None => tags,
                };
                let page: Vec<String> = after.iter().take(n).cloned().collect();
                if after.len() > n {
                    if let Some(last) = page.last() {
                        extra.push((
                            "link".into(),
                            format!("<{path}?last={last}&n={n}>; rel=\"next\""),
                        ));
                    }
                }
                body = serde_json::to_vec(&serde_json::json!({"name": list["name"], "tags": page}))
                    .expect("json");
            }
            if corrupt_blobs && path.contains("/blobs/") && status == 200 {
                if let Some(first) = body.first_mut() {
                    *first ^= 0x20;
                }
            }
            let mut all: Vec<(&str, &str)> = headers
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            all.extend(extra.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            respond(status, &all, body)
        }
    })
    .await;
    (server, log)
}

/// The identity (refresh) token the test token server accepts.
pub const IDENTITY_TOKEN: &str = "drover-test-refresh-token";

/// A token server as `docker login` meets it: checks Basic credentials,
/// and signs ES256 JWTs that distribution verifies against `root_cert_pem`
/// through the `x5c` header.
pub struct TokenServer {
    pub server: Server,
    pub config: TokenConfig,
    issuer: Arc<Issuer>,
    pub requests: Arc<AtomicUsize>,
}

struct Issuer {
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
    issuer: String,
    service: String,
}

impl Issuer {
    /// A JWT granting `access`: `(repository, actions)`.
    fn mint(&self, subject: &str, access: &[(String, Vec<String>)]) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.cert_der)],
        });
        let access: Vec<serde_json::Value> = access
            .iter()
            .map(|(name, actions)| serde_json::json!({"type": "repository", "name": name, "actions": actions}))
            .collect();
        let claims = serde_json::json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", rand_suffix()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64.encode(serde_json::to_vec(&header).expect("header")),
            b64.encode(serde_json::to_vec(&claims).expect("claims"))
        );
        let rng = ring::rand::SystemRandom::new();
        let signature = self.key.sign(&rng, signing_input.as_bytes()).expect("sign");
        format!("{signing_input}.{}", b64.encode(signature.as_ref()))
    }
}

fn rand_suffix() -> u64 {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed) as u64
}

impl TokenServer {
    pub async fn start(username: &str, password: &str) -> TokenServer {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["drover-test-token-issuer".to_string()])
                .expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key_pair).expect("self-signed cert");
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .expect("ring key");
        let issuer = Arc::new(Issuer {
            key,
            cert_der: cert.der().to_vec(),
            issuer: "drover-test-issuer".into(),
            service: "drover-test-registry".into(),
        });
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        );
        let requests = Arc::new(AtomicUsize::new(0));
        let (shared_issuer, shared_requests) = (issuer.clone(), requests.clone());
        let server = serve(move |request: Request<Incoming>| {
            let issuer = shared_issuer.clone();
            let requests = shared_requests.clone();
            let expected = expected.clone();
            async move {
                requests.fetch_add(1, Ordering::SeqCst);
                let authorization = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let is_post = request.method() == hyper::Method::POST;
                let query = request.uri().query().unwrap_or("").to_string();
                let body = request
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                // GET carries the parameters in the query; the OAuth2 POST
                // (identity tokens) in a form body.
                let form = if is_post { &body[..] } else { query.as_bytes() };
                let pairs: Vec<(String, String)> =
                    url::form_urlencoded::parse(form).into_owned().collect();
                let param = |name: &str| {
                    pairs
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                };
                let service_ok = pairs
                    .iter()
                    .any(|(k, v)| k == "service" && v == "drover-test-registry");
                if !service_ok {
                    return respond(400, &[], r#"{"details":"unknown service"}"#);
                }
                let subject = match authorization {
                    None if is_post => {
                        let grant_ok = param("grant_type").as_deref() == Some("refresh_token")
                            && param("client_id").is_some();
                        if !grant_ok || param("refresh_token").as_deref() != Some(IDENTITY_TOKEN) {
                            return respond(
                                401,
                                &[("content-type", "application/json")],
                                r#"{"error":"invalid_grant"}"#,
                            );
                        }
                        "drover-identity"
                    }
                    None => "",
                    Some(value) if value == expected => "drover",
                    Some(_) => {
                        return respond(
                            401,
                            &[("content-type", "application/json")],
                            r#"{"details":"incorrect username or password"}"#,
                        )
                    }
                };
                // Anonymous callers get a token that grants nothing, as
                // Docker Hub does for private repositories.
                let access: Vec<(String, Vec<String>)> = if subject.is_empty() {
                    Vec::new()
                } else {
                    pairs
                        .iter()
                        .filter(|(k, _)| k == "scope")
                        .filter_map(|(_, scope)| {
                            let mut parts = scope.splitn(3, ':');
                            let (kind, name, actions) =
                                (parts.next()?, parts.next()?, parts.next()?);
                            // Nobody may read `forbidden/…`.
                            (kind == "repository" && !name.starts_with("forbidden/")).then(|| {
                                (
                                    name.to_string(),
                                    actions.split(',').map(str::to_string).collect(),
                                )
                            })
                        })
                        .collect()
                };
                let token = issuer.mint(subject, &access);
                // OAuth2 answers say `access_token`, Docker's `token`.
                let body = if is_post {
                    serde_json::json!({"access_token": token, "expires_in": 300})
                } else {
                    serde_json::json!({"token": token, "expires_in": 300})
                };
                respond(
                    200,
                    &[("content-type", "application/json")],
                    body.to_string(),
                )
            }
        })
        .await;
        let config = TokenConfig {
            realm: format!("{}/token", server.url()),
            service: "drover-test-registry".into(),
            issuer: "drover-test-issuer".into(),
            root_cert_pem: cert.pem(),
        };
        TokenServer {
            server,
            config,
            issuer,
            requests,
        }
    }

    pub fn registry_auth(&self) -> Auth {
        Auth::Token(TokenConfig {
            realm: self.config.realm.clone(),
            service: self.config.service.clone(),
            issuer: self.config.issuer.clone(),
            root_cert_pem: self.config.root_cert_pem.clone(),
        })
    }

    /// A token the test itself uses to push.
    pub fn push_authorization(&self, repository: &str) -> String {
        let token = self.issuer.mint(
            "pusher",
            &[(
                repository.to_string(),
                vec!["pull".to_string(), "push".to_string()],
            )],
        );
        format!("Bearer {token}")
    }
}

/// `created` for minute `minute` of 2024-01-01.
pub fn created_at(minute: u32) -> String {
    format!(
        "2024-01-{:02}T{:02}:{:02}:00Z",
        1 + minute / 1440,
        (minute / 60) % 24,
        minute % 60
    )
}
