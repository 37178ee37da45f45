//! `drover logs` and `drover exec` across a job's tasks, against the suite's
//! real engines: merged lines, following through a rollout, bounded memory
//! under a flood, commands and an interactive shell with a real terminal.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::cluster;

const IMAGE1: &str = "drover-test/busybox:1";

/// Each task prints `HOST line N` every 0.2 s, and `warn N` on stderr every 5th.
fn chatty(hosts: &str, v: &str) -> String {
    format!(
        r#"
        image = "{IMAGE1}"
        hosts = [{hosts}]
        command = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo \"$DROVER_HOST {v} line $i\"; [ $((i % 5)) = 0 ] && echo \"warn $i\" >&2; sleep 0.2; done"]
        stop_timeout = "1s"
        env = {{ V = "{v}" }}
        "#
    )
}

/// `drover ARGS` started in the cluster's directory, stdout piped, without colour.
fn spawn_drover(c: &support::Cluster, args: &[&str], stderr: Stdio) -> std::process::Child {
    Command::new(support::BIN)
        .arg("-C")
        .arg(c.path())
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// `drover ARGS` running, its stdout lines arriving on the receiver.
fn follow_logs(
    c: &support::Cluster,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = spawn_drover(c, args, Stdio::piped());
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

#[test]
fn logs_merge_every_task_in_time_order_and_mark_stderr() {
    let c = cluster("l-merge", "").job("chat", &chatty("\"h1\", \"h2\"", "a"));
    c.drover(&["up", "--yes"]).run();
    std::thread::sleep(Duration::from_secs(3));
    let out = c.drover(&["logs", "chat", "--tail", "6"]).run();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        12,
        "6 lines of each of two tasks:\n{}",
        out.stdout
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("h1/0 ") || l.starts_with("h2/0 ")),
        "{}",
        out.stdout
    );
    assert!(
        lines.iter().any(|l| l.starts_with("h1/0 | h1 a line ")),
        "{}",
        out.stdout
    );
    assert!(
        lines.iter().any(|l| l.contains(" ! warn ")),
        "stderr is marked:\n{}",
        out.stdout
    );
    // In time order: the two tasks interleave rather than come one after the other.
    let first_h2 = lines.iter().position(|l| l.starts_with("h2/0")).unwrap();
    let last_h1 = lines.iter().rposition(|l| l.starts_with("h1/0")).unwrap();
    assert!(first_h2 < last_h1, "interleaved by time:\n{}", out.stdout);

    let json = c
        .drover(&["logs", "chat", "--tail", "1", "--task", "h2/0", "--json"])
        .run();
    let line: serde_json::Value =
        serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["host"], "h2");
    assert_eq!(line["task"], 0);
    assert!(line["time"].as_str().unwrap().starts_with("20"), "{line}");
    c.drover(&["logs", "chat", "--task", "h9/0"])
        .status(1)
        .stderr("error: job chat has no task h9/0 (its tasks: h1/0, h2/0)\n")
        .run();
    c.drover(&["logs", "chat", "--since", "soon"])
        .status(1)
        .stderr_has("invalid --since \"soon\"")
        .run();
}

#[test]
fn logs_follow_keeps_following_through_a_rollout() {
    let c = cluster("l-follow", "").job("chat", &chatty("\"h1\"", "old"));
    c.drover(&["up", "--yes"]).run();
    let (mut follower, rx) = follow_logs(&c, &["logs", "chat", "-f", "--tail", "1"]);
    let wait_for = |part: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                if line.contains(part) {
                    return;
                }
            }
        }
        panic!("no line with {part:?}");
    };
    wait_for("h1 old line");
    c.set_job("chat", &chatty("\"h1\"", "new"));
    c.drover(&["up", "--yes"]).run();
    wait_for("h1 new line 2");
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(follower.id() as i32, libc::SIGINT);
    }
    let status = follower.wait().unwrap();
    assert_eq!(status.code(), Some(130));
}

/// Peak resident memory of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Follows `drover logs ARGS` into a slow reader for `secs`, returning its peak RSS.
fn follow_for(c: &support::Cluster, args: &[&str], secs: u64) -> u64 {
    let mut child = spawn_drover(c, args, Stdio::null());
    let mut stdout = child.stdout.take().unwrap();
    // A reader slower than the writer: a little at a time.
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 {
                break;
            }
            total += n;
            std::thread::sleep(Duration::from_millis(2));
        }
        total
    });
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        peak = peak.max(peak_rss(child.id()));
        std::thread::sleep(Duration::from_millis(200));
    }
    peak = peak.max(peak_rss(child.id()));
    let _ = child.kill();
    let _ = child.wait();
    let read = reader.join().unwrap();
    assert!(read > 0, "the follower printed nothing");
    peak
}

