//! The command line, as the interface fixes it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "drover",
    version,
    about = "Production environment as code for a few to a few hundred Docker hosts"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The environment directory (default: the nearest directory up from here holding drover.toml)
    #[arg(
        short = 'C',
        long = "dir",
        global = true,
        env = "DROVER_DIR",
        value_name = "DIR"
    )]
    pub dir: Option<PathBuf>,
    /// Also read drover.STAGE.toml over drover.toml
    #[arg(short = 'e', long = "stage", global = true, value_name = "STAGE")]
    pub stage: Option<String>,
    /// Machine-readable output on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// No colors, even on a terminal
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Only these hosts (repeatable)
    #[arg(long = "host", global = true, value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Do not ask for confirmation (required without a terminal)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check the environment; touch no host
    Validate,
    /// Show what `up` would change, against what actually runs (exit 2 when there are changes)
    Diff {
        /// Jobs to compare (default: all, and containers of jobs no longer in the spec)
        jobs: Vec<String>,
    },
    /// Converge hosts to the spec: create, replace, start, remove
    Up {
        /// Jobs to converge (default: all, and remove containers of jobs no longer in the spec)
        jobs: Vec<String>,
    },
    /// Stop and remove a job's containers on all hosts; host volumes stay
    Down {
        #[arg(required = true)]
        jobs: Vec<String>,
    },
    /// Each task: host, container, image, state, health, uptime, restarts, memory, CPU
    Status {
        /// Jobs to show (default: all)
        jobs: Vec<String>,
    },
    /// The tags of the job's image repository, from the registry and each host, newest first
    Images { job: String },
    /// Pick a tag of the job's image, write it into the job's file, and roll it out
    Update {
        job: String,
        /// The image to roll out (default: pick one on a terminal)
        #[arg(long, value_name = "REF")]
        image: Option<String>,
    },
    /// Replace the job's tasks batch by batch, gated on health; roll back on failure
    RollingUpdate {
        job: String,
        /// Roll out this image instead of the file's (the file is not changed)
        #[arg(long, value_name = "REF")]
        image: Option<String>,
        /// Tasks replaced at once (default: the job's [update] parallel)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        parallel: Option<u32>,
    },
    /// Return every task of the job to its previous deployed generation
    Rollback { job: String },
    /// The job's deployed generations: when, by whom, which image
    History { job: String },
    /// Restart every task in place, batch by batch, gated on health
    Restart {
        job: String,
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        parallel: Option<u32>,
    },
    /// Stop every task without removing it; it stays stopped through `up` until `start`
    Stop {
        #[arg(required = true)]
        jobs: Vec<String>,
    },
    /// Start the tasks `stop` stopped
    Start {
        #[arg(required = true)]
        jobs: Vec<String>,
    },
    /// Hold the job against changes by others
    Lock {
        job: String,
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Release a job's lock, whoever holds it
    Unlock { job: String },
    /// Logs of all the job's tasks, each line prefixed by host/task
    Logs {
        job: String,
        /// Only this task (HOST/N)
        #[arg(long, value_name = "HOST/N")]
        task: Option<String>,
        /// Keep following, across replacements and host outages
        #[arg(short, long)]
        follow: bool,
        /// Lines per task from the end (default: all)
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// Only lines since this time: a duration ago (10m, 2h) or an RFC 3339 time
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// The output of the containers that failed the last rollout's gate (kept aside for this)
        #[arg(long, conflicts_with = "follow")]
        failed: bool,
    },
    /// Run a command once in a new container with the job's configuration (on --host or its first host)
    Run {
        job: String,
        /// Run this image instead of the job's
        #[arg(long, value_name = "REF")]
        image: Option<String>,
        /// Keep the container when the command ends (`drover gc` removes it)
        #[arg(long)]
        keep: bool,
        /// The command (after --)
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Run a command in a task; with no command, an interactive shell
    Exec {
        job: String,
        /// The task (HOST/N); default: the first healthy one
        #[arg(long, value_name = "HOST/N")]
        task: Option<String>,
        /// Run on every task of the job, output prefixed like logs
        #[arg(long, conflicts_with = "task")]
        all: bool,
        /// The command (after --)
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Remove what drover left behind: old generations, orphans, dangling images and volumes
    Gc {
        /// List what would be removed, change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Each host: reachable, engine version, disk use, and known daemon pitfalls
    Doctor,
    /// The dashboard: status, live logs, a remote shell, actions
    Web {
        /// Address to listen on
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
        listen: String,
        /// Serve HTTPS with this certificate (PEM)
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The certificate's private key (PEM)
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        /// Append the audit record (logins, shells, actions; JSON lines) to FILE (default: stderr)
        #[arg(long, value_name = "FILE")]
        audit: Option<std::path::PathBuf>,
    },
    /// Build the job's image from `base` + an artifact + `command`, and push it
    Package {
        job: String,
        /// A file or a directory to put at the job's artifact_path
        #[arg(long, value_name = "PATH")]
        artifact: std::path::PathBuf,
        /// The tag (default: UTC time and the git commit of the environment)
        #[arg(long, value_name = "TAG")]
        tag: Option<String>,
    },
    /// Write job files for the containers on the hosts that no drover environment manages, and take them over without restarting them
    Adopt {
        /// Only these containers (names or ID prefixes; default: every one no environment manages)
        containers: Vec<String>,
        /// Print the files it would write (secrets masked), change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Stay running: watch every host and post incidents to [notify]
    Watch,
    /// Post notifications a command handed off, retrying for a few minutes
    /// (internal: drover starts it itself, messages on standard input)
    #[command(name = "notify-retry", hide = true)]
    NotifyRetry,
}
