//! Where registry credentials come from.
//!
//! An operator who can `docker pull` from a registry should not have to tell
//! drover the password again, so after drover's own environment variables
//! (for CI and scripts) this reads the Docker client's `config.json` the way
//! `docker` does: inline `auths` entries, per-registry `credHelpers`, and
//! the default `credsStore`, running `docker-credential-NAME get` for the
//! helpers. The secret is kept out of every `Debug` and error message; only
//! where it came from is ever shown, so an operator knows what to fix.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::one_line;
use crate::RegistryError;

/// The environment variable with the registry username.
pub const USERNAME_ENV: &str = "DROVER_REGISTRY_USERNAME";
/// The environment variable with the registry password (or token).
pub const PASSWORD_ENV: &str = "DROVER_REGISTRY_PASSWORD";

/// How long a credential helper may take: some ask a keyring or GPG agent,
/// none should take longer than this.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of a helper's output we read.
const HELPER_OUTPUT_LIMIT: u64 = 1024 * 1024;
/// The key Docker files Docker Hub credentials under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry: a username and password, or an identity
/// (refresh) token as some `docker login` flows store.
#[derive(Clone)]
pub struct Credentials {
    pub(crate) secret: Secret,
    source: String,
}

#[derive(Clone)]
pub(crate) enum Secret {
    Password { username: String, password: String },
    IdentityToken { token: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.secret {
            Secret::Password { .. } => "password",
            Secret::IdentityToken { .. } => "identity token",
        };
        f.debug_struct("Credentials")
            .field("kind", &kind)
            .field("username", &"***")
            .field("secret", &"***")
            .field("source", &self.source)
            .finish()
    }
}

impl Credentials {
    /// A username and password (or a registry access token used as one).
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            secret: Secret::Password {
                username: username.into(),
                password: password.into(),
            },
            source: "the given username and password".to_string(),
        }
    }

    /// An identity token, exchanged at the registry's token server for
    /// access tokens (OAuth2 `refresh_token` grant), as `docker` does.
    pub fn identity_token(token: impl Into<String>) -> Self {
        Credentials {
            secret: Secret::IdentityToken {
                token: token.into(),
            },
            source: "the given identity token".to_string(),
        }
    }

    /// Says where these credentials came from in error messages, e.g.
    /// "DROVER_REGISTRY_USERNAME and DROVER_REGISTRY_PASSWORD".
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Where these credentials came from, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The username, when there is one (not for identity tokens).
    pub fn username(&self) -> Option<&str> {
        match &self.secret {
            Secret::Password { username, .. } => Some(username),
            Secret::IdentityToken { .. } => None,
        }
    }

    /// `(username, password, identity token)` to hand to a Docker engine
    /// that pushes or pulls on drover's behalf (its `X-Registry-Auth`).
    pub fn for_engine(&self) -> (Option<String>, Option<String>, Option<String>) {
        match &self.secret {
            Secret::Password { username, password } => {
                (Some(username.clone()), Some(password.clone()), None)
            }
            Secret::IdentityToken { token } => (None, None, Some(token.clone())),
        }
    }

    /// The `Authorization` value for HTTP Basic, when these are a password.
    pub(crate) fn basic_authorization(&self) -> Option<String> {
        match &self.secret {
            Secret::Password { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                Some(format!("Basic {encoded}"))
            }
            Secret::IdentityToken { .. } => None,
        }
    }

    /// Finds credentials for `registry_host` (`host[:port]`), in this order:
    ///
    /// 1. `DROVER_REGISTRY_USERNAME` and `DROVER_REGISTRY_PASSWORD`;
    /// 2. the Docker client's config (`$DOCKER_CONFIG/config.json`, else
    ///    `~/.docker/config.json`), as `docker` reads it: `credHelpers[HOST]`,
    ///    then `auths[HOST]` (the key may also be written `https://HOST` or
    ///    `http://HOST`, with or without a path) with `auth` (base64
    ///    `user:pass`), `username`/`password` or `identitytoken`, then
    ///    `credsStore`. Helpers run as `docker-credential-NAME get` with the
    ///    host on stdin.
    ///
    /// `None` when nothing is found. An error when something is found but
    /// broken (only one of the two variables set, a config that does not
    /// parse, a helper that fails), since silently going anonymous would
    /// only move the error to a less clear place.
    pub fn lookup(registry_host: &str) -> Result<Option<Credentials>, RegistryError> {
        lookup_with(registry_host, &LookupEnv::from_process())
    }
}

