//! A real terminal for tests of what a person types: a detached tmux
//! session running a command, its screen read back, keys sent to it.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Session {
    name: String,
}

fn tmux(args: &[&str]) -> Output {
    Command::new("tmux")
        .args(args)
        .output()
        .expect("run tmux (scripts/install-deps installs it)")
}

impl Session {
    /// A `cols` × `rows` terminal running `command` (a shell line).
    pub fn start(name: &str, cols: u16, rows: u16, command: &str) -> Session {
        let name = format!("{name}-{}", std::process::id());
        let out = tmux(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Session { name }
    }

    /// What the terminal shows now.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &self.name]).stdout)
            .into_owned()
    }

    /// Waits (up to `secs`) until the screen shows `text`; returns the screen.
    #[track_caller]
    pub fn wait_for(&self, text: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {text:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types keys (tmux key names such as `Enter` are keys too).
    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        tmux(&args);
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        tmux(&[
            "resize-window",
            "-t",
            &self.name,
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = tmux(&["kill-session", "-t", &self.name]);
    }
}
