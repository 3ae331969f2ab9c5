//! `hashscan-testweb`: serve the synthetic test web by hand.
//!
//! Writes the generated reference file, the manifest and a seeds file into
//! `--out`, prints the `hashscan scan` command that crawls it, and serves
//! until Ctrl-C.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use hashscan_testweb::{TestWeb, WebSpec};

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
    /// Pages per site.
    #[arg(long, default_value_t = 10)]
    pages: usize,
    /// Images per site.
    #[arg(long, default_value_t = 12)]
    images: usize,
    /// Port on every host address (0: pick a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Directory for reference.csv, manifest.json and seeds.txt.
    #[arg(long, default_value = "testweb-out")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = WebSpec {
        seed: args.seed,
        sites: args.sites,
        pages_per_site: args.pages,
        images_per_site: args.images,
        ..WebSpec::default()
    };
    let web = TestWeb::start(spec, args.port).await.context("cannot start the test web")?;
    let m = web.manifest();
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let write = |name: &str, text: String| {
        let path = args.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write("reference.csv", web.reference_csv().to_string())?;
    write("manifest.json", serde_json::to_string_pretty(m)?)?;
    write("seeds.txt", m.seeds.join("\n") + "\n")?;
    let out = args.out.display();
    println!("test web on port {} ({} hosts, {} listed contents reachable)", m.port, m.hosts.len(), m.expected.listed);
    println!("crawl it with:\n");
    let resolve: Vec<String> = m.resolve_flags().iter().map(|r| format!("  --resolve {r}")).collect();
    println!(
        "hashscan scan --seeds {out}/seeds.txt --reference {out}/reference.csv --allow-net {} --rate 50 \\\n{}\n",
        web.allow_net(),
        resolve.join(" \\\n")
    );
    println!("serving until Ctrl-C");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    web.shutdown().await;
    Ok(())
}
