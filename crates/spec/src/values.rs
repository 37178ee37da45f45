//! The spec's value types, each parsed from its TOML text with `FromStr`.
//!
//! A value that parses is one the engine will take and report back the same
//! way: that is what makes "what `validate` accepts converges" hold. Anything
//! the engine would silently reinterpret (`on-failure:0`, a sub-second stop
//! timeout, an image reference that is not one) is either normalized here to
//! what the engine reports, or rejected with a message saying what to write.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Longest environment, job or host name: container names join three of them.
pub const MAX_NAME_LEN: usize = 63;

/// Checks an environment, job or host name.
///
/// Names join into container names as `ENV.JOB.HOST.TASK`, so a dot inside
/// one would let two different tasks share a name (env `a` + job `x.w` and
/// env `a.x` + job `w`). Names are therefore letters, digits, `_` and `-`.
pub fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        && name.len() <= MAX_NAME_LEN;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} name {name:?}: use up to {MAX_NAME_LEN} letters, digits, '_' and '-', starting with a letter or digit (no dots: names join into container names with dots)"
        ))
    }
}

/// `restart`: Docker's restart policies, as the engine reports them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestartPolicy {
    No,
    Always,
    UnlessStopped,
    /// `on-failure` with an optional retry limit; `on-failure:0` means no
    /// limit to the engine, so it is the same as `None`.
    OnFailure(Option<u32>),
}

impl FromStr for RestartPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let policy = match text {
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure(None),
            other => match other.strip_prefix("on-failure:").map(str::parse::<u32>) {
                Some(Ok(0)) => RestartPolicy::OnFailure(None),
                Some(Ok(n)) => RestartPolicy::OnFailure(Some(n)),
                _ => {
                    return Err(format!("invalid restart policy {text:?}: expected \"no\", \"always\", \"unless-stopped\", \"on-failure\" or \"on-failure:N\""))
                }
            },
        };
        Ok(policy)
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
            RestartPolicy::OnFailure(None) => f.write_str("on-failure"),
            RestartPolicy::OnFailure(Some(n)) => write!(f, "on-failure:{n}"),
        }
    }
}

/// `network`: the engine's built-in networks. drover's model is the host's
/// own network; user-defined networks would need the host's state to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    Host,
    Bridge,
    None,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "host" => Ok(Network::Host),
            "bridge" => Ok(Network::Bridge),
            "none" => Ok(Network::None),
            _ => Err(format!(
                "unknown network {text:?}: expected \"host\" (the default), \"bridge\" or \"none\""
            )),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Host => "host",
            Network::Bridge => "bridge",
            Network::None => "none",
        })
    }
}

/// `log.driver`: the logging drivers built into the engine. `none` is
/// refused: drover keeps bounded logs, it does not discard them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogDriver {
    Local,
    JsonFile,
    Journald,
    Syslog,
    Gelf,
    Fluentd,
    Awslogs,
    Splunk,
    Gcplogs,
    Logentries,
}

const LOG_DRIVERS: &[(&str, LogDriver)] = &[
    ("local", LogDriver::Local),
    ("json-file", LogDriver::JsonFile),
    ("journald", LogDriver::Journald),
    ("syslog", LogDriver::Syslog),
    ("gelf", LogDriver::Gelf),
    ("fluentd", LogDriver::Fluentd),
    ("awslogs", LogDriver::Awslogs),
    ("splunk", LogDriver::Splunk),
    ("gcplogs", LogDriver::Gcplogs),
    ("logentries", LogDriver::Logentries),
];

impl LogDriver {
    /// Whether the engine rotates this driver's files itself (`max-size`/`max-file`).
    pub fn rotates(self) -> bool {
        matches!(self, LogDriver::Local | LogDriver::JsonFile)
    }

    /// Whether `docker logs` can read this driver's output back.
    pub fn readable(self) -> bool {
        matches!(
            self,
            LogDriver::Local | LogDriver::JsonFile | LogDriver::Journald
        )
    }
}

impl FromStr for LogDriver {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "none" {
            return Err("log driver \"none\" discards logs: drover keeps bounded logs instead (\"local\" or \"json-file\" with max_size and max_files)".to_string());
        }
        LOG_DRIVERS
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, driver)| *driver)
            .ok_or_else(|| {
                let names: Vec<&str> = LOG_DRIVERS.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown log driver {text:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for LogDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = LOG_DRIVERS
            .iter()
            .find(|(_, d)| d == self)
            .map_or("local", |(n, _)| *n);
        f.write_str(name)
    }
}

/// An absolute path inside a container or on a host, in one spelling:
/// no `.` or `..` parts, no doubled or trailing slashes.
pub fn check_abs_path(what: &str, path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{what} {path:?} must be an absolute path"));
    }
    if path.contains('\0') {
        return Err(format!("{what} {path:?} contains a NUL character"));
    }
    if path != "/"
        && path[1..]
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "{what} {path:?} must be written plainly: no '.', '..', doubled or trailing '/'"
        ));
    }
    Ok(())
}

/// `HOST:CONTAINER[:ro]`: a host directory bound into the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Volume {
    pub host: String,
    pub container: String,
    pub read_only: bool,
}

