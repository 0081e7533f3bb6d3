//! The SQLite adapter: one file, WAL journal, migrations applied on open.
//!
//! Bulk writes are multi-row `INSERT`s of a few hundred rows each inside one
//! transaction: a statement per row would spend its time crossing from async code to
//! SQLite's thread, not writing. Large loads drop the secondary indexes first and
//! rebuild them once at the end, which is cheaper than maintaining them row by row.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Sqlite, SqliteConnection, SqlitePool};

use super::{Store, StoreError};
use crate::domain;

mod app_uploads;
mod approvals;
mod caches;
mod catalog;
mod jobs;
mod runs;
mod stores;
mod tokens;
mod webhooks;

/// Rows per multi-row INSERT; keeps bound parameters well under SQLite's limit.
const ROWS_PER_INSERT: usize = 400;

pub struct SqliteStore {
    pool: SqlitePool,
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// The file a `sqlite:` URL names, if it names one (not `:memory:`).
pub fn database_file(url: &str) -> Option<std::path::PathBuf> {
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    (file.as_os_str() != ":memory:" && !file.as_os_str().is_empty()).then(|| file.to_owned())
}

impl SqliteStore {
    /// Opens (creating if missing) the SQLite file a `sqlite://` URL names, and applies
    /// migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let connect = |source| StoreError::Connect {
            url: url.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(connect)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-131072")
            .pragma("temp_store", "memory")
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(5));
        // sqlx's migration lock is a no-op on SQLite: two processes opening a new
        // database at once would both create its tables (and race to switch it to
        // WAL). A lock file beside it makes them take turns: the second finds the
        // database set up.
        let lock = migration_lock(options.get_filename()).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(connect)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        drop(lock);
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// An exclusive lock on `DB-migrations.lock` beside the database file, held until
/// dropped (none for an in-memory database).
async fn migration_lock(db: &std::path::Path) -> Result<Option<std::fs::File>, StoreError> {
    let name = db.to_string_lossy();
    if name.is_empty() || name == ":memory:" {
        return Ok(None);
    }
    let path = std::path::PathBuf::from(format!("{name}-migrations.lock"));
    let lock = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("the migration lock task failed: {e}")))?;
    lock.map(Some).map_err(|source| StoreError::Lock {
        path: format!("{name}-migrations.lock"),
        source,
    })
}

/// Seconds since the epoch: how the tables date what they keep.
fn now() -> i64 {
    Utc::now().timestamp()
}

/// A finished run's rows, inside the caller's transaction.
async fn insert_run(
    conn: &mut SqliteConnection,
    run: &super::RunRecord,
    bundles: &[domain::Bundle],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO runs (run_id, store_id, status, started_at, finished_at, as_of, config, timings, counts, summary, report_html) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&run.run_id)
    .bind(&run.store_id)
    .bind(&run.status)
    .bind(run.started_at.timestamp())
    .bind(run.finished_at.timestamp())
    .bind(run.as_of.timestamp())
    .bind(&run.config)
    .bind(&run.timings)
    .bind(&run.counts)
    .bind(&run.summary)
    .bind(&run.report_html)
    .execute(&mut *conn)
    .await?;
    for (position, b) in bundles.iter().enumerate() {
        sqlx::query(
            "INSERT INTO bundles (run_id, bundle_id, store_id, objective, bundle_type, score, body, position) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&run.run_id)
        .bind(&b.id)
        .bind(&run.store_id)
        .bind(b.objective.as_str())
        .bind(b.bundle_type.as_str())
        .bind(b.score.total)
        .bind(bundle_json(b)?)
        .bind(position as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A bundle's stored document.
fn bundle_json(b: &domain::Bundle) -> Result<String, StoreError> {
    serde_json::to_string(b)
        .map_err(|e| StoreError::Corrupt(format!("bundle {} does not serialise: {e}", b.id)))
}

/// A stored bundle document, read back.
fn bundle_from(body: &str, whose: &str) -> Result<domain::Bundle, StoreError> {
    serde_json::from_str(body).map_err(|e| {
        StoreError::Corrupt(format!("{whose}: a stored bundle does not read back: {e}"))
    })
}

/// `(?,?,…),(?,?,…)…`: the values of a multi-row insert of `rows` rows of `cols`.
fn placeholders(cols: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(","));
    vec![one; rows].join(",")
}

/// Inserts `rows` in multi-row statements: `head` + `VALUES (...),(...)` + `tail`.
/// `bind` binds one row's values; it also gets `shared`, a value every row carries (the
/// store id, or the model id), borrowed for as long as the statement lives.
async fn insert_chunked<T, F>(
    conn: &mut SqliteConnection,
    shared: &str,
    head: &str,
    tail: &str,
    cols: usize,
    rows: &[T],
    bind: F,
) -> Result<(), sqlx::Error>
where
    T: Sync,
    F: for<'q> Fn(Query<'q>, &'q str, &'q T) -> Query<'q>,
{
    if rows.is_empty() {
        return Ok(());
    }
    let full_sql = format!(
        "{head} VALUES {} {tail}",
        placeholders(cols, ROWS_PER_INSERT)
    );
    let last_len = rows.len() % ROWS_PER_INSERT;
    let last_sql = format!(
        "{head} VALUES {} {tail}",
        placeholders(cols, last_len.max(1))
    );
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = if chunk.len() == ROWS_PER_INSERT {
            &full_sql
        } else {
            &last_sql
        };
        let mut q: Query<'_> = sqlx::query(sql);
        for r in chunk {
            q = bind(q, shared, r);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The port is the union of its sub-traits, each implemented in its own file under
/// `sqlite/`.
impl Store for SqliteStore {}