#[test]
fn following_a_flood_stays_within_64_mb() {
    let c = cluster("l-flood", "").job(
        "flood",
        &format!("image = \"{IMAGE1}\"\nhosts = [\"h1\"]\ncommand = [\"sh\", \"-c\", \"yes 'a flood of lines from a very busy task, as fast as it can write them'\"]\nstop_timeout = \"1s\"\nlog = {{ max_size = \"50m\", max_files = 2 }}\n"),
    );
    c.drover(&["up", "--yes"]).run();
    let peak = follow_for(&c, &["logs", "flood", "-f", "--tail", "100"], 8);
    assert!(peak < 64 << 20, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn an_endless_line_from_a_tty_container_stays_bounded() {
    let c = cluster("l-tty", "").job(
        "spin",
        &format!("image = \"{IMAGE1}\"\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\n"),
    );
    // A TTY container writing `\r` progress without ever ending a line,
    // under the task's name (drover's create has no tty option).
    c.docker(
        "h1",
        &[
            "run",
            "-d",
            "-t",
            "--name",
            "l-tty.spin.h1.0",
            "--label",
            "drover.env=l-tty",
            "--label",
            "drover.job=spin",
            "--label",
            "drover.host=h1",
            "--label",
            "drover.task=0",
            IMAGE1,
            "sh",
            "-c",
            "while :; do printf 'progress 0123456789 0123456789 0123456789\\r'; done",
        ],
    );
    // Let the line grow in the engine's log first: a reader that held a
    // line until its newline would hold all of it. (The engine stamps every
    // piece of one line with the line's start, so the line shows in the
    // history drover reads, not in what follows after it.)
    let log = c.inspect("h1", "l-tty.spin.h1.0", "{{.LogPath}}");
    let size = || std::fs::metadata(&log).map_or(0, |m| m.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    while size() < 96 << 20 {
        assert!(
            Instant::now() < deadline,
            "the log grew only to {} bytes",
            size()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let peak = follow_for(&c, &["logs", "spin", "-f"], 6);
    assert!(peak < 64 << 20, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn exec_runs_a_command_in_one_task_or_all() {
    let c = cluster("l-exec", "").job("chat", &chatty("\"h1\", \"h2\"", "a"));
    c.drover(&["up", "--yes"]).run();
    c.drover(&[
        "exec",
        "chat",
        "--task",
        "h2/0",
        "--",
        "cat",
        "/etc/fixture-version",
    ])
    .stdout("1\n")
    .run();
    c.drover(&[
        "exec",
        "chat",
        "--task",
        "h2/0",
        "--",
        "sh",
        "-c",
        "echo oops >&2; exit 7",
    ])
    .status(7)
    .stderr("oops\n")
    .run();
    c.drover(&["exec", "chat", "--", "sh", "-c", "echo $DROVER_HOST"])
        .stdout("h1\n")
        .stderr("drover: running in chat h1/0 (the first healthy of 2 running tasks; pick another with --task HOST/N)\n")
        .run();
    c.drover(&[
        "exec",
        "chat",
        "--all",
        "--",
        "sh",
        "-c",
        "echo $DROVER_HOST; [ $DROVER_HOST = h2 ] && exit 4; exit 0",
    ])
    .status(4)
    .stdout("h1/0 | h1\nh2/0 | h2\n")
    .stderr("drover: h2/0: exit code 4\n")
    .run();
    c.drover(&["exec", "chat", "--task", "h3/0", "--", "true"])
        .status(1)
        .stderr("error: job chat has no task h3/0 (its tasks: h1/0, h2/0)\n")
        .run();
    c.drover(&["exec", "chat"])
        .status(1)
        .stderr_has("an interactive shell needs a terminal")
        .run();
}

/// An interactive shell on a real terminal (tmux): raw keys, the window
/// size followed, the exit code passed back, the terminal restored.
#[test]
fn an_interactive_shell_has_a_real_terminal() {
    let c = cluster("l-shell", "").job("chat", &chatty("\"h1\"", "a"));
    c.drover(&["up", "--yes"]).run();
    let command = format!(
        "NO_COLOR=1 {} -C {} exec chat; echo EXIT=$?; echo MODE=$(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon); sleep 60",
        support::BIN,
        c.path().display()
    );
    let term = drover_testkit::tmux::Session::start("drover-shell", 120, 30, &command);
    // The shell's prompt (busybox sh as root) before typing.
    term.wait_for("/ #", 20);
    term.send(&["echo drover-$((6*7))", "Enter"]);
    term.wait_for("drover-42", 20);
    term.send(&["stty size", "Enter"]);
    term.wait_for("30 120", 20);
    term.resize(100, 25);
    // The new size reaches the shell through drover (SIGWINCH, then a resize of the exec).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        term.send(&["stty size", "Enter"]);
        std::thread::sleep(Duration::from_millis(300));
        if term.screen().contains("25 100") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the window size never followed:\n{}",
            term.screen()
        );
    }
    term.send(&["exit 3", "Enter"]);
    term.wait_for("EXIT=3", 20);
    let s = term.wait_for("MODE=", 20);
    assert!(
        s.contains("MODE=icanon"),
        "the terminal is back in canonical mode:\n{s}"
    );
}

/// `logs -f` keeps following when the host drops and comes back: the lines
/// written meanwhile arrive after, with no gap and no duplicate.
#[test]
fn logs_follow_through_a_host_outage_without_gap_or_duplicate() {
    let proxy =
        drover_testkit::proxy::CountingProxy::start(&drover_testkit::hosts::Hosts::get().h1);
    let extra = format!("[hosts.via]\ndocker = \"{}\"\n", proxy.address());
    let c = cluster("l-outage", &extra).job("chat", &chatty("\"via\"", "a"));
    c.drover(&["up", "--yes"]).run();
    let (mut follower, rx) = follow_logs(&c, &["logs", "chat", "-f", "--tail", "1"]);
    let mut numbers = Vec::new();
    let collect_until = |deadline: Instant, numbers: &mut Vec<u64>| {
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                if let Some(n) = line
                    .split(" line ")
                    .nth(1)
                    .and_then(|n| n.trim().parse::<u64>().ok())
                {
                    numbers.push(n);
                }
            }
        }
    };
    collect_until(Instant::now() + Duration::from_secs(2), &mut numbers);
    proxy.pause();
    std::thread::sleep(Duration::from_secs(3));
    proxy.resume();
    collect_until(Instant::now() + Duration::from_secs(8), &mut numbers);
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(follower.id() as i32, libc::SIGINT);
    }
    let _ = follower.wait();
    assert!(
        numbers.len() > 20,
        "lines before and after the outage: {numbers:?}"
    );
    for pair in numbers.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "no gap and no duplicate across the outage: {numbers:?}"
        );
    }
}