/// What [`Credentials::lookup`] reads from the process environment, apart so
/// tests can give their own.
#[derive(Debug, Default, Clone)]
pub(crate) struct LookupEnv {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) docker_config: Option<PathBuf>,
    pub(crate) home: Option<PathBuf>,
    pub(crate) path: Option<OsString>,
}

impl LookupEnv {
    fn from_process() -> Self {
        let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        LookupEnv {
            username: std::env::var(USERNAME_ENV).ok().filter(|v| !v.is_empty()),
            password: std::env::var(PASSWORD_ENV).ok().filter(|v| !v.is_empty()),
            docker_config: non_empty("DOCKER_CONFIG").map(PathBuf::from),
            home: non_empty("HOME").map(PathBuf::from),
            path: non_empty("PATH"),
        }
    }

    fn config_file(&self) -> Option<PathBuf> {
        match (&self.docker_config, &self.home) {
            (Some(dir), _) => Some(dir.join("config.json")),
            (None, Some(home)) => Some(home.join(".docker").join("config.json")),
            (None, None) => None,
        }
    }
}

pub(crate) fn lookup_with(
    host: &str,
    env: &LookupEnv,
) -> Result<Option<Credentials>, RegistryError> {
    match (&env.username, &env.password) {
        (Some(username), Some(password)) => {
            return Ok(Some(
                Credentials::new(username, password)
                    .with_source(format!("{USERNAME_ENV} and {PASSWORD_ENV}")),
            ));
        }
        (Some(_), None) => {
            return Err(RegistryError::IncompleteEnvCredentials {
                set: USERNAME_ENV,
                missing: PASSWORD_ENV,
            })
        }
        (None, Some(_)) => {
            return Err(RegistryError::IncompleteEnvCredentials {
                set: PASSWORD_ENV,
                missing: USERNAME_ENV,
            })
        }
        (None, None) => {}
    }
    let Some(path) = env.config_file() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(RegistryError::DockerConfig {
                path,
                cause: error.to_string(),
            })
        }
    };
    let config: DockerConfig =
        serde_json::from_str(&text).map_err(|error| RegistryError::DockerConfig {
            path: path.clone(),
            cause: error.to_string(),
        })?;
    config.credentials_for(host, &path, env.path.as_deref())
}

/// The parts of Docker's `config.json` that hold credentials.
#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl DockerConfig {
    fn credentials_for(
        &self,
        host: &str,
        path: &Path,
        search_path: Option<&std::ffi::OsStr>,
    ) -> Result<Option<Credentials>, RegistryError> {
        let keys = server_keys(host);
        if let Some(helper) = keys.iter().find_map(|key| self.cred_helpers.get(key)) {
            return run_helper(helper, host, &keys, search_path);
        }
        if let Some(found) = self.inline_auth(host, path)? {
            return Ok(Some(found));
        }
        match &self.creds_store {
            Some(store) if !store.is_empty() => run_helper(store, host, &keys, search_path),
            _ => Ok(None),
        }
    }

    /// An `auths` entry for `host`, however its key is written.
    fn inline_auth(&self, host: &str, path: &Path) -> Result<Option<Credentials>, RegistryError> {
        let wanted = normalize_host(host);
        // Exact keys first (in `server_keys` order), then any key that
        // normalizes to the host, so the choice does not depend on map order.
        let keys = server_keys(host);
        let mut candidates: Vec<(&String, &AuthEntry)> = keys
            .iter()
            .filter_map(|key| self.auths.get_key_value(key))
            .collect();
        let mut others: Vec<(&String, &AuthEntry)> = self
            .auths
            .iter()
            .filter(|(key, _)| !keys.contains(key) && normalize_host(key) == wanted)
            .collect();
        others.sort_by(|a, b| a.0.cmp(b.0));
        candidates.extend(others);

        let source = format!("{} (auths)", path.display());
        let bad = |cause: String| RegistryError::DockerConfig {
            path: path.to_path_buf(),
            cause,
        };
        for (key, entry) in candidates {
            if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
                return Ok(Some(Credentials::identity_token(token).with_source(source)));
            }
            if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| bad(format!("auths[{key:?}].auth is not valid base64")))?;
                let decoded = String::from_utf8(decoded)
                    .map_err(|_| bad(format!("auths[{key:?}].auth is not utf-8")))?;
                let (username, password) = decoded.split_once(':').ok_or_else(|| {
                    bad(format!(
                        "auths[{key:?}].auth is not base64 of user:password"
                    ))
                })?;
                return Ok(Some(
                    Credentials::new(username, password).with_source(source),
                ));
            }
            if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
                if !username.is_empty() {
                    return Ok(Some(
                        Credentials::new(username, password).with_source(source),
                    ));
                }
            }
        }
        Ok(None)
    }
}

