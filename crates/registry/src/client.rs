//! The registry client: requests, authentication, tags and manifests.
//!
//! Every request goes through one path ([`RegistryClient::get`]) that tries
//! what it already knows (a cached token or Basic), answers a 401 challenge
//! once, and turns a second 401 into an error that says whether credentials
//! are missing, wrong, or not allowed. Tokens are cached per scope so that
//! listing hundreds of tags costs one token request, not hundreds.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LINK, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;

use crate::auth::{self, Challenge, TokenResponse};
use crate::cache;
use crate::credentials::Secret;
use crate::error::{humanize, one_line};
use crate::http::{self, API_VERSION_HEADER};
use crate::manifest::{self, Manifest, ManifestProblem};
use crate::order;
use crate::reference::{validate_repository, validate_tag, Digest};
use crate::time::parse_rfc3339;
use crate::{Credentials, RegistryError, TagInfo};

/// How many tags [`RegistryClient::tags_newest_first`] reads at once: enough
/// to hide latency, few enough not to look like an attack to a registry.
pub const TAG_INFO_CONCURRENCY: usize = 8;
/// Tags asked for per page.
const TAGS_PAGE_SIZE: &str = "100";
/// At most this many tag list pages are followed.
const MAX_TAG_PAGES: usize = 10_000;
const MIB: usize = 1024 * 1024;
const MANIFEST_LIMIT: usize = 4 * MIB;
const CONFIG_LIMIT: usize = 4 * MIB;
const TAG_LIST_LIMIT: usize = 16 * MIB;
const TOKEN_LIMIT: usize = MIB;
const DIGEST_HEADER: &str = "docker-content-digest";

/// A client for one registry. Cheap to clone: clones share the connection
/// pool and the token cache.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// The base URL, ending in `/`, that `v2/…` paths are joined to.
    base: Url,
    /// The base URL as shown in messages.
    display: String,
    /// `host[:port]`, as `docker login` and credential stores name it.
    host: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    timeout: Duration,
    blob_cache: Option<PathBuf>,
    auth: Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
    /// The registry asked for Basic once; send it up front from now on.
    basic: bool,
    /// Bearer tokens by scope.
    tokens: HashMap<String, CachedToken>,
}

struct CachedToken {
    value: String,
    expires: Instant,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &self.inner;
        f.debug_struct("RegistryClient")
            .field("base", &inner.display)
            .field("credentials", &inner.credentials)
            .field("timeout", &inner.timeout)
            .field("blob_cache", &inner.blob_cache)
            .finish_non_exhaustive()
    }
}

/// What a request was for, so a 404 can say what is missing.
enum Target<'a> {
    Tags {
        repository: &'a str,
    },
    Manifest {
        repository: &'a str,
        reference: &'a str,
    },
    Blob {
        repository: &'a str,
        digest: &'a str,
    },
}

impl Target<'_> {
    fn repository(&self) -> &str {
        match self {
            Target::Tags { repository }
            | Target::Manifest { repository, .. }
            | Target::Blob { repository, .. } => repository,
        }
    }
}

#[derive(Deserialize)]
struct TagList {
    tags: Option<Vec<String>>,
}