impl FromStr for Volume {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || {
            format!("invalid volume {text:?}: expected \"HOST:CONTAINER\" or \"HOST:CONTAINER:ro\" with absolute paths")
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, read_only) = match parts.as_slice() {
            [host, container] => (*host, *container, false),
            [host, container, "ro"] => (*host, *container, true),
            [host, container, "rw"] => (*host, *container, false),
            _ => return Err(expected()),
        };
        if !host.starts_with('/') || !container.starts_with('/') {
            return Err(expected());
        }
        check_abs_path("volume host path", host)?;
        check_abs_path("volume container path", container)?;
        if container == "/" {
            return Err(format!(
                "invalid volume {text:?}: a volume cannot be mounted over the container's root \"/\""
            ));
        }
        Ok(Volume {
            host: host.to_string(),
            container: container.to_string(),
            read_only,
        })
    }
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.container)?;
        if self.read_only {
            f.write_str(":ro")?;
        }
        Ok(())
    }
}

/// How a host's engine is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DockerAddress {
    Unix(PathBuf),
    Tcp {
        host: String,
        port: u16,
    },
    Ssh {
        user: Option<String>,
        host: String,
        port: u16,
    },
}

impl DockerAddress {
    /// Whether a tcp:// address stays on this machine (plain HTTP is then acceptable).
    pub fn is_loopback(&self) -> bool {
        match self {
            DockerAddress::Tcp { host, .. } => {
                host.eq_ignore_ascii_case("localhost")
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            _ => true,
        }
    }
}

impl FromStr for DockerAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || {
            format!("invalid docker address {text:?}: expected unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]")
        };
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') || path.contains('\0') {
                return Err(expected());
            }
            return Ok(DockerAddress::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            let (host, port) = split_host_port(rest).ok_or_else(expected)?;
            let port = port.ok_or_else(expected)?;
            return Ok(DockerAddress::Tcp { host, port });
        }
        if let Some(rest) = text.strip_prefix("ssh://") {
            let (user, host_port) = match rest.split_once('@') {
                Some((user, rest)) if valid_ssh_user(user) => (Some(user.to_string()), rest),
                Some(_) => return Err(expected()),
                None => (None, rest),
            };
            let (host, port) = split_host_port(host_port).ok_or_else(expected)?;
            return Ok(DockerAddress::Ssh {
                user,
                host,
                port: port.unwrap_or(22),
            });
        }
        Err(expected())
    }
}

fn valid_ssh_user(user: &str) -> bool {
    !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `HOST[:PORT]` or `[V6]:PORT`; the host is a name or an address, never a path.
pub(crate) fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return None,
        },
        None => None,
    };
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    valid.then(|| (host.to_string(), port))
}

impl fmt::Display for DockerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bracket = |host: &str| {
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_string()
            }
        };
        match self {
            DockerAddress::Unix(path) => write!(f, "unix://{}", path.display()),
            DockerAddress::Tcp { host, port } => write!(f, "tcp://{}:{port}", bracket(host)),
            DockerAddress::Ssh { user, host, port } => {
                f.write_str("ssh://")?;
                if let Some(user) = user {
                    write!(f, "{user}@")?;
                }
                write!(f, "{}:{port}", bracket(host))
            }
        }
    }
}

/// An image reference as Docker's reference grammar defines it
/// (`[DOMAIN/]PATH[:TAG][@DIGEST]`), or an image ID (`sha256:` + 64 hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    text: String,
    kind: ImageRefKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ImageRefKind {
    Id,
    Named {
        /// The repository in the form the engine lists (`busybox`, `reg:5000/team/app`).
        repository: String,
        /// The registry it is pulled from (`docker.io` when none is named).
        registry: String,
        /// The repository as that registry's API names it (`library/busybox`).
        path: String,
        tag: Option<String>,
        digest: Option<String>,
    },
}

/// How to find an image among a host's images.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ImageKey {
    /// `sha256:…`, matched against image IDs.
    Id(String),
    /// `REPOSITORY@sha256:…`, matched against `RepoDigests`.
    Digest(String),
    /// `REPOSITORY:TAG`, matched against `RepoTags`.
    Tag(String),
}

