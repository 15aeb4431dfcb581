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

use std::collections::BTreeSet;

use sqlx::migrate::{MigrateError, Migrator};

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

fn migrator(backend: Backend, schema: Schema) -> Migrator {
    let mut migrator = match (backend, schema) {
        (Backend::Postgres, Schema::Directory) => sqlx::migrate!("migrations/postgres/directory"),
        (Backend::Postgres, Schema::State) => sqlx::migrate!("migrations/postgres/state"),
        (Backend::MySql, Schema::Directory) => sqlx::migrate!("migrations/mysql/directory"),
        (Backend::MySql, Schema::State) => sqlx::migrate!("migrations/mysql/state"),
        (Backend::Sqlite, Schema::Directory) => sqlx::migrate!("migrations/sqlite/directory"),
        (Backend::Sqlite, Schema::State) => sqlx::migrate!("migrations/sqlite/state"),
    };
    // The other set's steps share the table; `known_versions` refuses strangers.
    migrator.set_ignore_missing(true);
    migrator
}

/// The step numbers of one set.
pub fn versions(backend: Backend, schema: Schema) -> BTreeSet<i64> {
    migrator(backend, schema)
        .iter()
        .map(|m| m.version)
        .collect()
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
            let migrator = migrator(self.backend(), schema);
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
