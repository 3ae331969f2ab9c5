//! `hashscan refset check|build`: validate lists, compile them into one index.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hashscan_refset::{check_list, CheckReport, ListSpec, ReferenceSet, SetSpec};

#[derive(Subcommand)]
pub enum RefsetCommand {
    /// Validate lists and print counts per algorithm and list, duplicates and
    /// every malformed line; or describe a built index.
    Check(ListsArgs),
    /// Compile lists into one index file (memory-mapped at load, readable by
    /// its owner only) and print its version.
    Build {
        #[command(flatten)]
        lists: ListsArgs,
        /// The index file to write.
        #[arg(long, short)]
        out: PathBuf,
        /// The set's name, shown with every hit.
        #[arg(long, default_value = "reference")]
        name: String,
    },
}

/// The lists of a set, given in one of three ways.
#[derive(Args)]
pub struct ListsArgs {
    /// List files: each a `match` list with default settings, named after
    /// the file (or a built index / a `.toml` definition for `check`).
    files: Vec<PathBuf>,
    /// A list with settings: `file=PATH[,name=N][,kind=match|ignore][,format=csv|jsonl|lines|signals]
    /// [,algo=A][,radius=31][,min-quality=50][,weight=1]` (repeatable).
    #[arg(long = "list", value_name = "SPEC")]
    lists: Vec<String>,
    /// A TOML definition of the whole set (`[[list]]` tables with the same keys).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ListsArgs {
    fn specs(&self, name: &str) -> anyhow::Result<SetSpec> {
        if let Some(config) = &self.config {
            if !self.files.is_empty() || !self.lists.is_empty() {
                bail!("give lists either with --config or on the command line, not both");
            }
            return Ok(SetSpec::from_toml_file(config)?);
        }
        let mut lists: Vec<ListSpec> = self.files.iter().map(|f| ListSpec::for_file(f)).collect();
        for spec in &self.lists {
            lists.push(ListSpec::parse_kv(spec)?);
        }
        if lists.is_empty() {
            bail!("no lists: give list files, --list SPEC or --config FILE");
        }
        Ok(SetSpec::new(name, lists)?)
    }
}

fn is_index(path: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok()
        && &head == b"HSREFSET"
}

fn print_report(r: &CheckReport) {
    println!("list       {} ({})", r.list, r.source);
    if !r.version.is_empty() {
        println!("version    {}", r.version);
    }
    println!("rows       {}", r.rows);
    println!("items      {}", r.items);
    for (algo, n) in &r.counts {
        println!("  {:<8} {n}", algo.to_string());
    }
    println!("duplicates {}", r.duplicates);
    for w in &r.warnings {
        println!("warning: {w}");
    }
    for e in &r.errors {
        println!("error: {e}");
    }
    if r.errors.is_empty() {
        println!("ok");
    } else {
        println!("{} error(s)", r.errors.len());
    }
}

fn describe_set(set: &ReferenceSet) {
    println!("set        {} ({})", set.name(), set.source_name());
    println!("version    {}", set.version());
    println!("items      {}", set.len());
    for l in set.lists() {
        let counts: Vec<String> = l.counts.iter().map(|(a, n)| format!("{a} {n}")).collect();
        println!(
            "  list {:<16} {:<6} radius {:<3} min-quality {:<3} weight {:<4} items {:<9} duplicates {:<6} {}  [{}]",
            l.name,
            l.kind.name(),
            l.pdq_radius,
            l.min_quality,
            l.weight,
            l.items,
            l.duplicates,
            counts.join(", "),
            l.source
        );
    }
}

pub fn run(cmd: RefsetCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RefsetCommand::Check(args) => {
            // A built index or a definition: describe it (loading checks it).
            if let [file] = &args.files[..] {
                if is_index(file) || file.extension().is_some_and(|e| e == "toml") {
                    let (set, warnings) = match ReferenceSet::load(file) {
                        Ok(ok) => ok,
                        Err(hashscan_refset::LoadError::Invalid { errors }) => {
                            for e in &errors {
                                println!("error: {e}");
                            }
                            println!("{} error(s)", errors.len());
                            return Ok(ExitCode::FAILURE);
                        }
                        Err(e) => return Err(e.into()),
                    };
                    for w in warnings {
                        println!("warning: {w}");
                    }
                    describe_set(&set);
                    println!("ok");
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let spec = args.specs("reference")?;
            let mut ok = true;
            for (i, list) in spec.lists.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                let report = check_list(list).with_context(|| format!("list {}", list.name))?;
                ok &= report.is_ok();
                print_report(&report);
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        RefsetCommand::Build { lists, out, name } => {
            let spec = lists.specs(&name)?;
            let (set, warnings) = match ReferenceSet::from_spec(&spec) {
                Ok(ok) => ok,
                Err(hashscan_refset::LoadError::Invalid { errors }) => {
                    for e in errors.iter().take(50) {
                        eprintln!("error: {e}");
                    }
                    if errors.len() > 50 {
                        eprintln!("… and {} more (run `hashscan refset check` for all)", errors.len() - 50);
                    }
                    bail!("{} malformed line(s); nothing written", errors.len());
                }
                Err(e) => return Err(e.into()),
            };
            for w in warnings {
                eprintln!("warning: {w}");
            }
            set.write_index(&out).with_context(|| format!("cannot write {}", out.display()))?;
            // Read it back: what the matcher will load is checked now, not at 3 a.m.
            let written = ReferenceSet::open_index(&out)?;
            if written.version() != set.version() {
                bail!("{} reads back with another version; the disk may be failing", out.display());
            }
            describe_set(&written);
            println!("wrote {} ({} bytes)", out.display(), written.image().len());
            Ok(ExitCode::SUCCESS)
        }
    }
}
