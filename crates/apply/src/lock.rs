//! A job's lock: held while a command changes the job, so two operators
//! never roll out the same job at once.
//!
//! The lock lives on the hosts themselves, as a marker container per host
//! (`ENV.JOB.HOST.lock`), taken host by host in name order: creating it is
//! atomic, so of two commands racing, the first to create it on the first
//! host wins and the other stops there, with the holder's record. A lock
//! whose holder is provably gone (a process of this machine that no longer
//! runs) is stale and taken over; any other is only removed by
//! `drover unlock`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drover_engine::{Engine, EngineError};
use drover_plan::{labels, lock_name, views::LockInfo, ROLE_LOCK};

use crate::markers::{create_marker, marker_labels};

/// Who holds a lock and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// `user@machine`.
    pub by: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub reason: String,
    pub command: String,
    /// The holding process; `None` for `drover lock`, held until `drover unlock`.
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LockError {
    #[error("job {job} is locked by {} since {} on host {} ({}{}): wait for it to finish, or if it is gone, run `drover unlock {job}`", .held.by, .held.at, .held.host, if .held.reason.is_empty() { .held.command.clone() } else { format!("reason: {}", .held.reason) }, .held.pid.map(|p| format!(", pid {p}")).unwrap_or_default())]
    Held { job: String, held: LockInfo },
    #[error("cannot take the lock of job {job} on host {host}: {error}")]
    Engine {
        job: String,
        host: String,
        error: EngineError,
    },
}

/// A lock held on some hosts; [`LockGuard::release`] gives it back.
pub struct LockGuard {
    pub job: String,
    taken: Vec<(String, Arc<dyn Engine>, String)>,
}

impl LockGuard {
    /// Removes the lock containers this guard created. Errors are returned
    /// per host; a lock left behind is found by `status` and `doctor`.
    pub async fn release(self) -> Vec<(String, EngineError)> {
        let removals = self.taken.into_iter().map(|(host, engine, id)| async move {
            engine.remove_container(&id).await.err().map(|e| (host, e))
        });
        futures::future::join_all(removals)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    pub fn hosts(&self) -> Vec<&str> {
        self.taken.iter().map(|(h, _, _)| h.as_str()).collect()
    }
}

/// `user@machine` of the operator running drover.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(login_name)
        .unwrap_or_else(|| "unknown".to_string());
    format!("{user}@{}", machine())
}

