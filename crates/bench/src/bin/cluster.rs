//! Cluster throughput: pages/s and images/s of a scan of a generated
//! loopback web with 1, 2 and 4 fetcher processes (one scheduler, two
//! matchers), against the RabbitMQ and Redis on 127.0.0.1.
//!
//! ```text
//! cargo build --release -p hashscan -p hashscan-bench
//! target/release/hashscan-bench-cluster --hashscan target/release/hashscan
//! ```
//!
//! Politeness is set out of the way (1000 requests/s per host), so the
//! figures are what the workers can do, not what the web allows. Timing is
//! the scan's own: from the scheduler taking it to matching being complete.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use hashscan_testweb::{TestWeb, WebSpec};
use rand::Rng;

#[derive(Parser)]
#[command(name = "hashscan-bench-cluster")]
struct Args {
    /// The `hashscan` binary (a release build).
    #[arg(long)]
    hashscan: PathBuf,
    /// Fetcher counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    fetchers: Vec<usize>,
    /// Sites in the generated web.
    #[arg(long, default_value_t = 12)]
    sites: usize,
    /// Pages per site.
    #[arg(long, default_value_t = 40)]
    pages: usize,
    /// Images per site.
    #[arg(long, default_value_t = 40)]
    images: usize,
    /// Parallel fetches per fetcher process.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

fn run(bin: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin).args(args).output().context("running hashscan")?;
    if !out.status.success() {
        bail!("hashscan {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Runtime::new()?;
    let spec = WebSpec {
        seed: 11,
        sites: args.sites,
        pages_per_site: args.pages,
        images_per_site: args.images,
        ..WebSpec::default()
    };
    let web = rt.block_on(TestWeb::start(spec.clone(), 0))?;
    let m = web.manifest().clone();
    let dir = tempfile::tempdir()?;
    let reference = dir.path().join("reference.csv");
    std::fs::write(&reference, web.reference_csv())?;
    let seeds = dir.path().join("seeds.txt");
    std::fs::write(&seeds, m.seeds.join("\n"))?;
    let resolve: Vec<String> = m.resolve_flags().iter().map(|r| format!("{r:?}")).collect();
    println!("# hashscan-bench-cluster: {}", std::env::args().collect::<Vec<_>>().join(" "));
    println!(
        "web: {} sites × {} pages, {} images each; expected {} pages, {} images; {} cores",
        spec.sites,
        spec.pages_per_site,
        spec.images_per_site,
        m.expected.pages,
        m.expected.images,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!("| fetchers | pages | images | seconds | pages/s | images/s |\n|---|---|---|---|---|---|");
    for &n in &args.fetchers {
        let prefix = format!("hashscan-bench-{:08x}", rand::rng().random::<u32>());
        let data = dir.path().join(&prefix);
        let config = dir.path().join(format!("{prefix}.toml"));
        std::fs::write(
            &config,
            format!(
                "[amqp]\nprefix = {prefix:?}\nprefetch = 32\n[redis]\nprefix = {prefix:?}\n[store]\ndata_dir = {:?}\n\
                 [fetcher]\nconcurrency = {}\nallow_net = [{:?}]\nresolve = [{}]\n[matcher]\nreference = {:?}\n\
                 [scheduler]\nmax_in_flight = 256\n",
                data.display().to_string(),
                args.concurrency,
                web.allow_net(),
                resolve.join(", "),
                reference.display().to_string()
            ),
        )?;
        let mut roles = vec!["scheduler", "matcher", "matcher"];
        roles.extend(std::iter::repeat_n("fetcher", n));
        let mut procs = Procs(Vec::new());
        for role in roles {
            procs.0.push(
                Command::new(&args.hashscan)
                    .args(["worker", role, "--config"])
                    .arg(&config)
                    .env("HASHSCAN_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting a worker")?,
            );
        }
        let cfg = config.to_str().unwrap_or_default();
        let seeds_s = seeds.to_str().unwrap_or_default();
        run(
            &args.hashscan,
            &["scan", "submit", "--config", cfg, "--seeds", seeds_s, "--rate", "1000", "--scan-id", "bench"],
        )?;
        let deadline = Instant::now() + Duration::from_secs(1800);
        let status = loop {
            let v: serde_json::Value = serde_json::from_str(
                run(&args.hashscan, &["scan", "status", "bench", "--config", cfg, "--json"])?.trim(),
            )?;
            if v["status"] == "finished" || v["status"] == "failed" {
                break v;
            }
            if Instant::now() > deadline {
                bail!("the scan did not finish: {v}");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if status["status"] != "finished" {
            bail!("the scan failed: {status}");
        }
        let secs = status["summary"]["elapsed_secs"].as_f64().unwrap_or(f64::NAN);
        let pages = status["summary"]["summary"]["pages"].as_u64().unwrap_or(0);
        let images = status["summary"]["summary"]["images"].as_u64().unwrap_or(0);
        println!("| {n} | {pages} | {images} | {secs:.2} | {:.0} | {:.0} |", pages as f64 / secs, images as f64 / secs);
        drop(procs);
        rt.block_on(async {
            let amqp = hashscan_bus_amqp::AmqpConfig { prefix: prefix.clone(), ..Default::default() };
            if let Ok(bus) = hashscan_bus_amqp::AmqpBus::connect(amqp).await {
                let _ = bus.delete_topology().await;
                bus.close().await;
            }
            if let Ok(r) = hashscan_cluster::registry::Registry::connect("redis://127.0.0.1:6379/", &prefix).await {
                let _ = r.forget_everything().await;
            }
        });
    }
    rt.block_on(web.shutdown());
    Ok(())
}