impl RegistryClient {
    /// A client for the registry at `base`, the URL as written in
    /// `drover.toml` `[registry] url` (`http://127.0.0.1:5000`,
    /// `https://reg.example:5000`). Every request, body included, must
    /// finish within `timeout`.
    pub fn new(
        base: &str,
        credentials: Option<Credentials>,
        timeout: Duration,
    ) -> Result<Self, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidUrl {
            url: redact_userinfo(base),
            reason: reason.to_string(),
        };
        let mut url = Url::parse(base.trim()).map_err(|error| invalid(&error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("it must start with http:// or https://"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "credentials do not belong in the url: set DROVER_REGISTRY_USERNAME and \
                 DROVER_REGISTRY_PASSWORD, or run `docker login`",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not have a query or fragment"));
        }
        let Some(host_name) = url.host_str().map(str::to_string) else {
            return Err(invalid("it has no host"));
        };
        let host = match url.port() {
            Some(port) => format!("{host_name}:{port}"),
            None => host_name,
        };
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let display = url.as_str().trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("drover/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|error| RegistryError::Client(http::transport_cause(&error)))?;
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                base: url,
                display,
                host,
                http,
                credentials,
                timeout,
                blob_cache: cache::default_dir(),
                auth: Mutex::new(AuthState::default()),
            }),
        })
    }

    /// [`RegistryClient::new`] with the credentials [`Credentials::lookup`]
    /// finds for the registry's host.
    pub fn with_credentials_from_environment(
        base: &str,
        timeout: Duration,
    ) -> Result<Self, RegistryError> {
        let anonymous = RegistryClient::new(base, None, timeout)?;
        let credentials = Credentials::lookup(anonymous.registry_host())?;
        Ok(anonymous.with_credentials(credentials))
    }

    /// The same registry with other credentials (and an empty token cache).
    pub fn with_credentials(self, credentials: Option<Credentials>) -> Self {
        self.rebuild(|inner| inner.credentials = credentials)
    }

    /// Where config blobs are cached; `None` turns the cache off. The
    /// default is `$XDG_CACHE_HOME/drover/registry-blobs` (or
    /// `~/.cache/drover/registry-blobs`).
    pub fn with_blob_cache_dir(self, dir: Option<PathBuf>) -> Self {
        self.rebuild(|inner| inner.blob_cache = dir)
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        let old = &self.inner;
        let mut inner = Inner {
            base: old.base.clone(),
            display: old.display.clone(),
            host: old.host.clone(),
            http: old.http.clone(),
            credentials: old.credentials.clone(),
            timeout: old.timeout,
            blob_cache: old.blob_cache.clone(),
            auth: Mutex::new(AuthState::default()),
        };
        change(&mut inner);
        RegistryClient {
            inner: Arc::new(inner),
        }
    }

    /// The registry's `host[:port]`, as `docker login` and credential
    /// stores name it.
    pub fn registry_host(&self) -> &str {
        &self.inner.host
    }

    /// Every tag of `repository` (e.g. `team/app`), in the registry's
    /// order, following `Link: <…>; rel="next"` pages of 100.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        validate_repository(repository)?;
        let mut url = self.url(&format!("v2/{repository}/tags/list"))?;
        url.query_pairs_mut().append_pair("n", TAGS_PAGE_SIZE);
        let mut tags = Vec::new();
        let mut seen_tags = HashSet::new();
        let mut seen_pages = HashSet::from([url.to_string()]);
        loop {
            let response = self.get(&url, repository, None).await?;
            let response = self.check(response, Target::Tags { repository }).await?;
            let next = response
                .headers()
                .get_all(LINK)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(http::next_link);
            let registry_api = response.headers().contains_key(API_VERSION_HEADER);
            let body = self.read(response, TAG_LIST_LIMIT, "tag list").await?;
            let page: TagList =
                serde_json::from_slice(&body).map_err(|error| RegistryError::InvalidJson {
                    what: "tag list",
                    url: url.to_string(),
                    cause: error.to_string(),
                    registry_api,
                })?;
            for tag in page.tags.unwrap_or_default() {
                if seen_tags.insert(tag.clone()) {
                    tags.push(tag);
                }
            }
            let Some(link) = next else {
                return Ok(tags);
            };
            let bad = |reason| RegistryError::BadPagination {
                registry: self.inner.host.clone(),
                link: one_line(&link),
                reason,
            };
            let next_url = url.join(&link).map_err(|_| bad("it is not a url"))?;
            if next_url.origin() != self.inner.base.origin() {
                return Err(bad("it points to another server"));
            }
            if !seen_pages.insert(next_url.to_string()) {
                return Err(bad("it points back to a page already read"));
            }
            if seen_pages.len() > MAX_TAG_PAGES {
                return Err(bad("the list goes on for more than 10000 pages"));
            }
            url = next_url;
        }
    }

    /// One tag's manifest digest, config digest and image creation time.
    ///
    /// Reads Docker schema 2 and OCI image manifests, and manifest lists /
    /// OCI indexes, from which it follows linux/amd64, else the first image.
    pub async fn tag_info(&self, repository: &str, tag: &str) -> Result<TagInfo, RegistryError> {
        validate_repository(repository)?;
        validate_tag(tag)?;
        let (digest, manifest) = self.manifest(repository, tag).await?;
        let (config_digest, config_size) = match manifest {
            Manifest::Image {
                config_digest,
                config_size,
            } => (config_digest, config_size),
            Manifest::Index { entries } => {
                let unsupported = |reason: &str| RegistryError::UnsupportedManifest {
                    registry: self.inner.host.clone(),
                    repository: repository.to_string(),
                    reference: tag.to_string(),
                    reason: reason.to_string(),
                };
                let entry = manifest::pick_platform(&entries)
                    .ok_or_else(|| unsupported("the manifest list is empty"))?;
                let child = self.parse_digest(&entry.digest)?;
                match self.manifest(repository, child.as_str()).await?.1 {
                    Manifest::Image {
                        config_digest,
                        config_size,
                    } => (config_digest, config_size),
                    Manifest::Index { .. } => {
                        return Err(unsupported("a manifest list inside a manifest list"))
                    }
                }
            }
        };
        let config_digest = self.parse_digest(&config_digest)?;
        let config = self.blob(repository, &config_digest, config_size).await?;
        let created =
            manifest::config_created(&config).map_err(|cause| RegistryError::InvalidJson {
                what: "image config",
                url: self.blob_url_text(repository, &config_digest),
                cause,
                registry_api: true,
            })?;
        Ok(TagInfo {
            tag: tag.to_string(),
            digest: Some(digest),
            config_digest: Some(config_digest.to_string()),
            created_unix: created.as_deref().and_then(parse_rfc3339),
            created,
            error: None,
        })
    }

    /// The digest of the manifest that `digest` (`sha256:…`) names in
    /// `repository`, or `None` when the registry answers that it holds no
    /// such manifest: whether that exact image can still be pulled from here.
    pub async fn find_manifest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<String>, RegistryError> {
        validate_repository(repository)?;
        let digest = self.parse_digest(digest)?;
        match self.manifest(repository, digest.as_str()).await {
            Ok((found, _)) => Ok(Some(found)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`tags`](Self::tags), then [`tag_info`](Self::tag_info) for each
    /// ([`TAG_INFO_CONCURRENCY`] at a time), newest first by `created`;
    /// ties and unknown times by tag name, descending. A tag whose details
    /// fail is still listed, with its error.
    pub async fn tags_newest_first(&self, repository: &str) -> Result<Vec<TagInfo>, RegistryError> {
        let tags = self.tags(repository).await?;
        let mut infos: Vec<TagInfo> = futures::stream::iter(tags)
            .map(|tag| async move {
                match self.tag_info(repository, &tag).await {
                    Ok(info) => info,
                    Err(error) => TagInfo::failed(tag, error),
                }
            })
            .buffer_unordered(TAG_INFO_CONCURRENCY)
            .collect()
            .await;
        order::sort_newest_first(&mut infos);
        Ok(infos)
    }

    /// Fetches a manifest by tag or digest: its digest and its content.
    async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(String, Manifest), RegistryError> {
        let url = self.url(&format!("v2/{repository}/manifests/{reference}"))?;
        let response = self.get(&url, repository, Some(manifest::ACCEPT)).await?;
        let response = self
            .check(
                response,
                Target::Manifest {
                    repository,
                    reference,
                },
            )
            .await?;
        let headers = response.headers();
        let header_digest = headers
            .get(DIGEST_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let registry_api = headers.contains_key(API_VERSION_HEADER);
        let body = self.read(response, MANIFEST_LIMIT, "manifest").await?;

        let actual = cache::sha256_digest(&body);
        let mismatch = |digest: &str| RegistryError::DigestMismatch {
            registry: self.inner.host.clone(),
            digest: digest.to_string(),
            actual: actual.clone(),
        };
        // Asked for by digest: the content must be exactly that.
        if let Some(asked) = Digest::parse(reference) {
            if asked.sha256_hex().is_some() && asked.as_str() != actual {
                return Err(mismatch(asked.as_str()));
            }
        }
        let digest = match header_digest {
            Some(header) => {
                let header = self.parse_digest(&header)?;
                if header.sha256_hex().is_some() && header.as_str() != actual {
                    return Err(mismatch(header.as_str()));
                }
                header.to_string()
            }
            None => actual.clone(),
        };
        let manifest =
            manifest::parse(&body, content_type.as_deref()).map_err(|problem| match problem {
                ManifestProblem::Json(cause) => RegistryError::InvalidJson {
                    what: "manifest",
                    url: url.to_string(),
                    cause,
                    registry_api,
                },
                ManifestProblem::Unsupported(reason) => RegistryError::UnsupportedManifest {
                    registry: self.inner.host.clone(),
                    repository: repository.to_string(),
                    reference: reference.to_string(),
                    reason,
                },
            })?;
        Ok((digest, manifest))
    }

    /// Fetches a (config) blob, from the disk cache when there, verifying
    /// its sha256 before it is used or cached.
    async fn blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<Vec<u8>, RegistryError> {
        if size.is_some_and(|size| size > CONFIG_LIMIT as u64) {
            return Err(RegistryError::TooLarge {
                what: "image config",
                url: self.blob_url_text(repository, digest),
                limit: CONFIG_LIMIT,
            });
        }
        if let Some(dir) = &self.inner.blob_cache {
            if let Some(content) = cache::read(dir, digest, CONFIG_LIMIT) {
                return Ok(content);
            }
        }
        let url = self.url(&format!("v2/{repository}/blobs/{digest}"))?;
        let response = self.get(&url, repository, None).await?;
        let response = self
            .check(
                response,
                Target::Blob {
                    repository,
                    digest: digest.as_str(),
                },
            )
            .await?;
        let body = self.read(response, CONFIG_LIMIT, "image config").await?;
        if digest.sha256_hex().is_some() {
            let actual = cache::sha256_digest(&body);
            if actual != digest.as_str() {
                return Err(RegistryError::DigestMismatch {
                    registry: self.inner.host.clone(),
                    digest: digest.to_string(),
                    actual,
                });
            }
            if let Some(dir) = &self.inner.blob_cache {
                cache::write(dir, digest, &body);
            }
        }
        Ok(body)
    }

    fn blob_url_text(&self, repository: &str, digest: &Digest) -> String {
        format!("{}/v2/{repository}/blobs/{digest}", self.inner.display)
    }

    fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.inner
            .base
            .join(path)
            .map_err(|error| RegistryError::InvalidUrl {
                url: format!("{}/{path}", self.inner.display),
                reason: error.to_string(),
            })
    }

    fn parse_digest(&self, text: &str) -> Result<Digest, RegistryError> {
        Digest::parse(text).ok_or_else(|| RegistryError::InvalidDigest {
            registry: self.inner.host.clone(),
            digest: one_line(text),
        })
    }

    async fn read(
        &self,
        response: Response,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<u8>, RegistryError> {
        http::read_limited(
            response,
            limit,
            what,
            &self.inner.display,
            self.inner.timeout,
        )
        .await
    }

    /// GETs `url`, authenticating as the registry asks; the answer is
    /// anything but 401.
    async fn get(
        &self,
        url: &Url,
        repository: &str,
        accept: Option<&'static str>,
    ) -> Result<Response, RegistryError> {
        let scope = format!("repository:{repository}:pull");
        let known = self.known_authorization(&scope);
        let response = self.send(url, accept, known.as_deref()).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenges: Vec<Challenge> = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(auth::parse_challenges)
            .collect();
        let sent_basic = known
            .as_deref()
            .is_some_and(|value| value.starts_with("Basic "));
        let authorization = self
            .answer_challenge(&challenges, &scope, repository, sent_basic)
            .await?;
        let response = self.send(url, accept, Some(&authorization)).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        Err(self.still_unauthorized(&response, repository))
    }

    /// The `Authorization` we already know works for `scope`, if any.
    fn known_authorization(&self, scope: &str) -> Option<String> {
        let state = self
            .inner
            .auth
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(token) = state
            .tokens
            .get(scope)
            .filter(|t| t.expires > Instant::now())
        {
            return Some(format!("Bearer {}", token.value));
        }
        if state.basic {
            return self.inner.credentials.as_ref()?.basic_authorization();
        }
        None
    }

    async fn answer_challenge(
        &self,
        challenges: &[Challenge],
        scope: &str,
        repository: &str,
        sent_basic: bool,
    ) -> Result<String, RegistryError> {
        let required = || RegistryError::CredentialsRequired {
            registry: self.inner.host.clone(),
            repository: repository.to_string(),
        };
        match auth::preferred(challenges) {
            Some(Challenge::Basic) => {
                let credentials = self.inner.credentials.as_ref().ok_or_else(required)?;
                if sent_basic {
                    return Err(self.rejected(credentials));
                }
                let value = credentials.basic_authorization().ok_or_else(|| {
                    RegistryError::UnsupportedAuth {
                        registry: self.inner.host.clone(),
                        challenge:
                            "Basic (an identity token needs a token server: log in with a password)"
                                .into(),
                    }
                })?;
                self.inner
                    .auth
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .basic = true;
                Ok(value)
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
                ..
            }) => {
                // The registry's own scope wins: it knows what it will check.
                let wanted = challenge_scope.as_deref().unwrap_or(scope);
                let (token, lifetime) = self
                    .fetch_token(realm, service.as_deref(), wanted, repository)
                    .await?;
                self.inner
                    .auth
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .tokens
                    .insert(
                        scope.to_string(),
                        CachedToken {
                            value: token.clone(),
                            expires: Instant::now()
                                + Duration::from_secs(lifetime.saturating_sub(5)),
                        },
                    );
                Ok(format!("Bearer {token}"))
            }
            Some(Challenge::Other(_)) | None => {
                let offered = challenges
                    .iter()
                    .map(|c| match c {
                        Challenge::Other(scheme) => scheme.clone(),
                        Challenge::Basic => "Basic".into(),
                        Challenge::Bearer { .. } => "Bearer".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                if offered.is_empty() && self.inner.credentials.is_none() {
                    return Err(required());
                }
                Err(RegistryError::UnsupportedAuth {
                    registry: self.inner.host.clone(),
                    challenge: if offered.is_empty() {
                        "none (401 without WWW-Authenticate)".into()
                    } else {
                        one_line(&offered)
                    },
                })
            }
        }
    }

    /// Gets a token for `scope` from the token server at `realm`.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        repository: &str,
    ) -> Result<(String, u64), RegistryError> {
        let registry = self.inner.host.clone();
        let realm_text = one_line(realm);
        let failed = |reason: String| RegistryError::TokenServer {
            registry: registry.clone(),
            realm: realm_text.clone(),
            reason,
        };
        let mut url = Url::parse(realm).map_err(|_| failed("the realm is not a url".into()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(failed("the realm is not an http(s) url".into()));
        }
        let credentials = self.inner.credentials.as_ref();
        let request = match credentials.map(|c| &c.secret) {
            Some(Secret::IdentityToken { token }) => {
                // OAuth2 refresh-token grant, as `docker` does with identity tokens.
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", token)
                    .append_pair("scope", scope)
                    .append_pair("client_id", "drover");
                if let Some(service) = service {
                    form.append_pair("service", service);
                }
                self.inner
                    .http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.finish())
            }
            _ => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    // A challenge may name several scopes, space-separated;
                    // token servers want one parameter each.
                    for one in scope.split_whitespace() {
                        query.append_pair("scope", one);
                    }
                }
                let mut request = self.inner.http.get(url.clone());
                if let Some(basic) = credentials.and_then(Credentials::basic_authorization) {
                    request = request.header(AUTHORIZATION, sensitive(&basic)?);
                }
                request
            }
        };
        let mut realm_shown = url.clone();
        realm_shown.set_query(None);
        let response =
            request
                .send()
                .await
                .map_err(|error| RegistryError::TokenServerUnreachable {
                    registry: registry.clone(),
                    realm: realm_shown.to_string(),
                    cause: if error.is_timeout() {
                        format!("no answer within {}", humanize(self.inner.timeout))
                    } else {
                        http::transport_cause(&error)
                    },
                })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(match credentials {
                Some(credentials) => self.rejected(credentials),
                None => RegistryError::CredentialsRequired {
                    registry,
                    repository: repository.to_string(),
                },
            });
        }
        if !status.is_success() {
            let body = http::error_body(response).await;
            let message = if body.message.is_empty() {
                String::new()
            } else {
                format!(": {}", body.message)
            };
            return Err(failed(format!(
                "it answered {}{message}",
                http::status_text(status)
            )));
        }
        let body =
            self.read(response, TOKEN_LIMIT, "token")
                .await
                .map_err(|error| match error {
                    RegistryError::TooLarge { .. } => {
                        failed("its answer is larger than 1 MiB".into())
                    }
                    other => other,
                })?;
        let answer: TokenResponse = serde_json::from_slice(&body)
            .map_err(|error| failed(format!("its answer is not the expected JSON: {error}")))?;
        answer
            .into_token()
            .ok_or_else(|| failed("its answer has no token".into()))
    }

    fn rejected(&self, credentials: &Credentials) -> RegistryError {
        RegistryError::CredentialsRejected {
            registry: self.inner.host.clone(),
            source_name: credentials.source().to_string(),
        }
    }

    /// The error for a 401 that survived answering the challenge.
    fn still_unauthorized(&self, response: &Response, repository: &str) -> RegistryError {
        let Some(credentials) = &self.inner.credentials else {
            return RegistryError::CredentialsRequired {
                registry: self.inner.host.clone(),
                repository: repository.to_string(),
            };
        };
        let insufficient_scope = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(auth::parse_challenges)
            .any(|c| matches!(c, Challenge::Bearer { error: Some(e), .. } if e == "insufficient_scope"));
        if insufficient_scope {
            RegistryError::AccessDenied {
                registry: self.inner.host.clone(),
                repository: repository.to_string(),
                who: format!("the credentials from {}", credentials.source()),
                message: "the token server granted no pull access".into(),
            }
        } else {
            self.rejected(credentials)
        }
    }

    async fn send(
        &self,
        url: &Url,
        accept: Option<&'static str>,
        authorization: Option<&str>,
    ) -> Result<Response, RegistryError> {
        let mut request = self.inner.http.get(url.clone());
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, sensitive(authorization)?);
        }
        request
            .send()
            .await
            .map_err(|error| http::transport_error(&error, &self.inner.display, self.inner.timeout))
    }

    /// Passes a successful response through; turns any other into the
    /// error that fits what was asked for.
    async fn check(
        &self,
        response: Response,
        target: Target<'_>,
    ) -> Result<Response, RegistryError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let url = response.url().to_string();
        let body = http::error_body(response).await;
        let registry = self.inner.host.clone();
        let repository = target.repository().to_string();
        let has = |code: &str| body.codes.iter().any(|c| c == code);
        if status == StatusCode::NOT_FOUND {
            if !body.registry_api {
                return Err(RegistryError::NotARegistry {
                    registry: self.inner.display.clone(),
                    url,
                    status: http::status_text(status),
                });
            }
            let repository_missing = has("NAME_UNKNOWN") || matches!(target, Target::Tags { .. });
            return Err(match target {
                _ if repository_missing => RegistryError::RepositoryNotFound {
                    registry,
                    repository,
                },
                Target::Manifest { reference, .. } => RegistryError::ManifestNotFound {
                    registry,
                    repository,
                    reference: reference.to_string(),
                },
                Target::Blob { digest, .. } => RegistryError::BlobNotFound {
                    registry,
                    repository,
                    digest: digest.to_string(),
                },
                Target::Tags { .. } => RegistryError::RepositoryNotFound {
                    registry,
                    repository,
                },
            });
        }
        if status == StatusCode::FORBIDDEN {
            return Err(RegistryError::AccessDenied {
                registry,
                repository,
                who: match &self.inner.credentials {
                    Some(credentials) => format!("the credentials from {}", credentials.source()),
                    None => "anonymous requests".into(),
                },
                message: body.message,
            });
        }
        Err(RegistryError::Status {
            registry,
            url,
            status: http::status_text(status),
            message: body.message,
        })
    }
}

