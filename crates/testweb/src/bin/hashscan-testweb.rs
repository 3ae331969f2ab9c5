//! `hashscan-testweb`: serve the synthetic test web by hand.
//!
//! Writes the generated reference file, the manifest and a seeds file into
//! `--out`, prints the `hashscan scan` command that crawls it, and serves
//! until Ctrl-C. With `--traps` it serves the trap web (hostile and broken
//! hosts) instead; with `--eval` the evaluation web, whose `truth.json`
//! gives every image content its ground-truth class for measuring the risk
//! score.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hashscan_testweb::{EvalClass, EvalSpec, EvalWeb, TestWeb, TrapSpec, TrapWeb, WebSpec};

/// Serve the deterministic loopback test web of benign generated images.
#[derive(Parser)]
#[command(name = "hashscan-testweb", version)]
struct Args {
    /// Seed of the generated web.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of sites.
    #[arg(long, default_value_t = 4)]
    sites: usize,
    /// Pages per site (default 10; 12 for `--eval`).
    #[arg(long)]
    pages: Option<usize>,
    /// Images per site.
    #[arg(long, default_value_t = 12)]
    images: usize,
    /// Port on every host address (0: pick a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Directory for reference.csv, manifest.json (truth.json for `--eval`) and seeds.txt.
    #[arg(long, default_value = "testweb-out")]
    out: PathBuf,
    /// Serve the trap web (robots rules, crawl delay, infinite spaces,
    /// redirect loops, broken images, gzip bomb, slow and busy hosts,
    /// ETags, aliases) instead of the main web.
    #[arg(long, conflicts_with = "eval")]
    traps: bool,
    /// Serve the evaluation web (bad and benign sites, every image content
    /// with a ground-truth class) instead of the main web.
    #[arg(long)]
    eval: bool,
    /// Evaluation web: sites carrying listed material (default 6).
    #[arg(long, requires = "eval")]
    bad_sites: Option<usize>,
    /// Evaluation web: benign sites (default 10).
    #[arg(long, requires = "eval")]
    benign_sites: Option<usize>,
    /// Trap web: how long the slow host stalls, e.g. `300ms` or `5s` (its body takes twice this).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    slow_delay: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number.parse().map_err(|_| format!("not a duration: {s}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        _ => Err(format!("not a duration (use 300ms or 5s): {s}")),
    }
}

/// Writes reference.csv, the ground truth (as `truth_name`) and seeds.txt into `out`.
fn write_files(out: &Path, reference: &str, truth_name: &str, truth: String, seeds: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, text) in
        [("reference.csv", reference.to_string()), (truth_name, truth), ("seeds.txt", seeds.join("\n") + "\n")]
    {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Prints the `hashscan scan` command that crawls the served web; `extra`
/// goes after the common flags.
fn print_command(out: &Path, allow_net: &str, resolve: &[String], extra: &str) {
    let out = out.display();
    println!("crawl it with:\n");
    let resolve: Vec<String> = resolve.iter().map(|r| format!("  --resolve {r}")).collect();
    println!(
        "hashscan scan --seeds {out}/seeds.txt --reference {out}/reference.csv --allow-net {allow_net} --rate 50{extra} \\\n{}\n",
        resolve.join(" \\\n")
    );
}

/// Serves the evaluation web until Ctrl-C.
async fn serve_eval(args: &Args) -> anyhow::Result<()> {
    let defaults = EvalSpec::default();
    let spec = EvalSpec {
        seed: args.seed,
        bad_sites: args.bad_sites.unwrap_or(defaults.bad_sites),
        benign_sites: args.benign_sites.unwrap_or(defaults.benign_sites),
        pages_per_site: args.pages.unwrap_or(defaults.pages_per_site),
        ..defaults
    };
    let web = EvalWeb::start(spec, args.port).await.context("cannot start the evaluation web")?;
    let t = web.truth();
    write_files(&args.out, web.reference_csv(), "truth.json", serde_json::to_string_pretty(t)?, &t.seeds)?;
    println!(
        "evaluation web on port {} ({} hosts, {} pages, {} image URLs)",
        t.port,
        t.hosts.len(),
        t.pages.len(),
        t.image_urls()
    );
    for (class, n) in t.counts() {
        println!("  {:<15} {n:>4} contents", class.name());
    }
    let mut distances: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
    for c in t.contents.iter().filter(|c| c.class == EvalClass::Variant) {
        if let (Some(kind), Some(d)) = (c.variant_kind.as_deref(), c.variant_distance) {
            distances.entry(kind).or_default().push(d);
        }
    }
    for (kind, mut d) in distances {
        d.sort_unstable();
        let within = d.iter().filter(|x| **x <= 31).count();
        println!(
            "  variant {kind:<10} PDQ distance min {} median {} max {} ({within}/{} within 31)",
            d[0],
            d[d.len() / 2],
            d[d.len() - 1],
            d.len()
        );
    }
    print_command(&args.out, &web.allow_net(), &t.resolve_flags(), " --scope domain --max-depth 8");
    println!("serving until Ctrl-C");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    web.shutdown().await;
    Ok(())
}

/// Serves the trap web until Ctrl-C.
async fn serve_traps(args: &Args) -> anyhow::Result<()> {
    let spec = TrapSpec { seed: args.seed, slow_delay: args.slow_delay, ..TrapSpec::default() };
    let web = TrapWeb::start(spec, args.port).await.context("cannot start the trap web")?;
    let m = web.manifest();
    write_files(&args.out, web.reference_csv(), "manifest.json", serde_json::to_string_pretty(m)?, &m.seeds)?;
    println!(
        "trap web on port {} ({} host names, {} expected failures, {} listed image(s) to find)",
        m.port,
        m.hosts.len(),
        m.expected_failures.len(),
        m.listed_allowed.len()
    );
    print_command(&args.out, &web.allow_net(), &m.resolve_flags(), "");
    println!("serving until Ctrl-C");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    web.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.traps {
        return serve_traps(&args).await;
    }
    if args.eval {
        return serve_eval(&args).await;
    }
    let spec = WebSpec {
        seed: args.seed,
        sites: args.sites,
        pages_per_site: args.pages.unwrap_or(10),
        images_per_site: args.images,
        ..WebSpec::default()
    };
    let web = TestWeb::start(spec, args.port).await.context("cannot start the test web")?;
    let m = web.manifest();
    write_files(&args.out, web.reference_csv(), "manifest.json", serde_json::to_string_pretty(m)?, &m.seeds)?;
    println!("test web on port {} ({} hosts, {} listed contents reachable)", m.port, m.hosts.len(), m.expected.listed);
    print_command(&args.out, &web.allow_net(), &m.resolve_flags(), "");
    println!("serving until Ctrl-C");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    web.shutdown().await;
    Ok(())
}
