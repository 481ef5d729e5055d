//! `flynn-codegen`: writes the TypeScript client module, prints the protocol summary or the
//! generated Rust, and classifies the changes between two spec versions.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flynn_codegen_lib::{Spec, diff, rust, summary, typescript};

const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

#[derive(Parser)]
#[command(
    name = "flynn-codegen",
    version,
    about = "Generate code from the Flynn OpenRPC spec and review spec changes"
)]
struct Cli {
    /// The spec to read (default: spec/flynn.openrpc.json of this repository).
    #[arg(long, global = true)]
    spec: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the generated TypeScript module (or, with --check, fail if the checked-in one differs).
    Typescript {
        /// Output file (default: clients/typescript/src/generated/protocol.ts of this repository).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Compare instead of writing; exit 1 when the file is stale.
        #[arg(long)]
        check: bool,
    },
    /// Print the readable protocol summary (counts, then one block per method and event).
    Summary {
        /// Print only the counts.
        #[arg(long)]
        counts: bool,
    },
    /// Print the generated Rust.
    Rust,
    /// Classify the changes from OLD to NEW; exit 1 when any is breaking.
    Diff { old: PathBuf, new: PathBuf },
}

fn load(path: &Path) -> Result<Spec, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Spec::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let spec_path = cli
        .spec
        .unwrap_or_else(|| Path::new(REPO_ROOT).join("spec/flynn.openrpc.json"));
    match cli.command {
        Command::Typescript { out, check } => {
            let spec = load(&spec_path)?;
            let out = out.unwrap_or_else(|| Path::new(REPO_ROOT).join(typescript::OUTPUT_PATH));
            let fresh = typescript::generate(&spec);
            if check {
                let current = std::fs::read_to_string(&out).unwrap_or_default();
                if current != fresh {
                    eprintln!(
                        "{} is stale: run `cargo run -p flynn-codegen -- typescript` and commit the result",
                        out.display()
                    );
                    return Ok(ExitCode::FAILURE);
                }
                println!("{} is up to date", out.display());
            } else {
                if let Some(dir) = out.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                std::fs::write(&out, fresh)
                    .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
                println!("wrote {}", out.display());
            }
        }
        Command::Summary { counts } => {
            let spec = load(&spec_path)?;
            if counts {
                print!("{}", summary::counts(&spec));
            } else {
                print!("{}", summary::render(&spec));
            }
        }
        Command::Rust => {
            let spec = load(&spec_path)?;
            print!("{}", rust::generate(&spec).map_err(|e| e.to_string())?);
        }
        Command::Diff { old, new } => {
            let changes = diff::diff(&load(&old)?, &load(&new)?);
            if changes.is_empty() {
                println!("no protocol changes");
            }
            for change in &changes {
                println!("{change}");
            }
            if diff::is_breaking(&changes) {
                println!("verdict: BREAKING");
                return Ok(ExitCode::FAILURE);
            }
            println!("verdict: compatible");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("flynn-codegen: {message}");
            ExitCode::from(2)
        }
    }
}
