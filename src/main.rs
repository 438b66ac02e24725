//! `tpswitch`: parses the command line and wires the parts together.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use tpswitch::app;
use tpswitch::config::{self, Config, ConfigLocation};

/// jemalloc, not glibc's malloc: it returns a peak's pages to the OS by
/// itself (`app::memory`; why in docs/decisions.md).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "tpswitch",
    version,
    about = "SIP/RTP softswitch giving a contact centre timed presence",
    // `tpswitch --config x.toml` is `tpswitch run --config x.toml`.
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

/// `--config` for every subcommand, documented once.
#[derive(Args, Clone, Default)]
struct ConfigArg {
    /// Configuration file. Default: $TPSWITCH_CONFIG, else
    /// ./config/tpswitch.toml, else /etc/tpswitch/tpswitch.toml.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

#[derive(Args, Clone, Default)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Override sip.bind (UDP and TCP), such as 0.0.0.0:5060 or
    /// localhost:5060 (a name is resolved once, IPv4 first).
    #[arg(long, value_name = "ADDR", value_parser = socket_addr)]
    sip_bind: Option<SocketAddr>,
    /// Override http.bind, such as 127.0.0.1:8080 or localhost:8080.
    #[arg(long, value_name = "ADDR", value_parser = socket_addr)]
    http_bind: Option<SocketAddr>,
    /// Log lines as text (default) or as one JSON object per line, with
    /// the call's span (call_id, flow, caller, agent) in each.
    #[arg(
        long,
        value_name = "FORMAT",
        value_enum,
        env = "TPSWITCH_LOG_FORMAT",
        default_value_t = LogFormatArg::Text
    )]
    log_format: LogFormatArg,
}

#[derive(Clone, Copy, Default, clap::ValueEnum)]
enum LogFormatArg {
    #[default]
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the switch (the default when no command is given).
    Run(RunArgs),
    /// Validate a configuration, its prompt files and the environment
    /// variables it names, then exit.
    CheckConfig(ConfigArg),
    /// List every user with their presence state (reads the store; works
    /// while the switch runs).
    Agents {
        #[command(flatten)]
        config: ConfigArg,
        /// One JSON array instead of a table (the config line goes to stderr).
        #[arg(long)]
        json: bool,
    },
    /// An agent's presence history, newest first, with who changed it and
    /// why (reads the store; works while the switch runs).
    History {
        /// The agent's user id.
        agent: String,
        #[command(flatten)]
        config: ConfigArg,
        /// One JSON array instead of a table (the config line goes to stderr).
        #[arg(long)]
        json: bool,
        /// From this time: RFC 3339, or a duration ago such as "90m", "1h",
        /// "2d" or "1w" (default: the whole history).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// At most this many entries, 1 to 10000.
        #[arg(long, value_name = "N", default_value_t = tpswitch::cli::history::DEFAULT_LIMIT)]
        limit: u32,
    },
    /// List customer calls and the attempts to reach agents (reads the
    /// store; works while the switch runs).
    Calls {
        #[command(flatten)]
        config: ConfigArg,
        /// One JSON array instead of a table (the config line goes to stderr).
        #[arg(long)]
        json: bool,
        /// From this time: RFC 3339, or a duration ago such as "90m", "1h",
        /// "2d" or "1w" (default: the last 24 hours).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// List log-in calls (caller, agent, outcome) instead of customer calls.
        #[arg(long)]
        logins: bool,
    },
    /// Print the running directory (the file's users, flows and dispatch
    /// mappings and those made through the API) as TOML that check-config
    /// accepts: the file as written, then the store's objects. Relative
    /// paths are the file's: save the output beside it.
    Export(ConfigArg),
    /// Ask the running switch to re-read its configuration file (through
    /// POST /api/v1/reload, with the token named by http.token_env): what
    /// changed applies to the next call, or nothing changes and every error
    /// is shown. Exit status 1 when the file was refused.
    Reload {
        #[command(flatten)]
        config: ConfigArg,
        /// The switch's HTTP address when it is not http.bind (the switch
        /// was started with --http-bind).
        #[arg(long, value_name = "ADDR", value_parser = socket_addr)]
        http: Option<SocketAddr>,
        /// Print the switch's JSON answer instead of a summary (the config
        /// line goes to stderr).
        #[arg(long)]
        json: bool,
    },
}

