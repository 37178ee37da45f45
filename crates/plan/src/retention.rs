//! Retention: which of a task's set-aside generations go.
//!
//! A rollout sets the replaced container aside (stopped, under its kept
//! name) so that `rollback` can start it again; `[update] keep` says how
//! many of those a task keeps. Two places remove what is beyond it: the
//! executor right after a rollout, and `gc` later. They must agree to the
//! container, or a `gc --dry-run` right after an `up` lists what `up` just
//! decided to keep (or the reverse). So the rule is written here once, as a
//! pure function of what the engine reports, and both ask it.
//!
//! The rule, per task:
//!
//! - kept generations, newest first in the order they served: the one the
//!   current container replaced, the one that replaced, and so on
//!   ([`succession`], by each container's `drover.replaces`), then any
//!   other by when it was deployed. Not by deployment alone: after a
//!   rollback, the generation rolled back from is the newest deployed, yet
//!   the one that came back served after it. The first `keep` stay,
//!   whatever their state; the rest go;
//! - failed generations (the container that failed a rollout's gate, kept
//!   aside as evidence under a name of its own, one per task): the newest
//!   stays while `keep` is at least 1, the rest go;
//! - a generation the engine still runs (running, restarting or paused) is
//!   never removed, whatever its age: someone started it by hand, or a
//!   rollback is bringing it back, and removing it would kill a process.
//!   It still takes its place among the newest.
//!
//! A job's one-off containers ([`one_offs`]) follow the same rule where
//! they are records, and their own where they are not:
//!
//! - a `drover run` container goes once it has ended (drover removes it
//!   itself unless `--keep`; one left behind is `gc`'s), or while it runs
//!   when the drover process that started it is provably gone;
//! - release runs are the record `history` lists: the newest `keep` per
//!   job and host stay, like kept generations; one still running stays
//!   unless its drover process is provably gone.

use std::fmt;

use crate::names::OneOffKind;
use crate::state::RunState;
use crate::time::Timestamp;

/// One generation set aside for a task, as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation<'a> {
    /// The container's ID.
    pub id: &'a str,
    /// Its place in the task's succession ([`succession`]): 0 for the one
    /// the current container replaced; `None` for one outside it.
    pub rank: Option<usize>,
    /// When it was deployed (the `drover.deployed_at` label); `None` when
    /// unknown, which counts as the oldest.
    pub deployed_at: Option<Timestamp>,
    pub state: RunState,
}

impl Generation<'_> {
    /// The engine still runs a process in it.
    pub fn is_live(&self) -> bool {
        self.state.is_up() || self.state == RunState::Paused
    }
}

/// Why a generation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// A kept generation beyond the newest `keep`.
    BeyondKeep { keep: u32 },
    /// A failed generation older than the task's newest one (or any, with `keep = 0`).
    OlderFailure { keep: u32 },
    /// A `drover run` container that has ended.
    RunEnded,
    /// A one-off still running whose drover process is gone.
    Abandoned,
}

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expired::BeyondKeep { keep } => write!(f, "beyond keep = {keep}"),
            Expired::OlderFailure { keep: 0 } => write!(f, "keep = 0 keeps no failed generation"),
            Expired::OlderFailure { .. } => write!(f, "older than the last failed one"),
            Expired::RunEnded => write!(f, "it has ended"),
            Expired::Abandoned => write!(f, "the drover process that started it is gone"),
        }
    }
}

/// A generation to remove, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal<'a> {
    pub id: &'a str,
    pub why: Expired,
}

/// Which of one task's generations go: `kept` are the generations a
/// rollout set aside, `failed` those that failed a rollout's gate (none
/// yet: the place for the failed rollout's evidence container), each in
/// any order. Newest first, ties by ID, so the answer never depends on the
/// order the engine listed them in.
pub fn expired<'a>(
    kept: &[Generation<'a>],
    failed: &[Generation<'a>],
    keep: u32,
) -> Vec<Removal<'a>> {
    let beyond = |generations: &[Generation<'a>], stay: u32, why: Expired| {
        let mut newest_first = generations.to_vec();
        newest_first.sort_by(|a, b| {
            let rank = |g: &Generation| g.rank.unwrap_or(usize::MAX);
            rank(a)
                .cmp(&rank(b))
                .then_with(|| b.deployed_at.cmp(&a.deployed_at))
                .then_with(|| b.id.cmp(a.id))
        });
        newest_first
            .into_iter()
            .skip(stay as usize)
            .filter(|g| !g.is_live())
            .map(move |g| Removal { id: g.id, why })
            .collect::<Vec<_>>()
    };
    let mut removals = beyond(kept, keep, Expired::BeyondKeep { keep });
    removals.extend(beyond(failed, keep.min(1), Expired::OlderFailure { keep }));
    removals
}

