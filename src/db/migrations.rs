//! hr-bridge's migrations, in two sets per backend:
//!
//! - **directory** (`migrations/<backend>/directory`): the built-in HR tables
//!   (`employees`, `departments`, `department_members`), created only where the HR
//!   data lives in hr-bridge's own tables;
//! - **state** (`migrations/<backend>/state`): hr-bridge's own tables (lockouts,
//!   audit trail, deletion snapshot), created in the state database.
//!
//! Both sets number their steps from one sequence and record them in the one
//! `_sqlx_migrations` table sqlx keeps, so a database migrated before the split (all
//! steps in one folder, all recorded there) is simply up to date: each set finds its
//! own steps applied with unchanged checksums. Each set is told to ignore the other's
//! steps (sqlx's `ignore_missing`); a step that neither set knows (a newer release's)
//! is still refused, as sqlx would have refused it before the split.

use std::borrow::Cow;
use std::collections::BTreeSet;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

use super::{is_unavailable, on_pool, Backend, Db, DbCause, DbError};

/// Which of the two migration sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// The built-in HR tables.
    Directory,
    /// hr-bridge's own state.
    State,
}

/// The built-in HR tables, in the order they can be dropped (members first).
const DIRECTORY_TABLES: [&str; 3] = ["department_members", "employees", "departments"];

/// One step: its number, its description (from the file name) and its SQL.
type Step = (i64, &'static str, &'static str);

// The tables `POSTGRES_DIRECTORY` … `SQLITE_STATE`, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

fn steps(backend: Backend, schema: Schema) -> &'static [Step] {
    match (backend, schema) {
        (Backend::Postgres, Schema::Directory) => POSTGRES_DIRECTORY,
        (Backend::Postgres, Schema::State) => POSTGRES_STATE,
        (Backend::MySql, Schema::Directory) => MYSQL_DIRECTORY,
        (Backend::MySql, Schema::State) => MYSQL_STATE,
        (Backend::Sqlite, Schema::Directory) => SQLITE_DIRECTORY,
        (Backend::Sqlite, Schema::State) => SQLITE_STATE,
    }
}

