//! Opening the databases for a one-shot command.

use anyhow::bail;

use crate::config::Settings;
use crate::db::{Db, PoolSettings};
use crate::source::{Shape, Source};

/// The pool of hr-bridge's own state database, for a one-shot command: no
/// statement timeout, since only the operator waits (a large import or migration
/// may take a while).
fn connect(settings: &Settings) -> anyhow::Result<Db> {
    Ok(Db::connect_lazy(
        settings.state_url(),
        &PoolSettings {
            statement_timeout: None,
            ..PoolSettings::serving(&settings.database, settings.statement_timeout())
        },
    )?)
}

/// The state database and the HR source.
pub fn open(settings: &Settings) -> anyhow::Result<(Db, Source)> {
    let state = connect(settings)?;
    let source = crate::source::open(settings, &state)?;
    Ok((state, source))
}

/// The state database and the HR database, for commands that write the latter;
/// a mapped source is read-only.
pub fn writable(settings: &Settings, command: &str) -> anyhow::Result<(Db, Source)> {
    let (state, source) = open(settings)?;
    if source.is_mapped() {
        bail!(
            "`hr-bridge {command}` writes hr-bridge's own employee tables, but [source] maps \
             an existing HR database, which hr-bridge only reads; make this change in that \
             HR system instead"
        );
    }
    Ok((state, source))
}

/// Applies migrations: see [`crate::source::migrate`].
pub async fn migrate(state: &Db, source: &Source) -> anyhow::Result<()> {
    crate::source::migrate(state, source).await?;
    Ok(())
}

/// Refuses, in one line naming the key and column, a mapped query that does not fit.
pub async fn check_source(source: &Source) -> anyhow::Result<Shape> {
    Ok(source.check().await?)
}

/// hr-bridge's own state database alone, for commands that read or change only
/// it (lockouts, the audit trail).
pub fn state(settings: &Settings) -> anyhow::Result<Db> {
    connect(settings)
}
