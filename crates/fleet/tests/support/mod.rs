//! The simulation's world: generated cases, the fake hosts they run on, and
//! the invariants checked after each run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drover_apply::{Report, StepError};
use drover_engine::fake::{clock, Behaviour, FakeEngine, Faults, HandAction, World};
use drover_engine::Engine;
use drover_fleet::{Connections, Executed, Fleet, Notice, Operation, Run};
use drover_plan::{labels, Role, RunState, TaskConfig};
use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

const ENV: &str = "sim";
/// Engines (hosts) of the simulated world.
const ENGINES: usize = 3;

/// The images a job can run, and what their containers do.
const IMAGES: [(&str, Behaviour); 6] = [
    ("reg:5000/app:1", Behaviour::Runs),
    ("reg:5000/app:2", Behaviour::Runs),
    ("reg:5000/app:slow", Behaviour::HealthyAfter(3)),
    ("reg:5000/app:exits", Behaviour::Exits(1)),
    ("reg:5000/app:loops", Behaviour::CrashLoops),
    ("reg:5000/app:sick", Behaviour::Unhealthy),
];

fn image_id(image: &str) -> String {
    format!(
        "sha256:{:0>64}",
        image.len() * 7919 + image.as_bytes()[image.len() - 1] as usize
    )
}

/// An image whose containers serve.
fn good(image: usize) -> bool {
    matches!(
        IMAGES[image].1,
        Behaviour::Runs | Behaviour::HealthyAfter(_)
    )
}

#[derive(Debug, Clone)]
pub struct JobSpec {
    pub hosts: Vec<usize>,
    pub instances: u32,
    pub image: usize,
    pub health: bool,
    pub parallel: u32,
    pub auto_rollback: bool,
    pub keep: u32,
}

/// An environment: the name each engine goes by in drover.toml (`None`:
/// the host entry is gone), and jobs `j0`… by index.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    pub hosts: Vec<Option<String>>,
    pub jobs: Vec<Option<JobSpec>>,
}

impl EnvSpec {
    fn host(&self, engine: usize) -> Option<&str> {
        self.hosts.get(engine).and_then(|h| h.as_deref())
    }

    fn jobs(&self) -> impl Iterator<Item = (String, &JobSpec)> {
        self.jobs
            .iter()
            .enumerate()
            .filter_map(|(i, j)| j.as_ref().map(|j| (format!("j{i}"), j)))
    }

    /// Tasks the spec asks for, per job.
    fn desired(&self) -> BTreeMap<String, usize> {
        self.jobs()
            .map(|(name, j)| (name, j.hosts.len() * j.instances as usize))
            .collect()
    }