impl ImageRef {
    /// As written in the spec; this is what containers are created from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_id(&self) -> bool {
        self.kind == ImageRefKind::Id
    }

    /// The repository as the engine lists it, `None` for an image ID.
    pub fn repository(&self) -> Option<&str> {
        match &self.kind {
            ImageRefKind::Id => None,
            ImageRefKind::Named { repository, .. } => Some(repository),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        match &self.kind {
            ImageRefKind::Named { tag, .. } => tag.as_deref(),
            ImageRefKind::Id => None,
        }
    }

    /// The registry the image is pulled from, as Docker decides it
    /// (`docker.io` when the reference names none), `None` for an image ID.
    pub fn registry(&self) -> Option<&str> {
        match &self.kind {
            ImageRefKind::Named { registry, .. } => Some(registry),
            ImageRefKind::Id => None,
        }
    }

    /// The repository as its registry's API names it (`library/busybox`
    /// on Docker Hub), `None` for an image ID.
    pub fn path(&self) -> Option<&str> {
        match &self.kind {
            ImageRefKind::Named { path, .. } => Some(path),
            ImageRefKind::Id => None,
        }
    }

    /// What the registry knows this image by: the digest if there is one
    /// (that is what Docker pulls), else the tag (`latest` when none).
    pub fn registry_reference(&self) -> Option<&str> {
        match &self.kind {
            ImageRefKind::Named {
                digest: Some(digest),
                ..
            } => Some(digest),
            ImageRefKind::Named { tag, .. } => Some(tag.as_deref().unwrap_or("latest")),
            ImageRefKind::Id => None,
        }
    }

    pub fn digest(&self) -> Option<&str> {
        match &self.kind {
            ImageRefKind::Named { digest, .. } => digest.as_deref(),
            ImageRefKind::Id => None,
        }
    }

    /// The key a host's image list is searched by. A reference with a digest
    /// names exactly that content, whatever its tag says.
    pub fn key(&self) -> ImageKey {
        match &self.kind {
            ImageRefKind::Id => ImageKey::Id(self.text.clone()),
            ImageRefKind::Named {
                repository,
                digest: Some(digest),
                ..
            } => ImageKey::Digest(format!("{repository}@{digest}")),
            ImageRefKind::Named {
                repository, tag, ..
            } => ImageKey::Tag(format!(
                "{repository}:{}",
                tag.as_deref().unwrap_or("latest")
            )),
        }
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Option<ImageRef> {
        let repository = self.written_repository()?;
        format!("{repository}:{tag}").parse().ok()
    }

    /// The repository part exactly as written (`docker.io/library/x` stays so).
    pub fn written_repository(&self) -> Option<&str> {
        if self.is_id() {
            return None;
        }
        let without_digest = self.text.split('@').next().unwrap_or(&self.text);
        let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
        Some(match without_digest[last_slash..].find(':') {
            Some(colon) => &without_digest[..last_slash + colon],
            None => without_digest,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for ImageRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = |why: &str| {
            format!("invalid image reference {text:?}: {why} (expected [REGISTRY/]NAME[:TAG][@sha256:DIGEST], or an image ID sha256:<64 hex digits>)")
        };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if let Some(hex) = text.strip_prefix("sha256:") {
            if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Ok(ImageRef {
                    text: text.to_ascii_lowercase(),
                    kind: ImageRefKind::Id,
                });
            }
            return Err(invalid("an image ID has 64 hex digits after sha256:"));
        }
        // 64 hex digits alone are an image ID to Docker too (never a name).
        if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(ImageRef {
                text: format!("sha256:{}", text.to_ascii_lowercase()),
                kind: ImageRefKind::Id,
            });
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(|why| invalid(&why))?;
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(colon) => (
                &rest[..last_slash + colon],
                Some(&rest[last_slash + colon + 1..]),
            ),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|why| invalid(&why))?;
        }
        if name.len() > 255 {
            return Err(invalid("the name is longer than 255 characters"));
        }
        let mut components: Vec<&str> = name.split('/').collect();
        // As Docker decides: the first component names a registry if it has
        // a dot, a colon or an upper-case letter, or is `localhost`.
        let domain = match components.first() {
            Some(first)
                if components.len() > 1
                    && (first.contains('.')
                        || first.contains(':')
                        || *first == "localhost"
                        || first.chars().any(|c| c.is_ascii_uppercase())) =>
            {
                check_domain(first).map_err(|why| invalid(&why))?;
                Some(components.remove(0))
            }
            _ => None,
        };
        for component in &components {
            check_path_component(component).map_err(|why| invalid(&why))?;
        }
        let path = components.join("/");
        let (repository, registry, path) = match domain {
            None | Some("docker.io" | "index.docker.io") => {
                let short = path.strip_prefix("library/").unwrap_or(&path).to_string();
                let api = if short.contains('/') {
                    short.clone()
                } else {
                    format!("library/{short}")
                };
                (short, "docker.io".to_string(), api)
            }
            Some(domain) => (format!("{domain}/{path}"), domain.to_string(), path),
        };
        Ok(ImageRef {
            text: text.to_string(),
            kind: ImageRefKind::Named {
                repository,
                registry,
                path,
                tag: tag.map(str::to_string),
                digest,
            },
        })
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("digest {digest:?} has no algorithm"));
    };
    let hex_ok = hex.chars().all(|c| c.is_ascii_hexdigit());
    let ok = match algorithm {
        "sha256" => hex.len() == 64 && hex_ok,
        "sha512" => hex.len() == 128 && hex_ok,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "digest {digest:?} is not sha256:<64 hex> or sha512:<128 hex>"
        ))
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && tag.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(format!("tag {tag:?} must be up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"))
    }
}