/// A header value that HTTP debug logging will not print.
fn sensitive(value: &str) -> Result<HeaderValue, RegistryError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        RegistryError::Client(
            "the credentials or token contain characters not allowed in an http header".into(),
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// `https://user:pw@host/` → `https://***@host/`, for messages about a URL
/// that may not even parse.
fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return match url.rfind('@') {
            Some(at) if !url[..at].contains('/') => format!("***@{}", &url[at + 1..]),
            _ => url.to_string(),
        };
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***@{}",
            &url[..authority_start],
            &url[authority_start + at + 1..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        let timeout = Duration::from_secs(5);
        let client = RegistryClient::new("http://127.0.0.1:5000", None, timeout).unwrap();
        assert_eq!(client.registry_host(), "127.0.0.1:5000");
        assert_eq!(
            client.url("v2/a/tags/list").unwrap().as_str(),
            "http://127.0.0.1:5000/v2/a/tags/list"
        );
        let client = RegistryClient::new("https://reg.example/mirror", None, timeout).unwrap();
        assert_eq!(client.registry_host(), "reg.example");
        assert_eq!(
            client.url("v2/a/tags/list").unwrap().as_str(),
            "https://reg.example/mirror/v2/a/tags/list"
        );

        let error = |base: &str| {
            RegistryClient::new(base, None, timeout)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error("reg.example:5000"),
            r#"invalid registry url "reg.example:5000": it must start with http:// or https://"#
        );
        assert_eq!(
            error("ftp://reg.example"),
            r#"invalid registry url "ftp://reg.example": it must start with http:// or https://"#
        );
        let with_password = error("https://alice:hunter2@reg.example:5000/");
        assert!(
            !with_password.contains("hunter2") && !with_password.contains("alice"),
            "{with_password}"
        );
        assert!(
            with_password.contains("credentials do not belong in the url"),
            "{with_password}"
        );
        assert!(error("http://reg:5000/?x=1").ends_with("it must not have a query or fragment"));
        let unparsable = error("http://alice:pw@[::1");
        assert!(!unparsable.contains("pw"), "{unparsable}");
    }

    #[test]
    fn redacts_userinfo() {
        assert_eq!(
            redact_userinfo("https://u:p@h:5/x@y"),
            "https://***@h:5/x@y"
        );
        assert_eq!(redact_userinfo("https://h/x@y"), "https://h/x@y");
        assert_eq!(redact_userinfo("u:p@h"), "***@h");
        assert_eq!(redact_userinfo("h/a@b"), "h/a@b");
    }

    #[test]
    fn debug_hides_credentials_and_tokens() {
        let client = RegistryClient::new(
            "http://127.0.0.1:5000",
            Some(Credentials::new("deploy-user", "very-secret-password")),
            Duration::from_secs(5),
        )
        .unwrap();
        client.inner.auth.lock().unwrap().tokens.insert(
            "repository:a:pull".into(),
            CachedToken {
                value: "cached-bearer-token".into(),
                expires: Instant::now() + Duration::from_secs(60),
            },
        );
        let debug = format!("{client:?}");
        for secret in ["deploy-user", "very-secret-password", "cached-bearer-token"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("http://127.0.0.1:5000"), "{debug}");
        assert_eq!(
            client.known_authorization("repository:a:pull").as_deref(),
            Some("Bearer cached-bearer-token")
        );
        assert_eq!(client.known_authorization("repository:b:pull"), None);
    }

    #[test]
    fn clones_share_the_token_cache() {
        let client =
            RegistryClient::new("http://127.0.0.1:5000", None, Duration::from_secs(5)).unwrap();
        let clone = client.clone();
        clone.inner.auth.lock().unwrap().tokens.insert(
            "repository:a:pull".into(),
            CachedToken {
                value: "t".into(),
                expires: Instant::now() + Duration::from_secs(60),
            },
        );
        assert_eq!(
            client.known_authorization("repository:a:pull").as_deref(),
            Some("Bearer t")
        );
        let expired = client.clone();
        expired.inner.auth.lock().unwrap().tokens.insert(
            "repository:old:pull".into(),
            CachedToken {
                value: "old".into(),
                expires: Instant::now(),
            },
        );
        assert_eq!(client.known_authorization("repository:old:pull"), None);
    }
}
