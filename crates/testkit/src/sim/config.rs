//! What a simulation is made of: how many engines, how slow each call is,
//! and which images exist (with how their containers behave).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// One simulation: `hosts` engines, each on `DIR/h1.sock`….
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub hosts: usize,
    pub dir: PathBuf,
    /// Decides IDs, per-container usage figures, the collectors' phases and
    /// the latency jitter.
    pub seed: u64,
    pub latency: Latencies,
    /// Every latency is scaled by a factor uniform in [1 - jitter, 1 + jitter].
    pub jitter: f64,
    /// On every engine from the start (and in the registry).
    pub images: Vec<ImageSpec>,
    /// Only in the registry: a pull of one succeeds.
    pub registry: Vec<ImageSpec>,
    /// Worker threads of the runtime serving every engine.
    pub threads: usize,
    /// Where every request is written as a line: when it came (Unix
    /// seconds), how long its answer took, the host, method, path and status.
    pub trace: Option<PathBuf>,
}

impl SimConfig {
    /// `hosts` engines in `dir` with the defaults: a real engine's latencies,
    /// ±30 % jitter, and the test suite's fixture images on every engine.
    pub fn new(hosts: usize, dir: impl Into<PathBuf>) -> SimConfig {
        SimConfig {
            hosts,
            dir: dir.into(),
            seed: 1,
            latency: Latencies::default(),
            jitter: 0.3,
            images: default_images(),
            registry: Vec::new(),
            threads: 2,
            trace: None,
        }
    }

    /// The socket of engine `i` (1-based).
    pub fn socket(&self, i: usize) -> PathBuf {
        self.dir.join(format!("h{i}.sock"))
    }
}

/// The images `scripts/fixture-images` builds for the test suite.
pub fn default_images() -> Vec<ImageSpec> {
    ["drover-test/busybox:1", "drover-test/busybox:2"]
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect()
}

/// The engine calls whose latency is set apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Call {
    Ping,
    Version,
    Info,
    Df,
    List,
    Inspect,
    ImageList,
    ImageInspect,
    ImageRemove,
    Pull,
    Import,
    Create,
    Start,
    /// How long a process takes to exit after SIGTERM (one that ignores it
    /// is killed at the stop timeout instead).
    Stop,
    Kill,
    Rename,
    Remove,
    Pause,
    Exec,
    Logs,
    Events,
    /// Beyond the wait for the engine's next stats collection.
    Stats,
    Volumes,
}

impl Call {
    pub const ALL: [Call; 23] = [
        Call::Ping,
        Call::Version,
        Call::Info,
        Call::Df,
        Call::List,
        Call::Inspect,
        Call::ImageList,
        Call::ImageInspect,
        Call::ImageRemove,
        Call::Pull,
        Call::Import,
        Call::Create,
        Call::Start,
        Call::Stop,
        Call::Kill,
        Call::Rename,
        Call::Remove,
        Call::Pause,
        Call::Exec,
        Call::Logs,
        Call::Events,
        Call::Stats,
        Call::Volumes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Call::Ping => "ping",
            Call::Version => "version",
            Call::Info => "info",
            Call::Df => "df",
            Call::List => "list",
            Call::Inspect => "inspect",
            Call::ImageList => "image-list",
            Call::ImageInspect => "image-inspect",
            Call::ImageRemove => "image-remove",
            Call::Pull => "pull",
            Call::Import => "import",
            Call::Create => "create",
            Call::Start => "start",
            Call::Stop => "stop",
            Call::Kill => "kill",
            Call::Rename => "rename",
            Call::Remove => "remove",
            Call::Pause => "pause",
            Call::Exec => "exec",
            Call::Logs => "logs",
            Call::Events => "events",
            Call::Stats => "stats",
            Call::Volumes => "volumes",
        }
    }

    /// What a real engine takes on a host with a few dozen containers
    /// (measured against dockerd 20.10 on this project's machines).
    fn default_latency(self) -> Duration {
        let us = Duration::from_micros;
        match self {
            Call::Ping => us(500),
            Call::Version => us(1_000),
            Call::Info => us(5_000),
            Call::Df => us(20_000),
            Call::List => us(3_000),
            Call::Inspect => us(1_500),
            Call::ImageList => us(2_000),
            Call::ImageInspect => us(1_000),
            Call::ImageRemove => us(20_000),
            Call::Pull => us(300_000),
            Call::Import => us(50_000),
            Call::Create => us(30_000),
            Call::Start => us(80_000),
            Call::Stop => us(50_000),
            Call::Kill => us(10_000),
            Call::Rename => us(5_000),
            Call::Remove => us(30_000),
            Call::Pause => us(10_000),
            Call::Exec => us(5_000),
            Call::Logs => us(1_000),
            Call::Events => us(1_000),
            Call::Stats => us(1_000),
            Call::Volumes => us(2_000),
        }
    }
}