fn check_domain(domain: &str) -> Result<(), String> {
    // An IPv6 address in brackets, with an optional port: `[::1]:5000`.
    if let Some(rest) = domain.strip_prefix('[') {
        let ok = rest.split_once(']').is_some_and(|(address, port)| {
            address.parse::<std::net::Ipv6Addr>().is_ok()
                && (port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
        });
        return if ok {
            Ok(())
        } else {
            Err(format!("registry {domain:?} is not a valid address"))
        };
    }
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (domain, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("registry {domain:?} has an invalid port"));
        }
    }
    let ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("registry {domain:?} is not a valid host name"))
    }
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn check_path_component(component: &str) -> Result<(), String> {
    let bad = || {
        format!("name part {component:?} must be lowercase letters and digits, joined by '.', '_', '__' or '-'")
    };
    if component.is_empty() {
        return Err("the name has an empty part".to_string());
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.chars().all(|c| c == '-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// `cpus`: a share of the host's CPUs, kept in the engine's own unit, a
/// billionth of a CPU (`NanoCpus`), so `"1.5"` is exactly 1 500 000 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cpus(u64);

/// Below a hundredth of a CPU the kernel refuses the quota (under 1ms per
/// 100ms period) and the task cannot start.
const MIN_NANO_CPUS: u64 = 10_000_000;
/// Linux's own limit on the CPUs of one machine.
const MAX_CPUS: u64 = 8192;
const NANOS_PER_CPU: u64 = 1_000_000_000;

impl Cpus {
    /// Billionths of a CPU, as the engine's `NanoCpus`.
    pub fn nanos(self) -> u64 {
        self.0
    }
}

impl FromStr for Cpus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || {
            format!(
                "invalid cpus {text:?}: expected a number of CPUs, e.g. \"0.5\", \"1.5\" or \"2\""
            )
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(expected());
        }
        if fraction.len() > 9 {
            return Err(format!(
                "cpus {text:?} is finer than the engine's unit, a billionth of a CPU"
            ));
        }
        let whole = match whole.trim_start_matches('0') {
            "" => Some(0),
            // Too many digits for a u64 is more CPUs than any machine too.
            digits => digits.parse::<u64>().ok(),
        };
        let fraction: u64 = format!("{fraction:0<9}").parse().map_err(|_| expected())?;
        let nanos = whole
            .filter(|w| *w <= MAX_CPUS)
            .map(|w| w * NANOS_PER_CPU + fraction);
        match nanos {
            Some(n) if n < MIN_NANO_CPUS => Err(format!(
                "cpus {text:?} is below the engine's minimum of 0.01"
            )),
            Some(n) if n <= MAX_CPUS * NANOS_PER_CPU => Ok(Cpus(n)),
            _ => Err(format!(
                "cpus {text:?} is too large: the largest allowed is {MAX_CPUS} (more CPUs than Linux runs on)"
            )),
        }
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, fraction) = (self.0 / NANOS_PER_CPU, self.0 % NANOS_PER_CPU);
        if fraction == 0 {
            write!(f, "{whole}")
        } else {
            let fraction = format!("{fraction:09}");
            write!(f, "{whole}.{}", fraction.trim_end_matches('0'))
        }
    }
}

/// Every capability the Linux kernel defines, without the `CAP_` prefix,
/// in the kernel's order.
const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// `cap_add`, `cap_drop`: a Linux capability or `ALL`, in the one spelling
/// recent engines store (`CAP_` and upper case) whatever was written:
/// `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` are one capability.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(String);

impl Capability {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A capability as an engine reports it, in drover's spelling; a name
    /// drover does not know is kept (upper-cased) so it still shows as drift.
    pub fn canonical(text: &str) -> String {
        text.parse::<Capability>()
            .map_or_else(|_| text.to_ascii_uppercase(), |c| c.0)
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let upper = text.to_ascii_uppercase();
        if upper == "ALL" {
            return Ok(Capability(upper));
        }
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if CAPABILITIES.contains(&name) {
            Ok(Capability(format!("CAP_{name}")))
        } else {
            Err(format!("unknown capability {text:?}: expected a Linux capability such as \"NET_ADMIN\" or \"CAP_SYS_TIME\" (see capabilities(7)), or \"ALL\""))
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The resource limits `docker run --ulimit` takes.
pub const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// The kernel allows no more open files than `fs.nr_open`: 1048576 unless a
/// host raises it, and never unlimited.
const MAX_NOFILE: i64 = 1 << 20;

/// One of `ulimits`: a soft and a hard limit; -1 is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

impl Ulimit {
    /// `"N"` (soft and hard alike) or `"SOFT:HARD"` for the limit `name`.
    pub fn parse(name: &str, value: &str) -> Result<Ulimit, String> {
        if !ULIMIT_NAMES.contains(&name) {
            return Err(format!(
                "unknown ulimit {name:?}: expected one of {}",
                ULIMIT_NAMES.join(", ")
            ));
        }
        let expected = || {
            format!("invalid ulimit {name} {value:?}: expected a limit or \"SOFT:HARD\", each a whole number, or -1 for unlimited")
        };
        let nofile_too_large = || {
            format!("ulimit nofile {value:?} is above {MAX_NOFILE}, the kernel's limit on open files (fs.nr_open), and cannot be unlimited")
        };
        let limit = |text: &str| match text.parse::<i64>() {
            Ok(n) if n >= -1 && !text.starts_with('+') => Ok(n),
            // Digits alone that do not fit: too large, not malformed.
            Err(_) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                Err(if name == "nofile" {
                    nofile_too_large()
                } else {
                    format!(
                        "ulimit {name} {value:?} is too large: the largest allowed is {} (or -1 for unlimited)",
                        i64::MAX
                    )
                })
            }
            _ => Err(expected()),
        };
        let (soft, hard) = match value.split_once(':') {
            Some((soft, hard)) => (limit(soft)?, limit(hard)?),
            None => {
                let n = limit(value)?;
                (n, n)
            }
        };
        // -1 is the kernel's infinity, above every number.
        let rank = |n: i64| u64::try_from(n).unwrap_or(u64::MAX);
        if rank(soft) > rank(hard) {
            return Err(format!(
                "ulimit {name} {value:?}: the soft limit is above the hard limit"
            ));
        }
        if name == "nofile" && (hard == -1 || hard > MAX_NOFILE) {
            return Err(nofile_too_large());
        }
        Ok(Ulimit { soft, hard })
    }
}

impl fmt::Display for Ulimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.soft, self.hard)
    }
}