/// The order in which a task's kept generations served, newest first: the
/// one `current_replaces` names (what the current container replaced), the
/// one that one replaced, and so on, as far as the chain goes among
/// `kept` (`(ID, the ID it replaced)`). Each ID maps to its place; one
/// outside the chain is absent.
pub fn succession<'a>(
    current_replaces: Option<&'a str>,
    kept: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> std::collections::BTreeMap<&'a str, usize> {
    let replaced: std::collections::BTreeMap<&str, Option<&str>> = kept.into_iter().collect();
    let mut ranks = std::collections::BTreeMap::new();
    let mut next = current_replaces;
    while let Some(id) = next {
        let Some(before) = replaced.get(id) else {
            break;
        };
        // A chain that loops (labels set by hand) ends where it repeats.
        if ranks.contains_key(id) {
            break;
        }
        let place = ranks.len();
        ranks.insert(id, place);
        next = *before;
    }
    ranks
}

/// One one-off container of a job on a host, as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneOff<'a> {
    pub id: &'a str,
    pub kind: OneOffKind,
    /// When it was created (its `drover.deployed_at`); `None` counts as the oldest.
    pub created: Option<Timestamp>,
    pub state: RunState,
    /// The drover process that started it is provably gone (a process of
    /// this machine that no longer runs): nobody is waiting for it.
    pub holder_gone: bool,
}

