//! Retention and succession over generated histories: whatever the labels
//! say (a clean line, a broken one, a loop set by hand), in whatever order
//! the engine lists the containers, the rule keeps what served last, never
//! removes a live generation, and answers the same way.

use drover_plan::retention::{expired, succession, Generation};
use drover_plan::{time, RunState};
use proptest::prelude::*;

/// One kept generation: its ID, the index of the one it replaced (if
/// any, possibly itself or a later one), whether the engine still runs it.
#[derive(Debug, Clone)]
struct Kept {
    replaces: Option<usize>,
    live: bool,
    deployed: i64,
}

fn kept() -> impl Strategy<Value = Vec<Kept>> {
    prop::collection::vec(
        (prop::option::of(0usize..8), any::<bool>(), 0i64..100).prop_map(
            |(replaces, live, deployed)| Kept {
                replaces,
                live,
                deployed,
            },
        ),
        0..8,
    )
}

proptest! {
    #[test]
    fn retention_keeps_what_served_last_and_never_a_live_one(
        gens in kept(),
        current_replaces in prop::option::of(0usize..8),
        keep in 0u32..4,
        seed in any::<u64>(),
    ) {
        let ids: Vec<String> = (0..gens.len()).map(|i| format!("g{i}")).collect();
        let replaced: Vec<Option<&str>> = gens
            .iter()
            .map(|g| g.replaces.and_then(|r| ids.get(r)).map(String::as_str))
            .collect();
        let current = current_replaces.and_then(|r| ids.get(r)).map(String::as_str);
        let ranks = succession(current, ids.iter().map(String::as_str).zip(replaced.iter().copied()));
        // The line of succession starts with what the current one replaced.
        if let Some(first) = current.filter(|id| ids.iter().any(|i| i == id)) {
            prop_assert_eq!(ranks.get(first), Some(&0));
        }
        let generations: Vec<Generation> = gens
            .iter()
            .enumerate()
            .map(|(i, g)| Generation {
                id: &ids[i],
                rank: ranks.get(ids[i].as_str()).copied(),
                deployed_at: time::from_unix_secs(1_800_000_000 + g.deployed),
                state: if g.live { RunState::Running } else { RunState::Exited },
            })
            .collect();
        let gone: Vec<&str> = expired(&generations, &[], keep).iter().map(|r| r.id).collect();
        for id in &gone {
            let i = ids.iter().position(|x| x == id).unwrap();
            prop_assert!(!gens[i].live, "a live generation is never removed");
        }
        if keep >= 1 {
            if let Some(first) = current.filter(|id| ids.iter().any(|i| i == id)) {
                prop_assert!(!gone.contains(&first), "what served last stays");
            }
        }
        let stale = gens.iter().filter(|g| !g.live).count();
        prop_assert!(gone.len() <= stale);
        prop_assert!(gens.len() - gone.len() >= (keep as usize).min(gens.len()));
        // The engine's listing order changes nothing.
        let mut shuffled = generations.clone();
        let n = shuffled.len();
        if n > 1 {
            shuffled.rotate_left((seed as usize) % n);
        }
        let mut again: Vec<&str> = expired(&shuffled, &[], keep).iter().map(|r| r.id).collect();
        let mut sorted = gone.clone();
        again.sort_unstable();
        sorted.sort_unstable();
        prop_assert_eq!(again, sorted);
    }
}