/// `extra_hosts`: `NAME:ADDRESS`, a line the engine adds to the container's
/// `/etc/hosts`. The address is IPv4, IPv6 (brackets optional) or
/// `host-gateway`, kept in one spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtraHost {
    pub name: String,
    pub address: String,
}

impl ExtraHost {
    /// An entry as an engine reports it, in drover's spelling where it is one.
    pub fn canonical(text: &str) -> String {
        text.parse::<ExtraHost>()
            .map_or_else(|_| text.to_string(), |h| h.to_string())
    }
}

impl FromStr for ExtraHost {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || {
            format!("invalid extra host {text:?}: expected \"NAME:ADDRESS\" with an IPv4 or IPv6 address or host-gateway, e.g. \"db:10.0.0.5\"")
        };
        let (name, address) = text.split_once(':').ok_or_else(expected)?;
        let mut chars = name.chars();
        let name_ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !name_ok {
            return Err(format!("invalid extra host {text:?}: the name {name:?} must be letters, digits, '-', '.' and '_', starting with a letter or digit"));
        }
        let address = if address == "host-gateway" {
            address.to_string()
        } else {
            let bare = address
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(address);
            bare.parse::<std::net::IpAddr>()
                .map_err(|_| expected())?
                .to_string()
        };
        Ok(ExtraHost {
            name: name.to_string(),
            address,
        })
    }
}

impl fmt::Display for ExtraHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.address)
    }
}

/// Mount flags a tmpfs takes, each with the slot it sets: two options in
/// one slot (`ro` and `rw`, `exec` and `noexec`) contradict each other.
const TMPFS_FLAGS: &[(&str, &str)] = &[
    ("ro", "rw"),
    ("rw", "rw"),
    ("exec", "exec"),
    ("noexec", "exec"),
    ("suid", "suid"),
    ("nosuid", "suid"),
    ("dev", "dev"),
    ("nodev", "dev"),
    ("sync", "sync"),
    ("async", "sync"),
    ("dirsync", "dirsync"),
    ("atime", "atime"),
    ("noatime", "atime"),
    ("diratime", "diratime"),
    ("nodiratime", "diratime"),
    ("relatime", "relatime"),
    ("norelatime", "relatime"),
    ("strictatime", "strictatime"),
    ("nostrictatime", "strictatime"),
    ("mand", "mand"),
    ("nomand", "mand"),
];

/// `tmpfs`: `PATH[:OPTIONS]`, a tmpfs mounted in the container. Options
/// are kept sorted: no two of them may contradict, so their order means
/// nothing, and one spelling lets `diff` compare them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tmpfs {
    pub path: String,
    pub options: Vec<String>,
}

impl Tmpfs {
    /// The options as the engine takes them, comma-separated.
    pub fn options_text(&self) -> String {
        self.options.join(",")
    }

    /// Options as an engine reports them, in drover's order where they parse.
    pub fn canonical_options(options: &str) -> String {
        if options.is_empty() {
            return String::new();
        }
        tmpfs_options(options).map_or_else(|_| options.to_string(), |o| o.join(","))
    }
}

/// `size=64m` and `nr_inodes=1k` as the kernel reads them: a whole number
/// with an optional k, m, g, t, p or e (or a percentage of memory).
fn kernel_size(value: &str, percent: bool) -> bool {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    digits_end > 0
        && match &value[digits_end..] {
            "" => true,
            "%" => percent,
            unit => unit.len() == 1 && "kKmMgGtTpPeE".contains(unit),
        }
}

/// Whether a [`kernel_size`] is beyond the 64 bits the kernel counts in
/// (and the engine's signed ones): the kernel does not say so, it wraps.
fn kernel_size_overflows(value: &str) -> bool {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let shift = match value[digits_end..].to_ascii_lowercase().as_str() {
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        "e" => 60,
        _ => 0,
    };
    value[..digits_end]
        .parse::<u128>()
        .map_or(true, |n| n << shift > u128::from(crate::units::MAX_SIZE))
}

