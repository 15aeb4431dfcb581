//! The command line: the clap definitions and a thin dispatch; each command lives
//! in a file of its own. Only the commands that act on the local installation
//! load its settings (`probe` checks a remote one and reads none), and only those
//! that touch a database or serve start the log.

mod accept_deletions;
mod check;
mod hash_password;
mod healthcheck;
mod history;
mod import;
mod input;
mod migrate;
mod preview;
mod probe;
mod seed_demo;
mod serve;
mod set_password;
mod stores;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "hr-bridge",
    version,
    about = "Serves an HR database to OMFLOW's Custom HR integration"
)]
pub struct Cli {
    /// TOML configuration file (default: $HR_BRIDGE_CONFIG, if set)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP(S) server
    Serve {
        /// Fill an empty database with a sample organisation and, if no OMFLOW
        /// credentials are configured, generate and print a password
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit
    Migrate,
    /// Read a password from stdin and print its Argon2id PHC string
    HashPassword,
    /// Read a password from stdin and store its Argon2id hash for an employee
    SetPassword {
        /// The employee's username
        username: String,
    },
    /// Validate the HR data exactly as /sync would; exit 1 on any problem
    Check,
    /// Show what /sync would serve now and what it adds, changes and drops against
    /// the last served snapshot; records nothing
    Preview {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show the set of deletions the guard refused and approve exactly that set,
    /// so that the next /sync serving it passes the guard once
    AcceptDeletions {
        /// The pending set's id (as shown); scripts pass it to be exact
        id: Option<i64>,
        /// Approve without asking (needed when stdin is not a terminal)
        #[arg(long)]
        yes: bool,
        /// Why, recorded with the approval
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// List every name of the set, not only the first 200
        #[arg(long)]
        all: bool,
    },
    /// The sync history: every /sync call, one call's changes (`show ID`), or one
    /// person's (`person USERNAME`)
    History(history::HistoryArgs),
    /// Upsert CSV files (header row, column names as in the schema) in one
    /// transaction; on any error print each bad row and write nothing
    #[command(group(clap::ArgGroup::new("files").required(true).multiple(true)))]
    Import {
        /// employees.csv
        #[arg(long, value_name = "FILE", group = "files")]
        employees: Option<PathBuf>,
        /// departments.csv
        #[arg(long, value_name = "FILE", group = "files")]
        departments: Option<PathBuf>,
        /// department_members.csv
        #[arg(long, value_name = "FILE", group = "files")]
        members: Option<PathBuf>,
        /// Validate and show what would change, write nothing
        #[arg(long)]
        dry_run: bool,
        /// Also delete rows of the given tables that the files do not list
        #[arg(long)]
        replace: bool,
    },
    /// Check a deployment as OMFLOW will call it (TLS, Basic Auth, a valid /sync,
    /// optionally one login); exit 1 on any failed check
    Probe(probe::ProbeArgs),
    /// Fill an empty database with a synthetic organisation
    SeedDemo {
        /// Number of employees
        #[arg(long)]
        employees: usize,
        /// Number of departments
        #[arg(long)]
        departments: usize,
    },
    /// Exit 0 when the local server (as configured for `serve`) answers /healthz;
    /// for a container's HEALTHCHECK
    Healthcheck {
        /// Seconds each of connecting, sending and reading may take
        #[arg(long, value_name = "SECS", default_value_t = 3,
              value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
    },
}

/// Parses the command line, runs the command, and turns errors into one line on
/// stderr with a non-zero exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once. Many errors (sqlx's own
/// among them) put their cause in their message and hand it on as a source as
/// well, so the plain chain (`{:#}`) repeats it; a cause whose text the line
/// already holds adds nothing.
fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // One TLS provider for the whole process (rustls refuses to guess when two
    // crates enable different ones); an error only means it is already set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = cli.config.as_deref();
    match cli.command {
        Command::Serve { demo } => serve::run(logged(file)?, demo, cli.config).await,
        Command::Migrate => migrate::run(&logged(file)?).await,
        Command::HashPassword => hash_password::run(&Settings::load(file)?.auth).await,
        Command::SetPassword { username } => set_password::run(&logged(file)?, &username).await,
        Command::Check => check::run(&logged(file)?).await,
        Command::Preview { json } => preview::run(&logged(file)?, json).await,
        Command::AcceptDeletions {
            id,
            yes,
            reason,
            all,
        } => accept_deletions::run(&logged(file)?, id, yes, reason, all).await,
        Command::History(args) => history::run(&logged(file)?, args).await,
        Command::Import {
            employees,
            departments,
            members,
            dry_run,
            replace,
        } => {
            let request = import::request(employees, departments, members, replace);
            import::run(&logged(file)?, request, dry_run).await
        }
        Command::SeedDemo {
            employees,
            departments,
        } => seed_demo::run(&logged(file)?, employees, departments).await,
        Command::Probe(args) => probe::run(args).await,
        Command::Healthcheck { timeout } => {
            healthcheck::run(&Settings::load(file)?.server, timeout).await
        }
    }
}

/// The local settings, with the log started as they say (for commands that
/// touch a database or serve, whose drivers and tasks log).
fn logged(file: Option<&Path>) -> anyhow::Result<Settings> {
    let settings = Settings::load(file)?;
    crate::telemetry::init(&settings.log);
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::error_line;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn an_error_line_says_each_cause_once() {
        let inner = std::io::Error::other("access denied");
        let error = anyhow::Error::new(Repeats(inner)).context("cannot connect");
        assert_eq!(error_line(&error), "cannot connect: outer: access denied");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&plain), "outer: inner");
    }
}