    fn job(&self, name: &str) -> Option<&JobSpec> {
        self.jobs().find(|(n, _)| n == name).map(|(_, j)| j)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Op {
    UpAll,
    Up(usize),
    Update(usize, usize),
    RollingUpdate(usize, Option<usize>),
    Restart(usize),
    Rollback(usize),
    Stop(usize),
    Start(usize),
    Down(usize),
}

/// How hostile the world is during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostility {
    /// Latency only: every invariant holds, availability included.
    Calm,
    /// Requests fail before or after the engine acts, and operators change
    /// things by hand: no panic, locks given back, and the next `up` repairs.
    Chaos,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    pub before: EnvSpec,
    pub after: EnvSpec,
    /// Changes by hand between the two: engine, which container, what.
    pub hand: Vec<(usize, u64, HandAction)>,
    pub hostility: Hostility,
    /// Interrupt the run (Ctrl-C) after this many engine calls.
    pub interrupt_at: Option<usize>,
    pub op: Op,
}

fn arb_job(hosts: Vec<usize>) -> impl Strategy<Value = Option<JobSpec>> {
    let n = hosts.len();
    (
        any::<bool>(),
        proptest::sample::subsequence(hosts, 1..=n.max(1)),
        1u32..=2,
        0usize..IMAGES.len(),
        any::<bool>(),
        1u32..=2,
        prop::bool::weighted(0.8),
        0u32..=2,
    )
        .prop_map(
            |(present, hosts, instances, image, health, parallel, auto_rollback, keep)| {
                (present && !hosts.is_empty()).then_some(JobSpec {
                    hosts,
                    instances,
                    image,
                    health,
                    parallel,
                    auto_rollback,
                    keep,
                })
            },
        )
}

fn arb_env(renames: bool, removals: bool) -> impl Strategy<Value = EnvSpec> {
    let names = proptest::collection::vec(
        (prop::bool::weighted(0.2), prop::bool::weighted(0.15)),
        ENGINES,
    )
    .prop_map(move |flags| {
        let mut hosts: Vec<Option<String>> = flags
            .iter()
            .enumerate()
            .map(|(i, (renamed, removed))| {
                if removals && *removed {
                    None
                } else if renames && *renamed {
                    Some(format!("h{i}b"))
                } else {
                    Some(format!("h{i}"))
                }
            })
            .collect();
        if hosts.iter().all(Option::is_none) {
            hosts[0] = Some("h0".to_string());
        }
        hosts
    });
    names.prop_flat_map(|hosts| {
        let present: Vec<usize> = (0..ENGINES).filter(|i| hosts[*i].is_some()).collect();
        (Just(hosts), proptest::collection::vec(arb_job(present), 3))
            .prop_map(|(hosts, jobs)| EnvSpec { hosts, jobs })
    })
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::UpAll),
        2 => (0usize..3).prop_map(Op::Up),
        2 => (0usize..3, 0usize..IMAGES.len()).prop_map(|(j, i)| Op::Update(j, i)),
        1 => (0usize..3, proptest::option::of(0usize..IMAGES.len())).prop_map(|(j, i)| Op::RollingUpdate(j, i)),
        1 => (0usize..3).prop_map(Op::Restart),
        1 => (0usize..3).prop_map(Op::Rollback),
        1 => (0usize..3).prop_map(Op::Stop),
        1 => (0usize..3).prop_map(Op::Start),
        1 => (0usize..3).prop_map(Op::Down),
    ]
}

fn arb_hand() -> impl Strategy<Value = (usize, u64, HandAction)> {
    (
        0usize..ENGINES,
        any::<u64>(),
        prop_oneof![
            Just(HandAction::Stop),
            Just(HandAction::Kill),
            Just(HandAction::Pause),
            Just(HandAction::Rename),
        ],
    )
}

pub fn arb_case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        arb_env(false, false),
        arb_env(true, true),
        proptest::collection::vec(arb_hand(), 0..3),
        prop::bool::weighted(0.3),
        proptest::option::weighted(0.3, 1usize..60),
        arb_op(),
    )
        .prop_map(
            |(seed, before, after, hand, chaos, interrupt_at, op)| Case {
                seed,
                before,
                after,
                hand,
                hostility: if chaos {
                    Hostility::Chaos
                } else {
                    Hostility::Calm
                },
                interrupt_at,
                op,
            },
        )
}

/// The environment's files.
fn write(dir: &Path, env: &EnvSpec) {
    let mut toml = format!("name = \"{ENV}\"\n");
    for (i, host) in env.hosts.iter().enumerate() {
        if let Some(host) = host {
            let _ = write!(
                toml,
                "\n[hosts.{host}]\ndocker = \"unix:///sim/e{i}.sock\"\n"
            );
        }
    }
    std::fs::write(dir.join("drover.toml"), toml).expect("write drover.toml");
    let jobs = dir.join("jobs");
    let _ = std::fs::remove_dir_all(&jobs);
    std::fs::create_dir_all(&jobs).expect("jobs dir");
    for (name, job) in env.jobs() {
        let hosts: Vec<String> = job
            .hosts
            .iter()
            .filter_map(|h| env.host(*h))
            .map(|h| format!("\"{h}\""))
            .collect();
        let mut text = format!(
            "image = \"{}\"\nhosts = [{}]\ninstances = {}\ncommand = [\"serve\"]\nstop_timeout = \"1s\"\n",
            IMAGES[job.image].0,
            hosts.join(", "),
            job.instances
        );
        if job.health {
            text.push_str("\n[health]\ncmd = [\"true\"]\ninterval = \"1s\"\ntimeout = \"1s\"\nretries = 2\nstart_period = \"1s\"\n");
        }
        let _ = write!(
            text,
            "\n[update]\nparallel = {}\nauto_rollback = {}\nkeep = {}\n",
            job.parallel, job.auto_rollback, job.keep
        );
        std::fs::write(jobs.join(format!("{name}.toml")), text).expect("write job");
    }
}