impl FromStr for Call {
    type Err = String;

    fn from_str(s: &str) -> Result<Call, String> {
        Call::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Call::ALL.iter().map(|c| c.name()).collect();
                format!("unknown call `{s}` (calls: {})", names.join(", "))
            })
    }
}

/// The latency of each call.
#[derive(Debug, Clone, PartialEq)]
pub struct Latencies(BTreeMap<Call, Duration>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(
            Call::ALL
                .into_iter()
                .map(|c| (c, c.default_latency()))
                .collect(),
        )
    }
}

impl Latencies {
    /// No latency at all: for tests that only need the answers.
    pub fn none() -> Self {
        Latencies(Call::ALL.into_iter().map(|c| (c, Duration::ZERO)).collect())
    }

    pub fn get(&self, call: Call) -> Duration {
        self.0.get(&call).copied().unwrap_or_default()
    }

    pub fn set(&mut self, call: Call, latency: Duration) {
        self.0.insert(call, latency);
    }

    /// Every latency times `factor`.
    pub fn scaled(&self, factor: f64) -> Self {
        Latencies(
            self.0
                .iter()
                .map(|(c, d)| (*c, d.mul_f64(factor.max(0.0))))
                .collect(),
        )
    }

    /// Applies `CALL=DURATION[,CALL=DURATION…]` over these.
    pub fn apply(&mut self, text: &str) -> Result<(), String> {
        for item in text.split(',').filter(|i| !i.trim().is_empty()) {
            let (call, value) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}`: expected CALL=DURATION, e.g. list=5ms"))?;
            let call: Call = call.trim().parse()?;
            let value = parse_duration(value.trim()).map_err(|e| format!("`{item}`: {e}"))?;
            self.set(call, value);
        }
        Ok(())
    }
}

impl fmt::Display for Latencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|(c, d)| format!("{}={}", c.name(), show_duration(*d)))
            .collect();
        f.write_str(&items.join(","))
    }
}

fn show_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 && !d.is_zero() {
        format!("{}s", d.as_secs())
    } else {
        // 1.5ms, 0.5ms, 30ms: what parse_duration reads back.
        let ms = format!("{:.3}", d.as_secs_f64() * 1000.0);
        format!("{}ms", ms.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// `500us`, `2ms`, `1.5s`, `1m`, or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit (us, ms, s or m)"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a number with a unit"))?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (us, ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

/// `512k`, `20m`, `1g`, or bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let (number, factor) = match text.chars().last() {
        Some('k') => (&text[..text.len() - 1], 1u64 << 10),
        Some('m') => (&text[..text.len() - 1], 1 << 20),
        Some('g') => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("`{text}` is not a size (e.g. 20m)"))
}

/// How the containers of an image behave once started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Behaviour {
    /// The process exits by itself this long after each start.
    pub exit_after: Option<Duration>,
    /// Its exit code then.
    pub exit_code: i64,
    /// It is killed for memory then (exit 137, `OOMKilled`, an `oom` event).
    pub oom: bool,
    /// Its health check fails (it passes by default).
    pub health_fails: bool,
    /// It ignores SIGTERM: a stop waits the whole stop timeout, then kills.
    pub ignores_sigterm: bool,
    /// Memory in use; by default a seeded figure between 2 and 64 MiB.
    pub memory: Option<u64>,
    /// CPU in use, percent of one CPU; by default seeded between 0.1 and 3.
    pub cpu_percent: Option<f64>,
    /// It writes a line to stdout this often.
    pub log_every: Option<Duration>,
}

/// An image the simulation has: `REF[,KEY=VALUE…]` with keys `exit-after`,
/// `exit-code`, `oom`, `health` (`pass`/`fail`), `sigterm`
/// (`exit`/`ignore`), `memory`, `cpu` and `log-every`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    pub reference: String,
    pub behaviour: Behaviour,
}

impl FromStr for ImageSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<ImageSpec, String> {
        let mut parts = text.split(',');
        let reference = parts.next().unwrap_or_default().trim();
        if reference.is_empty() || reference.contains(char::is_whitespace) {
            return Err(format!("`{text}`: expected an image reference first"));
        }
        let mut behaviour = Behaviour::default();
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` in `{text}`: expected KEY=VALUE"))?;
            let bad = |what: &str| format!("`{part}` in `{text}`: {what}");
            match key.trim() {
                "exit-after" => behaviour.exit_after = Some(parse_duration(value)?),
                "exit-code" => {
                    behaviour.exit_code = value.parse().map_err(|_| bad("expected a number"))?
                }
                "oom" => behaviour.oom = value.parse().map_err(|_| bad("expected true or false"))?,
                "health" => {
                    behaviour.health_fails = match value {
                        "pass" => false,
                        "fail" => true,
                        _ => return Err(bad("expected pass or fail")),
                    }
                }
                "sigterm" => {
                    behaviour.ignores_sigterm = match value {
                        "exit" => false,
                        "ignore" => true,
                        _ => return Err(bad("expected exit or ignore")),
                    }
                }
                "memory" => behaviour.memory = Some(parse_size(value)?),
                "cpu" => {
                    behaviour.cpu_percent =
                        Some(value.parse().map_err(|_| bad("expected a percentage"))?)
                }
                "log-every" => behaviour.log_every = Some(parse_duration(value)?),
                other => {
                    return Err(bad(&format!(
                        "unknown key `{other}` (exit-after, exit-code, oom, health, sigterm, memory, cpu, log-every)"
                    )))
                }
            }
        }
        if behaviour.oom && behaviour.exit_after.is_none() {
            return Err(format!(
                "`{text}`: oom needs exit-after (when it is killed)"
            ));
        }
        Ok(ImageSpec {
            reference: normalize_reference(reference),
            behaviour,
        })
    }
}

