//! `drover package`: base + artifact + command, built through the Engine
//! API, pushed to the suite's real registry, rolled out with `update`.

mod support;

use support::{cluster, Cluster};

const BASE: &str = "drover-test/busybox:1";

fn site(c: &Cluster, name: &str, artifact_path: &str, command: &str, port: u16) -> String {
    format!(
        r#"
        image = "{}/drover-test/{name}:none"
        base = "{BASE}"
        hosts = ["h1", "h2"]
        command = {command}
        artifact_path = "{artifact_path}"
        stop_timeout = "1s"
        # port {port}
        "#,
        c.hosts.registry
    )
}

#[test]
fn a_packaged_directory_is_listed_first_and_served_after_update() {
    let c = cluster("p-dir", "");
    let repo = format!("p-dir-{}", std::process::id());
    let job = site(
        &c,
        &repo,
        "/srv/www",
        "[\"httpd\", \"-f\", \"-p\", \"26100\", \"-h\", \"/srv/www\"]",
        26100,
    );
    let c = c.job("web", &job);
    c.write("drover.toml", &format!("name = \"p-dir\"\n[hosts.h1]\ndocker = \"{}\"\n[hosts.h2]\ndocker = \"{}\"\n[registry]\nurl = \"http://{}\"\n", c.hosts.h1, c.hosts.h2, c.hosts.registry));
    let artifact = tempfile::tempdir().unwrap();
    std::fs::create_dir(artifact.path().join("css")).unwrap();
    std::fs::write(artifact.path().join("index.html"), "packaged by drover\n").unwrap();
    std::fs::write(artifact.path().join("css/site.css"), "body {}\n").unwrap();

    let reference = format!("{}/drover-test/{repo}:v1", c.hosts.registry);
    let first = c
        .drover(&[
            "package",
            "web",
            "--artifact",
            artifact.path().to_str().unwrap(),
            "--tag",
            "v1",
        ])
        .stdout(&format!("{reference}\n"))
        .any_stderr()
        .run();
    assert!(
        first
            .stderr
            .contains(&format!("drover: pushed {reference} (sha256:")),
        "{}",
        first.stderr
    );
    // Nothing runs yet, and the file did not change.
    assert!(c.containers("h1").is_empty());
    assert!(std::fs::read_to_string(c.path().join("jobs/web.toml"))
        .unwrap()
        .contains(":none\""));

    let rows = c.drover(&["images", "web", "--json"]).run().json();
    assert_eq!(rows[0]["tag"], "v1", "the newest first: {rows}");
    assert_eq!(rows[0]["in_registry"], true);

    c.drover(&["update", "web", "--image", &reference, "--yes"])
        .stdout_has("Done: 3 step(s) applied.")
        .run();
    for host in ["h1", "h2"] {
        assert_eq!(
            c.http_get(host, 26100).as_deref(),
            Some("packaged by drover\n"),
            "{host}"
        );
    }

    // The same inputs give the same image, and the registry says the same digest.
    let again = c
        .drover(&[
            "package",
            "web",
            "--artifact",
            artifact.path().to_str().unwrap(),
            "--tag",
            "v2",
            "--json",
        ])
        .run()
        .json();
    let ids = |tag: &str| {
        c.docker(
            "h1",
            &[
                "image",
                "inspect",
                "-f",
                "{{.Id}} {{index .RepoDigests 0}}",
                &format!("{}/drover-test/{repo}:{tag}", c.hosts.registry),
            ],
        )
    };
    let (one, two) = (ids("v1"), ids("v2"));
    assert_eq!(
        one.split(' ').next(),
        two.split(' ').next(),
        "the same image ID"
    );
    assert!(
        one.ends_with(again["digest"].as_str().unwrap()),
        "the same digest: {one} / {again}"
    );
    // Again under a new tag, then under that tag once more: the host has
    // that image already, so nothing is loaded, only named.
    let package = |tag: &str| {
        c.drover(&[
            "package",
            "web",
            "--artifact",
            artifact.path().to_str().unwrap(),
            "--tag",
            tag,
        ])
        .any_stderr()
        .run()
        .stderr
    };
    for (said, stderr) in [("tagging it", package("v3")), ("is already", package("v3"))] {
        assert!(
            stderr.contains(said)
                && !stderr.contains("loading")
                && stderr.contains(again["digest"].as_str().unwrap()),
            "{stderr}"
        );
    }
    let _ = c.docker_raw("h1", &["rm", "-f", "p-dir.web.h1.0"]);
    let _ = c.docker_raw("h2", &["rm", "-f", "p-dir.web.h2.0"]);
    for host in ["h1", "h2"] {
        for tag in ["v1", "v2", "v3"] {
            let _ = c.docker_raw(
                host,
                &[
                    "rmi",
                    &format!("{}/drover-test/{repo}:{tag}", c.hosts.registry),
                ],
            );
        }
    }
}

