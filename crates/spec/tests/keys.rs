//! The container settings hand-run fleets use, as job keys: each merged like
//! the rest (tables entry by entry, lists and single values whole), taken in
//! every spelling the engine takes, and refused with its place where the
//! engine, runc or the kernel would refuse it.

use std::collections::BTreeMap;

use drover_spec::{load, Capability, Device, Environment, ExtraHost, Tmpfs, Ulimit};

const ENV: &str = r#"name = "prod"
[hosts.app1]
docker = "unix:///var/run/docker.sock"
"#;

fn write(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn load_files(files: &[(&str, &str)]) -> Result<Environment, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
    write(dir.path(), files);
    load(dir.path(), None).map_err(|e| e.to_string())
}

/// The errors of a job file `jobs/web.toml` holding `keys`, one per line.
fn errors(keys: &str) -> String {
    let job = format!("image = \"busybox:1\"\nhosts = [\"app1\"]\n{keys}");
    match load_files(&[("drover.toml", ENV), ("jobs/web.toml", &job)]) {
        Ok(_) => panic!("accepted:\n{keys}"),
        Err(e) => e,
    }
}

fn job(keys: &str) -> drover_spec::Job {
    let job = format!("image = \"busybox:1\"\nhosts = [\"app1\"]\n{keys}");
    let env = load_files(&[("drover.toml", ENV), ("jobs/web.toml", &job)])
        .unwrap_or_else(|e| panic!("refused:\n{keys}\n{e}"));
    env.jobs["web"].clone()
}

fn caps(names: &[&str]) -> Vec<Capability> {
    names.iter().map(|n| n.parse().unwrap()).collect()
}