fn tmpfs_options(text: &str) -> Result<Vec<String>, String> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for option in text.split(',') {
        let (key, value) = match option.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (option, None),
        };
        let slot = match (key, value) {
            (flag, None) => TMPFS_FLAGS
                .iter()
                .find(|(name, _)| *name == flag)
                .map(|(_, slot)| *slot),
            ("size" | "nr_inodes" | "nr_blocks", Some(v))
                if kernel_size(v, key != "nr_blocks") && kernel_size_overflows(v) =>
            {
                // The kernel would wrap it round silently.
                return Err(format!(
                    "tmpfs option {key}={v:?} is too large: the largest allowed is {}",
                    crate::units::format_size(crate::units::MAX_SIZE)
                ));
            }
            ("size", Some(v)) if kernel_size(v, true) => Some("size"),
            ("nr_inodes", Some(v)) if kernel_size(v, true) => Some("nr_inodes"),
            ("nr_blocks", Some(v)) if kernel_size(v, false) => Some("nr_blocks"),
            ("mode", Some(v))
                if (1..=4).contains(&v.len()) && v.chars().all(|c| matches!(c, '0'..='7')) =>
            {
                Some("mode")
            }
            ("uid" | "gid", Some(v)) if v.parse::<u32>().is_ok() => Some(key),
            ("size" | "nr_inodes" | "nr_blocks" | "mode" | "uid" | "gid", Some(v)) => {
                let what = match key {
                    "mode" => "an octal mode such as 1777",
                    "uid" | "gid" => "a numeric ID",
                    "nr_blocks" => "a whole number with an optional k, m or g",
                    _ => "a whole number with an optional k, m or g, or a percentage",
                };
                return Err(format!("tmpfs option {key}={v:?} is not {what}"));
            }
            _ => None,
        };
        let Some(slot) = slot else {
            return Err(format!("unknown tmpfs option {option:?}: expected size, mode, uid, gid, nr_inodes, nr_blocks or mount flags such as ro, noexec, nosuid, nodev"));
        };
        if let Some((other, _)) = seen.iter().find(|(_, s)| *s == slot) {
            return Err(if *other == option || value.is_some() {
                format!("tmpfs option {key} is given twice")
            } else {
                format!("tmpfs options {other} and {option} contradict each other")
            });
        }
        seen.push((option, slot));
    }
    let mut options: Vec<String> = seen.into_iter().map(|(o, _)| o.to_string()).collect();
    options.sort();
    Ok(options)
}

impl FromStr for Tmpfs {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (path, options) = match text.split_once(':') {
            Some((path, options)) => (path, Some(options)),
            None => (text, None),
        };
        check_abs_path("tmpfs path", path)?;
        if path == "/" {
            return Err(format!(
                "invalid tmpfs {text:?}: a tmpfs cannot be mounted over the container's root \"/\""
            ));
        }
        let options = match options {
            None => Vec::new(),
            Some("") => {
                return Err(format!(
                    "invalid tmpfs {text:?}: no options after ':' (write {path:?} for the engine's defaults)"
                ))
            }
            Some(options) => {
                tmpfs_options(options).map_err(|why| format!("invalid tmpfs {text:?}: {why}"))?
            }
        };
        Ok(Tmpfs {
            path: path.to_string(),
            options,
        })
    }
}

impl fmt::Display for Tmpfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if !self.options.is_empty() {
            write!(f, ":{}", self.options_text())?;
        }
        Ok(())
    }
}

/// `devices`: `HOST[:CONTAINER][:PERMISSIONS]`, a host device made available
/// in the container, as `docker run --device` takes it. Permissions are the
/// cgroup's `r`, `w` and `m` (default all three), kept in that order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Device {
    pub host: String,
    pub container: String,
    pub permissions: String,
}

/// All of `r`, `w`, `m`: read, write, mknod.
const DEVICE_PERMISSIONS: &str = "rwm";

/// `rwm`, `mr`…: each of r, w and m at most once, put in that order.
fn device_permissions(text: &str) -> Option<String> {
    let valid = !text.is_empty()
        && text.chars().all(|c| DEVICE_PERMISSIONS.contains(c))
        && DEVICE_PERMISSIONS
            .chars()
            .all(|p| text.chars().filter(|c| *c == p).count() <= 1);
    valid.then(|| {
        DEVICE_PERMISSIONS
            .chars()
            .filter(|p| text.contains(*p))
            .collect()
    })
}

impl Device {
    /// A device as an engine reports it, permissions in drover's order where they are valid.
    pub fn reported(host: &str, container: &str, permissions: &str) -> Device {
        Device {
            host: host.to_string(),
            container: container.to_string(),
            permissions: device_permissions(permissions).unwrap_or_else(|| permissions.to_string()),
        }
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || {
            format!("invalid device {text:?}: expected \"HOST\", \"HOST:CONTAINER\", \"HOST:PERMISSIONS\" or \"HOST:CONTAINER:PERMISSIONS\" with absolute paths and permissions of r, w and m")
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, permissions) = match parts.as_slice() {
            [host] => (*host, *host, DEVICE_PERMISSIONS),
            [host, second] if device_permissions(second).is_some() => (*host, *host, *second),
            [host, container] => (*host, *container, DEVICE_PERMISSIONS),
            [host, container, permissions] => (*host, *container, *permissions),
            _ => return Err(expected()),
        };
        if !host.starts_with('/') || !container.starts_with('/') {
            return Err(expected());
        }
        check_abs_path("device host path", host)?;
        check_abs_path("device container path", container)?;
        let permissions = device_permissions(permissions).ok_or_else(expected)?;
        Ok(Device {
            host: host.to_string(),
            container: container.to_string(),
            permissions,
        })
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        if self.container != self.host {
            write!(f, ":{}", self.container)?;
        }
        if self.permissions != DEVICE_PERMISSIONS {
            write!(f, ":{}", self.permissions)?;
        }
        Ok(())
    }
}