#[test]
fn a_single_file_artifact_goes_under_artifact_path_by_its_name() {
    let c = cluster("p-file", "");
    let repo = format!("p-file-{}", std::process::id());
    let job = site(
        &c,
        &repo,
        "/app",
        "[\"sh\", \"-c\", \"cat /app/app.conf && exec sleep 3600\"]",
        0,
    );
    let c = c.job("app", &job);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.conf");
    std::fs::write(&file, "setting = 1\n").unwrap();
    let out = c
        .drover(&[
            "package",
            "app",
            "--artifact",
            file.to_str().unwrap(),
            "--tag",
            "f1",
        ])
        .any_stderr()
        .run();
    let reference = out.stdout.trim().to_string();
    c.drover(&["update", "app", "--image", &reference, "--yes"])
        .run();
    assert_eq!(
        c.docker("h2", &["exec", "p-file.app.h2.0", "cat", "/app/app.conf"]),
        "setting = 1"
    );
    let cmd = c.inspect("h2", "p-file.app.h2.0", "{{json .Config.Cmd}}");
    assert_eq!(
        cmd, r#"["sh","-c","cat /app/app.conf && exec sleep 3600"]"#,
        "the job's command is the image's"
    );
    let _ = c.docker_raw("h1", &["rm", "-f", "p-file.app.h1.0"]);
    let _ = c.docker_raw("h2", &["rm", "-f", "p-file.app.h2.0"]);
    for host in ["h1", "h2"] {
        let _ = c.docker_raw(host, &["rmi", &reference]);
    }
}