/// The embedded steps of one set, as sqlx's migrator reads a source.
#[derive(Debug, Clone, Copy)]
struct Embedded(&'static [Step]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    // sqlx's own mark for a step run outside a transaction.
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

async fn migrator(backend: Backend, schema: Schema) -> Result<Migrator, MigrateError> {
    let mut migrator = Migrator::new(Embedded(steps(backend, schema))).await?;
    // The other set's steps share the table; `known_versions` refuses strangers.
    migrator.set_ignore_missing(true);
    Ok(migrator)
}

/// The step numbers of one set.
pub fn versions(backend: Backend, schema: Schema) -> BTreeSet<i64> {
    steps(backend, schema).iter().map(|step| step.0).collect()
}

fn known_versions(backend: Backend) -> BTreeSet<i64> {
    let mut all = versions(backend, Schema::Directory);
    all.extend(versions(backend, Schema::State));
    all
}

fn migrate_error(e: MigrateError) -> DbError {
    match e {
        MigrateError::Execute(inner) if is_unavailable(&inner) => {
            DbError::Unavailable(DbCause::Sqlx(inner))
        }
        other => DbError::Migrate(other),
    }
}

impl Db {
    /// Applies every pending step of `schemas`, in that order.
    pub async fn migrate_schemas(&self, schemas: &[Schema]) -> Result<(), DbError> {
        for &schema in schemas {
            let migrator = migrator(self.backend(), schema)
                .await
                .map_err(migrate_error)?;
            on_pool!(self, |pool| migrator.run(pool).await).map_err(migrate_error)?;
        }
        // A step no set of this release knows was applied by a newer one.
        let known = known_versions(self.backend());
        if let Some(newer) = self
            .applied_versions()
            .await?
            .into_iter()
            .find(|v| !known.contains(v))
        {
            return Err(DbError::Migrate(MigrateError::VersionMissing(newer)));
        }
        Ok(())
    }

    /// Both sets: the built-in layout, HR tables and state in one database.
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.migrate_schemas(&[Schema::Directory, Schema::State])
            .await
    }

    /// Step numbers recorded as applied (empty when never migrated).
    async fn applied_versions(&self) -> Result<BTreeSet<i64>, DbError> {
        const SQL: &str = "SELECT version FROM _sqlx_migrations WHERE success";
        let applied: Result<Vec<i64>, DbError> =
            on_pool!(self, |pool| sqlx::query_scalar(SQL).fetch_all(pool).await)
                .map_err(Into::into);
        match applied {
            Ok(versions) => Ok(versions.into_iter().collect()),
            // The database answered, but without a migrations table: never migrated.
            Err(DbError::Query(_)) => Ok(BTreeSet::new()),
            Err(e) => Err(e),
        }
    }

    /// True when the database answers and every step of the state set is applied
    /// (this is the state database; `/readyz` asks it).
    pub async fn is_ready(&self) -> Result<bool, DbError> {
        let wanted = versions(self.backend(), Schema::State);
        Ok(self.applied_versions().await?.is_superset(&wanted))
    }

    /// For the state database of a mapped source: removes the built-in HR tables
    /// that an earlier release created there (it migrated state and HR tables as
    /// one set), when they are empty, with their steps' records; hr-bridge never
    /// reads them there. Tables holding rows are left alone, with a warning.
    pub async fn drop_unused_directory_tables(&self) -> Result<(), DbError> {
        let directory = versions(self.backend(), Schema::Directory);
        if self.applied_versions().await?.is_disjoint(&directory) {
            return Ok(());
        }
        let mut holding = Vec::new();
        for table in DIRECTORY_TABLES {
            let sql = format!("SELECT 1 FROM {table} LIMIT 1");
            let row: Result<bool, DbError> = on_pool!(self, |pool| sqlx::query(&sql)
                .fetch_optional(pool)
                .await
                .map(|row| row.is_some()))
            .map_err(Into::into);
            match row {
                Ok(true) => holding.push(table),
                // Empty, or absent (dropped by hand).
                Ok(false) | Err(DbError::Query(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if !holding.is_empty() {
            tracing::warn!(
                tables = holding.join(", "),
                "the state database also holds hr-bridge's built-in HR tables with rows; \
                 the mapped [source] does not read them (drop them once they are not needed)"
            );
            return Ok(());
        }
        let numbers: Vec<String> = directory.iter().map(i64::to_string).collect();
        let mut script: Vec<String> = DIRECTORY_TABLES
            .iter()
            .map(|table| format!("DROP TABLE IF EXISTS {table}"))
            .collect();
        script.push(format!(
            "DELETE FROM _sqlx_migrations WHERE version IN ({})",
            numbers.join(", ")
        ));
        // One transaction where DDL is transactional (PostgreSQL, SQLite); MySQL
        // commits each DROP, and the records go last, so a retry finishes the job.
        let script = match self.backend() {
            Backend::MySql => format!("{};", script.join(";\n")),
            _ => format!("BEGIN;\n{};\nCOMMIT;", script.join(";\n")),
        };
        self.execute_script(&script).await?;
        tracing::info!(
            "removed the empty built-in HR tables from the state database (a mapped [source] \
             keeps only hr-bridge's own tables there)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKENDS: [Backend; 3] = [Backend::Postgres, Backend::MySql, Backend::Sqlite];

    #[test]
    fn the_two_sets_share_one_numbering_without_overlap_on_every_backend() {
        let directory = versions(Backend::Postgres, Schema::Directory);
        let state = versions(Backend::Postgres, Schema::State);
        assert!(directory.is_disjoint(&state), "{directory:?} / {state:?}");
        for backend in BACKENDS {
            assert_eq!(
                versions(backend, Schema::Directory),
                directory,
                "{backend:?}"
            );
            assert_eq!(versions(backend, Schema::State), state, "{backend:?}");
        }
    }

    #[tokio::test]
    async fn the_embedded_steps_are_the_folders_as_sqlx_reads_them() {
        // Same numbers, descriptions, kinds and checksums as sqlx's own reading of
        // the files: a database migrated by an earlier release (which embedded them
        // with `sqlx::migrate!`) finds every applied step unchanged.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for backend in BACKENDS {
            for (schema, folder) in [(Schema::Directory, "directory"), (Schema::State, "state")] {
                let path = root.join(backend.name()).join(folder);
                let read = Migrator::new(path.as_path()).await.expect("the folder");
                let embedded = migrator(backend, schema).await.expect("embedded");
                let summary = |m: &Migrator| -> Vec<_> {
                    m.iter()
                        .map(|m| {
                            let kind = format!("{:?}", m.migration_type);
                            (
                                m.version,
                                m.description.to_string(),
                                kind,
                                m.checksum.to_vec(),
                                m.no_tx,
                            )
                        })
                        .collect()
                };
                assert_eq!(summary(&embedded), summary(&read), "{}", path.display());
                assert!(!summary(&read).is_empty(), "{}", path.display());
            }
        }
    }

    #[test]
    fn no_migration_sits_outside_the_two_sets() {
        // A step added to migrations/<backend>/ itself (as before the split) would
        // never run: it must go into directory/ or state/.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for backend in BACKENDS {
            let dir = root.join(backend.name());
            for entry in std::fs::read_dir(&dir).expect("migrations folder") {
                let path = entry.expect("entry").path();
                assert!(
                    path.is_dir(),
                    "{} must move into directory/ or state/",
                    path.display()
                );
            }
        }
    }
}