/// The keys Docker may have filed `host`'s credentials under.
fn server_keys(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
    ];
    if matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        keys.insert(0, DOCKER_HUB_KEY.to_string());
    }
    keys
}

/// `https://reg.example:5000/v1/` → `reg.example:5000`; Docker Hub's
/// aliases → `docker.io`.
fn normalize_host(key: &str) -> String {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => host,
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-NAME get` for each server key until one is
/// found; `None` when the helper knows none of them.
fn run_helper(
    name: &str,
    host: &str,
    keys: &[String],
    search_path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credentials>, RegistryError> {
    let fail = |cause: String| RegistryError::CredentialHelper {
        helper: name.to_string(),
        host: host.to_string(),
        cause,
    };
    if name.contains(['/', '\\']) || name.is_empty() {
        return Err(fail("the helper name must be a plain name".to_string()));
    }
    let program = format!("docker-credential-{name}");
    let executable = find_in_path(&program, search_path).ok_or_else(|| {
        fail(format!(
            "{program} is not on PATH: install it, or fix the docker config"
        ))
    })?;
    for key in keys {
        let output = run_with_timeout(&executable, key).map_err(fail)?;
        if output.success {
            let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
                .map_err(|error| fail(format!("its answer is not the expected JSON: {error}")))?;
            if answer.secret.is_empty() {
                continue;
            }
            let source = format!("credential helper {program}");
            let credentials = if answer.username == "<token>" {
                Credentials::identity_token(answer.secret)
            } else {
                Credentials::new(answer.username, answer.secret)
            };
            return Ok(Some(credentials.with_source(source)));
        }
        let said = String::from_utf8_lossy(&output.stdout);
        if said.to_ascii_lowercase().contains("credentials not found") {
            continue;
        }
        let said = if said.trim().is_empty() {
            String::from_utf8_lossy(&output.stderr).into_owned()
        } else {
            said.into_owned()
        };
        return Err(fail(format!(
            "it exited with {}: {}",
            output.status,
            one_line(&said)
        )));
    }
    Ok(None)
}

fn find_in_path(program: &str, search_path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(search_path?)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

struct HelperOutput {
    success: bool,
    status: String,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs a helper with `input` on stdin, killing it after [`HELPER_TIMEOUT`].
fn run_with_timeout(executable: &Path, input: &str) -> Result<HelperOutput, String> {
    let mut child = Command::new(executable)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run {}: {error}", executable.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is not an error here;
        // its exit status says what happened.
        let _ = stdin.write_all(input.as_bytes());
    }
    let stdout = child.stdout.take().map(|pipe| {
        std::thread::spawn(move || {
            let mut buffer = Vec::new();
            let _ = pipe.take(HELPER_OUTPUT_LIMIT).read_to_end(&mut buffer);
            buffer
        })
    });
    let stderr = child.stderr.take().map(|pipe| {
        std::thread::spawn(move || {
            let mut buffer = Vec::new();
            let _ = pipe.take(HELPER_OUTPUT_LIMIT).read_to_end(&mut buffer);
            buffer
        })
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > HELPER_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it did not answer within {}s",
                    HELPER_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => return Err(format!("waiting for it failed: {error}")),
        }
    };
    let join = |handle: Option<std::thread::JoinHandle<Vec<u8>>>| {
        handle.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    Ok(HelperOutput {
        success: status.success(),
        status: match status.code() {
            Some(code) => format!("status {code}"),
            None => "a signal".to_string(),
        },
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn env_with_config(dir: &Path, config: &str) -> LookupEnv {
        std::fs::write(dir.join("config.json"), config).unwrap();
        LookupEnv {
            docker_config: Some(dir.to_path_buf()),
            ..LookupEnv::default()
        }
    }

    fn user_pass(credentials: &Credentials) -> (String, String) {
        match &credentials.secret {
            Secret::Password { username, password } => (username.clone(), password.clone()),
            Secret::IdentityToken { token } => ("<token>".to_string(), token.clone()),
        }
    }

    fn found(host: &str, env: &LookupEnv) -> Option<(String, String)> {
        lookup_with(host, env).unwrap().as_ref().map(user_pass)
    }

    #[test]
    fn environment_variables_come_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut env = env_with_config(
            dir.path(),
            r#"{"auths":{"reg:5000":{"auth":"ZG9ja2VyOmZyb20tY29uZmln"}}}"#,
        );
        env.username = Some("ci".into());
        env.password = Some("from-env".into());
        let credentials = lookup_with("reg:5000", &env).unwrap().unwrap();
        assert_eq!(user_pass(&credentials), ("ci".into(), "from-env".into()));
        assert_eq!(
            credentials.source(),
            "DROVER_REGISTRY_USERNAME and DROVER_REGISTRY_PASSWORD"
        );

        env.password = None;
        let error = lookup_with("reg:5000", &env).unwrap_err().to_string();
        assert_eq!(
            error,
            "DROVER_REGISTRY_USERNAME is set but DROVER_REGISTRY_PASSWORD is not: set both, or neither to use docker's credentials"
        );
    }

    #[test]
    fn reads_the_auth_field() {
        let dir = tempfile::tempdir().unwrap();
        // base64("docker:s3cr:et") — a password may contain ':'.
        let env = env_with_config(
            dir.path(),
            r#"{"auths":{"reg.example:5000":{"auth":"ZG9ja2VyOnMzY3I6ZXQ="},"other:1":{"auth":"eDp5"}}}"#,
        );
        assert_eq!(
            found("reg.example:5000", &env),
            Some(("docker".into(), "s3cr:et".into()))
        );
        assert_eq!(found("nowhere:5000", &env), None);
    }

    #[test]
    fn reads_username_and_password_fields_and_url_keys() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with_config(
            dir.path(),
            r#"{"auths":{
                "https://reg.example:5000/v2/":{"username":"alice","password":"pw1"},
                "http://plain:5000":{"username":"bob","password":"pw2"},
                "https://index.docker.io/v1/":{"auth":"aHViOnB3Mw=="}
            }}"#,
        );
        assert_eq!(
            found("reg.example:5000", &env),
            Some(("alice".into(), "pw1".into()))
        );
        assert_eq!(
            found("plain:5000", &env),
            Some(("bob".into(), "pw2".into()))
        );
        assert_eq!(found("docker.io", &env), Some(("hub".into(), "pw3".into())));
    }

    #[test]
    fn reads_identity_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with_config(
            dir.path(),
            r#"{"auths":{"reg:5000":{"auth":"","identitytoken":"refresh-me"}}}"#,
        );
        let credentials = lookup_with("reg:5000", &env).unwrap().unwrap();
        assert_eq!(
            user_pass(&credentials),
            ("<token>".into(), "refresh-me".into())
        );
        assert_eq!(credentials.username(), None);
    }

    #[test]
    fn missing_config_is_no_credentials_and_a_broken_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let env = LookupEnv {
            docker_config: Some(dir.path().to_path_buf()),
            ..LookupEnv::default()
        };
        assert_eq!(found("reg:5000", &env), None);

        let env = env_with_config(dir.path(), "{ not json");
        let error = lookup_with("reg:5000", &env).unwrap_err().to_string();
        assert!(error.starts_with("cannot read docker config "), "{error}");
        assert!(error.contains("config.json"), "{error}");

        let env = env_with_config(dir.path(), r#"{"auths":{"reg:5000":{"auth":"%%%"}}}"#);
        let error = lookup_with("reg:5000", &env).unwrap_err().to_string();
        assert!(
            error.ends_with(r#"auths["reg:5000"].auth is not valid base64"#),
            "{error}"
        );
    }

    #[test]
    fn home_docker_config_is_the_default() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".docker")).unwrap();
        std::fs::write(
            home.path().join(".docker/config.json"),
            r#"{"auths":{"reg:5000":{"username":"h","password":"p"}}}"#,
        )
        .unwrap();
        let env = LookupEnv {
            home: Some(home.path().to_path_buf()),
            ..LookupEnv::default()
        };
        assert_eq!(found("reg:5000", &env), Some(("h".into(), "p".into())));
    }

    /// Writes `docker-credential-NAME` into `dir`: it answers for the server
    /// URL `known` read from stdin and says "not found" for anything else.
    fn write_helper(dir: &Path, name: &str, known: &str, username: &str, secret: &str) {
        let script = format!(
            "#!/bin/sh\n\
             [ \"$1\" = get ] || {{ echo \"unexpected argument $1\" >&2; exit 2; }}\n\
             read -r server\n\
             if [ \"$server\" = '{known}' ]; then\n\
               printf '{{\"ServerURL\":\"%s\",\"Username\":\"{username}\",\"Secret\":\"{secret}\"}}\\n' \"$server\"\n\
             else\n\
               echo 'credentials not found in native keychain'\n\
               exit 1\n\
             fi\n"
        );
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn runs_cred_helpers_found_on_path() {
        let config_dir = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        write_helper(
            bin.path(),
            "fake",
            "reg.example:5000",
            "helper-user",
            "helper-secret",
        );
        write_helper(
            bin.path(),
            "store",
            "https://other:5000",
            "store-user",
            "store-secret",
        );
        let mut env = env_with_config(
            config_dir.path(),
            r#"{
                "auths":{"reg.example:5000":{"auth":"aWdub3JlZDp4"}},
                "credHelpers":{"reg.example:5000":"fake"},
                "credsStore":"store"
            }"#,
        );
        env.path = Some(std::env::join_paths([Path::new("/nonexistent"), bin.path()]).unwrap());

        // credHelpers wins over the inline entry, as in docker.
        let credentials = lookup_with("reg.example:5000", &env).unwrap().unwrap();
        assert_eq!(
            user_pass(&credentials),
            ("helper-user".into(), "helper-secret".into())
        );
        assert_eq!(
            credentials.source(),
            "credential helper docker-credential-fake"
        );

        // credsStore for everything else; it knows other:5000 by its URL form.
        assert_eq!(
            found("other:5000", &env),
            Some(("store-user".into(), "store-secret".into()))
        );
        // A store that knows nothing for this host: no credentials.
        assert_eq!(found("unknown:5000", &env), None);
    }

    #[test]
    fn helper_tokens_and_failures() {
        let config_dir = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        write_helper(bin.path(), "tok", "reg:5000", "<token>", "refresh");
        let failing = bin.path().join("docker-credential-broken");
        std::fs::write(
            &failing,
            "#!/bin/sh\necho 'keyring locked: unlock it first' >&2\nexit 3\n",
        )
        .unwrap();
        std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut env = env_with_config(
            config_dir.path(),
            r#"{"credHelpers":{"reg:5000":"tok","bad:5000":"broken","gone:5000":"missing"}}"#,
        );
        env.path = Some(bin.path().as_os_str().to_owned());

        let credentials = lookup_with("reg:5000", &env).unwrap().unwrap();
        assert_eq!(
            user_pass(&credentials),
            ("<token>".into(), "refresh".into())
        );

        let error = lookup_with("bad:5000", &env).unwrap_err().to_string();
        assert_eq!(
            error,
            "credential helper docker-credential-broken failed for bad:5000: it exited with status 3: keyring locked: unlock it first"
        );
        let error = lookup_with("gone:5000", &env).unwrap_err().to_string();
        assert_eq!(
            error,
            "credential helper docker-credential-missing failed for gone:5000: docker-credential-missing is not on PATH: install it, or fix the docker config"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let credentials = Credentials::new("alice-the-user", "hunter2-password");
        let debug = format!("{credentials:?}");
        assert!(!debug.contains("alice-the-user"), "{debug}");
        assert!(!debug.contains("hunter2-password"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
        let debug = format!("{:?}", Credentials::identity_token("refresh-token-value"));
        assert!(!debug.contains("refresh-token-value"), "{debug}");
    }

    #[test]
    fn basic_authorization_is_base64_of_user_colon_password() {
        assert_eq!(
            Credentials::new("Aladdin", "open sesame")
                .basic_authorization()
                .as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(Credentials::identity_token("t").basic_authorization(), None);
    }
}