/// Which of one job's one-off containers on one host go, `keep` being the
/// job's `[update] keep`. Newest first, ties by ID, like [`expired`].
pub fn one_offs<'a>(containers: &[OneOff<'a>], keep: u32) -> Vec<Removal<'a>> {
    let live = |c: &OneOff| c.state.is_up() || c.state == RunState::Paused;
    let mut removals: Vec<Removal<'a>> = containers
        .iter()
        .filter(|c| live(c) && c.holder_gone)
        .map(|c| Removal {
            id: c.id,
            why: Expired::Abandoned,
        })
        .collect();
    removals.extend(
        containers
            .iter()
            .filter(|c| c.kind == OneOffKind::Run && !live(c))
            .map(|c| Removal {
                id: c.id,
                why: Expired::RunEnded,
            }),
    );
    let releases: Vec<Generation<'a>> = containers
        .iter()
        .filter(|c| c.kind == OneOffKind::Release && !(live(c) && c.holder_gone))
        .map(|c| Generation {
            id: c.id,
            rank: None,
            deployed_at: c.created,
            state: c.state,
        })
        .collect();
    removals.extend(expired(&releases, &[], keep));
    removals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g<'a>(id: &'a str, deployed_at: &'a str, state: &'a str) -> Generation<'a> {
        Generation {
            id,
            rank: None,
            deployed_at: crate::time::parse(deployed_at),
            state: state.parse().expect("a state"),
        }
    }

    fn ids<'a>(removals: &[Removal<'a>]) -> Vec<&'a str> {
        removals.iter().map(|r| r.id).collect()
    }

    #[test]
    fn the_newest_keep_stay_in_any_listing_order() {
        let kept = [
            g("b", "2026-01-02T00:00:00Z", "exited"),
            g("d", "2026-01-04T00:00:00Z", "exited"),
            g("a", "2026-01-01T00:00:00Z", "exited"),
            g("c", "2026-01-03T00:00:00Z", "created"),
        ];
        assert_eq!(ids(&expired(&kept, &[], 2)), ["b", "a"]);
        let mut reversed = kept;
        reversed.reverse();
        assert_eq!(ids(&expired(&reversed, &[], 2)), ["b", "a"]);
        assert_eq!(ids(&expired(&kept, &[], 0)), ["d", "c", "b", "a"]);
        assert!(expired(&kept, &[], 4).is_empty());
        assert_eq!(
            expired(&kept, &[], 3),
            [Removal {
                id: "a",
                why: Expired::BeyondKeep { keep: 3 }
            }]
        );
    }

    #[test]
    fn a_live_generation_is_never_removed_but_takes_its_place() {
        // The regression: the executor removed a restarting kept container
        // that gc left, and let a running one take no place among the newest.
        let kept = [
            g("new", "2026-01-03T00:00:00Z", "running"),
            g("mid", "2026-01-02T00:00:00Z", "exited"),
            g("old", "2026-01-01T00:00:00Z", "restarting"),
            g("older", "2025-12-31T00:00:00Z", "paused"),
            g("oldest", "2025-12-30T00:00:00Z", "dead"),
        ];
        assert_eq!(ids(&expired(&kept, &[], 1)), ["mid", "oldest"]);
        assert_eq!(ids(&expired(&kept, &[], 0)), ["mid", "oldest"]);
    }

    #[test]
    fn an_unknown_deployment_time_is_the_oldest_and_ties_go_by_id() {
        let kept = [
            g("x", "", "exited"),
            g("b", "2026-01-01T00:00:00Z", "exited"),
            g("a", "2026-01-01T00:00:00Z", "exited"),
        ];
        assert_eq!(ids(&expired(&kept, &[], 1)), ["a", "x"]);
    }

    #[test]
    fn the_last_failed_generation_stays_unless_keep_is_zero() {
        let failed = [
            g("f1", "2026-01-01T00:00:00Z", "exited"),
            g("f2", "2026-01-02T00:00:00Z", "exited"),
        ];
        let kept = [g("k1", "2026-01-01T00:00:00Z", "exited")];
        assert_eq!(
            expired(&kept, &failed, 3),
            [Removal {
                id: "f1",
                why: Expired::OlderFailure { keep: 3 }
            }]
        );
        assert_eq!(ids(&expired(&kept, &failed, 0)), ["k1", "f2", "f1"]);
        assert_eq!(
            Expired::OlderFailure { keep: 0 }.to_string(),
            "keep = 0 keeps no failed generation"
        );
    }

    fn one_off<'a>(
        id: &'a str,
        kind: OneOffKind,
        created: &str,
        state: &str,
        holder_gone: bool,
    ) -> OneOff<'a> {
        OneOff {
            id,
            kind,
            created: crate::time::parse(created),
            state: state.parse().expect("a state"),
            holder_gone,
        }
    }

    #[test]
    fn an_ended_run_goes_and_a_running_one_only_when_its_drover_is_gone() {
        let runs = [
            one_off(
                "ended",
                OneOffKind::Run,
                "2026-01-01T00:00:00Z",
                "exited",
                false,
            ),
            one_off(
                "never",
                OneOffKind::Run,
                "2026-01-01T00:00:00Z",
                "created",
                false,
            ),
            one_off(
                "attended",
                OneOffKind::Run,
                "2026-01-02T00:00:00Z",
                "running",
                false,
            ),
            one_off(
                "orphaned",
                OneOffKind::Run,
                "2026-01-02T00:00:00Z",
                "running",
                true,
            ),
        ];
        let got = one_offs(&runs, 3);
        assert_eq!(
            got,
            [
                Removal {
                    id: "orphaned",
                    why: Expired::Abandoned
                },
                Removal {
                    id: "ended",
                    why: Expired::RunEnded
                },
                Removal {
                    id: "never",
                    why: Expired::RunEnded
                },
            ]
        );
    }

    #[test]
    fn release_records_are_kept_like_generations() {
        let releases = [
            one_off(
                "r1",
                OneOffKind::Release,
                "2026-01-01T00:00:00Z",
                "exited",
                false,
            ),
            one_off(
                "r2",
                OneOffKind::Release,
                "2026-01-02T00:00:00Z",
                "exited",
                true,
            ),
            one_off(
                "r3",
                OneOffKind::Release,
                "2026-01-03T00:00:00Z",
                "exited",
                false,
            ),
            one_off(
                "r4",
                OneOffKind::Release,
                "2026-01-04T00:00:00Z",
                "running",
                false,
            ),
        ];
        // The running one is the newest and takes its place; an ended
        // record's gone holder does not matter.
        assert_eq!(ids(&one_offs(&releases, 2)), ["r2", "r1"]);
        assert_eq!(ids(&one_offs(&releases, 0)), ["r3", "r2", "r1"]);
        let abandoned = [one_off(
            "r5",
            OneOffKind::Release,
            "2026-01-05T00:00:00Z",
            "running",
            true,
        )];
        assert_eq!(
            one_offs(&abandoned, 3),
            [Removal {
                id: "r5",
                why: Expired::Abandoned
            }]
        );
    }
}