/// An address:port, or a host name and port resolved now. IPv4 first when a
/// name has both (localhost): the trunk and SIPp in the tests speak IPv4.
fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("{s:?} is not an address:port ({e}); write e.g. 127.0.0.1:5060"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{s:?} resolves to no address; write e.g. 127.0.0.1:5060"))
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

/// Finds, announces and loads the configuration. The announcement is the
/// first line of every subcommand's output: on stdout, except where stdout
/// is JSON (then stderr, so the JSON stays parseable as a whole).
fn load(arg: &ConfigArg, command: &str, to_stderr: bool) -> Result<Config, ExitCode> {
    let path = locate(arg, command, to_stderr)?;
    Config::load(&path).map_err(|e| {
        eprintln!("tpswitch {command}: {e}");
        ExitCode::from(2)
    })
}

/// Finds and announces the configuration file without validating it.
fn locate(arg: &ConfigArg, command: &str, to_stderr: bool) -> Result<PathBuf, ExitCode> {
    let fail = |e: config::ConfigError| {
        eprintln!("tpswitch {command}: {e}");
        ExitCode::from(2)
    };
    let ConfigLocation { path, origin } = config::locate(
        arg.config.as_deref(),
        std::env::var_os(config::locate::CONFIG_ENV),
        |p| p.is_file(),
    )
    .map_err(fail)?;
    let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    let line = format!("tpswitch: config {} (from {origin})", shown.display());
    if to_stderr {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    Ok(path)
}

/// The checks that read the environment, shared by `run` and `check-config`.
fn check_environment(cfg: &Config, command: &str) -> Result<(), ExitCode> {
    cfg.check_environment(|name| std::env::var(name).ok())
        .map_err(|e| {
            eprintln!("tpswitch {command}: {e}");
            ExitCode::from(2)
        })
}

/// The certificate, key and CA files the config names, read as `run` will
/// read them: both commands refuse the same files with exit code 2.
fn check_tls(cfg: &Config, command: &str) -> Result<(), ExitCode> {
    app::tls_settings(cfg).map(|_| ()).map_err(|e| {
        eprintln!("tpswitch {command}: {e}");
        ExitCode::from(2)
    })
}

fn run(args: RunArgs) -> ExitCode {
    app::init_logging(match args.log_format {
        LogFormatArg::Text => app::LogFormat::Text,
        LogFormatArg::Json => app::LogFormat::Json,
    });
    let mut cfg = match load(&args.config, "run", false) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(code) = check_environment(&cfg, "run") {
        return code;
    }
    if let Err(code) = check_tls(&cfg, "run") {
        return code;
    }
    let overrides = app::Overrides {
        sip_bind: args.sip_bind,
        http_bind: args.http_bind,
    };
    overrides.apply(&mut cfg);
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
    match rt.block_on(app::run(cfg, overrides)) {
        Ok(()) => ExitCode::SUCCESS,
        // A configuration problem, with check-config's words and code.
        Err(e @ app::AppError::TrunkUnresolved { .. }) => {
            eprintln!("tpswitch run: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("tpswitch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Run(args) => run(args),
        Command::Agents { config, json } => {
            let cfg = match load(&config, "agents", json) {
                Ok(c) => c,
                Err(code) => return code,
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
            let cfg = match load(&config, "calls", json) {
                Ok(c) => c,
                Err(code) => return code,
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
        Command::History {
            agent,
            config,
            json,
            since,
            limit,
        } => {
            let cfg = match load(&config, "history", json) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let since = match since {
                None => None,
                Some(s) => match tpswitch::cli::calls::parse_since(Some(&s), chrono::Utc::now()) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        eprintln!("tpswitch history: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            let report = block_on(tpswitch::cli::history::history_report(
                &cfg, &agent, since, limit, json,
            ));
            print_report("history", report)
        }
        Command::Reload { config, http, json } => {
            // Not validated here: a broken file is what the switch must
            // report, so only its [http] section is read (to find the API).
            let path = match locate(&config, "reload", json) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("tpswitch reload: {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            let api = Config::http_section(&text, &path);
            let token = std::env::var(&api.token_env).ok().filter(|t| !t.is_empty());
            match tpswitch::cli::reload::reload(&api, http, token.as_deref(), json) {
                Ok((applied, out)) => {
                    print!("{out}");
                    if applied {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("tpswitch reload: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Export(config) => {
            let cfg = match load(&config, "export", true) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match block_on(tpswitch::cli::export::export(&cfg)).and_then(|r| r) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tpswitch export: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig(config) => {
            let cfg = match load(&config, "check-config", false) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let Err(code) = check_environment(&cfg, "check-config") {
                return code;
            }
            if let Err(code) = check_tls(&cfg, "check-config") {
                return code;
            }
            // The same resolution `run` makes (RFC 3263), with the same
            // message when a trunk name gives no address.
            match block_on(app::resolve_trunks(&cfg)) {
                Ok(Ok(starts)) => {
                    for t in starts.iter().filter(|t| t.resolved.is_none()) {
                        eprintln!(
                            "tpswitch check-config: warning: {}.outbound_proxy does not resolve; it starts down (dns.start_unresolved)",
                            t.key
                        );
                    }
                }
                Ok(Err(e)) => {
                    eprintln!("{}: {e}", cfg.source.display());
                    return ExitCode::from(2);
                }
                Err(e) => {
                    eprintln!("tpswitch check-config: {e}");
                    return ExitCode::FAILURE;
                }
            }
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
