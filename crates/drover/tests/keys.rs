//! The container settings hand-run fleets use, against the suite's real
//! engines: what `validate` accepts, `up` makes as written, the engine
//! reports back, and `diff` then calls unchanged — for the odd-but-valid
//! values of every key one by one, and for generated mixes of them.
//!
//! The suite's engines run without CAP_SYS_RESOURCE and with a hard limit
//! of 20000 open files, so a privileged task, `cap_add = ["ALL"]` or
//! `nofile = 65536` cannot start there: those are created through the
//! engine API without starting, and must read back as rendered.

mod support;

use std::collections::BTreeSet;

use drover_engine::Containers;
use drover_plan::{plan, render_job, Scope, Secrets};
use support::{cluster, Cluster};

const IMAGE1: &str = "drover-test/busybox:1";

/// One job's settings, and what the engine must report once `up` made it.
struct Case {
    job: &'static str,
    keys: &'static str,
    /// `docker inspect -f FORMAT` and its output.
    inspect: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        job: "cpus-half",
        keys: r#"cpus = "0.5""#,
        inspect: &[("{{.HostConfig.NanoCpus}}", "500000000")],
    },
    Case {
        job: "cpus-two",
        keys: r#"cpus = "2""#,
        inspect: &[("{{.HostConfig.NanoCpus}}", "2000000000")],
    },
    Case {
        job: "cpus-quarter",
        keys: r#"cpus = "1.25""#,
        inspect: &[("{{.HostConfig.NanoCpus}}", "1250000000")],
    },
    Case {
        job: "cpus-number",
        keys: "cpus = 0.01",
        inspect: &[("{{.HostConfig.NanoCpus}}", "10000000")],
    },
    Case {
        job: "ulimit-one",
        keys: "ulimits = { nofile = 16384 }",
        inspect: &[(
            "{{json .HostConfig.Ulimits}}",
            r#"[{"Name":"nofile","Hard":16384,"Soft":16384}]"#,
        )],
    },
    Case {
        job: "ulimit-pair",
        keys: r#"ulimits = { nofile = "1024:2048" }"#,
        inspect: &[(
            "{{json .HostConfig.Ulimits}}",
            r#"[{"Name":"nofile","Hard":2048,"Soft":1024}]"#,
        )],
    },
    Case {
        job: "ulimit-unlimited",
        keys: r#"ulimits = { core = -1, fsize = "-1", stack = "8388608:-1", nproc = "0:512" }"#,
        inspect: &[(
            "{{json .HostConfig.Ulimits}}",
            r#"[{"Name":"core","Hard":-1,"Soft":-1},{"Name":"fsize","Hard":-1,"Soft":-1},{"Name":"nproc","Hard":512,"Soft":0},{"Name":"stack","Hard":-1,"Soft":8388608}]"#,
        )],
    },
    Case {
        job: "caps",
        keys: r#"cap_add = ["net_admin", "CAP_SYS_TIME", "Sys_Ptrace"]
cap_drop = ["mknod", "cap_net_raw"]"#,
        inspect: &[
            (
                "{{json .HostConfig.CapAdd}}",
                r#"["CAP_NET_ADMIN","CAP_SYS_PTRACE","CAP_SYS_TIME"]"#,
            ),
            (
                "{{json .HostConfig.CapDrop}}",
                r#"["CAP_MKNOD","CAP_NET_RAW"]"#,
            ),
        ],
    },
    Case {
        job: "caps-drop-all",
        keys: r#"cap_drop = ["all"]
cap_add = ["chown"]"#,
        inspect: &[("{{json .HostConfig.CapDrop}}", r#"["ALL"]"#)],
    },
    Case {
        job: "labels",
        keys: r#"labels = { "com.example.team" = "core", "a.b.c" = "", version = 2 }"#,
        inspect: &[
            (r#"{{index .Config.Labels "com.example.team"}}"#, "core"),
            (r#"{{printf "%q" (index .Config.Labels "a.b.c")}}"#, r#""""#),
            (r#"{{index .Config.Labels "version"}}"#, "2"),
        ],
    },
    Case {
        job: "extra-hosts",
        keys: r#"extra_hosts = ["db:10.0.0.5", "v6:2001:DB8::1", "v6b:[::1]", "Mixed.Case_host-1:10.0.0.6"]"#,
        inspect: &[(
            "{{json .HostConfig.ExtraHosts}}",
            r#"["db:10.0.0.5","v6:2001:db8::1","v6b:::1","Mixed.Case_host-1:10.0.0.6"]"#,
        )],
    },
    Case {
        job: "extra-hosts-none",
        keys: r#"network = "none"
extra_hosts = ["db:10.0.0.5"]"#,
        inspect: &[("{{json .HostConfig.ExtraHosts}}", r#"["db:10.0.0.5"]"#)],
    },
    Case {
        job: "tmpfs",
        keys: r#"tmpfs = ["/run:size=64m,noexec,mode=1777", "/scratch"]"#,
        inspect: &[(
            "{{json .HostConfig.Tmpfs}}",
            r#"{"/run":"mode=1777,noexec,size=64m","/scratch":""}"#,
        )],
    },
    Case {
        job: "tmpfs-options",
        keys: r#"tmpfs = ["/a:rw,exec,nosuid,nodev,size=10%", "/b:uid=1000,gid=1000,mode=0700,nr_inodes=1k", "/c:ro,noatime,nr_blocks=10"]"#,
        inspect: &[(
            "{{json .HostConfig.Tmpfs}}",
            r#"{"/a":"exec,nodev,nosuid,rw,size=10%","/b":"gid=1000,mode=0700,nr_inodes=1k,uid=1000","/c":"noatime,nr_blocks=10,ro"}"#,
        )],
    },
    Case {
        job: "shm-bytes",
        keys: r#"shm_size = "1048576""#,
        inspect: &[("{{.HostConfig.ShmSize}}", "1048576")],
    },
    Case {
        job: "shm-k",
        keys: r#"shm_size = "512k""#,
        inspect: &[("{{.HostConfig.ShmSize}}", "524288")],
    },
    Case {
        job: "shm-fraction",
        keys: r#"shm_size = "1.5m""#,
        inspect: &[("{{.HostConfig.ShmSize}}", "1572864")],
    },
    Case {
        job: "shm-mb",
        keys: r#"shm_size = "64mb""#,
        inspect: &[("{{.HostConfig.ShmSize}}", "67108864")],
    },
    Case {
        job: "shm-g",
        keys: r#"shm_size = "2G""#,
        inspect: &[("{{.HostConfig.ShmSize}}", "2147483648")],
    },
    Case {
        job: "shm-t",
        keys: r#"shm_size = "1t""#,
        inspect: &[("{{.HostConfig.ShmSize}}", "1099511627776")],
    },
    Case {
        job: "device",
        keys: r#"devices = ["/dev/fuse"]"#,
        inspect: &[(
            "{{json .HostConfig.Devices}}",
            r#"[{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse","CgroupPermissions":"rwm"}]"#,
        )],
    },
    Case {
        job: "device-moved",
        keys: r#"devices = ["/dev/fuse:/dev/fuse2:mrw", "/dev/null:/dev/mynull:r", "/dev/zero:rw"]"#,
        inspect: &[(
            "{{json .HostConfig.Devices}}",
            r#"[{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse2","CgroupPermissions":"rwm"},{"PathOnHost":"/dev/null","PathInContainer":"/dev/mynull","CgroupPermissions":"r"},{"PathOnHost":"/dev/zero","PathInContainer":"/dev/zero","CgroupPermissions":"rw"}]"#,
        )],
    },
    Case {
        job: "user-ids",
        keys: r#"user = "1000:1000""#,
        inspect: &[("{{.Config.User}}", "1000:1000")],
    },
    Case {
        job: "user-name",
        keys: r#"user = "nobody:nogroup""#,
        inspect: &[("{{.Config.User}}", "nobody:nogroup")],
    },
    Case {
        job: "user-root",
        keys: r#"user = "root""#,
        inspect: &[("{{.Config.User}}", "root")],
    },
    Case {
        job: "workdir-missing",
        keys: r#"workdir = "/nonexistent/deep/dir""#,
        inspect: &[("{{.Config.WorkingDir}}", "/nonexistent/deep/dir")],
    },
    Case {
        job: "workdir-root",
        keys: r#"workdir = "/""#,
        inspect: &[("{{.Config.WorkingDir}}", "/")],
    },
    Case {
        job: "entrypoint-and-command",
        keys: r#"entrypoint = ["sleep"]
command = ["3600"]"#,
        inspect: &[
            ("{{json .Config.Entrypoint}}", r#"["sleep"]"#),
            ("{{json .Config.Cmd}}", r#"["3600"]"#),
        ],
    },
    Case {
        job: "entrypoint-alone",
        keys: r#"entrypoint = ["sh", "-c", "exec sleep 3600"]"#,
        inspect: &[
            (
                "{{json .Config.Entrypoint}}",
                r#"["sh","-c","exec sleep 3600"]"#,
            ),
            ("{{json .Config.Cmd}}", "null"),
        ],
    },
    Case {
        job: "entrypoint-none",
        keys: r#"entrypoint = []
command = ["sleep", "3600"]"#,
        inspect: &[("{{json .Config.Cmd}}", r#"["sleep","3600"]"#)],
    },
    Case {
        job: "not-privileged",
        keys: "privileged = false",
        inspect: &[("{{.HostConfig.Privileged}}", "false")],
    },
];

/// A job file: the image, one host, a quick stop, `keys`, and a command
/// that keeps running unless `keys` bring their own.
fn job_file(host: &str, keys: &str) -> String {
    let command = if keys.contains("command") || keys.contains("entrypoint") {
        ""
    } else {
        "command = [\"sleep\", \"3600\"]\n"
    };
    format!("image = \"{IMAGE1}\"\nhosts = [\"{host}\"]\nstop_timeout = \"1s\"\n{command}{keys}\n")
}

/// Alternately on h1 and h2.
fn host_of(index: usize) -> &'static str {
    if index.is_multiple_of(2) {
        "h1"
    } else {
        "h2"
    }
}

/// `drover ARGS…` in `c`: exit code, stdout and stderr, whatever they are.
fn drover(c: &Cluster, args: &[&str]) -> (i32, String, String) {
    let out = c.drover(args).command().output().expect("run drover");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// validate → up → diff: accepted, made, and then no changes.
fn converges(c: &Cluster, jobs: usize, context: &str) {
    let valid = format!(
        "{}: valid (2 host(s), {jobs} job(s), {jobs} task(s))\n",
        c.env
    );
    assert_eq!(
        drover(c, &["validate"]),
        (0, valid, String::new()),
        "{context}"
    );
    let (status, stdout, stderr) = drover(c, &["up", "--yes"]);
    assert!(
        status == 0 && stdout.contains(&format!("Done: {jobs} step(s) applied.")),
        "{context}\n--- up:\n{stdout}{stderr}"
    );
    let unchanged = format!("No changes: {jobs} task(s) as specified.\n");
    assert_eq!(
        drover(c, &["diff"]),
        (0, unchanged, String::new()),
        "{context}"
    );
}

#[test]
fn every_odd_but_valid_value_is_made_as_written_and_converges() {
    let mut c = cluster("k-values", "");
    for (i, case) in CASES.iter().enumerate() {
        c = c.job(case.job, &job_file(host_of(i), case.keys));
    }
    converges(&c, CASES.len(), "the table of cases");
    for (i, case) in CASES.iter().enumerate() {
        let host = host_of(i);
        let name = format!("k-values.{}.{host}.0", case.job);
        for (format, expected) in case.inspect {
            assert_eq!(
                c.inspect(host, &name, format),
                *expected,
                "{} ({format})",
                case.job
            );
        }
        assert_eq!(
            c.inspect(host, &name, "{{.State.Status}}"),
            "running",
            "{}",
            case.job
        );
    }
    // What the engine made is what runs.
    let exec = |job: &str, cmd: &str| {
        let i = CASES.iter().position(|c| c.job == job).expect("a case");
        let name = format!("k-values.{job}.{}.0", host_of(i));
        c.docker(host_of(i), &["exec", &name, "sh", "-c", cmd])
    };
    assert_eq!(
        exec("caps", "grep CapEff /proc/self/status"),
        "CapEff:\t00000000a20c15fb",
        "docker's default set without MKNOD and NET_RAW, with NET_ADMIN, SYS_PTRACE and SYS_TIME"
    );
    assert_eq!(
        exec("tmpfs", "grep ' /run ' /proc/mounts"),
        "tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k 0 0"
    );
    assert_eq!(exec("workdir-missing", "pwd"), "/nonexistent/deep/dir");
    assert_eq!(exec("user-name", "id -un"), "nobody");
    assert_eq!(
        exec("extra-hosts", "grep -E 'db|v6' /etc/hosts"),
        "10.0.0.5\tdb\n2001:db8::1\tv6\n::1\tv6b"
    );
    assert_eq!(
        exec("device-moved", "ls /dev/fuse2 /dev/mynull"),
        "/dev/fuse2\n/dev/mynull"
    );
    assert_eq!(
        exec("shm-k", "grep /dev/shm /proc/mounts"),
        "shm /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=512k 0 0"
    );
    assert_eq!(
        exec("ulimit-pair", "grep 'open files' /proc/1/limits"),
        "Max open files            1024                 2048                 files"
    );
}

/// A small seeded generator: the same seed gives the same jobs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// For each key, values `validate` accepts; a generated job takes some keys,
/// one value each. `cap_add` and `cap_drop` never share a capability.
const POOLS: &[&[&str]] = &[
    &[
        r#"cpus = "0.5""#,
        r#"cpus = "1.25""#,
        "cpus = 2",
        r#"cpus = "0.01""#,
    ],
    &[
        "ulimits = { nofile = 16384 }",
        r#"ulimits = { nofile = "1024:2048", core = -1 }"#,
        r#"ulimits = { nproc = "512:1024", stack = "8388608:-1" }"#,
    ],
    &[
        r#"cap_add = ["net_admin"]"#,
        r#"cap_add = ["CAP_SYS_TIME", "sys_ptrace"]"#,
    ],
    &[
        r#"cap_drop = ["mknod"]"#,
        r#"cap_drop = ["Cap_Net_Raw", "audit_write"]"#,
    ],
    &[
        r#"labels = { team = "core" }"#,
        r#"labels = { "a.b" = "", "org.opencontainers.image.title" = "x y" }"#,
    ],
    &[
        r#"extra_hosts = ["db:10.0.0.5"]"#,
        r#"extra_hosts = ["db6:[fd00::5]", "db:10.0.0.5"]"#,
    ],
    &[
        r#"tmpfs = ["/run"]"#,
        r#"tmpfs = ["/run:size=1m,mode=700", "/var/cache:noexec,nosuid"]"#,
    ],
    &[
        r#"shm_size = "4096""#,
        r#"shm_size = "512k""#,
        r#"shm_size = "1.5m""#,
        r#"shm_size = "1g""#,
    ],
    &[
        r#"devices = ["/dev/fuse"]"#,
        r#"devices = ["/dev/null:/dev/n:rw"]"#,
    ],
    &[r#"user = "65534""#, r#"user = "nobody""#, r#"user = "0:0""#],
    &[r#"workdir = "/tmp""#, r#"workdir = "/srv/app""#],
    &[
        "entrypoint = [\"sleep\"]\ncommand = [\"3600\"]",
        "entrypoint = []\ncommand = [\"sleep\", \"3600\"]",
    ],
];

#[test]
fn generated_mixes_of_keys_converge() {
    let seed = std::env::var("DROVER_KEYS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_cafe_f00d_u64);
    let mut rng = Rng(seed | 1);
    let mut c = cluster("k-mixes", "");
    let mut jobs = Vec::new();
    // Jobs until every key has been in one (and at least four).
    let mut unused: BTreeSet<usize> = (0..POOLS.len()).collect();
    while jobs.len() < 4 || !unused.is_empty() {
        let mut keys: Vec<&str> = Vec::new();
        for (i, pool) in POOLS.iter().enumerate() {
            if rng.next().is_multiple_of(2) {
                keys.push(rng.pick(pool));
                unused.remove(&i);
            }
        }
        let file = job_file(host_of(jobs.len()), &keys.join("\n"));
        c = c.job(&format!("mix{}", jobs.len()), &file);
        jobs.push(file);
    }
    converges(
        &c,
        jobs.len(),
        &format!(
            "seed {seed} (DROVER_KEYS_SEED replays it), jobs:\n{}",
            jobs.join("\n")
        ),
    );
}

/// Values the suite's engines cannot start (see the module's doc), and
/// which a real host runs.
const UNSTARTABLE: &[(&str, &str)] = &[
    ("privileged", "privileged = true"),
    ("cap-all", r#"cap_add = ["ALL"]"#),
    ("nofile", "ulimits = { nofile = 65536, memlock = -1 }"),
];

#[test]
fn values_the_test_engines_cannot_start_are_created_and_read_back_as_rendered() {
    let mut c = cluster("k-unstartable", "");
    for (job, keys) in UNSTARTABLE {
        c = c.job(job, &job_file("h1", keys));
    }
    let env = drover_spec::load(c.path(), None).expect("the environment loads");
    let desired: Vec<_> = env
        .jobs
        .values()
        .flat_map(|job| render_job(&env, job, &Secrets::new()).expect("no secrets"))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let observed = runtime.block_on(async {
        let engine = drover_engine::connect(&env.hosts["h1"], &drover_engine::Limits::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for task in &desired {
            let options = drover_engine::CreateOptions {
                labels: task.labels(&env.name),
            };
            engine
                .create_container(&task.container_name(&env.name), &task.config, &options)
                .await
                .unwrap_or_else(|e| panic!("create {}: {e}", task.key.job));
        }
        drover_engine::observe(&engine, &env.name, &Scope::All)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    });
    let mut hosts = drover_plan::Observed::default();
    hosts.hosts.insert(
        "h1".to_string(),
        drover_plan::HostObservation::Reachable(observed),
    );
    hosts.hosts.insert(
        "h2".to_string(),
        drover_plan::HostObservation::Reachable(Default::default()),
    );
    let known: BTreeSet<String> = env.hosts.keys().cloned().collect();
    let planned = plan(&env.name, &desired, &hosts, &Scope::All, &known);
    let changes: Vec<(String, &str, String, usize)> = planned
        .changes
        .iter()
        .map(|ch| {
            (
                ch.job.clone(),
                ch.step.verb(),
                ch.reason.clone(),
                ch.fields.len(),
            )
        })
        .collect();
    let expected: Vec<(String, &str, String, usize)> = ["cap-all", "nofile", "privileged"]
        .iter()
        .map(|job| {
            (
                job.to_string(),
                "start",
                "created but never started".to_string(),
                0,
            )
        })
        .collect();
    assert_eq!(changes, expected, "{planned}");
    assert_eq!(
        c.inspect(
            "h1",
            "k-unstartable.privileged.h1.0",
            "{{.HostConfig.Privileged}}"
        ),
        "true"
    );
    assert_eq!(
        c.inspect(
            "h1",
            "k-unstartable.cap-all.h1.0",
            "{{json .HostConfig.CapAdd}}"
        ),
        r#"["ALL"]"#
    );
}

/// An image of its own on h1: `ENTRYPOINT ["sleep"]`, `CMD ["3600"]`,
/// `USER nobody`, `WORKDIR /tmp` and two labels, made with `docker commit`.
fn image_with_defaults(c: &Cluster, reference: &str) {
    let base = format!("{}-base", c.env);
    let _ = c.docker_raw("h1", &["rm", "-f", &base]);
    c.docker("h1", &["create", "--name", &base, IMAGE1, "true"]);
    c.docker(
        "h1",
        &[
            "commit",
            "--change",
            r#"ENTRYPOINT ["sleep"]"#,
            "--change",
            r#"CMD ["3600"]"#,
            "--change",
            "USER nobody",
            "--change",
            "WORKDIR /tmp",
            "--change",
            "LABEL team=core tier=web",
            &base,
            reference,
        ],
    );
    c.docker("h1", &["rm", &base]);
}

#[test]
fn the_image_own_settings_are_not_drift_but_changes_by_hand_are() {
    let image = "drover-test/keys-image:1";
    let c = cluster("k-image", "");
    image_with_defaults(&c, image);
    let job = |keys: &str| {
        format!("image = \"{image}\"\nhosts = [\"h1\"]\nstop_timeout = \"1s\"\n{keys}\n")
    };
    let c = c
        .job("plain", &job(""))
        .job("own", &job("user = \"root\"\nworkdir = \"/\"\nlabels = { team = \"ops\" }\ncommand = [\"1800\"]"))
        .job("none", &job("entrypoint = []\ncommand = [\"sleep\", \"3600\"]"))
        .job("replaced", &job("entrypoint = [\"sh\", \"-c\", \"exec sleep 3600\"]"));
    converges(
        &c,
        4,
        "jobs on an image with its own entrypoint, user, workdir and labels",
    );

    let inspect = |job: &str, format: &str| c.inspect("h1", &format!("k-image.{job}.h1.0"), format);
    let all = "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}} {{.Config.WorkingDir}} {{.Config.Labels.team}}";
    assert_eq!(
        inspect("plain", all),
        r#"["sleep"] ["3600"] nobody /tmp core"#
    );
    assert_eq!(inspect("own", all), r#"["sleep"] ["1800"] root / ops"#);
    assert_eq!(
        inspect("none", all),
        r#"[] ["sleep","3600"] nobody /tmp core"#
    );
    assert_eq!(
        inspect("replaced", all),
        r#"["sh","-c","exec sleep 3600"] null nobody /tmp core"#,
        "the engine drops the image's command for an entrypoint of the job's own"
    );

    // `docker update --cpus`, and a container recreated by hand with other flags.
    c.docker("h1", &["update", "--cpus", "1.5", "k-image.plain.h1.0"]);
    let labels = inspect(
        "own",
        "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}\n{{end}}",
    );
    c.docker("h1", &["rm", "-f", "k-image.own.h1.0"]);
    let mut args = vec![
        "create",
        "--name",
        "k-image.own.h1.0",
        "--user",
        "1000",
        "--workdir",
        "/",
    ];
    for label in labels.lines() {
        args.extend(["--label", label]);
    }
    args.extend([
        "--label",
        "extra=1",
        "--cap-add",
        "net_admin",
        "--tmpfs",
        "/x:size=1m,noexec",
        "--ulimit",
        "nofile=512:1024",
        "--shm-size",
        "8m",
        image,
        "1800",
    ]);
    c.docker("h1", &args);
    let (status, stdout, _) = drover(&c, &["diff"]);
    assert_eq!(status, 2, "{stdout}");
    for line in [
        "~ replace plain h1/0  (",
        "    cpus: 1.5 => (none)\n",
        "~ replace own h1/0  (",
        "    user: \"1000\" => \"root\"\n",
        "    labels.extra: \"1\" => (none)\n",
        "    tmpfs: [\"/x:noexec,size=1m\"] => (none)\n",
        "    cap_add: [\"CAP_NET_ADMIN\"] => (none)\n",
    ] {
        assert!(stdout.contains(line), "{line:?} in:\n{stdout}");
    }
    for unset in [
        "ulimits.",
        "shm_size",
        "workdir",
        "labels.team",
        "labels.tier",
        "entrypoint",
    ] {
        assert!(
            !stdout.contains(unset),
            "{unset}: what the job leaves to the image or the engine is not drift:\n{stdout}"
        );
    }
}

#[test]
fn rollback_recreates_a_generation_with_its_settings() {
    let keys = |generation: u32, cpus: &str| {
        format!(
            r#"entrypoint = ["sleep"]
command = ["3600"]
env = {{ GEN = "{generation}" }}
cpus = "{cpus}"
user = "65534:65534"
workdir = "/srv"
ulimits = {{ nofile = "1024:2048" }}
cap_add = ["net_admin"]
cap_drop = ["mknod"]
labels = {{ "com.example.team" = "core" }}
extra_hosts = ["db:10.0.0.5"]
tmpfs = ["/run:size=1m"]
shm_size = "8m"
devices = ["/dev/fuse"]
[update]
keep = 0"#
        )
    };
    let c = cluster("k-rollback", "").job("web", &job_file("h1", &keys(1, "0.5")));
    c.drover(&["up", "--yes"]).run();
    c.set_job("web", &job_file("h1", &keys(2, "1")));
    c.drover(&["up", "--yes"]).run();
    assert_eq!(c.containers("h1"), ["k-rollback.web.h1.0"], "nothing kept");

    c.drover(&["rollback", "web", "--yes"])
        .stdout_has("(recreated from its record)")
        .run();
    let name = "k-rollback.web.h1.0";
    assert_eq!(
        c.inspect(
            "h1",
            name,
            "{{.HostConfig.NanoCpus}} {{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}} {{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}} {{json .HostConfig.ExtraHosts}} {{json .HostConfig.Tmpfs}} {{.HostConfig.ShmSize}} {{len .HostConfig.Devices}} {{.Config.User}} {{.Config.WorkingDir}} {{json .Config.Entrypoint}} {{index .Config.Labels \"com.example.team\"}}"
        ),
        r#"500000000 nofile=1024:2048 ["CAP_NET_ADMIN"] ["CAP_MKNOD"] ["db:10.0.0.5"] {"/run":"size=1m"} 8388608 1 65534:65534 /srv ["sleep"] core"#
    );
    let diff = c.drover(&["diff", "--json"]).status(2).run().json();
    let fields: Vec<&str> = diff["changes"][0]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(fields, ["env.GEN", "cpus"], "{diff}");
}

#[test]
fn more_cpus_than_the_host_has_is_the_engine_error_at_up() {
    let c = cluster("k-cpus", "").job("web", &job_file("h1", r#"cpus = "512""#));
    c.drover(&["validate"]).run();
    let (status, stdout, stderr) = drover(&c, &["up", "--yes"]);
    assert_eq!(status, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("FAILED web h1/0 (create): ")
            && stderr.contains("Range of CPUs is from 0.01 to "),
        "{stdout}{stderr}"
    );
    assert_eq!(c.containers("h1"), Vec::<String>::new());
}
