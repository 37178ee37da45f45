//! What drover tells a team: the fourteen event kinds of the interface, the
//! class each belongs to (`events = ["deploy", "incident"]` chooses), and one
//! event as plain data — its one-line summary and the command to run next
//! are worked out once, here, so the chat text and the JSON object say the
//! same thing.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use drover_spec::units::format_duration;
use drover_spec::NotifyClass;

/// The `event` of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    DeployStarted,
    DeploySucceeded,
    DeployFailed,
    DeployRolledBack,
    TaskCrashLoop,
    TaskOomKilled,
    TaskUnhealthy,
    TaskExited,
    TaskRecovered,
    HostUnreachable,
    HostRecovered,
    DriftDetected,
    DiskLow,
    ImageAvailable,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::DeployStarted,
        EventKind::DeploySucceeded,
        EventKind::DeployFailed,
        EventKind::DeployRolledBack,
        EventKind::TaskCrashLoop,
        EventKind::TaskOomKilled,
        EventKind::TaskUnhealthy,
        EventKind::TaskExited,
        EventKind::TaskRecovered,
        EventKind::HostUnreachable,
        EventKind::HostRecovered,
        EventKind::DriftDetected,
        EventKind::DiskLow,
        EventKind::ImageAvailable,
    ];

    /// The name the interface gives it: `deploy.started`, `task.crash_loop`…
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DeployStarted => "deploy.started",
            EventKind::DeploySucceeded => "deploy.succeeded",
            EventKind::DeployFailed => "deploy.failed",
            EventKind::DeployRolledBack => "deploy.rolled_back",
            EventKind::TaskCrashLoop => "task.crash_loop",
            EventKind::TaskOomKilled => "task.oom_killed",
            EventKind::TaskUnhealthy => "task.unhealthy",
            EventKind::TaskExited => "task.exited",
            EventKind::TaskRecovered => "task.recovered",
            EventKind::HostUnreachable => "host.unreachable",
            EventKind::HostRecovered => "host.recovered",
            EventKind::DriftDetected => "drift.detected",
            EventKind::DiskLow => "disk.low",
            EventKind::ImageAvailable => "image.available",
        }
    }

    /// `deploy.*` is what a changing command did; everything else is what
    /// `drover watch` noticed.
    pub fn class(self) -> NotifyClass {
        match self {
            EventKind::DeployStarted
            | EventKind::DeploySucceeded
            | EventKind::DeployFailed
            | EventKind::DeployRolledBack => NotifyClass::Deploy,
            _ => NotifyClass::Incident,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| format!("unknown event {text:?}"))
    }
}

/// How a changing command's run went: the four `deploy.*` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deploy {
    Started,
    Succeeded,
    Failed,
    /// Failed, and the tasks went back to the previous generation.
    RolledBack,
}

impl Deploy {
    pub fn kind(self) -> EventKind {
        match self {
            Deploy::Started => EventKind::DeployStarted,
            Deploy::Succeeded => EventKind::DeploySucceeded,
            Deploy::Failed => EventKind::DeployFailed,
            Deploy::RolledBack => EventKind::DeployRolledBack,
        }
    }
}

/// One notification, before it is addressed (environment, sender) and
/// rendered in a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// `None` for what concerns a host rather than a job.
    pub job: Option<String>,
    pub host: Option<String>,
    pub task: Option<u32>,
    pub time: SystemTime,
    /// One line: what happened, to whom.
    pub summary: String,
    /// The drover command to run next, as arguments after `drover`.
    pub next: Option<Vec<String>>,
    /// The git commit deployed (`drover.commit`), when known.
    pub commit: Option<String>,
}

impl Event {
    /// A `deploy.*` event. `summary` is the command's own one-line account
    /// ("update: 4 tasks replaced"); `image` the image rolled out, if any.
    pub fn deploy(
        outcome: Deploy,
        job: &str,
        image: Option<&str>,
        by: &str,
        commit: Option<&str>,
        summary: &str,
        time: SystemTime,
    ) -> Event {
        let (verb, next) = match outcome {
            Deploy::Started => ("started", vec!["status", job]),
            Deploy::Succeeded => ("succeeded", vec!["history", job]),
            Deploy::Failed => ("failed", vec!["logs", job, "--failed"]),
            Deploy::RolledBack => ("failed and was rolled back", vec!["logs", job, "--failed"]),
        };
        let what: Vec<String> = image
            .map(str::to_string)
            .into_iter()
            .chain(commit.map(|c| format!("commit {c}")))
            .collect();
        let mut line = format!("{job}: deploy by {by} {verb}");
        if !what.is_empty() {
            line.push_str(&format!(" ({})", what.join(", ")));
        }
        let summary = one_line(summary, SUMMARY_LIMIT);
        if !summary.is_empty() {
            line.push_str(": ");
            line.push_str(&summary);
        }
        Event {
            kind: outcome.kind(),
            job: Some(job.to_string()),
            host: None,
            task: None,
            time,
            summary: line,
            next: Some(args(&next)),
            commit: commit.map(str::to_string),
        }
    }