/// The fake hosts, one world.
struct Hosts {
    world: Arc<World>,
    engines: Vec<Arc<FakeEngine>>,
}

impl Hosts {
    fn new(seed: u64) -> Hosts {
        let world = World::new(seed, Faults::default());
        let engines = (0..ENGINES)
            .map(|i| {
                let mut engine = FakeEngine::new(&format!("e{i}")).in_world(&world);
                for (image, behaviour) in IMAGES {
                    engine = engine
                        .with_registry_image(image, &image_id(image))
                        .with_behaviour(image, behaviour);
                }
                Arc::new(engine)
            })
            .collect();
        Hosts { world, engines }
    }

    /// The engines of the hosts `env` names, under those names.
    fn connections(&self, env: &EnvSpec) -> Connections {
        let mut connections = Connections::default();
        for (i, engine) in self.engines.iter().enumerate() {
            if let Some(host) = env.host(i) {
                connections
                    .engines
                    .insert(host.to_string(), Arc::clone(engine) as Arc<dyn Engine>);
            }
        }
        connections
    }

    /// `(engine, name, state, id)` of every container.
    fn snapshot(&self) -> Vec<(usize, String, String, String)> {
        let mut all = Vec::new();
        for (i, engine) in self.engines.iter().enumerate() {
            let state = engine.state.lock().expect("fake state");
            for c in state.containers.values() {
                all.push((i, c.name.clone(), c.runs.state.to_string(), c.id.clone()));
            }
        }
        all.sort();
        all
    }

    /// Every engine's calls, when `DROVER_SIM_TRACE` is set (to read a
    /// failing case through).
    fn trace(&self) -> String {
        if std::env::var_os("DROVER_SIM_TRACE").is_none() {
            return String::new();
        }
        let mut out = String::from("\n(engine calls)\n");
        for (i, engine) in self.engines.iter().enumerate() {
            for call in engine.calls() {
                if !call.starts_with("inspect") && call != "list" && call != "images" {
                    let _ = writeln!(out, "e{i}: {call}");
                }
            }
        }
        for change in self.world.hand_changes() {
            let _ = writeln!(out, "by hand: {change}");
        }
        out
    }

    /// Locks left, as `engine: name`.
    fn locks(&self) -> Vec<String> {
        self.snapshot()
            .into_iter()
            .filter(|(_, name, _, _)| name.ends_with(".lock"))
            .map(|(i, name, _, _)| format!("e{i}: {name}"))
            .collect()
    }

    /// What the next process does with the locks of a process that is gone:
    /// takes them over as stale (here: removes them).
    fn clear_locks(&self) {
        for engine in &self.engines {
            let mut state = engine.state.lock().expect("fake state");
            state
                .containers
                .retain(|_, c| c.labels.get(labels::ROLE).map(String::as_str) != Some("lock"));
        }
    }

    fn hand_change(&self, (engine, pick, action): (usize, u64, HandAction)) {
        let engine = &self.engines[engine];
        let names: Vec<String> = {
            let state = engine.state.lock().expect("fake state");
            state
                .containers
                .values()
                .filter(|c| {
                    c.labels.get(labels::ENV).map(String::as_str) == Some(ENV)
                        && c.labels.contains_key(labels::TASK)
                        && !c.labels.contains_key(labels::ROLE)
                })
                .map(|c| c.name.clone())
                .collect()
        };
        if !names.is_empty() {
            let name = &names[(pick % names.len() as u64) as usize];
            engine.by_hand(name, action);
        }
    }
}

