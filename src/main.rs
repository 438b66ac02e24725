//! `tpswitch`: parses the command line and wires the parts together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use tpswitch::app;
use tpswitch::config::Config;

#[derive(Parser)]
#[command(
    name = "tpswitch",
    version,
    about = "SIP/RTP softswitch giving a contact centre timed presence"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the switch (the default when no command is given).
    Run {
        /// Configuration file; the embedded default when absent.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Override sip.bind (UDP and TCP).
        #[arg(long, value_name = "ADDR")]
        sip_bind: Option<SocketAddr>,
        /// Override http.bind.
        #[arg(long, value_name = "ADDR")]
        http_bind: Option<SocketAddr>,
    },
    /// Validate a configuration and its prompt files, then exit.
    CheckConfig {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// List every user with their presence state (reads the store; works
    /// while the switch runs).
    Agents {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List customer calls and the attempts to reach agents (reads the
    /// store; works while the switch runs).
    Calls {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// From this time: RFC 3339, or a duration ago such as "1h"
        /// (default: the last 24 hours).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// List log-in calls (caller, agent, outcome) instead of customer calls.
        #[arg(long)]
        logins: bool,
    },
}

/// A small runtime for the read-only subcommands.
fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(f))
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Prints a read-only subcommand's report (ending in a newline), or its error.
fn print_report<E: std::fmt::Display>(
    command: &str,
    report: Result<Result<String, E>, String>,
) -> ExitCode {
    match report {
        Ok(Ok(report)) => {
            print!("{report}");
            if !report.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("tpswitch {command}: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("tpswitch {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p),
        None => Config::embedded_default(),
    }
    .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run {
        config: None,
        sip_bind: None,
        http_bind: None,
    });
    match command {
        Command::Run {
            config,
            sip_bind,
            http_bind,
        } => {
            app::init_logging();
            let mut cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("tpswitch: invalid configuration:\n{e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(b) = sip_bind {
                cfg.sip.bind = b;
            }
            if let Some(b) = http_bind {
                cfg.http.bind = b;
            }
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("tpswitch: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(app::run(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tpswitch: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Agents { config, json } => {
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let report = block_on(tpswitch::cli::agents::agents_report(
                &cfg,
                json,
                chrono::Utc::now(),
            ));
            print_report("agents", report)
        }
        Command::Calls {
            config,
            json,
            since,
            logins,
        } => {
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let since =
                match tpswitch::cli::calls::parse_since(since.as_deref(), chrono::Utc::now()) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("tpswitch calls: {e}");
                        return ExitCode::from(2);
                    }
                };
            let report = if logins {
                block_on(tpswitch::cli::calls::logins_report(&cfg, json, since))
            } else {
                block_on(tpswitch::cli::calls::calls_report(&cfg, json, since))
            };
            print_report("calls", report)
        }
        Command::CheckConfig { config } => {
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            match app::load_prompts(&cfg) {
                Ok(lib) => {
                    println!(
                        "{}: OK ({} users, {} flows, {} dispatch mappings, {} prompts)",
                        cfg.source.display(),
                        cfg.users.len(),
                        cfg.flows.len(),
                        cfg.dispatch_mappings.len(),
                        lib.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e}", cfg.source.display());
                    ExitCode::from(2)
                }
            }
        }
    }
}