#[test]
fn package_errors_say_what_and_where() {
    let c = cluster("p-errors", "");
    let art = tempfile::tempdir().unwrap();
    let art = art.path().to_str().unwrap().to_string();
    let c = c.job(
        "nobase",
        "image = \"127.0.0.1:5055/x/y:1\"\nhosts = [\"h1\"]\n",
    );
    c.drover(&["package", "nobase", "--artifact", &art])
        .status(1)
        .stderr("error: job nobase has no `base`: set base = \"REGISTRY/IMAGE:TAG\" (the image the artifact goes onto) in jobs/nobase.toml or its profile\n")
        .run();
    c.set_job(
        "app",
        &format!(
            "image = \"{}/drover-test/p-errors:1\"\nbase = \"{BASE}\"\nhosts = [\"h1\"]\n",
            c.hosts.registry
        ),
    );
    c.drover(&["package", "app", "--artifact", "/no/such/artifact"])
        .status(1)
        .stderr("error: artifact /no/such/artifact: no such file or directory\n")
        .run();
    c.set_job("app", &format!("image = \"{}/drover-test/p-errors:1\"\nbase = \"127.0.0.1:1/nobody/base:1\"\nhosts = [\"h1\"]\n", c.hosts.registry));
    c.drover(&["package", "app", "--artifact", &art])
        .status(1)
        .any_stderr()
        .stderr_has("error: the base image 127.0.0.1:1/nobody/base:1 cannot be had on host h1: ")
        .run();
    // A registry that refuses: nothing is reported as pushed.
    c.set_job(
        "app",
        &format!(
            "image = \"127.0.0.1:1/drover-test/p-errors\"\nbase = \"{BASE}\"\nhosts = [\"h1\"]\n"
        ),
    );
    let run = c
        .drover(&["package", "app", "--artifact", &art, "--tag", "x"])
        .status(1)
        .any_stderr()
        .stderr_has("error: host h1: pushing 127.0.0.1:1/drover-test/p-errors:x failed: ")
        .run();
    assert!(!run.stderr.contains("drover: pushed"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let _ = c.docker_raw("h1", &["rmi", "127.0.0.1:1/drover-test/p-errors:x"]);
}

/// A cluster with a job `app` on h1 and h2 whose image `package` builds on
/// h1, onto the base, at `/app`.
fn app_cluster(name: &str) -> Cluster {
    let c = cluster(name, "");
    let repo = format!("{name}-{}", std::process::id());
    let job = site(&c, &repo, "/app", "[\"sleep\", \"3600\"]", 0);
    c.job("app", &job)
}

/// `drover package app --artifact ARTIFACT --tag TAG --json`, which passes.
fn package_app(c: &Cluster, artifact: &std::path::Path, tag: &str) -> support::Output {
    c.drover(&[
        "package",
        "app",
        "--artifact",
        artifact.to_str().unwrap(),
        "--tag",
        tag,
        "--json",
    ])
    .any_stderr()
    .run()
}

/// What `sh -c SCRIPT` prints in a container of `reference` on h1, byte for byte.
fn inside(c: &Cluster, reference: &str, script: &str) -> Vec<u8> {
    let out = c.docker_raw(
        "h1",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            reference,
            "sh",
            "-c",
            script,
        ],
    );
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn remove_images(c: &Cluster, references: &[&str]) {
    for reference in references {
        let _ = c.docker_raw("h1", &["rmi", reference]);
    }
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Issue 12, defect 9: every file went into the image as 644 or 755, so a
/// `chmod 600` key was readable by all there, and setuid, setgid and sticky
/// bits were lost.
#[test]
fn a_packaged_image_keeps_every_mode_bit_of_the_artifact() {
    let c = app_cluster("p-modes");
    let art = tempfile::tempdir().unwrap();
    let a = art.path();
    for dir in ["bin", "shared", "drop"] {
        std::fs::create_dir(a.join(dir)).unwrap();
    }
    for (file, mode) in [
        ("key", 0o600),
        ("app.conf", 0o640),
        ("notes", 0o444),
        ("bin/tool", 0o4755),
        ("bin/group-tool", 0o2711),
    ] {
        std::fs::write(a.join(file), file).unwrap();
        set_mode(&a.join(file), mode);
    }
    set_mode(&a.join("shared"), 0o2770);
    set_mode(&a.join("drop"), 0o1777);
    let out = package_app(&c, a, "m1");
    let reference = out.json()["reference"].as_str().unwrap().to_string();
    let listing = inside(
        &c,
        &reference,
        "cd /app && stat -c '%a %F %n' $(find . -mindepth 1 | sort)",
    );
    assert_eq!(
        String::from_utf8_lossy(&listing),
        "640 regular file ./app.conf\n\
         755 directory ./bin\n\
         2711 regular file ./bin/group-tool\n\
         4755 regular file ./bin/tool\n\
         1777 directory ./drop\n\
         600 regular file ./key\n\
         444 regular file ./notes\n\
         2770 directory ./shared\n"
    );
    remove_images(&c, &[&reference]);
}

/// Issue 12, defect 9: fifos and sockets were skipped without a word. A
/// fifo (like a hard link or a device node) is a file of the image as of
/// the artifact; a socket cannot be, and each one is named on stderr.
#[test]
fn a_packaged_image_keeps_fifos_links_and_devices_and_names_the_sockets_left_out() {
    let c = app_cluster("p-types");
    let art = tempfile::Builder::new()
        .prefix("types")
        .tempdir_in("/tmp")
        .unwrap();
    let a = art.path();
    std::fs::create_dir(a.join("run")).unwrap();
    std::fs::write(a.join("data"), "shared\n").unwrap();
    std::fs::hard_link(a.join("data"), a.join("data.link")).unwrap();
    for (tool, args) in [
        ("mkfifo", vec!["-m", "620", "run/control"]),
        ("mknod", vec!["-m", "666", "null", "c", "1", "3"]),
    ] {
        let status = std::process::Command::new(tool)
            .args(args)
            .current_dir(a)
            .status()
            .unwrap();
        assert!(status.success(), "{tool}");
    }
    let _listening = std::os::unix::net::UnixListener::bind(a.join("run/app.sock")).unwrap();
    let out = package_app(&c, a, "t1");
    assert!(
        out.stderr.contains(&format!("warning: artifact {}/run/app.sock: a socket cannot be stored in an image layer, so the image has no such file; remove it from the artifact, or have the program that listens on it create it when it starts\n", a.display())),
        "{}",
        out.stderr
    );
    let json = out.json();
    assert_eq!(
        json["sockets_left_out"],
        serde_json::json!([format!("{}/run/app.sock", a.display())])
    );
    let reference = json["reference"].as_str().unwrap().to_string();
    let listing = inside(
        &c,
        &reference,
        "cd /app && stat -c '%a %F %h %t,%T %n' $(find . -mindepth 1 | sort) && [ $(stat -c %i data) = $(stat -c %i data.link) ] && echo one inode",
    );
    assert_eq!(
        String::from_utf8_lossy(&listing),
        "644 regular file 2 0,0 ./data\n\
         644 regular file 2 0,0 ./data.link\n\
         666 character special file 1 1,3 ./null\n\
         755 directory 2 0,0 ./run\n\
         620 fifo 1 0,0 ./run/control\n\
         one inode\n"
    );
    remove_images(&c, &[&reference]);
}

/// Issue 12, defect 9: the image's history carried the artifact folder's
/// name, so the same files from `build-1/` and `build-2/` made two images
/// with two digests.
#[test]
fn the_same_files_from_two_folders_make_one_image_and_one_digest() {
    let c = app_cluster("p-folders");
    let builds = tempfile::tempdir().unwrap();
    let mut packaged = Vec::new();
    for (folder, tag) in [("build-1", "b1"), ("build-2", "b2")] {
        let a = builds.path().join(folder);
        std::fs::create_dir_all(a.join("lib")).unwrap();
        std::fs::write(a.join("lib/app.jar"), "PK\x03\x04").unwrap();
        std::fs::write(a.join("run.sh"), "#!/bin/sh\n").unwrap();
        set_mode(&a.join("run.sh"), 0o750);
        packaged.push(package_app(&c, &a, tag).json());
    }
    assert_eq!(
        (&packaged[0]["image_id"], &packaged[0]["digest"]),
        (&packaged[1]["image_id"], &packaged[1]["digest"]),
        "{packaged:?}"
    );
    let reference = packaged[1]["reference"].as_str().unwrap();
    let history = c.docker(
        "h1",
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}",
            reference,
        ],
    );
    assert_eq!(
        history.lines().next(),
        Some("drover package: the artifact at /app")
    );
    let inspect = c.docker("h1", &["image", "inspect", reference]);
    assert!(!inspect.contains("build-"), "{inspect}");
    remove_images(
        &c,
        &[
            packaged[0]["reference"].as_str().unwrap(),
            packaged[1]["reference"].as_str().unwrap(),
        ],
    );
}

/// Issue 12, defect 9: an artifact given as a symlink to a directory
/// (`current -> releases/v42`) was refused as "neither a file nor a
/// directory".
#[test]
fn an_artifact_given_as_a_symlink_is_followed_and_the_links_inside_stay_links() {
    let c = app_cluster("p-symlink");
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("releases/v42");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::write(release.join("index-42.html"), "v42\n").unwrap();
    std::os::unix::fs::symlink("index-42.html", release.join("index.html")).unwrap();
    std::os::unix::fs::symlink("releases/v42", dir.path().join("current")).unwrap();
    let out = package_app(&c, &dir.path().join("current"), "s1");
    let reference = out.json()["reference"].as_str().unwrap().to_string();
    let seen = inside(
        &c,
        &reference,
        "cd /app && ls && readlink index.html && cat index.html",
    );
    assert_eq!(
        String::from_utf8_lossy(&seen),
        "index-42.html\nindex.html\nindex-42.html\nv42\n"
    );
    remove_images(&c, &[&reference]);
}

/// Issue 12, defect 9: file names that are not UTF-8 were mangled into
/// U+FFFD, and two of them became one name, which the engine refused as a
/// broken tar.
#[test]
fn names_that_are_not_utf8_reach_the_image_byte_for_byte() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let c = app_cluster("p-bytes");
    let art = tempfile::tempdir().unwrap();
    // Two names that were one after U+FFFD replaced their last bytes, and a
    // directory and a file whose names are longer than a tar header holds.
    let long_dir = [b'd']
        .repeat(10)
        .into_iter()
        .chain([0xe9; 140])
        .collect::<Vec<u8>>();
    let long_file = [0xe8u8; 120];
    std::fs::create_dir(art.path().join(OsStr::from_bytes(&long_dir))).unwrap();
    for (name, contents) in [
        (b"report-\xe8.txt".to_vec(), "e8\n"),
        (b"report-\xe9.txt".to_vec(), "e9\n"),
        ([&long_dir[..], b"/", &long_file[..]].concat(), "long\n"),
    ] {
        std::fs::write(art.path().join(OsStr::from_bytes(&name)), contents).unwrap();
    }
    let out = package_app(&c, art.path(), "u1");
    let reference = out.json()["reference"].as_str().unwrap().to_string();
    let seen = inside(
        &c,
        &reference,
        "cd /app && for f in $(find . -type f | sort); do printf '%s=' \"$f\"; cat \"$f\"; done",
    );
    let want = [
        b"./".to_vec(),
        long_dir.clone(),
        b"/".to_vec(),
        long_file.to_vec(),
        b"=long\n./report-\xe8.txt=e8\n./report-\xe9.txt=e9\n".to_vec(),
    ]
    .concat();
    assert_eq!(
        String::from_utf8_lossy(&seen),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(seen, want);
    remove_images(&c, &[&reference]);
}
