//! `hashscan refset check`: validate a reference file, report everything.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

pub fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let report = hashscan_refset::check(path).with_context(|| format!("cannot read {}", path.display()))?;
    println!("file       {}", report.source);
    println!("version    {}", report.version);
    println!("rows       {}", report.rows);
    println!("items      {}", report.items);
    for (algo, n) in &report.counts {
        println!("  {:<8} {n}", algo.to_string());
    }
    println!("duplicates {}", report.duplicates);
    for w in &report.warnings {
        println!("warning: {w}");
    }
    for e in &report.errors {
        println!("error: {e}");
    }
    if report.errors.is_empty() {
        println!("ok");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} error(s)", report.errors.len());
        Ok(ExitCode::FAILURE)
    }
}