/// A reference with its tag: `busybox` → `busybox:latest`.
pub fn normalize_reference(reference: &str) -> String {
    if reference.contains('@') {
        return reference.to_string();
    }
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    if reference[name_start..].contains(':') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_set_by_name() {
        let mut l = Latencies::default();
        l.apply("list=5ms,start=1.5s").unwrap();
        assert_eq!(l.get(Call::List), Duration::from_millis(5));
        assert_eq!(l.get(Call::Start), Duration::from_millis(1500));
        assert_eq!(
            l.apply("lst=5ms").unwrap_err(),
            "unknown call `lst` (calls: ping, version, info, df, list, inspect, image-list, image-inspect, image-remove, pull, import, create, start, stop, kill, rename, remove, pause, exec, logs, events, stats, volumes)"
        );
        assert_eq!(
            l.apply("list=5").unwrap_err(),
            "`list=5`: `5` has no unit (us, ms, s or m)"
        );
        let shown = Latencies::default().to_string();
        assert!(
            shown.contains("list=3ms")
                && shown.contains("ping=0.5ms")
                && shown.contains("inspect=1.5ms"),
            "{shown}"
        );
        let mut back = Latencies::none();
        back.apply(&shown).unwrap();
        assert_eq!(back, Latencies::default());
    }

    #[test]
    fn images_carry_their_behaviour() {
        let spec: ImageSpec = "reg:5000/crash,exit-after=2s,exit-code=3,health=fail,sigterm=ignore"
            .parse()
            .unwrap();
        assert_eq!(spec.reference, "reg:5000/crash:latest");
        assert_eq!(spec.behaviour.exit_after, Some(Duration::from_secs(2)));
        assert_eq!(spec.behaviour.exit_code, 3);
        assert!(spec.behaviour.health_fails && spec.behaviour.ignores_sigterm);
        assert_eq!(
            "x:1,color=red".parse::<ImageSpec>().unwrap_err(),
            "`color=red` in `x:1,color=red`: unknown key `color` (exit-after, exit-code, oom, health, sigterm, memory, cpu, log-every)"
        );
        assert!("x:1,oom=true".parse::<ImageSpec>().is_err());
    }
}