#[test]
fn every_key_is_settable_in_defaults_profiles_and_jobs() {
    let env = format!(
        r#"{ENV}
[defaults]
user = "nobody"
workdir = "/srv"
cpus = "0.5"
ulimits = {{ nofile = "1024:2048", core = 0 }}
labels = {{ team = "core", tier = "web" }}
cap_drop = ["ALL"]
shm_size = "128m"

[profiles.tools]
entrypoint = ["/bin/tini", "--"]
ulimits = {{ nofile = 4096 }}
labels = {{ tier = "tools" }}
extra_hosts = ["db:10.0.0.5"]
tmpfs = ["/run"]
devices = ["/dev/fuse"]
"#
    );
    let env = load_files(&[
        ("drover.toml", &env),
        (
            "jobs/web.toml",
            r#"image = "busybox:1"
hosts = ["app1"]
profile = "tools"
user = "1000:1000"
cap_add = ["net_bind_service"]
labels = { "com.example.owner" = "ops" }
tmpfs = ["/tmp:size=64m"]
privileged = false
"#,
        ),
        (
            "jobs/plain.toml",
            "image = \"busybox:1\"\nhosts = [\"app1\"]\n",
        ),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let web = &env.jobs["web"];
    assert_eq!(
        web.entrypoint,
        Some(vec!["/bin/tini".to_string(), "--".to_string()]),
        "from the profile"
    );
    assert_eq!(web.user.as_deref(), Some("1000:1000"), "the job's own");
    assert_eq!(web.workdir.as_deref(), Some("/srv"), "from the defaults");
    assert_eq!(web.cpus.map(|c| c.nanos()), Some(500_000_000));
    assert_eq!(
        web.ulimits,
        BTreeMap::from([
            ("core".to_string(), Ulimit { soft: 0, hard: 0 }),
            (
                "nofile".to_string(),
                Ulimit {
                    soft: 4096,
                    hard: 4096
                }
            ),
        ]),
        "ulimits merge entry by entry: the profile's nofile over the defaults'"
    );
    assert_eq!(
        web.labels,
        BTreeMap::from([
            ("com.example.owner".to_string(), "ops".to_string()),
            ("team".to_string(), "core".to_string()),
            ("tier".to_string(), "tools".to_string()),
        ]),
        "labels merge entry by entry"
    );
    assert_eq!(web.cap_add, caps(&["CAP_NET_BIND_SERVICE"]));
    assert_eq!(web.cap_drop, caps(&["ALL"]));
    assert_eq!(
        web.tmpfs,
        vec!["/tmp:size=64m".parse::<Tmpfs>().unwrap()],
        "lists are replaced whole"
    );
    assert_eq!(
        web.extra_hosts,
        vec!["db:10.0.0.5".parse::<ExtraHost>().unwrap()]
    );
    assert_eq!(web.devices, vec!["/dev/fuse".parse::<Device>().unwrap()]);
    assert_eq!(web.shm_size, Some(128 << 20));
    assert!(!web.privileged);

    let plain = &env.jobs["plain"];
    assert_eq!(
        (plain.entrypoint.clone(), plain.user.as_deref(), plain.cpus),
        (None, Some("nobody"), Some("0.5".parse().unwrap()))
    );
    assert!(plain.tmpfs.is_empty() && plain.devices.is_empty() && plain.cap_add.is_empty());
}

#[test]
fn unset_keys_are_left_to_the_image_and_the_engine() {
    let web = job("");
    assert_eq!(
        (
            web.entrypoint,
            web.user,
            web.workdir,
            web.cpus,
            web.shm_size
        ),
        (None, None, None, None, None)
    );
    assert!(web.ulimits.is_empty() && web.labels.is_empty() && !web.privileged);
    assert!(web.cap_add.is_empty() && web.cap_drop.is_empty());
    assert!(web.extra_hosts.is_empty() && web.tmpfs.is_empty() && web.devices.is_empty());
}

#[test]
fn odd_but_valid_values_are_taken_in_one_spelling() {
    let web = job(r#"entrypoint = []
cpus = 2
ulimits = { nofile = 65536, core = -1, stack = "8388608:-1", nproc = "0" }
cap_add = ["net_admin", "CAP_SYS_TIME", "Sys_Ptrace"]
cap_drop = ["mknod"]
labels = { "a.b.c" = "", version = 2, on = true }
extra_hosts = ["v6:2001:DB8::1", "v6b:[::1]", "gw:host-gateway", "Mixed.Case_host-1:10.0.0.6"]
tmpfs = ["/run:size=64m,noexec,mode=1777", "/b:nodev,uid=1000,gid=1000,nr_inodes=1k,size=10%"]
shm_size = "1.5m"
devices = ["/dev/fuse:/dev/fuse2:mrw", "/dev/null:r", "/dev/zero:/dev/z"]
user = "65534:65534"
workdir = "/"
"#);
    assert_eq!(
        web.entrypoint,
        Some(Vec::new()),
        "none, not even the image's"
    );
    assert_eq!(
        web.cpus.map(|c| (c.nanos(), c.to_string())),
        Some((2_000_000_000, "2".to_string()))
    );
    assert_eq!(
        web.ulimits
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        [
            "core=-1:-1",
            "nofile=65536:65536",
            "nproc=0:0",
            "stack=8388608:-1"
        ]
    );
    assert_eq!(
        web.cap_add,
        caps(&["CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_TIME"]),
        "upper case, CAP_ prefixed and sorted, as recent engines store them"
    );
    assert_eq!(
        web.labels,
        BTreeMap::from([
            ("a.b.c".to_string(), String::new()),
            ("on".to_string(), "true".to_string()),
            ("version".to_string(), "2".to_string()),
        ])
    );
    assert_eq!(
        web.extra_hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "v6:2001:db8::1",
            "v6b:::1",
            "gw:host-gateway",
            "Mixed.Case_host-1:10.0.0.6"
        ]
    );
    assert_eq!(
        web.tmpfs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "/run:mode=1777,noexec,size=64m",
            "/b:gid=1000,nodev,nr_inodes=1k,size=10%,uid=1000"
        ],
        "options sorted: none contradicts another, so their order means nothing"
    );
    assert_eq!(web.shm_size, Some(1536 << 10));
    assert_eq!(
        web.devices
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["/dev/fuse:/dev/fuse2", "/dev/null:r", "/dev/zero:/dev/z"]
    );
    assert_eq!(
        web.devices[0],
        Device {
            host: "/dev/fuse".into(),
            container: "/dev/fuse2".into(),
            permissions: "rwm".into()
        }
    );
    for (cpus, nanos) in [
        ("0.5", 500_000_000),
        ("1.25", 1_250_000_000),
        ("0.01", 10_000_000),
        ("1.000000001", 1_000_000_001),
    ] {
        assert_eq!(
            job(&format!("cpus = \"{cpus}\"")).cpus.map(|c| c.nanos()),
            Some(nanos),
            "{cpus}"
        );
    }
    assert_eq!(
        job("cpus = 1.5").cpus.map(|c| c.nanos()),
        Some(1_500_000_000)
    );
    for (size, bytes) in [
        ("512", 512),
        ("4096b", 4096),
        ("512k", 512 << 10),
        ("64m", 64 << 20),
        ("64mb", 64 << 20),
        ("1g", 1 << 30),
        ("2G", 2 << 30),
        ("1t", 1 << 40),
    ] {
        assert_eq!(
            job(&format!("shm_size = \"{size}\"")).shm_size,
            Some(bytes),
            "{size}"
        );
    }
    for user in [
        "nobody",
        "1000",
        "nobody:nogroup",
        "www-data",
        "_svc.name:0",
    ] {
        assert_eq!(
            job(&format!("user = \"{user}\"")).user.as_deref(),
            Some(user)
        );
    }
    assert_eq!(job("cap_drop = [\"all\"]").cap_drop, caps(&["ALL"]));
    assert!(job("privileged = true").privileged);
}

#[test]
fn bad_values_are_refused_where_they_are_written() {
    assert_eq!(
        errors(
            r#"entrypoint = ["", "x"]
user = "a b"
workdir = "app"
cpus = "0"
"#
        ),
        "jobs/web.toml:3:15: the entrypoint's program must not be empty (entrypoint = [] runs none, not even the image's)
jobs/web.toml:4:8: invalid user \"a b\": expected \"USER\" or \"USER:GROUP\", each a name (letters, digits, '_', '-', '.') or a numeric ID, e.g. \"1000:1000\" or \"nobody\"
jobs/web.toml:5:11: workdir \"app\" must be an absolute path
jobs/web.toml:6:8: cpus \"0\" is below the engine's minimum of 0.01"
    );
    assert_eq!(
        errors(
            r#"cpus = "0.001"
workdir = "/app/"
user = ":1000"
"#
        ),
        "jobs/web.toml:3:8: cpus \"0.001\" is below the engine's minimum of 0.01
jobs/web.toml:4:11: workdir \"/app/\" must be written plainly: no '.', '..', doubled or trailing '/'
jobs/web.toml:5:8: invalid user \":1000\": expected \"USER\" or \"USER:GROUP\", each a name (letters, digits, '_', '-', '.') or a numeric ID, e.g. \"1000:1000\" or \"nobody\""
    );
    assert_eq!(
        errors("cpus = \"-1\"\n"),
        "jobs/web.toml:3:8: invalid cpus \"-1\": expected a number of CPUs, e.g. \"0.5\", \"1.5\" or \"2\""
    );
    assert_eq!(
        errors("cpus = \"1.0000000001\"\n"),
        "jobs/web.toml:3:8: cpus \"1.0000000001\" is finer than the engine's unit, a billionth of a CPU"
    );
    assert_eq!(
        errors("cpus = \"10000\"\n"),
        "jobs/web.toml:3:8: cpus \"10000\" is too large: the largest allowed is 8192 (more CPUs than Linux runs on)"
    );
    assert_eq!(
        errors("cpus = true\n"),
        "jobs/web.toml:3:8: invalid cpus true: expected a number of CPUs, e.g. \"0.5\", \"1.5\" or \"2\""
    );
    assert_eq!(
        errors("user = \"99999999999\"\n").lines().count(),
        1,
        "a numeric ID beyond 32 bits is refused"
    );
}

#[test]
fn bad_ulimits_are_refused_as_runc_and_the_kernel_would() {
    assert_eq!(
        errors(
            r#"ulimits = { nofile = "2048:1024", bogus = 1, core = "-2", nproc = 1.5, stack = "-1:1024", fsize = "1:2:3" }
"#
        ),
        "jobs/web.toml:3:22: ulimit nofile \"2048:1024\": the soft limit is above the hard limit
jobs/web.toml:3:43: unknown ulimit \"bogus\": expected one of core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack
jobs/web.toml:3:53: invalid ulimit core \"-2\": expected a limit or \"SOFT:HARD\", each a whole number, or -1 for unlimited
jobs/web.toml:3:67: invalid ulimit nproc 1.5: expected a limit or \"SOFT:HARD\", each a whole number, or -1 for unlimited
jobs/web.toml:3:80: ulimit stack \"-1:1024\": the soft limit is above the hard limit
jobs/web.toml:3:99: invalid ulimit fsize \"1:2:3\": expected a limit or \"SOFT:HARD\", each a whole number, or -1 for unlimited"
    );
    assert_eq!(
        errors("ulimits = { nofile = -1 }\n"),
        "jobs/web.toml:3:22: ulimit nofile \"-1\" is above 1048576, the kernel's limit on open files (fs.nr_open), and cannot be unlimited"
    );
    assert_eq!(
        errors("ulimits = { nofile = \"1024:2000000\" }\n"),
        "jobs/web.toml:3:22: ulimit nofile \"1024:2000000\" is above 1048576, the kernel's limit on open files (fs.nr_open), and cannot be unlimited"
    );
    assert!(
        errors("ulimits = { NOFILE = 10 }\n")
            .starts_with("jobs/web.toml:3:22: unknown ulimit \"NOFILE\": expected one of core, "),
        "names are the lower-case ones docker takes"
    );
}

#[test]
fn bad_capabilities_labels_and_lists_are_refused_where_they_are_written() {
    assert_eq!(
        errors(
            r#"cap_add = ["NET_ADMIN", "net_admin", "CAP_BOGUS", "sys_time"]
cap_drop = ["CAP_SYS_TIME"]
labels = { "drover.job" = "x", "" = "y", ok = "fine" }
"#
        ),
        "jobs/web.toml:3:25: capability CAP_NET_ADMIN is listed twice in cap_add
jobs/web.toml:3:38: unknown capability \"CAP_BOGUS\": expected a Linux capability such as \"NET_ADMIN\" or \"CAP_SYS_TIME\" (see capabilities(7)), or \"ALL\"
jobs/web.toml:4:13: capability CAP_SYS_TIME is both in cap_add and in cap_drop
jobs/web.toml:5:27: label \"drover.job\" is reserved: labels starting with \"drover.\" are drover's own
jobs/web.toml:5:37: invalid label \"\": a label key must not be empty or contain spaces or NUL"
    );
    assert_eq!(
        errors("privileged = true\ncap_add = [\"NET_ADMIN\"]\n"),
        "jobs/web.toml:3:14: privileged = true grants every capability: cap_add and cap_drop would have no effect (set them to [] here, or drop privileged)"
    );
    assert_eq!(
        errors(
            r#"extra_hosts = ["db", "db:10.0.0.300", "-x:10.0.0.1", "db:10.0.0.5", "db:10.0.0.5"]
"#
        ),
        "jobs/web.toml:3:16: invalid extra host \"db\": expected \"NAME:ADDRESS\" with an IPv4 or IPv6 address or host-gateway, e.g. \"db:10.0.0.5\"
jobs/web.toml:3:22: invalid extra host \"db:10.0.0.300\": expected \"NAME:ADDRESS\" with an IPv4 or IPv6 address or host-gateway, e.g. \"db:10.0.0.5\"
jobs/web.toml:3:39: invalid extra host \"-x:10.0.0.1\": the name \"-x\" must be letters, digits, '-', '.' and '_', starting with a letter or digit
jobs/web.toml:3:69: extra host \"db:10.0.0.5\" is listed twice"
    );
}

#[test]
fn bad_mounts_and_devices_are_refused_where_they_are_written() {
    assert_eq!(
        errors(
            r#"volumes = ["/srv/data:/data"]
host_files = ["/etc/localtime"]
tmpfs = ["run", "/", "/run:", "/a:ro,rw", "/b:size=1.5m", "/c:mode=99", "/d:size=1m,size=2m", "/e:bogus", "/f:noexec,noexec", "/data", "/etc/localtime", "/g", "/g:size=1m"]
"#
        ),
        "jobs/web.toml:5:10: tmpfs path \"run\" must be an absolute path
jobs/web.toml:5:17: invalid tmpfs \"/\": a tmpfs cannot be mounted over the container's root \"/\"
jobs/web.toml:5:22: invalid tmpfs \"/run:\": no options after ':' (write \"/run\" for the engine's defaults)
jobs/web.toml:5:31: invalid tmpfs \"/a:ro,rw\": tmpfs options ro and rw contradict each other
jobs/web.toml:5:43: invalid tmpfs \"/b:size=1.5m\": tmpfs option size=\"1.5m\" is not a whole number with an optional k, m or g, or a percentage
jobs/web.toml:5:59: invalid tmpfs \"/c:mode=99\": tmpfs option mode=\"99\" is not an octal mode such as 1777
jobs/web.toml:5:73: invalid tmpfs \"/d:size=1m,size=2m\": tmpfs option size is given twice
jobs/web.toml:5:95: invalid tmpfs \"/e:bogus\": unknown tmpfs option \"bogus\": expected size, mode, uid, gid, nr_inodes, nr_blocks or mount flags such as ro, noexec, nosuid, nodev
jobs/web.toml:5:107: invalid tmpfs \"/f:noexec,noexec\": tmpfs option noexec is given twice
jobs/web.toml:5:127: \"/data\" is both a tmpfs and the container path of volume /srv/data:/data: drop one of them
jobs/web.toml:5:136: \"/etc/localtime\" is both a tmpfs and a host file: drop one of them
jobs/web.toml:5:160: two tmpfs are mounted at \"/g\": each container path takes one"
    );
    assert_eq!(
        errors(
            r#"devices = ["dev/fuse", "/dev/fuse:rwx", "/dev/fuse:/dev/f:rr", "/dev/a:/x", "/dev/b:/x", "/dev/c:/y:rw:m"]
shm_size = "0"
"#
        ),
        "jobs/web.toml:3:12: invalid device \"dev/fuse\": expected \"HOST\", \"HOST:CONTAINER\", \"HOST:PERMISSIONS\" or \"HOST:CONTAINER:PERMISSIONS\" with absolute paths and permissions of r, w and m
jobs/web.toml:3:24: invalid device \"/dev/fuse:rwx\": expected \"HOST\", \"HOST:CONTAINER\", \"HOST:PERMISSIONS\" or \"HOST:CONTAINER:PERMISSIONS\" with absolute paths and permissions of r, w and m
jobs/web.toml:3:41: invalid device \"/dev/fuse:/dev/f:rr\": expected \"HOST\", \"HOST:CONTAINER\", \"HOST:PERMISSIONS\" or \"HOST:CONTAINER:PERMISSIONS\" with absolute paths and permissions of r, w and m
jobs/web.toml:3:77: two devices are at \"/x\" in the container (\"/dev/a:/x\" and \"/dev/b:/x\"): each container path takes one
jobs/web.toml:3:90: invalid device \"/dev/c:/y:rw:m\": expected \"HOST\", \"HOST:CONTAINER\", \"HOST:PERMISSIONS\" or \"HOST:CONTAINER:PERMISSIONS\" with absolute paths and permissions of r, w and m
jobs/web.toml:4:12: shm_size must be above 0: leave it out for the engine's default (64m)"
    );
    assert_eq!(
        errors("shm_size = \"2p\"\n"),
        "jobs/web.toml:3:12: invalid size \"2p\": expected a number with an optional unit (b, k, m, g, t), e.g. \"512k\", \"20m\", \"1.5g\""
    );
}

#[test]
fn an_error_in_the_defaults_or_a_profile_names_drover_toml() {
    let env = format!(
        "{ENV}[defaults]\nlabels = {{ \"drover.x\" = \"1\" }}\n[profiles.p]\ncap_add = [\"bogus\"]\n"
    );
    let err = load_files(&[
        ("drover.toml", &env),
        (
            "jobs/web.toml",
            "image = \"busybox:1\"\nhosts = [\"app1\"]\nprofile = \"p\"\n",
        ),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        "drover.toml:5:25: label \"drover.x\" is reserved: labels starting with \"drover.\" are drover's own
drover.toml:7:12: unknown capability \"bogus\": expected a Linux capability such as \"NET_ADMIN\" or \"CAP_SYS_TIME\" (see capabilities(7)), or \"ALL\""
    );
}
