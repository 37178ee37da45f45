//! `engine-sim`: N simulated Docker engines in one process, each on its own
//! unix socket (`DIR/h1.sock` …), for benchmarks and tests at a scale no
//! machine hosts as real engines. See `drover_testkit::sim`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use drover_testkit::sim::{self, ImageSpec, Latencies, SimConfig};

#[derive(Parser)]
#[command(
    name = "engine-sim",
    about = "Serve simulated Docker engines on unix sockets, one per host",
    after_help = "Prints `engine-sim: ready: N engines in DIR (h1.sock … hN.sock)` on stdout once every socket listens; \
                  stops on SIGINT or SIGTERM and removes its sockets.\n\n\
                  Calls: ping version info df list inspect image-list image-inspect image-remove pull import \
                  create start stop kill rename remove pause exec logs events stats volumes.\n\
                  Image keys: exit-after=DUR exit-code=N oom=true health=pass|fail sigterm=exit|ignore \
                  memory=SIZE cpu=PERCENT log-every=DUR."
)]
struct Args {
    /// Engines to serve.
    #[arg(long, value_name = "N", required_unless_present = "show_latency")]
    hosts: Option<usize>,
    /// Directory of the sockets (created if missing); keep the path short: a
    /// socket's path has at most 107 bytes.
    #[arg(long, value_name = "DIR", required_unless_present = "show_latency")]
    dir: Option<PathBuf>,
    /// Seed of IDs, usage figures, collector phases and latency jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Latency of calls, over the defaults: CALL=DURATION[,…] (e.g. list=5ms,start=100ms).
    #[arg(long, value_name = "CALL=DUR,…")]
    latency: Vec<String>,
    /// Multiplies every latency (0: none at all).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    latency_scale: f64,
    /// Each latency varies uniformly within ± this fraction.
    #[arg(long, default_value_t = 0.3, value_name = "FRACTION")]
    jitter: f64,
    /// An image on every engine from the start (and in the registry):
    /// REF[,KEY=VALUE…]. Default: drover-test/busybox:1 and :2.
    #[arg(long, value_name = "SPEC")]
    image: Vec<String>,
    /// An image only in the registry: a pull of it succeeds. REF[,KEY=VALUE…].
    #[arg(long, value_name = "SPEC")]
    registry: Vec<String>,
    /// Worker threads serving every engine.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Append a line per request to FILE: when it came (Unix seconds), how
    /// long its answer took (s), host, method, path, status.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Print the default latency of every call and exit.
    #[arg(long)]
    show_latency: bool,
}

fn config(args: &Args) -> Result<SimConfig, String> {
    let (Some(hosts), Some(dir)) = (args.hosts, &args.dir) else {
        return Err("--hosts and --dir are required".to_string());
    };
    if hosts == 0 {
        return Err("--hosts must be at least 1".to_string());
    }
    if !(0.0..=1.0).contains(&args.jitter) {
        return Err(format!("--jitter {} is not between 0 and 1", args.jitter));
    }
    if !(args.latency_scale >= 0.0 && args.latency_scale.is_finite()) {
        return Err(format!(
            "--latency-scale {} is not a factor of 0 or more",
            args.latency_scale
        ));
    }
    let mut config = SimConfig::new(hosts, dir);
    config.seed = args.seed;
    config.trace.clone_from(&args.trace);
    config.jitter = args.jitter;
    config.threads = args.threads.max(1);
    let mut latency = Latencies::default();
    for item in &args.latency {
        latency.apply(item).map_err(|e| format!("--latency {e}"))?;
    }
    config.latency = latency.scaled(args.latency_scale);
    let parse = |specs: &[String], flag: &str| -> Result<Vec<ImageSpec>, String> {
        specs
            .iter()
            .map(|s| s.parse().map_err(|e| format!("--{flag} {e}")))
            .collect()
    };
    if !args.image.is_empty() {
        config.images = parse(&args.image, "image")?;
    }
    config.registry = parse(&args.registry, "registry")?;
    Ok(config)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.show_latency {
        println!("{}", Latencies::default().to_string().replace(',', "\n"));
        return ExitCode::SUCCESS;
    }
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("engine-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("engine-sim: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = config.dir.display().to_string();
    let hosts = config.hosts;
    let served = runtime.block_on(sim::serve(
        config,
        |paths| {
            let last = paths
                .last()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            println!("engine-sim: ready: {hosts} engines in {dir} (h1.sock … {last})");
        },
        async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        },
    ));
    // Streams still open end with the runtime.
    runtime.shutdown_background();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
