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
