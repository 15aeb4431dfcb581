//! The command line: clap definitions and what each command does.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{GuardSwitch, Settings};
use crate::db::{Db, PoolSettings};
use crate::directory::import::{self, ImportError, ImportRequest};
use crate::directory::keys::{self, key_problem, Key};
use crate::directory::{self, demo, SyncError};
use crate::escape::{escape, quote};
use crate::password::{hash_argon2id, prune_auth_state};
use crate::server::{self, RunningServer};
use crate::source::Source;

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
    /// Approve the current data as the new snapshot, so that the next /sync passes
    /// the deletion guard
    AcceptDeletions,
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
    Probe(crate::probe::ProbeArgs),
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
    let settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init(&settings.log);
    // One TLS provider for the whole process (rustls refuses to guess when two
    // crates enable different ones); an error only means it is already set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Serve { demo } => serve(settings, demo, cli.config).await,
        Command::Probe(args) => crate::probe::run(args).await,
        Command::Healthcheck { timeout } => {
            let target = crate::healthcheck::Target::from_settings(&settings.server)?;
            let url = target.url();
            tokio::task::spawn_blocking(move || {
                crate::healthcheck::check(&target, Duration::from_secs(timeout))
            })
            .await
            .context("health check task failed")??;
            println!("healthy: {url} answered 200");
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let (db, source) = open_stores(&settings)?;
            migrate(&db, &source).await?;
            println!("migrations applied ({})", db.backend().name());
            Ok(ExitCode::SUCCESS)
        }
        Command::HashPassword => {
            let password = read_password("Password: ")?;
            println!("{}", hash_off_runtime(password, &settings).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::SetPassword { username } => {
            // The rule import and /sync apply: a name they refuse never gets a password.
            if let Some(reason) = key_problem(Key::Username, &username) {
                bail!("username {} {reason}", keys::shown(&username));
            }
            let password = read_password(&format!("New password for {}: ", escape(&username)))?;
            let source = writable_source(&settings, "set-password")?;
            let hash = hash_off_runtime(password, &settings).await?;
            if source.db().set_password_hash(&username, &hash).await? {
                println!("password set for {}", escape(&username));
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: no employee with username {}", quote(&username));
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Check => {
            let (db, source) = open_stores(&settings)?;
            let shape = check_source(&source).await?;
            if source.is_mapped() && shape.employees_active && !shape.credentials_active {
                eprintln!(
                    "warning: source.credentials returns no \"active\" column while \
                     source.employees does: on its own it would let people /sync does not \
                     serve (leavers) log in; hr-bridge refuses them by asking source.employees \
                     at each login (audit reason inactive), but return active from \
                     source.credentials as well"
                );
            }
            let report = directory::check(&source).await?;
            // Not a /sync problem (the exit code stays /sync's), but an operator
            // must see accounts that can never log in, possibly planted. Only the
            // built-in table can be listed: a mapped source looks up one user.
            if !source.is_mapped() {
                for username in crate::password::costly_hashes(source.db()).await? {
                    println!(
                        "warning: employee {}: stored password hash is beyond the \
                         cost caps and never matches (audit reason hash_too_costly); reset it \
                         with `hr-bridge set-password`",
                        keys::shown(&username)
                    );
                }
            }
            let _ = db;
            // Standard output stays one line per problem (scripts count them);
            // what /sync leaves out without refusing goes beside the summary.
            for warning in report.findings.warnings() {
                eprintln!("warning: {warning}");
            }
            if report.findings.inactive_memberships > 0 {
                eprintln!(
                    "note: {} membership(s) of inactive employees or departments are left out",
                    report.findings.inactive_memberships
                );
            }
            let counts = format!(
                "{} user(s) and {} department(s)",
                report.findings.users, report.findings.groups
            );
            if report.problems.is_empty() {
                println!("OK: the HR data can be served to OMFLOW: /sync would serve {counts}");
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("active in the HR data: {counts}");
            Ok(report_problems(&report.problems))
        }
        Command::Preview { json } => {
            let (db, source) = open_stores(&settings)?;
            check_source(&source).await?;
            let preview =
                match directory::preview(&source, &db, &settings.sync.guard_limits()).await {
                    Err(SyncError::Invalid(problems)) => return Ok(report_problems(&problems)),
                    other => other?,
                };
            if json {
                let stdout = std::io::stdout().lock();
                let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout);
                crate::preview::write_json(&preview, &settings.sync.guard_limits(), &mut out)?;
            } else {
                print!("{}", crate::preview::to_text(&preview));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::AcceptDeletions => {
            let (db, source) = open_stores(&settings)?;
            check_source(&source).await?;
            let (payload, drops) = match directory::accept_deletions(&source, &db).await {
                Err(SyncError::Invalid(problems)) => return Ok(report_problems(&problems)),
                other => other?,
            };
            println!(
                "approved: the snapshot now holds {} users and {} departments; \
                 the next /sync may drop {} user(s) and {} department(s) against the last one",
                payload.users, payload.groups, drops.users, drops.groups
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            employees,
            departments,
            members,
            dry_run,
            replace,
        } => {
            let source = writable_source(&settings, "import")?;
            let db = source.db().clone();
            let request = ImportRequest {
                employees,
                departments,
                members,
                replace,
            };
            let plan = match import::plan(&db, &request).await {
                Ok(plan) => plan,
                Err(ImportError::Invalid(problems)) => {
                    for problem in &problems {
                        eprintln!("{problem}");
                    }
                    eprintln!("{} problem(s); nothing was written", problems.len());
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => {
                    eprintln!("error: {}", escape(&e.to_string()));
                    return Ok(ExitCode::FAILURE);
                }
            };
            // Written first, described after: a refused write prints no plan that
            // did not happen, only its one-line reason.
            let written = if dry_run {
                import::rehearse(&db, &plan).await
            } else {
                import::apply(&db, &plan).await
            };
            if let Err(e) = written {
                eprintln!("error: {}", escape(&e.to_string()));
                return Ok(ExitCode::FAILURE);
            }
            print_import_plan(&plan);
            if dry_run {
                println!("dry run: nothing was written");
            } else {
                println!("imported in one transaction; run `hr-bridge preview` to see what /sync will do");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::SeedDemo {
            employees,
            departments,
        } => {
            let (state, source) = writable_stores(&settings, "seed-demo")?;
            let db = source.db().clone();
            if settings.database.auto_migrate {
                migrate(&state, &source).await?;
            }
            let password = random_secret();
            let started = std::time::Instant::now();
            seed(
                &db,
                &settings,
                demo::synthetic(employees, departments),
                &password,
            )
            .await?;
            println!(
                "seeded {employees} employees and {departments} departments in {:.1}s; \
                 every employee's password is: {}",
                started.elapsed().as_secs_f64(),
                password.expose_secret()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The added/updated/unchanged/deleted counts and keys of an import, per table.
fn print_import_plan(plan: &import::ImportPlan) {
    for (name, change) in [
        ("employees", &plan.employees),
        ("departments", &plan.departments),
        ("department_members", &plan.members),
    ] {
        println!(
            "{name}: {} added, {} updated, {} unchanged, {} deleted",
            change.added.len(),
            change.updated.len(),
            change.unchanged,
            change.deleted.len()
        );
        for (what, keys) in [
            ("added", &change.added),
            ("updated", &change.updated),
            ("deleted", &change.deleted),
        ] {
            if !keys.is_empty() {
                let shown: Vec<String> = keys
                    .iter()
                    .take(20)
                    .map(|k| escape(k).to_string())
                    .collect();
                let more = keys.len().saturating_sub(shown.len());
                let tail = if more > 0 {
                    format!(" … and {more} more")
                } else {
                    String::new()
                };
                println!("  {what}: {}{tail}", shown.join(", "));
            }
        }
    }
}

/// Prints each problem and says /sync would refuse; exit code 1.
fn report_problems(problems: &[directory::Problem]) -> ExitCode {
    for problem in problems {
        println!("{problem}");
    }
    eprintln!(
        "{} problem(s): /sync would refuse to serve this data",
        problems.len()
    );
    ExitCode::FAILURE
}

/// The pool of hr-bridge's own state database, for a one-shot command: no
/// statement timeout, since only the operator waits (a large import or migration
/// may take a while).
fn connect(settings: &Settings) -> anyhow::Result<Db> {
    Ok(Db::connect_lazy(
        settings.state_url(),
        &PoolSettings {
            statement_timeout: None,
            ..settings.pool_settings()
        },
    )?)
}

/// The state database and the HR source.
fn open_stores(settings: &Settings) -> anyhow::Result<(Db, Source)> {
    let state = connect(settings)?;
    let source = crate::source::open(settings, &state)?;
    Ok((state, source))
}

/// Applies migrations: see [`crate::source::migrate`].
async fn migrate(state: &Db, source: &Source) -> anyhow::Result<()> {
    crate::source::migrate(state, source).await?;
    Ok(())
}

/// Refuses, in one line naming the key and column, a mapped query that does not fit.
async fn check_source(source: &Source) -> anyhow::Result<crate::source::Shape> {
    Ok(source.check().await?)
}

/// The HR database for commands that write it; a mapped source is read-only.
fn writable_source(settings: &Settings, command: &str) -> anyhow::Result<Source> {
    Ok(writable_stores(settings, command)?.1)
}

/// The state database and the HR database, for commands that write the latter.
fn writable_stores(settings: &Settings, command: &str) -> anyhow::Result<(Db, Source)> {
    let (state, source) = open_stores(settings)?;
    if source.is_mapped() {
        bail!(
            "`hr-bridge {command}` writes hr-bridge's own employee tables, but [source] maps \
             an existing HR database, which hr-bridge only reads; make this change in that \
             HR system instead"
        );
    }
    Ok((state, source))
}

/// Hashes off the runtime's workers, as everywhere else.
async fn hash_off_runtime(password: SecretString, settings: &Settings) -> anyhow::Result<String> {
    let settings = settings.auth.argon2();
    let hash = tokio::task::spawn_blocking(move || hash_argon2id(&password, &settings))
        .await
        .context("hashing task failed")??;
    Ok(hash)
}

/// A random 24-character password, for demo credentials.
fn random_secret() -> SecretString {
    SecretString::from(Alphanumeric.sample_string(&mut rand::thread_rng(), 24))
}

/// Inserts `org` into an empty database, every employee sharing one hash of `password`.
async fn seed(
    db: &Db,
    settings: &Settings,
    org: demo::Organisation,
    password: &SecretString,
) -> anyhow::Result<()> {
    if !db.directory_is_empty().await? {
        bail!("the database already holds employees or departments; seeding needs an empty one");
    }
    let hash = hash_off_runtime(password.clone(), settings).await?;
    db.insert_directory(&org.departments, org.chunks, &hash)
        .await?;
    Ok(())
}

/// Reads one line from stdin without echo on a terminal; the line break is not
/// part of the password.
fn read_password(prompt: &str) -> anyhow::Result<SecretString> {
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).context("cannot read the password")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        line
    };
    if line.is_empty() {
        bail!("the password is empty");
    }
    Ok(SecretString::from(line))
}

async fn serve(
    mut settings: Settings,
    demo: bool,
    config: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    if !demo && !settings.omflow.is_configured() {
        bail!(Settings::missing_credentials_message());
    }
    if settings.sync.guard == GuardSwitch::Off {
        tracing::warn!(
            "the deletion guard is OFF (sync.guard = \"off\"): every /sync is served whatever \
             it drops, and OMFLOW deletes every user and department it lacks"
        );
    }
    // Serving: statements are bounded so that a lock answers 503, not a hang.
    let db = Db::connect_lazy(settings.state_url(), &settings.pool_settings())?;
    let source = crate::source::open(&settings, &db)?;
    // A demo fills its database before serving, so it needs it up at once; a
    // real deployment starts without it (see `server::launch`).
    if demo && settings.database.auto_migrate {
        migrate(&db, &source)
            .await
            .context("cannot apply migrations (set database.auto_migrate = false to skip)")?;
    }
    // A mapped query that does not fit stops start-up at once, naming the key;
    // an HR database that is down (or slow) is checked again until it answers.
    if source.is_mapped() {
        match tokio::time::timeout(Duration::from_secs(2), source.check()).await {
            Ok(Err(crate::source::SourceError::Query(problem))) => bail!(problem),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(
                error = %e,
                "the HR database is not reachable yet; the mapped queries are checked when it is"
            ),
            Err(_) => {
                tracing::warn!("the HR database is slow to answer; checking it in the background")
            }
        }
    }
    let mut banner = Vec::new();
    let mut generated = None;
    if demo {
        if !source.is_mapped() && source.db().directory_is_empty().await? {
            let password = random_secret();
            seed(source.db(), &settings, demo::sample(), &password).await?;
            banner.push(format!(
                "demo: filled the empty database with a sample organisation; \
                 every employee (alice, bob, …) has the password {}",
                password.expose_secret()
            ));
        }
        if !settings.omflow.is_configured() {
            let password = random_secret();
            settings.omflow.username = Some("omflow".into());
            settings.omflow.password_hash = None;
            settings.omflow.password = Some(password.clone());
            generated = Some(password);
        }
    }
    // SIGHUP re-reads the settings from the same file and environment. (A demo's
    // generated OMFLOW credential is not among them; nothing reloads that.)
    let reload: server::reload::Loader =
        std::sync::Arc::new(move || Settings::load(config.as_deref()));
    let running = server::launch(&settings, db.clone(), source, reload).await?;
    let ready = running.database_gate();
    let prune_settings = settings.clone();
    let prune_db = db.clone();
    let maintenance = tokio::spawn(async move {
        ready.wait_open().await;
        prune_periodically(prune_db, prune_settings).await;
    });
    if demo {
        print_demo_banner(&running, &banner, generated.as_ref());
    }
    server::shutdown_signal().await;
    running
        .shutdown(Duration::from_secs(settings.server.shutdown_grace_secs))
        .await?;
    maintenance.abort();
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Prunes the audit trail and idle lockout rows at start-up and then hourly.
async fn prune_periodically(db: Db, settings: Settings) {
    let mut hourly = tokio::time::interval(Duration::from_secs(3600));
    loop {
        hourly.tick().await;
        let lockout = Duration::from_secs(settings.auth.lockout_secs);
        match prune_auth_state(&db, settings.auth.audit_retention_days, lockout).await {
            Ok(removed) => tracing::info!(removed, "pruned the authentication audit trail"),
            Err(e) => tracing::warn!(error = %e, "could not prune the audit trail"),
        }
    }
}

fn print_demo_banner(running: &RunningServer, lines: &[String], generated: Option<&SecretString>) {
    for line in lines {
        println!("{line}");
    }
    let mut addr = running.local_addr();
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let scheme = if running.base_url().starts_with("https") {
        "https"
    } else {
        "http"
    };
    let insecure = if scheme == "https" { "-k " } else { "" };
    // Only a generated password is printed; a configured one is the operator's.
    if let Some(password) = generated {
        let user = "omflow";
        println!(
            "demo: OMFLOW Basic Auth is {user} / {} (generated for this run only)",
            password.expose_secret()
        );
        println!(
            "try:  curl {insecure}-u '{user}:{}' -X POST {scheme}://{addr}/sync",
            password.expose_secret()
        );
    }
    println!("demo: serving on {scheme}://{addr}; stop with Ctrl-C");
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