/// The operation `op` names in `env`, if its job exists there.
fn operation(op: Op, env: &EnvSpec) -> Operation {
    let job = |j: usize| format!("j{j}");
    let image = |i: usize| IMAGES[i].0.parse().expect("an image reference");
    match op {
        Op::UpAll => Operation::Up { jobs: Vec::new() },
        Op::Up(j) => Operation::Up { jobs: vec![job(j)] },
        Op::Update(j, i) => Operation::Update {
            job: job(j),
            image: image(i),
        },
        Op::RollingUpdate(j, i) => Operation::RollingUpdate {
            job: job(j),
            image: i.map(image),
            parallel: None,
        },
        Op::Restart(j) => Operation::Restart {
            job: job(j),
            parallel: None,
        },
        Op::Rollback(j) => Operation::Rollback { job: job(j) },
        Op::Stop(j) => Operation::Stop { jobs: vec![job(j)] },
        Op::Start(j) => Operation::Start { jobs: vec![job(j)] },
        Op::Down(j) => {
            let _ = env;
            Operation::Down { jobs: vec![job(j)] }
        }
    }
}

/// Prepares and executes `operation` as the CLI does with `--yes`.
async fn change(
    dir: &Path,
    hosts: &Hosts,
    env: &EnvSpec,
    operation: Operation,
    cancel: CancellationToken,
) -> Result<Result<Executed, String>, String> {
    let fleet = Fleet::load(Some(dir), None, &[]).map_err(|e| format!("load: {e}"))?;
    let connections = hosts.connections(env);
    let prepared = match fleet.prepare(&connections, operation.clone()).await {
        Ok(prepared) => prepared,
        Err(e) => return Ok(Err(format!("refused: {e}"))),
    };
    let events = |_: &drover_apply::Event| {};
    let notices = |_: &Notice| {};
    let run = Run {
        deployment: fleet.deployment(&operation.command()),
        parallel: None,
        cancel,
        events: &events,
        notices: &notices,
        notifier: drover_notify::Notifier::disabled(),
    };
    Ok(fleet
        .execute(&connections, &prepared, &run)
        .await
        .map_err(|e| format!("failed: {e}")))
}

/// Counted failures of a report (not interruptions or steps left undone).
fn failed(report: &Report) -> bool {
    report
        .failures()
        .any(|o| o.result.as_ref().err().is_some_and(StepError::counts))
}

/// Runs one case and checks every invariant; the error says which broke.
pub fn run_case(case: &Case) -> Result<(), String> {
    drover_plan::time::set_clock(clock);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run(case))
}