    /// Something about one task (`web a/0`).
    pub(crate) fn task(
        kind: EventKind,
        task: &drover_plan::TaskKey,
        time: SystemTime,
        summary: String,
        next: Option<Vec<String>>,
    ) -> Event {
        Event {
            kind,
            job: Some(task.job.clone()),
            host: Some(task.host.clone()),
            task: Some(task.task),
            time,
            summary,
            next,
            commit: None,
        }
    }

    /// Something about one host.
    pub(crate) fn host(
        kind: EventKind,
        host: &str,
        time: SystemTime,
        summary: String,
        next: Option<Vec<String>>,
    ) -> Event {
        Event {
            kind,
            job: None,
            host: Some(host.to_string()),
            task: None,
            time,
            summary,
            next,
            commit: None,
        }
    }
}

/// Longest text taken from elsewhere (a health check's output, a command's
/// summary) into a message: a chat line, not a log.
pub(crate) const SUMMARY_LIMIT: usize = 200;

/// The first non-empty line of `text`, at most `limit` characters (an
/// ellipsis marks a cut).
pub(crate) fn one_line(text: &str, limit: usize) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let more_lines = text.trim().lines().count() > 1;
    if line.chars().count() > limit {
        let cut: String = line.chars().take(limit).collect();
        format!("{}…", cut.trim_end())
    } else if more_lines {
        format!("{line} …")
    } else {
        line.to_string()
    }
}

/// Arguments as owned strings.
pub(crate) fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// A span of time as people say it: `40s`, `12m`, `3h`.
pub(crate) fn about(span: Duration) -> String {
    let secs = span.as_secs();
    let rounded = if secs < 90 {
        secs
    } else if secs < 2 * 3600 {
        (secs + 30) / 60 * 60
    } else {
        (secs + 1800) / 3600 * 3600
    };
    format_duration(Duration::from_secs(rounded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_interface_name_and_class() {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "deploy.started",
                "deploy.succeeded",
                "deploy.failed",
                "deploy.rolled_back",
                "task.crash_loop",
                "task.oom_killed",
                "task.unhealthy",
                "task.exited",
                "task.recovered",
                "host.unreachable",
                "host.recovered",
                "drift.detected",
                "disk.low",
                "image.available",
            ]
        );
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
            let deploy = kind.as_str().starts_with("deploy.");
            assert_eq!(kind.class() == NotifyClass::Deploy, deploy, "{kind}");
        }
    }

    #[test]
    fn a_deploy_event_says_who_what_and_what_next() {
        let event = Event::deploy(
            Deploy::RolledBack,
            "web",
            Some("registry.example:5000/web:2"),
            "alice@laptop",
            Some("abc1234"),
            "a/0 was unhealthy\nmore detail",
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(event.kind, EventKind::DeployRolledBack);
        assert_eq!(
            event.summary,
            "web: deploy by alice@laptop failed and was rolled back (registry.example:5000/web:2, commit abc1234): a/0 was unhealthy …"
        );
        assert_eq!(
            event.next,
            Some(vec!["logs".into(), "web".into(), "--failed".into()])
        );
        let bare = Event::deploy(
            Deploy::Started,
            "web",
            None,
            "bob@ci",
            None,
            "",
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(bare.summary, "web: deploy by bob@ci started");
        assert_eq!(bare.commit, None);
    }

    #[test]
    fn texts_from_elsewhere_become_one_short_line() {
        assert_eq!(one_line("\n  first  \nsecond", 200), "first …");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("", 3), "");
    }

    #[test]
    fn spans_are_rounded_as_people_say_them() {
        assert_eq!(about(Duration::from_millis(40_400)), "40s");
        assert_eq!(about(Duration::from_secs(89)), "89s");
        assert_eq!(about(Duration::from_secs(95)), "2m");
        assert_eq!(about(Duration::from_secs(12 * 60 + 20)), "12m");
        assert_eq!(about(Duration::from_secs(3 * 3600 + 100)), "3h");
    }
}