/// `user`: `USER[:GROUP]`, each a name or a numeric ID, as `docker run
/// --user` takes it. Whether a name exists is the image's business.
pub fn check_user(text: &str) -> Result<(), String> {
    let part_ok = |part: &str| {
        let mut chars = part.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && (!part.chars().all(|c| c.is_ascii_digit()) || part.parse::<u32>().is_ok())
    };
    let ok = match text.split_once(':') {
        Some((user, group)) => part_ok(user) && part_ok(group),
        None => part_ok(text),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid user {text:?}: expected \"USER\" or \"USER:GROUP\", each a name (letters, digits, '_', '-', '.') or a numeric ID, e.g. \"1000:1000\" or \"nobody\""))
    }
}

/// Labels starting with this are drover's own.
pub const RESERVED_LABEL_PREFIX: &str = "drover.";

/// A key of `labels`: anything but empty, and not one of drover's own.
pub fn check_label_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.contains('\0') || key.chars().any(char::is_whitespace) {
        return Err(format!(
            "invalid label {key:?}: a label key must not be empty or contain spaces or NUL"
        ));
    }
    if key.starts_with(RESERVED_LABEL_PREFIX) {
        return Err(format!("label {key:?} is reserved: labels starting with {RESERVED_LABEL_PREFIX:?} are drover's own"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_no_dots() {
        assert!(check_name("job", "web-1_a").is_ok());
        for bad in ["", "x.w", "-a", "a b", "é", &"a".repeat(64)] {
            assert!(check_name("job", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn restart_policies_normalize_as_the_engine_reports() {
        assert_eq!(
            "on-failure:0".parse::<RestartPolicy>().unwrap().to_string(),
            "on-failure"
        );
        assert_eq!(
            "on-failure:3".parse::<RestartPolicy>().unwrap().to_string(),
            "on-failure:3"
        );
        for good in ["no", "always", "unless-stopped", "on-failure"] {
            assert_eq!(good.parse::<RestartPolicy>().unwrap().to_string(), good);
        }
        for bad in ["never", "on-failure:", "on-failure:x", "", "on-failure:-1"] {
            assert!(bad.parse::<RestartPolicy>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn docker_addresses() {
        assert_eq!(
            "unix:///var/run/docker.sock".parse(),
            Ok(DockerAddress::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            "tcp://10.0.0.12:2376".parse(),
            Ok(DockerAddress::Tcp {
                host: "10.0.0.12".into(),
                port: 2376
            })
        );
        assert_eq!(
            "tcp://[::1]:2376"
                .parse::<DockerAddress>()
                .unwrap()
                .to_string(),
            "tcp://[::1]:2376"
        );
        assert_eq!(
            "ssh://ops@app1:2222".parse(),
            Ok(DockerAddress::Ssh {
                user: Some("ops".into()),
                host: "app1".into(),
                port: 2222
            })
        );
        assert_eq!(
            "ssh://app1".parse::<DockerAddress>().unwrap().to_string(),
            "ssh://app1:22"
        );
        for bad in [
            "/var/run/docker.sock",
            "unix://relative",
            "tcp://host",
            "tcp://host:99999",
            "tcp://host:0",
            "http://x:1",
            "ssh://@h",
            "ssh://h/x",
            "tcp://a b:1",
        ] {
            assert!(bad.parse::<DockerAddress>().is_err(), "{bad:?}");
        }
        assert!("tcp://127.0.0.1:1"
            .parse::<DockerAddress>()
            .unwrap()
            .is_loopback());
        assert!("tcp://[0:0:0:0:0:0:0:1]:1"
            .parse::<DockerAddress>()
            .unwrap()
            .is_loopback());
        assert!(!"tcp://10.0.0.1:1"
            .parse::<DockerAddress>()
            .unwrap()
            .is_loopback());
    }

    #[test]
    fn volumes() {
        assert_eq!(
            "/data/x:/data".parse(),
            Ok(Volume {
                host: "/data/x".into(),
                container: "/data".into(),
                read_only: false
            })
        );
        assert!("/a:/b:ro".parse::<Volume>().unwrap().read_only);
        for bad in [
            "data:/data",
            "/a",
            "/a:b",
            "/a:/b:rx",
            "/a:/b:ro:x",
            "named:/data",
            "/a:/",
            "/a:/b/",
            "/a:/b/../c",
            "/a//b:/c",
        ] {
            assert!(bad.parse::<Volume>().is_err(), "{bad:?}");
        }
    }

    /// Where an image is pulled from, as Docker's own rules decide (what
    /// `drover images`, `package` and `gc` ask the registry about).
    #[test]
    fn image_references_name_their_registry_as_docker_does() {
        let parts = |text: &str| {
            let r: ImageRef = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            (
                r.registry().unwrap_or_default().to_string(),
                r.path().unwrap_or_default().to_string(),
                r.registry_reference().map(str::to_string),
            )
        };
        let want = |registry: &str, path: &str, reference: Option<&str>| {
            (
                registry.to_string(),
                path.to_string(),
                reference.map(str::to_string),
            )
        };
        assert_eq!(
            parts("127.0.0.1:5000/team/app:1"),
            want("127.0.0.1:5000", "team/app", Some("1"))
        );
        assert_eq!(
            parts("app"),
            want("docker.io", "library/app", Some("latest"))
        );
        assert_eq!(
            parts("team/app:2"),
            want("docker.io", "team/app", Some("2"))
        );
        assert_eq!(
            parts("localhost/app"),
            want("localhost", "app", Some("latest"))
        );
        assert_eq!(
            parts("localhost:5000/app:v1"),
            want("localhost:5000", "app", Some("v1"))
        );
        assert_eq!(
            parts("index.docker.io/nginx"),
            want("docker.io", "library/nginx", Some("latest"))
        );
        assert_eq!(
            parts("docker.io/nginx:1.25"),
            want("docker.io", "library/nginx", Some("1.25"))
        );
        assert_eq!(
            parts("Registry/app"),
            want("Registry", "app", Some("latest"))
        );
        assert_eq!(
            parts("[::1]:5000/app:3"),
            want("[::1]:5000", "app", Some("3"))
        );
        let digest = format!("sha256:{}", "0".repeat(64));
        assert_eq!(
            parts(&format!("reg:5000/app:1@{digest}")),
            want("reg:5000", "app", Some(&digest))
        );
    }

    #[test]
    fn image_references() {
        let r: ImageRef = "127.0.0.1:5000/team/app:20151030".parse().unwrap();
        assert_eq!(r.repository(), Some("127.0.0.1:5000/team/app"));
        assert_eq!(r.tag(), Some("20151030"));
        assert_eq!(
            r.key(),
            ImageKey::Tag("127.0.0.1:5000/team/app:20151030".into())
        );
        assert_eq!(
            r.with_tag("2").unwrap().as_str(),
            "127.0.0.1:5000/team/app:2"
        );

        let r: ImageRef = "busybox".parse().unwrap();
        assert_eq!(r.key(), ImageKey::Tag("busybox:latest".into()));
        let r: ImageRef = "docker.io/library/busybox:1".parse().unwrap();
        assert_eq!(r.key(), ImageKey::Tag("busybox:1".into()));
        assert_eq!(r.written_repository(), Some("docker.io/library/busybox"));
        let r: ImageRef = "localhost/x".parse().unwrap();
        assert_eq!(r.repository(), Some("localhost/x"));

        let digest = format!("sha256:{}", "a".repeat(64));
        let r: ImageRef = format!("app:1@{digest}").parse().unwrap();
        assert_eq!(r.key(), ImageKey::Digest(format!("app@{digest}")));
        let r: ImageRef = digest.parse().unwrap();
        assert!(r.is_id());
        assert_eq!(r.key(), ImageKey::Id(digest.clone()));
        assert_eq!(r.repository(), None);
        // The ID without its algorithm, as `docker images --no-trunc` shows it too.
        let r: ImageRef = "A".repeat(64).parse().unwrap();
        assert!(r.is_id());
        assert_eq!(r.as_str(), format!("sha256:{}", "a".repeat(64)));

        for bad in [
            "",
            "a b",
            "app:",
            "app:-x",
            "app@sha256:abc",
            "sha256:abc",
            "reg:x/app",
            "-app",
            "app//x",
            "app:1:2",
            "a..b",
        ] {
            assert!(
                bad.parse::<ImageRef>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn log_drivers() {
        assert_eq!("local".parse(), Ok(LogDriver::Local));
        assert!("json-file".parse::<LogDriver>().unwrap().rotates());
        assert!(!"syslog".parse::<LogDriver>().unwrap().rotates());
        assert!("none"
            .parse::<LogDriver>()
            .unwrap_err()
            .contains("discards"));
        assert!("bogus".parse::<LogDriver>().unwrap_err().contains("local"));
    }

    #[test]
    fn networks() {
        assert_eq!("host".parse(), Ok(Network::Host));
        assert!("mynet".parse::<Network>().is_err());
    }

    #[test]
    fn container_settings_print_as_they_parse() {
        for text in [
            "/dev/fuse",
            "/dev/fuse:/dev/f",
            "/dev/fuse:rw",
            "/dev/fuse:/dev/f:r",
        ] {
            assert_eq!(text.parse::<Device>().unwrap().to_string(), text);
        }
        for text in ["/run", "/run:mode=1777,size=64m"] {
            assert_eq!(text.parse::<Tmpfs>().unwrap().to_string(), text);
        }
        for text in ["db:10.0.0.5", "v6:::1", "gw:host-gateway"] {
            assert_eq!(text.parse::<ExtraHost>().unwrap().to_string(), text);
        }
        for (text, shown) in [
            ("1.250", "1.25"),
            ("002", "2"),
            ("0.5", "0.5"),
            ("8192", "8192"),
        ] {
            assert_eq!(text.parse::<Cpus>().unwrap().to_string(), shown);
        }
    }

    #[test]
    fn what_an_engine_reports_reads_in_drover_spelling_or_as_is() {
        assert_eq!(Capability::canonical("net_admin"), "CAP_NET_ADMIN");
        assert_eq!(Capability::canonical("all"), "ALL");
        assert_eq!(Capability::canonical("cap_bogus"), "CAP_BOGUS");
        assert_eq!(
            Tmpfs::canonical_options("size=64m,mode=1777,noexec"),
            "mode=1777,noexec,size=64m"
        );
        assert_eq!(Tmpfs::canonical_options("weird,a"), "weird,a");
        assert_eq!(Device::reported("/a", "/b", "mwr").permissions, "rwm");
        assert_eq!(Device::reported("/a", "/b", "x").permissions, "x");
        assert_eq!(ExtraHost::canonical("h:2001:DB8::1"), "h:2001:db8::1");
        assert_eq!(ExtraHost::canonical("h=1.2.3.4"), "h=1.2.3.4");
    }
}