async fn run(case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let hosts = Hosts::new(case.seed);
    let latency = Faults {
        latency: (Duration::from_millis(1), Duration::from_millis(40)),
        ..Faults::default()
    };
    hosts.world.set_faults(latency);

    // Another environment's container, which nothing may touch.
    hosts.world.hands_off("other");
    let other = hosts.engines[0].insert(
        "other.x.h0.0",
        TaskConfig {
            image: IMAGES[0].0.to_string(),
            ..drover_apply_config()
        },
        BTreeMap::from([
            (labels::ENV.to_string(), "other".to_string()),
            (labels::JOB.to_string(), "x".to_string()),
            (labels::HOST.to_string(), "h0".to_string()),
            (labels::TASK.to_string(), "0".to_string()),
        ]),
        "running",
    );

    // What runs before: the first spec, brought up.
    write(dir.path(), &case.before);
    change(
        dir.path(),
        &hosts,
        &case.before,
        Operation::Up { jobs: Vec::new() },
        CancellationToken::new(),
    )
    .await?
    .ok();
    for hand in &case.hand {
        hosts.hand_change(*hand);
    }

    // The change under test, against the second spec.
    write(dir.path(), &case.after);
    let files_before = read_files(dir.path());
    let operation = operation(case.op, &case.after);
    let cancel = CancellationToken::new();
    if let Some(after) = case.interrupt_at {
        let at = hosts.world.calls() + after;
        let token = cancel.clone();
        hosts.world.on_call(move |calls| {
            if calls >= at {
                token.cancel();
            }
        });
    }
    if case.hostility == Hostility::Chaos {
        hosts.world.set_faults(Faults {
            fail_before: 0.05,
            fail_after: 0.05,
            hand_change: 0.03,
            ..latency
        });
    }
    let snapshot_before = hosts.snapshot();
    hosts.world.reset_min_serving();
    let serving_before = hosts.world.serving();
    let outcome = change(dir.path(), &hosts, &case.after, operation.clone(), cancel).await?;
    let min_serving = hosts.world.min_serving();
    let serving_after = hosts.world.serving();
    hosts.world.set_faults(latency);
    hosts.world.on_call(|_| {});
    let calm = case.hostility == Hostility::Calm;

    // A refused command changes nothing on any host.
    if let Err(why) = &outcome {
        if why.starts_with("refused") && calm && hosts.snapshot() != snapshot_before {
            return Err(format!("{why}, yet the hosts changed"));
        }
    }

    // Locks are given back whatever happened (a lost answer to the release
    // may leave one: the next run takes it over as stale).
    if calm && !hosts.locks().is_empty() {
        return Err(format!("locks left after {operation}: {:?}", hosts.locks()));
    }

    // Availability: never more than `parallel` serving containers of a job
    // down beyond what the spec itself drops.
    let takes_down = matches!(case.op, Op::Stop(_) | Op::Down(_));
    if calm && !takes_down {
        let desired = case.after.desired();
        for (job, before) in &serving_before {
            let Some(spec) = case.after.job(job) else {
                continue;
            };
            let floor = (*before)
                .min(desired.get(job).copied().unwrap_or(0))
                .saturating_sub(spec.parallel as usize);
            let least = min_serving.get(job).copied().unwrap_or(0);
            if least < floor {
                return Err(format!(
                    "{operation}: job {job} went down to {least} serving container(s) from {before}, below {floor} (parallel {})",
                    spec.parallel
                ));
            }
        }
    }

    // A failed rollout leaves the previous version serving.
    if let Ok(executed) = &outcome {
        let rollout = matches!(
            case.op,
            Op::UpAll | Op::Up(_) | Op::Update(..) | Op::RollingUpdate(..) | Op::Rollback(_)
        );
        if calm && rollout && failed(&executed.report) && !executed.report.interrupted {
            let desired = case.after.desired();
            for (job, before) in &serving_before {
                let Some(spec) = case.after.job(job) else {
                    continue;
                };
                let floor = (*before).min(desired.get(job).copied().unwrap_or(0));
                let now = serving_after.get(job).copied().unwrap_or(0);
                if spec.auto_rollback && now < floor {
                    return Err(format!(
                        "{operation} failed and left job {job} with {now} serving container(s), fewer than the {floor} before"
                    ));
                }
            }
        }
    }

    // Files change only when a rollout ran.
    if let Op::Update(j, _) = case.op {
        let job = format!("j{j}");
        let rolled = match &outcome {
            Ok(executed) => executed.report.outcomes.iter().any(|o| {
                o.job == job && o.result.is_ok() && matches!(o.step.as_str(), "create" | "replace")
            }),
            _ => false,
        };
        // Nothing to roll out: the hosts already run the image, and the
        // file now says so.
        let plan_empty = match &outcome {
            Ok(executed) => executed
                .plan
                .changes
                .iter()
                .all(|c| c.job != job || c.step.desired().is_none()),
            _ => false,
        };
        if !rolled && !plan_empty && read_files(dir.path()) != files_before {
            return Err(format!(
                "{operation} rolled nothing out, yet jobs/{job}.toml changed: {outcome:?}"
            ));
        }
    }

    // The next `up` repairs the rest, when the files ask for what can run.
    hosts.clear_locks();
    let all_good = case.after.jobs().all(|(_, j)| good(j.image));
    let stopped_here = matches!(case.op, Op::Stop(_));
    let updated_to_bad = matches!(case.op, Op::Update(_, i) if !good(i));
    if all_good && !updated_to_bad {
        let repair = change(
            dir.path(),
            &hosts,
            &case.after,
            Operation::Up { jobs: Vec::new() },
            CancellationToken::new(),
        )
        .await?
        .map_err(|e| format!("the repairing up after {operation}: {e}"))?;
        if !repair.report.succeeded() {
            return Err(format!(
                "the repairing up after {operation} failed: {:#?}",
                repair.report.outcomes
            ));
        }
        converged(dir.path(), &hosts, &case.after, stopped_here).await?;
    }

    // Another environment's container is as it was.
    let untouched = hosts.engines[0]
        .container("other.x.h0.0")
        .is_some_and(|c| c.id == other && c.runs.state == RunState::Running);
    if !untouched {
        return Err(format!(
            "another environment's container was touched: {:?} (was {other}); now {:?}{}",
            hosts.engines[0]
                .container("other.x.h0.0")
                .map(|c| (c.id, c.runs.state)),
            hosts.snapshot(),
            hosts.trace()
        ));
    }
    Ok(())
}

