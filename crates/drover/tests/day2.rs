//! Day two: `gc` and `doctor` through the real binary, against the suite's
//! real engines h1 and h2 and its registry.
//!
//! The hosts are shared with every other test running at the same time, so
//! each test has its own environment name and its own image repository, and
//! asserts on what it made itself: another test's dangling image or orphan
//! volume may come and go on the same engine meanwhile.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use drover_testkit::hosts::Hosts;
use serde_json::Value;
use support::{cluster, Cluster};

const IMAGE1: &str = "drover-test/busybox:1";

/// `docker ARGS…` on the machine's own engine (which pushes to the registry).
#[track_caller]
fn local(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes what a test made by hand on the hosts, also when it fails.
/// Declared before the [`Cluster`], so it goes after it: the images are
/// free once the environment's containers are gone.
struct Leftovers {
    sockets: [String; 2],
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
}

impl Leftovers {
    fn new() -> Leftovers {
        let hosts = Hosts::get();
        Leftovers {
            sockets: [hosts.h1, hosts.h2],
            containers: Vec::new(),
            volumes: Vec::new(),
            images: Vec::new(),
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for socket in &self.sockets {
            let docker = |args: &[&str]| {
                let _ = Command::new("docker")
                    .arg("-H")
                    .arg(socket)
                    .args(args)
                    .output();
            };
            for name in &self.containers {
                docker(&["rm", "-f", "-v", name]);
            }
            for name in &self.volumes {
                docker(&["volume", "rm", name]);
            }
            for image in &self.images {
                docker(&["rmi", image]);
            }
        }
    }
}

/// A job that sleeps; `version` changes its configuration, so each new
/// version is a new generation.
fn sleeper(image: &str, hosts: &str, keep: u32, version: u32) -> String {
    format!(
        r#"
        image = "{image}"
        hosts = [{hosts}]
        command = ["sleep", "3600"]
        stop_timeout = "1s"
        env = {{ VERSION = "{version}" }}
        [update]
        keep = {keep}
        "#
    )
}

/// `[registry]` for drover.toml: the suite's registry, which `gc` asks
/// whether an image can be pulled again before removing it.
fn registry_toml() -> String {
    format!("[registry]\nurl = \"http://{}\"\n", Hosts::get().registry)
}

fn image_exists(c: &Cluster, host: &str, reference: &str) -> bool {
    c.docker_raw(host, &["image", "inspect", reference])
        .status
        .success()
}

fn volume_exists(c: &Cluster, host: &str, name: &str) -> bool {
    c.docker_raw(host, &["volume", "inspect", name])
        .status
        .success()
}

/// Whether the engine marked `volume` as one it made for a container
/// (Docker 23.0 and later): only then may `gc` remove it; before, `gc`
/// names it in a note and leaves it.
fn marked_anonymous(c: &Cluster, host: &str, volume: &str) -> bool {
    c.docker(
        host,
        &["volume", "inspect", "-f", "{{json .Labels}}", volume],
    )
    .contains("com.docker.volume.anonymous")
}

/// The note `gc` gives a volume it cannot prove anonymous.
fn unproven_note(volume: &str) -> String {
    format!("  note: volume {volume}")
}

fn container_exists(c: &Cluster, host: &str, name: &str) -> bool {
    c.docker_raw(host, &["container", "inspect", name])
        .status
        .success()
}

/// The names of volumes a container mounts.
fn volumes_of(c: &Cluster, host: &str, container: &str) -> String {
    c.inspect(host, container, "{{range .Mounts}}{{.Name}}{{end}}")
}

/// `(host, kind, name, status)` of `gc --json` items that `mine` accepts.
fn items(
    json: &Value,
    mine: &dyn Fn(&str, &str) -> bool,
) -> BTreeSet<(String, String, String, String)> {
    let mut set = BTreeSet::new();
    for host in json.as_array().expect("an array of hosts") {
        let name = host["host"].as_str().unwrap_or_default();
        for item in host["items"].as_array().expect("items") {
            let kind = item["kind"].as_str().unwrap_or_default();
            let what = item["name"].as_str().unwrap_or_default();
            if mine(kind, what) {
                set.insert((
                    name.to_string(),
                    kind.to_string(),
                    what.to_string(),
                    item["status"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    set
}

fn without_status(
    set: &BTreeSet<(String, String, String, String)>,
) -> BTreeSet<(String, String, String)> {
    set.iter()
        .map(|(h, k, n, _)| (h.clone(), k.clone(), n.clone()))
        .collect()
}

/// Names of this environment's containers on both hosts, as `host/name`.
fn env_containers(c: &Cluster) -> Vec<String> {
    ["h1", "h2"]
        .iter()
        .flat_map(|h| c.containers(h).into_iter().map(move |n| format!("{h}/{n}")))
        .collect()
}

/// `gc` is host-wide for images and volumes: one test's gc would take
/// another's orphan volume between its dry run and its real run. The gc
/// tests of this file run one at a time.
fn gc_serial() -> std::sync::MutexGuard<'static, ()> {
    static GC: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GC.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn gc_after_many_cycles_leaves_no_leftovers_and_touches_nothing_else() {
    let _serial = gc_serial();
    let mut leftovers = Leftovers::new();
    let c = cluster("g-gc", &registry_toml());
    let other = cluster("g-gc-other", "");
    let pid = std::process::id();
    let repo = format!("{}/drover-test/gc-{pid}", c.hosts.registry);
    let old = format!("{repo}:old");
    let new = format!("{repo}:new");
    let foreign_tag = format!("{repo}:foreign");
    leftovers.images = vec![new.clone(), old.clone(), foreign_tag.clone()];

    // `old` is an image of its own (a layer more than the fixture), so that
    // removing it frees space; both are pulled by the hosts from the registry.
    let builder = format!("g-gc-build-{pid}");
    local(&[
        "run",
        "--name",
        &builder,
        "--network",
        "none",
        IMAGE1,
        "sh",
        "-c",
        "echo old > /gc-old",
    ]);
    local(&["commit", &builder, &old]);
    local(&["rm", &builder]);
    local(&["push", &old]);
    local(&["rmi", &old]);
    local(&["tag", IMAGE1, &new]);
    local(&["push", &new]);
    local(&["rmi", &new]);

    // Many cycles: four versions of web on old, keeper twice, a down and an up again.
    let both = "\"h1\", \"h2\"";
    let c = c
        .job("web", &sleeper(&old, both, 3, 1))
        .job("keeper", &sleeper(&new, "\"h1\"", 3, 1))
        .job("gone", &sleeper(&old, "\"h1\"", 3, 1))
        .job("parked", &sleeper(&old, "\"h2\"", 3, 1));
    c.drover(&["up", "--yes"]).run();
    for version in 2..=4 {
        c.set_job("web", &sleeper(&old, both, 3, version));
        if version <= 3 {
            c.set_job("keeper", &sleeper(&new, "\"h1\"", 3, version));
        }
        c.drover(&["up", "--yes"]).run();
    }
    c.drover(&["down", "gone", "--yes"]).run();
    c.drover(&["up", "--yes"]).run();
    // An update to the new image, and one more version on it: the newest
    // kept generation runs `new`, the older ones `old`.
    c.drover(&["update", "web", "--image", &new, "--yes"]).run();
    c.set_job("web", &sleeper(&new, both, 3, 6));
    c.drover(&["up", "--yes"]).run();

    // parked is stopped by drover (a stop mark), keeper is locked, gone and
    // parked leave the spec, and keep goes down to 1.
    c.drover(&["stop", "parked", "--yes"]).run();
    c.drover(&["lock", "keeper", "--reason", "x"]).run();
    c.remove_job("gone");
    c.remove_job("parked");
    c.set_job("web", &sleeper(&new, both, 1, 6));
    c.set_job("keeper", &sleeper(&new, "\"h1\"", 1, 3));

    // A container made by hand with this environment's label and an
    // anonymous volume, removed without -v; another left in place.
    let handmade = c.docker(
        "h1",
        &[
            "create",
            "--label",
            "drover.env=g-gc",
            "-v",
            "/data",
            &new,
            "true",
        ],
    );
    let anonymous = volumes_of(&c, "h1", &handmade);
    assert_eq!(anonymous.len(), 64, "an anonymous volume: {anonymous:?}");
    let marks = marked_anonymous(&c, "h1", &anonymous);
    leftovers.volumes.push(anonymous.clone());
    c.docker("h1", &["rm", &handmade]);
    assert!(volume_exists(&c, "h1", &anonymous));
    c.docker(
        "h2",
        &[
            "create",
            "--name",
            "g-gc.handmade",
            "--label",
            "drover.env=g-gc",
            &new,
            "true",
        ],
    );

    // What gc must never touch: a foreign container (no drover label) of an
    // unused tag of the same repository, with its own anonymous volume; a
    // named volume; another environment's container of a job named like ours.
    let foreign = format!("g-gc-foreign-{pid}");
    let named = format!("g-gc-named-{pid}");
    leftovers.containers.push(foreign.clone());
    leftovers.volumes.push(named.clone());
    c.docker("h1", &["tag", IMAGE1, &foreign_tag]);
    c.docker(
        "h1",
        &[
            "create",
            "--name",
            &foreign,
            "-v",
            "/cache",
            &foreign_tag,
            "true",
        ],
    );
    let foreign_volume = volumes_of(&c, "h1", &foreign);
    c.docker("h1", &["volume", "create", &named]);
    other.docker(
        "h1",
        &[
            "create",
            "--name",
            "g-gc-other.gone.h1.0",
            "--label",
            "drover.env=g-gc-other",
            "--label",
            "drover.job=gone",
            "--label",
            "drover.host=h1",
            "--label",
            "drover.task=0",
            &new,
            "true",
        ],
    );

    // An image of the repository that lost its tag on h2 when the tag
    // moved in the registry and h2 pulled it again: dangling, but known by
    // a digest the registry still holds.
    let moved = format!("{repo}:moved");
    leftovers.images.push(moved.clone());
    let builder = format!("g-gc-moved-{pid}");
    local(&[
        "run",
        "--name",
        &builder,
        "--network",
        "none",
        IMAGE1,
        "sh",
        "-c",
        "echo moved > /gc-moved",
    ]);
    local(&["commit", &builder, &moved]);
    local(&["rm", &builder]);
    local(&["push", &moved]);
    local(&["rmi", &moved]);
    c.docker("h2", &["pull", &moved]);
    let repulled = c.docker("h2", &["image", "inspect", "-f", "{{.Id}}", &moved]);
    leftovers.images.push(repulled.clone());
    local(&["tag", IMAGE1, &moved]);
    local(&["push", &moved]);
    local(&["rmi", &moved]);
    c.docker("h2", &["pull", &moved]);
    let repulled_short: String = repulled
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect();

    // A dangling image made on the host (no tag, no digest, no container):
    // nothing proves it is drover's, so it stays.
    let builder = format!("g-gc-dangle-{pid}");
    c.docker(
        "h2",
        &[
            "run",
            "--name",
            &builder,
            "--network",
            "none",
            IMAGE1,
            "sh",
            "-c",
            "echo dangling > /gc-dangling",
        ],
    );
    let dangling = c.docker("h2", &["commit", &builder]);
    c.docker("h2", &["rm", &builder]);
    leftovers.images.push(dangling.clone());
    let dangling_short: String = dangling
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect();

    let mine = |kind: &str, name: &str| match kind {
        "container" => name.starts_with("g-gc."),
        "image" => name.starts_with(&repo) || name == dangling_short || name == repulled_short,
        "volume" => name == anonymous,
        _ => false,
    };
    let before = env_containers(&c);
    let kept = |host: &str, job: &str| {
        before
            .iter()
            .filter(|n| n.starts_with(&format!("{host}/g-gc.{job}.{host}.0.kept-")))
            .count()
    };
    assert_eq!(
        (kept("h1", "web"), kept("h2", "web"), kept("h1", "keeper")),
        (3, 3, 2),
        "{before:?}"
    );
    let web_kept_beyond = |host: &str| -> Vec<String> {
        // The two oldest kept generations of web on the host (keep = 1 keeps the newest).
        let mut list: Vec<(String, String)> = c
            .containers(host)
            .into_iter()
            .filter(|n| n.starts_with(&format!("g-gc.web.{host}.0.kept-")))
            .map(|n| {
                (
                    c.inspect(host, &n, "{{index .Config.Labels \"drover.deployed_at\"}}"),
                    n,
                )
            })
            .collect();
        list.sort();
        list.into_iter().take(2).map(|(_, n)| n).collect()
    };
    let (beyond_h1, beyond_h2) = (web_kept_beyond("h1"), web_kept_beyond("h2"));

    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut expect = |host: &str, kind: &str, name: &str| {
        expected.insert((host.to_string(), kind.to_string(), name.to_string()));
    };
    expect("h1", "container", "g-gc.gone.h1.0");
    expect("h2", "container", "g-gc.parked.h2.0");
    expect("h2", "container", "g-gc.parked.h2.stopped");
    expect("h2", "container", "g-gc.handmade");
    for name in &beyond_h1 {
        expect("h1", "container", name);
    }
    for name in &beyond_h2 {
        expect("h2", "container", name);
    }
    expect("h1", "image", &old);
    expect("h2", "image", &old);
    expect("h2", "image", &repulled_short);
    if marks {
        expect("h1", "volume", &anonymous);
    }

    // --dry-run lists it all, and changes nothing.
    let volume_line = if marks {
        format!("  - volume {anonymous} (anonymous, no container uses it)")
    } else {
        unproven_note(&anonymous)
    };
    let dry = c
        .drover(&["gc", "--dry-run"])
        .stdout_has("h1: would remove ")
        .stdout_has("h2: would remove ")
        .stdout_has(", job gone is not in the spec)\n")
        .stdout_has(", kept generation of web h1/0 beyond keep = 1)\n")
        .stdout_has(&format!("  - image {old} ("))
        .stdout_has(&volume_line)
        .stdout_has("  - container g-gc.handmade (")
        .stdout_has(", belongs to no job)\n")
        .stdout_has(&format!(
            "  - image {repulled_short} (dangling: no tag, no container uses it, the registry has it)"
        ))
        .stdout_lacks(&dangling_short)
        .stdout_has("  note: job keeper is locked (by ")
        .stdout_lacks("keeper h1/0")
        .stdout_lacks("g-gc-other")
        .stdout_lacks(&foreign)
        .stdout_lacks(&named)
        .stdout_lacks(".lock")
        .run();
    let dry_json = c.drover(&["gc", "--dry-run", "--json"]).run().json();
    let listed = items(&dry_json, &mine);
    assert_eq!(
        without_status(&listed),
        expected,
        "dry run:\n{}",
        dry.stdout
    );
    assert!(listed.iter().all(|(_, _, _, status)| status == "planned"));
    assert_eq!(env_containers(&c), before, "--dry-run changed nothing");
    assert!(image_exists(&c, "h1", &old) && image_exists(&c, "h2", &repulled));
    assert!(volume_exists(&c, "h1", &anonymous));

    // Without a terminal, gc needs --yes.
    c.drover(&["gc"])
        .status(1)
        .stderr_has("not changing anything without confirmation")
        .stdout_has("h1: would remove ")
        .run();
    assert_eq!(env_containers(&c), before);

    let done = c.drover(&["gc", "--yes", "--json"]).run().json();
    let removed = items(&done, &mine);
    assert_eq!(without_status(&removed), expected, "{done:#}");
    assert!(
        removed.iter().all(|(_, _, _, status)| status == "removed"),
        "{done:#}"
    );
    for host in done.as_array().unwrap() {
        assert!(
            host["reclaimed_bytes"].as_u64().unwrap_or(0) > 0,
            "the old image's own layer was freed: {host:#}"
        );
    }

    // No drover leftovers; the current tasks, the locked job, its lock and
    // everything that is not this environment's are all still there.
    let after = env_containers(&c);
    let expected_after: Vec<String> = before
        .iter()
        .filter(|n| {
            !expected
                .iter()
                .any(|(h, kind, name)| kind == "container" && **n == format!("{h}/{name}"))
        })
        .cloned()
        .collect();
    assert_eq!(after, expected_after);
    assert!(
        after.contains(&"h1/g-gc.keeper.h1.lock".to_string()),
        "{after:?}"
    );
    assert!(
        after.contains(&"h1/g-gc.web.h1.0".to_string())
            && after.contains(&"h2/g-gc.web.h2.0".to_string())
    );
    for host in ["h1", "h2"] {
        assert!(!image_exists(&c, host, &old), "{old} is gone from {host}");
        assert!(image_exists(&c, host, &new), "{new} runs on {host}");
    }
    assert!(!image_exists(&c, "h2", &repulled));
    assert!(
        image_exists(&c, "h2", &dangling),
        "made on the host: not drover's"
    );
    assert_eq!(volume_exists(&c, "h1", &anonymous), !marks);
    assert!(container_exists(&c, "h1", &foreign));
    assert!(image_exists(&c, "h1", &foreign_tag));
    assert!(volume_exists(&c, "h1", &foreign_volume));
    assert!(volume_exists(&c, "h1", &named));
    assert_eq!(other.containers("h1"), ["g-gc-other.gone.h1.0"]);

    // Once the job is unlocked, its generations beyond keep go too.
    c.drover(&["unlock", "keeper"]).run();
    c.drover(&["gc", "--yes"])
        .stdout_has("h1: removed ")
        .stdout_has(", kept generation of keeper h1/0 beyond keep = 1)\n")
        .run();
    assert_eq!(
        c.containers("h1")
            .iter()
            .filter(|n| n.starts_with("g-gc.keeper.h1.0.kept-"))
            .count(),
        1
    );
    let last = c.drover(&["gc", "--dry-run", "--json"]).run().json();
    assert_eq!(
        items(&last, &mine),
        BTreeSet::new(),
        "nothing of drover's is left: {last:#}"
    );
}

/// Waits up to `limit` for `check`.
fn eventually(limit: Duration, check: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check()
}

/// Seconds since the epoch, for the engine's `--until`.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `(host, check, level, subject)` of every `doctor --json` finding.
fn findings(json: &Value) -> Vec<(String, String, String, String)> {
    json.as_array()
        .expect("an array of findings")
        .iter()
        .map(|f| {
            (
                f["host"].as_str().unwrap_or_default().to_string(),
                f["check"].as_str().unwrap_or_default().to_string(),
                f["level"].as_str().unwrap_or_default().to_string(),
                f["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn doctor_finds_zombies_restart_loops_memory_kills_missing_files_and_locks() {
    let c = cluster("g-doc", "");
    let missing = format!("/nonexistent/drover-doctor-{}", std::process::id());
    let c = c
        // sh execs sleep as PID 1; the orphaned `sleep 1` becomes a zombie nobody reaps.
        .job(
            "zombie",
            &format!(
                r#"
                image = "{IMAGE1}"
                hosts = ["h1"]
                init = false
                command = ["sh", "-c", "sleep 1 & exec sleep 3600"]
                stop_timeout = "1s"
                "#
            ),
        )
        .job(
            "loop",
            &format!(
                r#"
                image = "{IMAGE1}"
                hosts = ["h2"]
                restart = "always"
                command = ["sh", "-c", "test -e /tmp/ran && exit 3; touch /tmp/ran; sleep 5; exit 3"]
                "#
            ),
        )
        .job(
            "oom",
            &format!(
                r#"
                image = "{IMAGE1}"
                hosts = ["h2"]
                restart = "no"
                memory = "8m"
                command = ["sh", "-c", "sh -c 'x=$(head -c 60000000 /dev/zero | tr \"\\\\0\" a)'; sleep 3600"]
                "#
            ),
        )
        .job(
            "files",
            &format!(
                r#"
                image = "{IMAGE1}"
                hosts = ["h1"]
                host_files = ["/etc/localtime", "{missing}"]
                command = ["sleep", "3600"]
                "#
            ),
        );
    // The loop task proves itself on its first run, then crash-loops.
    c.drover(&["up", "zombie", "loop", "oom", "--yes"]).run();
    c.drover(&["lock", "zombie", "--reason", "investigating"])
        .run();

    // The zombie is real: /proc inside says so, and the engine's top does not show it.
    let zombie_container = "g-doc.zombie.h1.0";
    assert!(
        eventually(Duration::from_secs(10), || {
            c.docker(
                "h1",
                &[
                    "exec",
                    zombie_container,
                    "sh",
                    "-c",
                    "cat /proc/[0-9]*/stat",
                ],
            )
            .lines()
            .any(|l| {
                l.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
        }),
        "a zombie in {zombie_container}"
    );
    assert_eq!(
        c.docker("h1", &["top", zombie_container, "-o", "pid,stat"])
            .lines()
            .count(),
        2,
        "top shows only PID 1"
    );
    // A process in the container was killed for memory and the container
    // runs on: the engine records it as an oom event (a container that exits
    // at once may lose that race inside the engine, so it is not used here).
    let oom_events = || {
        c.docker(
            "h2",
            &[
                "events",
                "--since",
                "0",
                "--until",
                &format!("{}", unix_now()),
                "--filter",
                "event=oom",
                "--filter",
                "container=g-doc.oom.h2.0",
            ],
        )
    };
    let restarts = || c.inspect("h2", "g-doc.loop.h2.0", "{{.RestartCount}}");
    assert!(
        eventually(Duration::from_secs(30), || !oom_events().trim().is_empty()
            && restarts().parse::<i64>().unwrap_or(0) >= 3),
        "oom events: {:?}, loop restarts: {}",
        oom_events(),
        restarts()
    );
    assert_eq!(
        c.inspect("h2", "g-doc.oom.h2.0", "{{.State.Status}}"),
        "running"
    );

    let text = c
        .drover(&["doctor"])
        .status(1)
        .stdout_has("zombie h1/0 (g-doc.zombie.h1.0) has 1 zombie process: nothing in it reaps orphaned processes (no init): set init = true in jobs/zombie.toml, then run `drover up zombie`")
        .stdout_has("loop h2/0 (g-doc.loop.h2.0) is crash-looping (")
        .stdout_has(", last exit code 3)")
        .stdout_has("read why with `drover logs loop --task h2/0 --tail 50`")
        .stdout_has("a process in oom h2/0 (g-doc.oom.h2.0) was killed for running out of memory (memory = 8.0MiB); the container kept running: raise memory in jobs/oom.toml")
        .stdout_has(&format!("host file {missing} does not exist on host h1, and job files binds it (host_files)"))
        .stdout_has("job zombie is locked on h1 by ")
        .stdout_has("(reason: investigating): changes to the job are refused until `drover unlock zombie`")
        .run();
    let json = c.drover(&["doctor", "--json"]).status(1).run().json();
    let found = findings(&json);
    let has = |host: &str, check: &str, level: &str, subject: &str| {
        found.iter().any(|f| {
            f == &(
                host.to_string(),
                check.to_string(),
                level.to_string(),
                subject.to_string(),
            )
        })
    };
    assert!(
        has("h1", "zombies", "warning", "zombie h1/0"),
        "{}",
        text.stdout
    );
    assert!(has("h1", "init", "note", "zombie h1/0"), "{}", text.stdout);
    assert!(
        has("h2", "restarts", "warning", "loop h2/0"),
        "{}",
        text.stdout
    );
    assert!(
        has("h2", "memory", "warning", "oom h2/0"),
        "{}",
        text.stdout
    );
    assert!(
        has("h1", "host-files", "error", &missing),
        "{}",
        text.stdout
    );
    assert!(has("h1", "locks", "warning", "zombie"), "{}", text.stdout);
    // The probe that found the missing file is gone again.
    assert!(
        c.containers("h1").iter().all(|n| !n.contains("doctor")),
        "{:?}",
        c.containers("h1")
    );
}

/// On h2, whose daemon rotates its default log (h1 keeps Docker's
/// unbounded default, which doctor warns about).
#[test]
fn doctor_on_a_clean_environment_lists_every_check_and_exits_0() {
    let c = cluster("g-doc-clean", "").job(
        "web",
        &format!(
            r#"
            image = "{IMAGE1}"
            hosts = ["h2"]
            command = ["sleep", "3600"]
            stop_timeout = "1s"
            "#
        ),
    );
    c.write(
        "drover.toml",
        &format!(
            "name = \"g-doc-clean\"\n[hosts.h2]\ndocker = \"{}\"\n",
            c.hosts.h2
        ),
    );
    c.drover(&["up", "--yes"]).run();
    let text = c
        .drover(&["doctor"])
        .stdout_has("HOST  LEVEL")
        .stdout_has("\nall is well\n")
        .run();
    let json = c.drover(&["doctor", "--json"]).run().json();
    let found = findings(&json);
    let checks = [
        "reachable",
        "version",
        "log-driver",
        "disk",
        "data-root",
        "zombies",
        "init",
        "restarts",
        "memory",
        "host-files",
        "locks",
    ];
    let listed: Vec<&str> = found
        .iter()
        .filter(|f| f.0 == "h2")
        .map(|f| f.1.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut all = checks.to_vec();
    all.sort_unstable();
    assert_eq!(listed, all, "every check on h2:\n{}", text.stdout);
    assert!(
        found.iter().all(|f| f.2 == "ok" || f.2 == "note"),
        "{}",
        text.stdout
    );
    for line in [
        "no zombie processes in the one running drover container",
        "the one drover container runs with an init",
        "every host file the jobs bind here exists: /etc/localtime",
        "no job is locked here",
    ] {
        assert_eq!(
            text.stdout.matches(line).count(),
            1,
            "{line:?}:\n{}",
            text.stdout
        );
    }
}

/// Every day-two command on a job with a task on a dead host names that host
/// with its address, does the rest on the live host, and exits 1.
#[test]
fn day_two_commands_name_a_dead_host_do_the_rest_and_exit_1() {
    let dead = "unix:///tmp/drover-no-such-engine.sock";
    let c = cluster("g-dead", &format!("[hosts.dead]\ndocker = \"{dead}\"\n")).job(
        "app",
        &format!(
            r#"
            image = "{IMAGE1}"
            hosts = ["h1", "dead"]
            command = ["sh", "-c", "echo started; sleep 3600"]
            stop_timeout = "1s"
            "#
        ),
    );
    let named = format!("host dead ({dead}) is unreachable");
    // Where the plan is printed the host is named in it; elsewhere on stderr.
    let run = |args: &[&str]| {
        let out = c.drover(args).status(1).any_stderr().run();
        assert!(
            out.stdout.contains(&named) || out.stderr.contains(&named),
            "drover {args:?} names the dead host:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        out
    };
    run(&["up", "--yes"]);
    assert_eq!(
        c.inspect("h1", "g-dead.app.h1.0", "{{.State.Running}}"),
        "true"
    );

    let out = run(&["logs", "app", "--tail", "5"]);
    assert!(out.stdout.contains("h1/0   | started"), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("host dead is not connected: the logs of app dead/0 are missing"),
        "{}",
        out.stderr
    );
    let out = run(&["exec", "app", "--all", "--", "echo", "hi"]);
    assert_eq!(out.stdout, "h1/0 | hi\n");
    run(&["gc", "--dry-run"]);
    run(&["history", "app"]);
    let out = run(&["doctor"]);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("h1 ") && l.contains(" ok ") && l.contains(" reachable ")),
        "{}",
        out.stdout
    );

    let out = run(&["stop", "app", "--yes"]);
    assert!(out.stdout.contains("Plan: 1 to stop;"), "{}", out.stdout);
    assert_eq!(
        c.inspect("h1", "g-dead.app.h1.0", "{{.State.Running}}"),
        "false"
    );
    let out = run(&["start", "app", "--yes"]);
    assert!(out.stdout.contains("Plan: 1 to start;"), "{}", out.stdout);
    let out = run(&["restart", "app", "--yes"]);
    assert!(out.stdout.contains("Plan: 1 to restart;"), "{}", out.stdout);
    assert_eq!(
        c.inspect("h1", "g-dead.app.h1.0", "{{.State.Running}}"),
        "true"
    );
    run(&["down", "app", "--yes"]);
    assert!(c.containers("h1").is_empty(), "{:?}", c.containers("h1"));
}

// ---- gc provenance: nothing is deleted unless it is provably this environment's leftover ----

/// Pushes `reference` to the suite's registry: the fixture image plus a
/// layer of `bytes` random bytes of its own, with `change` (a Dockerfile
/// instruction such as `VOLUME /data`) when given. The local engine keeps
/// no copy.
fn push_image(reference: &str, bytes: usize, change: Option<&str>) {
    let builder = format!(
        "g-gc-build-{}-{}",
        std::process::id(),
        reference.rsplit(['/', ':']).next().unwrap_or_default()
    );
    local(&[
        "run",
        "--name",
        &builder,
        "--network",
        "none",
        IMAGE1,
        "sh",
        "-c",
        &format!("head -c {bytes} /dev/urandom > /layer"),
    ]);
    let mut commit = vec!["commit"];
    if let Some(change) = change {
        commit.extend(["--change", change]);
    }
    commit.extend([builder.as_str(), reference]);
    local(&commit);
    local(&["rm", &builder]);
    local(&["push", reference]);
    local(&["rmi", reference]);
}

/// `gc --dry-run --json`, then `gc --yes --json`: what each listed of the
/// items `mine` accepts, as `(host, kind, name)`, asserting that the real
/// run removed every one of them and listed exactly what the dry run did.
fn gc_dry_then_real(
    c: &Cluster,
    mine: &dyn Fn(&str, &str) -> bool,
) -> (BTreeSet<(String, String, String)>, Value, Value) {
    let dry = c.drover(&["gc", "--dry-run", "--json"]).run().json();
    let planned = items(&dry, mine);
    assert!(
        planned.iter().all(|(_, _, _, status)| status == "planned"),
        "{dry:#}"
    );
    let done = c.drover(&["gc", "--yes", "--json"]).run().json();
    let removed = items(&done, mine);
    assert!(
        removed.iter().all(|(_, _, _, status)| status == "removed"),
        "{done:#}"
    );
    assert_eq!(
        without_status(&planned),
        without_status(&removed),
        "the dry run lists exactly what the real run removes:\n{dry:#}\n{done:#}"
    );
    (without_status(&planned), dry, done)
}

fn one(host: &str, kind: &str, name: &str) -> (String, String, String) {
    (host.to_string(), kind.to_string(), name.to_string())
}

/// The `bytes` of the item named `name` on `host` in a `gc --json` report.
fn item_bytes(json: &Value, host: &str, name: &str) -> Option<u64> {
    json.as_array()?
        .iter()
        .filter(|h| h["host"] == host)
        .flat_map(|h| h["items"].as_array().into_iter().flatten())
        .find(|i| i["name"] == name)?["bytes"]
        .as_u64()
}

/// Regression: `gc` removed a volume made with `docker volume create
/// --label purpose=db-backup <64 hex>`, data and all, calling it
/// "anonymous, no container uses it" by its name alone.
#[test]
fn gc_removes_only_volumes_the_engine_marks_anonymous() {
    let _serial = gc_serial();
    let mut leftovers = Leftovers::new();
    let c = cluster("g-gc-vol", &registry_toml()).job("web", &sleeper(IMAGE1, "\"h1\"", 3, 1));
    c.drover(&["up", "--yes"]).run();
    let backup = format!("e1e5{:060x}", u128::from(std::process::id()) * 0x9e37_79b9);
    leftovers.volumes.push(backup.clone());
    c.docker(
        "h1",
        &["volume", "create", "--label", "purpose=db-backup", &backup],
    );
    let mount = format!("{backup}:/backup");
    c.docker(
        "h1",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &mount,
            IMAGE1,
            "sh",
            "-c",
            "echo precious > /backup/dump",
        ],
    );
    // No label at all, a 64-hex name, data in it: on an engine before 23.0
    // (which marks no volume anonymous) it looks like one; it holds data.
    let unlabelled = format!("f00d{:060x}", u128::from(std::process::id()) * 0x85eb_ca6b);
    leftovers.volumes.push(unlabelled.clone());
    c.docker("h1", &["volume", "create", &unlabelled]);
    let unlabelled_mount = format!("{unlabelled}:/v");
    c.docker(
        "h1",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &unlabelled_mount,
            IMAGE1,
            "sh",
            "-c",
            "echo precious > /v/db-backup",
        ],
    );
    // An anonymous volume its container (of no environment) left behind.
    let handmade = c.docker("h1", &["create", "-v", "/data", IMAGE1, "true"]);
    let anonymous = volumes_of(&c, "h1", &handmade);
    let marks = marked_anonymous(&c, "h1", &anonymous);
    leftovers.volumes.push(anonymous.clone());
    c.docker("h1", &["rm", &handmade]);

    let mine = |kind: &str, name: &str| {
        kind == "volume" && (name == backup || name == anonymous || name == unlabelled)
    };
    let (removed, _, _) = gc_dry_then_real(&c, &mine);
    if marks {
        assert_eq!(removed, BTreeSet::from([one("h1", "volume", &anonymous)]));
    } else {
        // An engine before 23.0 marks none: gc names them and leaves them.
        assert_eq!(removed, BTreeSet::new());
        c.drover(&["gc", "--dry-run"])
            .stdout_has(&unproven_note(&anonymous))
            .stdout_has(&unproven_note(&unlabelled))
            .run();
    }
    assert_eq!(volume_exists(&c, "h1", &anonymous), !marks);
    assert!(
        volume_exists(&c, "h1", &unlabelled),
        "a volume with data stays"
    );
    assert_eq!(
        c.docker(
            "h1",
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &mount,
                IMAGE1,
                "cat",
                "/backup/dump"
            ],
        ),
        "precious"
    );
}

/// Regression: `gc --dry-run` listed another environment's locally built
/// tag (`drover-demo/busybox:2`, in no registry) because it shares a
/// repository with one of this environment's jobs.
#[test]
fn gc_removes_a_tag_only_when_the_registry_holds_it_as_that_image() {
    let _serial = gc_serial();
    let mut leftovers = Leftovers::new();
    let c = cluster("g-gc-tags", &registry_toml());
    let pid = std::process::id();
    let repo = format!("{}/drover-test/gc-tags-{pid}", c.hosts.registry);
    let (current, old, local_only) = (
        format!("{repo}:1"),
        format!("{repo}:old"),
        format!("{repo}:2"),
    );
    // The operator's shape: a repository on no registry, built on the host.
    let demo = format!("drover-gc-demo-{pid}/busybox");
    let (demo_current, demo_other) = (format!("{demo}:1"), format!("{demo}:2"));
    leftovers.images = vec![
        current.clone(),
        old.clone(),
        local_only.clone(),
        demo_current.clone(),
        demo_other.clone(),
    ];
    push_image(&current, 1000, None);
    push_image(&old, 1000, None);
    c.docker("h1", &["pull", &old]);
    c.docker("h1", &["tag", IMAGE1, &demo_current]);
    // Another environment's image, built on the host and tagged into both
    // repositories, used by no container: in no registry.
    let builder = format!("g-gc-tags-build-{pid}");
    c.docker(
        "h1",
        &[
            "run",
            "--name",
            &builder,
            "--network",
            "none",
            IMAGE1,
            "sh",
            "-c",
            "echo theirs > /theirs",
        ],
    );
    c.docker("h1", &["commit", &builder, &demo_other]);
    c.docker("h1", &["rm", &builder]);
    c.docker("h1", &["tag", &demo_other, &local_only]);
    let c = c
        .job("web", &sleeper(&current, "\"h1\"", 3, 1))
        .job("demo", &sleeper(&demo_current, "\"h1\"", 3, 1));
    c.drover(&["up", "--yes"]).run();

    c.drover(&["gc", "--dry-run"])
        .stdout_has(&format!("  - image {old} ("))
        .stdout_lacks(&demo_other)
        .stdout_lacks(&local_only)
        .stdout_has("  note: 1 unused image reference(s) of this environment's repositories left: in registry docker.io, and drover asks only its [registry] (")
        .run();
    let mine = |kind: &str, name: &str| {
        kind == "image" && (name.starts_with(&repo) || name.starts_with(&demo))
    };
    let (removed, _, _) = gc_dry_then_real(&c, &mine);
    assert_eq!(removed, BTreeSet::from([one("h1", "image", &old)]));
    assert!(!image_exists(&c, "h1", &old));
    for kept in [&current, &local_only, &demo_current, &demo_other] {
        assert!(image_exists(&c, "h1", kept), "{kept} stays");
    }

    // Without [registry] nothing says a tag can be pulled again: none goes.
    c.docker("h1", &["pull", &old]);
    c.write(
        "drover.toml",
        &format!(
            "name = \"g-gc-tags\"\n\n[hosts.h1]\ndocker = \"{}\"\n[hosts.h2]\ndocker = \"{}\"\n",
            c.hosts.h1, c.hosts.h2
        ),
    );
    c.drover(&["gc", "--dry-run"])
        .stdout_lacks(&old)
        .stdout_has(
            "left: drover.toml has no [registry] to ask whether an image can be pulled again",
        )
        .run();
}

/// Regression: `gc` said "reclaimed 9.5MiB" for images whose layers other
/// images share; the disk shrank by about 140 KB.
#[test]
fn gc_reports_the_space_an_image_frees_not_its_shared_layers() {
    let _serial = gc_serial();
    let mut leftovers = Leftovers::new();
    let c = cluster("g-gc-space", &registry_toml());
    let repo = format!(
        "{}/drover-test/gc-space-{}",
        c.hosts.registry,
        std::process::id()
    );
    let (current, big) = (format!("{repo}:1"), format!("{repo}:big"));
    leftovers.images = vec![current.clone(), big.clone()];
    push_image(&current, 1000, None);
    push_image(&big, 300_000, None);
    c.docker("h1", &["pull", &big]);
    let full: u64 = c
        .docker("h1", &["image", "inspect", "-f", "{{.Size}}", &big])
        .parse()
        .expect("a size");
    assert!(
        full > 1_000_000,
        "the fixture's layers count in its size: {full}"
    );
    let c = c.job("web", &sleeper(&current, "\"h1\"", 3, 1));
    c.drover(&["up", "--yes"]).run();

    let mine = |kind: &str, name: &str| kind == "image" && name.starts_with(&repo);
    let (removed, dry, done) = gc_dry_then_real(&c, &mine);
    assert_eq!(removed, BTreeSet::from([one("h1", "image", &big)]));
    for report in [&dry, &done] {
        let bytes = item_bytes(report, "h1", &big).unwrap_or(0);
        assert!(
            (300_000..400_000).contains(&bytes),
            "only its own layer of 300000 bytes, not {full}: {bytes}\n{report:#}"
        );
    }
    assert!(!image_exists(&c, "h1", &big));
}

/// A task's anonymous volumes go with its container, as `docker rm -v`
/// does, on every path that removes one: a rollout's pruning, `down`, and
/// `gc` of a job gone from the spec. None is left for gc to guess about.
#[test]
fn a_tasks_anonymous_volumes_go_with_its_container() {
    let _serial = gc_serial();
    let mut leftovers = Leftovers::new();
    let c = cluster("g-gc-anon", &registry_toml());
    let image = format!(
        "{}/drover-test/gc-anon-{}:1",
        c.hosts.registry,
        std::process::id()
    );
    leftovers.images.push(image.clone());
    push_image(&image, 10, Some("VOLUME /data"));
    let c = c
        .job("web", &sleeper(&image, "\"h1\"", 0, 1))
        .job("gone", &sleeper(&image, "\"h2\"", 0, 1));
    c.drover(&["up", "--yes"]).run();
    let first = volumes_of(&c, "h1", "g-gc-anon.web.h1.0");
    let gone = volumes_of(&c, "h2", "g-gc-anon.gone.h2.0");
    assert_eq!((first.len(), gone.len()), (64, 64), "{first:?} {gone:?}");
    leftovers.volumes.extend([first.clone(), gone.clone()]);

    // keep = 0: the replaced container is pruned right after the rollout.
    c.set_job("web", &sleeper(&image, "\"h1\"", 0, 2));
    c.drover(&["up", "--yes"]).run();
    let second = volumes_of(&c, "h1", "g-gc-anon.web.h1.0");
    leftovers.volumes.push(second.clone());
    assert_ne!(second, first);
    assert!(
        !volume_exists(&c, "h1", &first),
        "pruned with its container"
    );

    c.drover(&["down", "web", "--yes"]).run();
    assert!(
        !volume_exists(&c, "h1", &second),
        "removed with its container"
    );

    c.remove_job("gone");
    let mine = |kind: &str, name: &str| {
        (kind == "container" && name.starts_with("g-gc-anon."))
            || (kind == "volume" && name == gone)
    };
    let (removed, _, _) = gc_dry_then_real(&c, &mine);
    assert_eq!(
        removed,
        BTreeSet::from([
            one("h2", "container", "g-gc-anon.gone.h2.0"),
            one("h2", "volume", &gone),
        ])
    );
    assert!(!volume_exists(&c, "h2", &gone));
}

/// Regression: a rollout's pruning removed a kept generation the engine
/// was restarting, which `gc` left alone (and let a running one take no
/// place among the newest `keep`). Both follow one rule now.
#[test]
fn a_kept_generation_the_engine_still_runs_is_left_by_up_and_gc_alike() {
    let _serial = gc_serial();
    let c = cluster("g-gc-live", "");
    let job = |version: u32| {
        format!(
            r#"
            image = "{IMAGE1}"
            hosts = ["h1"]
            command = ["sh", "-c", "if [ -e /crash ]; then exit 1; fi; exec sleep 3600"]
            stop_timeout = "1s"
            env = {{ VERSION = "{version}" }}
            [update]
            keep = 1
            "#
        )
    };
    let c = c.job("web", &job(1));
    c.drover(&["up", "--yes"]).run();
    c.set_job("web", &job(2));
    c.drover(&["up", "--yes"]).run();
    let kept = |c: &Cluster| -> Vec<String> {
        c.containers("h1")
            .into_iter()
            .filter(|n| n.starts_with("g-gc-live.web.h1.0.kept-"))
            .collect()
    };
    let first = kept(&c);
    assert_eq!(first.len(), 1, "{first:?}");
    let first = first[0].clone();

    // Started by hand, and made to crash: the engine restarts it, again and again.
    c.docker("h1", &["start", &first]);
    c.docker("h1", &["exec", &first, "sh", "-c", "touch /crash; kill 1"]);
    let restarts = || c.inspect("h1", &first, "{{.RestartCount}}");
    assert!(
        eventually(Duration::from_secs(30), || restarts()
            .parse::<u32>()
            .unwrap_or(0)
            >= 3),
        "restarting: {} restarts",
        restarts()
    );

    // v3 sets v2 aside: v2 is the newest kept, v1 beyond keep = 1 but live.
    c.set_job("web", &job(3));
    c.drover(&["up", "--yes"]).run();
    assert!(container_exists(&c, "h1", &first), "the rollout left it");
    assert_eq!(kept(&c).len(), 2, "{:?}", kept(&c));
    let mine = |kind: &str, name: &str| kind == "container" && name.starts_with("g-gc-live.");
    let dry = c.drover(&["gc", "--dry-run", "--json"]).run().json();
    assert_eq!(
        items(&dry, &mine),
        BTreeSet::new(),
        "gc leaves it too: {dry:#}"
    );

    // Stopped, it is an ordinary generation beyond keep.
    c.docker("h1", &["stop", "-t", "1", &first]);
    let (removed, _, _) = gc_dry_then_real(&c, &mine);
    assert_eq!(removed, BTreeSet::from([one("h1", "container", &first)]));
    assert_eq!(kept(&c).len(), 1);
}