/// The name of the user this process runs as, from the password database.
fn login_name() -> Option<String> {
    // SAFETY: getpwuid_r writes into the buffers given, whose sizes it is told.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// This machine's host name.
pub fn machine() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether a lock's holder is provably gone: a process of this machine's
/// that no longer runs.
pub fn is_stale(info: &LockInfo) -> bool {
    let Some(pid) = info.pid else { return false };
    let same_machine = info
        .by
        .rsplit_once('@')
        .is_some_and(|(_, m)| m == machine());
    if !same_machine {
        return false;
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 checks for existence only.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    !alive
}

/// Takes the lock of `job` on each of `hosts`, recording `holder`: first on
/// the first host by name, alone — of two commands racing, the one that
/// gets it goes on and the other stops there, with the holder's record —
/// then on every other host at once. Gives back what it took on failure.
pub async fn acquire(
    env: &str,
    job: &str,
    hosts: &[(String, Arc<dyn Engine>)],
    holder: &Holder,
) -> Result<LockGuard, LockError> {
    let mut sorted: Vec<&(String, Arc<dyn Engine>)> = hosts.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut guard = LockGuard {
        job: job.to_string(),
        taken: Vec::new(),
    };
    let Some((first, rest)) = sorted.split_first() else {
        return Ok(guard);
    };
    match take(env, job, &first.0, first.1.as_ref(), holder).await {
        Ok(id) => guard
            .taken
            .push((first.0.clone(), Arc::clone(&first.1), id)),
        Err(e) => return Err(e),
    }
    let taken = futures::future::join_all(rest.iter().map(|(host, engine)| async move {
        (
            host,
            engine,
            take(env, job, host, engine.as_ref(), holder).await,
        )
    }))
    .await;
    let mut failed = None;
    for (host, engine, result) in taken {
        match result {
            Ok(id) => guard.taken.push((host.clone(), Arc::clone(engine), id)),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => {
            guard.release().await;
            Err(e)
        }
        None => Ok(guard),
    }
}

/// How often taking a lock is tried while its name is in use and yet no
/// container answers to it, and how long apart.
const TAKE_ATTEMPTS: u32 = 30;
const TAKE_RETRY: Duration = Duration::from_millis(100);

async fn take(
    env: &str,
    job: &str,
    host: &str,
    engine: &dyn Engine,
    holder: &Holder,
) -> Result<String, LockError> {
    let name = lock_name(env, job, host);
    let mut record = marker_labels(env, job, host, ROLE_LOCK);
    record.insert(labels::DEPLOYED_BY.to_string(), holder.by.clone());
    record.insert(labels::DEPLOYED_AT.to_string(), holder.at.clone());
    record.insert(labels::REASON.to_string(), holder.reason.clone());
    record.insert(labels::COMMAND.to_string(), holder.command.clone());
    if let Some(pid) = holder.pid {
        record.insert(labels::PID.to_string(), pid.to_string());
    }
    let engine_error = |error| LockError::Engine {
        job: job.to_string(),
        host: host.to_string(),
        error,
    };
    let mut took_over = false;
    for _ in 0..TAKE_ATTEMPTS {
        match create_marker(engine, &name, record.clone()).await {
            Ok(id) => return Ok(id),
            Err(EngineError::Conflict(_)) => {
                let Some(existing) = engine
                    .inspect_container(&name)
                    .await
                    .map_err(engine_error)?
                else {
                    // The engine holds the name while another command's
                    // create of it is under way (or it was released in
                    // between): look again in a moment.
                    tokio::time::sleep(TAKE_RETRY).await;
                    continue;
                };
                let info = LockInfo::from_container(&existing, job, host);
                if !took_over && is_stale(&info) {
                    engine
                        .remove_container(&existing.id)
                        .await
                        .map_err(engine_error)?;
                    took_over = true;
                    continue;
                }
                return Err(LockError::Held {
                    job: job.to_string(),
                    held: info,
                });
            }
            Err(e) => return Err(engine_error(e)),
        }
    }
    Err(engine_error(EngineError::Other(
        "the lock kept changing hands".to_string(),
    )))
}

/// Removes the lock of `job` on each of `hosts`, whoever holds it.
/// Returns the records removed.
pub async fn force_unlock(
    env: &str,
    job: &str,
    hosts: &[(String, Arc<dyn Engine>)],
) -> Result<Vec<LockInfo>, LockError> {
    let mut removed = Vec::new();
    for (host, engine) in hosts {
        let name = lock_name(env, job, host);
        let engine_error = |error| LockError::Engine {
            job: job.to_string(),
            host: host.clone(),
            error,
        };
        if let Some(existing) = engine
            .inspect_container(&name)
            .await
            .map_err(engine_error)?
        {
            if existing.labels.get(labels::ROLE).map(String::as_str) != Some(ROLE_LOCK) {
                continue;
            }
            engine
                .remove_container(&existing.id)
                .await
                .map_err(engine_error)?;
            removed.push(LockInfo::from_container(&existing, job, host));
        }
    }
    Ok(removed)
}

/// Labels of a stop mark, with who stopped the job.
pub fn stop_mark_labels(
    env: &str,
    job: &str,
    host: &str,
    by: &str,
    at: &str,
) -> BTreeMap<String, String> {
    let mut record = marker_labels(env, job, host, drover_plan::ROLE_STOPPED);
    record.insert(labels::DEPLOYED_BY.to_string(), by.to_string());
    record.insert(labels::DEPLOYED_AT.to_string(), at.to_string());
    record
}