/// After the repairing `up`: nothing left to do, every task once under its
/// own name, and nothing else of the environment but kept and failed
/// generations and stop marks.
async fn converged(dir: &Path, hosts: &Hosts, env: &EnvSpec, stopped: bool) -> Result<(), String> {
    let fleet = Fleet::load(Some(dir), None, &[]).map_err(|e| e.to_string())?;
    let connections = hosts.connections(env);
    let (plan, observed) = fleet
        .plan_up(&connections, &[])
        .await
        .map_err(|e| e.to_string())?;
    if !plan.changes.is_empty() || !plan.pulls.is_empty() {
        return Err(format!(
            "not converged after the repairing up:\n{plan}{}",
            hosts.trace()
        ));
    }
    if !plan.held.is_empty() && !stopped {
        return Err(format!("changes held with no stop:\n{plan}"));
    }
    let mut own: BTreeSet<String> = BTreeSet::new();
    for (name, job) in env.jobs() {
        for host in job.hosts.iter().filter_map(|h| env.host(*h)) {
            for task in 0..job.instances {
                own.insert(format!("{ENV}.{name}.{host}.{task}"));
            }
        }
    }
    // A job stopped by `drover stop` holds its changes: what it left stays,
    // stopped, until `drover start`.
    let held: BTreeSet<(String, String)> = plan
        .stop_marks
        .iter()
        .map(|m| (m.host.clone(), m.job.clone()))
        .collect();
    for (host, state) in observed.reachable() {
        for c in &state.containers {
            if c.label(labels::ENV) != Some(ENV) {
                continue;
            }
            let stopped_here = c
                .job()
                .is_some_and(|j| held.contains(&(host.clone(), j.to_string())));
            let ok = match c.role(ENV) {
                Role::Current(_) | Role::Stray(_) if stopped_here => !c.is_running(),
                Role::Current(key) => key.host == *host && own.contains(&c.name),
                // Rollback's generations and the evidence of failures are
                // `gc`'s to remove, whatever host name they carry; so are
                // one-offs (the simulator runs none: never reached).
                Role::Kept(_)
                | Role::Failed(_)
                | Role::StopMark { .. }
                | Role::AdoptionRecord { .. }
                | Role::OneOff { .. } => true,
                Role::Lock { .. } | Role::Stray(_) | Role::Unknown => false,
            };
            if !ok {
                return Err(format!(
                    "leftover on host {host}: {} ({:?}){}",
                    c.name,
                    c.role(ENV),
                    hosts.trace()
                ));
            }
        }
    }
    Ok(())
}

fn read_files(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("jobs")) {
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            files.insert(entry.file_name().to_string_lossy().into_owned(), text);
        }
    }
    files
}

/// A plain task configuration, for containers made by hand.
fn drover_apply_config() -> TaskConfig {
    TaskConfig {
        image: String::new(),
        command: Some(vec!["serve".to_string()]),
        env: BTreeMap::new(),
        volumes: Vec::new(),
        host_files: Vec::new(),
        memory: None,
        resources: drover_plan::Resources::default(),
        network: "host".to_string(),
        init: true,
        restart: "unless-stopped".to_string(),
        stop_timeout: Duration::from_secs(1),
        log_driver: "local".to_string(),
        log_options: BTreeMap::new(),
        health: None,
        settings: Default::default(),
    }
}
