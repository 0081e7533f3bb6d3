//! The SQLite adapter: one file, WAL journal, migrations applied on open.
//!
//! Bulk writes are multi-row `INSERT`s of a few hundred rows each inside one
//! transaction: a statement per row would spend its time crossing from async code to
//! SQLite's thread, not writing. Large loads drop the secondary indexes first and
//! rebuild them once at the end, which is cheaper than maintaining them row by row.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row, Sqlite, SqliteConnection, SqlitePool};

use super::{HistoryLine, HistoryOrder, Store, StoreData, StoreError, WriteSummary};
use crate::domain::{
    self, Currency, Money, ObservedRow, Product, ProductObservations, ProductStatus, StoreId,
};
use crate::ingest::{CatalogKeys, IngestBatch};

mod app_uploads;
mod jobs;
mod tokens;
mod webhooks;

/// Line loads above this many rows rebuild secondary indexes once instead of
/// maintaining them per row.
const BULK_LINES: u64 = 50_000;
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

fn placeholders(cols: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(","));
    vec![one; rows].join(",")
}

/// Inserts `rows` in multi-row statements: `head` + `VALUES (...),(...)` + `tail`.
/// `bind` binds one row's values; it also gets `shared`, a value every row carries (the
/// store id, or the model id), borrowed for as long as the statement lives.
/// Observation rows as stored: 20 little-endian bytes each (time, description, price).
const OBSERVED_ROW_BYTES: usize = 20;

fn pack_rows(rows: &[ObservedRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * OBSERVED_ROW_BYTES);
    for r in rows {
        out.extend_from_slice(&r.at.to_le_bytes());
        out.extend_from_slice(&r.description.to_le_bytes());
        out.extend_from_slice(&r.unit_price_micros.to_le_bytes());
    }
    out
}

fn unpack_rows(bytes: &[u8]) -> Option<Vec<ObservedRow>> {
    if !bytes.len().is_multiple_of(OBSERVED_ROW_BYTES) {
        return None;
    }
    bytes
        .chunks_exact(OBSERVED_ROW_BYTES)
        .map(|c| {
            Some(ObservedRow {
                at: i64::from_le_bytes(c[0..8].try_into().ok()?),
                description: u32::from_le_bytes(c[8..12].try_into().ok()?),
                unit_price_micros: i64::from_le_bytes(c[12..20].try_into().ok()?),
            })
        })
        .collect()
}

/// Stores the batch's observations, and forgets those of products this batch brings
/// without them: a real catalog entry replaces a derived one.
async fn write_observations(
    tx: &mut SqliteConnection,
    sid: &str,
    batch: &IngestBatch,
    ts: i64,
) -> Result<(), sqlx::Error> {
    let observed: HashSet<&str> = batch
        .observations
        .iter()
        .map(|o| o.variant_id.as_str())
        .collect();
    let any_stored: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM product_observations WHERE store_id = ?)")
            .bind(sid)
            .fetch_one(&mut *tx)
            .await?;
    if any_stored {
        for p in batch
            .products
            .iter()
            .filter(|p| !observed.contains(p.variant_id.as_str()))
        {
            sqlx::query("DELETE FROM product_observations WHERE store_id = ? AND variant_id = ?")
                .bind(sid)
                .bind(p.variant_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
    }
    let rows: Vec<(&str, String, Vec<u8>)> = batch
        .observations
        .iter()
        .map(|o| {
            let descriptions =
                serde_json::to_string(&o.descriptions).unwrap_or_else(|_| "[]".into());
            (o.variant_id.as_str(), descriptions, pack_rows(&o.rows))
        })
        .collect();
    insert_chunked(
        tx,
        sid,
        "INSERT INTO product_observations (store_id, variant_id, descriptions, rows, updated_at)",
        "ON CONFLICT (store_id, variant_id) DO UPDATE SET descriptions = excluded.descriptions, \
         rows = excluded.rows, updated_at = excluded.updated_at",
        5,
        &rows,
        |q, sid, (variant, descriptions, packed)| {
            q.bind(sid)
                .bind(*variant)
                .bind(descriptions.as_str())
                .bind(packed.as_slice())
                .bind(ts)
        },
    )
    .await
}

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

fn product_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Product, StoreError> {
    let currency_text: String = row.try_get("currency")?;
    let currency = Currency::parse(&currency_text)
        .map_err(|_| StoreError::Corrupt(format!("bad currency {currency_text:?} in products")))?;
    let money = |minor: Option<i64>| minor.map(|m| Money::new(m, currency));
    let tags_json: String = row.try_get("tags")?;
    let tags: Vec<String> = serde_json::from_str(&tags_json)
        .map_err(|e| StoreError::Corrupt(format!("bad tags {tags_json:?}: {e}")))?;
    let status: Option<String> = row.try_get("status")?;
    let created_at: Option<i64> = row.try_get("created_at")?;
    Ok(Product {
        variant_id: row.try_get("variant_id")?,
        product_id: row.try_get("product_id")?,
        sku: row.try_get("sku")?,
        handle: row.try_get("handle")?,
        title: row.try_get("title")?,
        variant_title: row.try_get("variant_title")?,
        description: row.try_get("description")?,
        category: row.try_get("category")?,
        product_type: row.try_get("product_type")?,
        vendor: row.try_get("vendor")?,
        tags,
        price: Money::new(row.try_get("price_minor")?, currency),
        compare_at_price: money(row.try_get("compare_at_minor")?),
        cost: money(row.try_get("cost_minor")?),
        inventory: row.try_get("inventory")?,
        status: status.as_deref().and_then(ProductStatus::parse),
        created_at: created_at.and_then(|t| DateTime::<Utc>::from_timestamp(t, 0)),
        gift_card: row.try_get("gift_card")?,
        inventory_item_id: row.try_get("inventory_item_id")?,
    })
}

/// Joins lines stored without a catalog product to the catalog as it is now: by
/// variant id, else SKU, else product id, else exact title (the same order as at
/// ingest; the smallest variant id wins ties of ids; a title several products share
/// joins none).
async fn join_stored_lines(
    conn: &mut SqliteConnection,
    store_id: &str,
) -> Result<u64, sqlx::Error> {
    let mut joined = 0;
    for (column, matcher) in [
        (
            "ref_variant_id",
            "p.variant_id = order_lines.ref_variant_id",
        ),
        ("ref_sku", "p.sku = order_lines.ref_sku"),
        (
            "ref_product_id",
            "p.product_id = order_lines.ref_product_id",
        ),
        (
            "title",
            "(p.title = order_lines.title OR p.title || ' - ' || p.variant_title = order_lines.title)",
        ),
    ] {
        // A title joins only when one product has it.
        let unique = if column == "title" {
            format!(
                " AND (SELECT COUNT(DISTINCT p.variant_id) FROM products p \
                 WHERE p.store_id = order_lines.store_id AND {matcher}) = 1"
            )
        } else {
            String::new()
        };
        let sql = format!(
            "UPDATE order_lines SET item_id = \
               (SELECT MIN(p.variant_id) FROM products p WHERE p.store_id = order_lines.store_id AND {matcher}) \
             WHERE store_id = ? AND item_id IS NULL AND {column} IS NOT NULL \
               AND EXISTS (SELECT 1 FROM products p WHERE p.store_id = order_lines.store_id AND {matcher}){unique}"
        );
        joined += sqlx::query(&sql)
            .bind(store_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(joined)
}

#[async_trait]
impl Store for SqliteStore {
    async fn get_store(&self, id: &StoreId) -> Result<Option<domain::Store>, StoreError> {
        let row = sqlx::query("SELECT currency, locale FROM stores WHERE store_id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let currency: String = row.try_get("currency")?;
        Ok(Some(domain::Store {
            id: id.clone(),
            currency: Currency::parse(&currency)
                .map_err(|_| StoreError::Corrupt(format!("bad store currency {currency:?}")))?,
            locale: row.try_get("locale")?,
        }))
    }

    async fn store_ids(&self) -> Result<Vec<StoreId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT store_id FROM stores ORDER BY store_id")
            .fetch_all(&self.pool)
            .await?;
        ids.into_iter()
            .map(|id| {
                StoreId::parse(&id).map_err(|_| StoreError::Corrupt(format!("bad store id {id:?}")))
            })
            .collect()
    }

    async fn store_rules(&self, id: &StoreId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT rules FROM stores WHERE store_id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::UnknownStore(id.to_string()))?;
        Ok(row.try_get("rules")?)
    }

    async fn put_store_rules(&self, id: &StoreId, rules: Option<&str>) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp();
        let updated = sqlx::query("UPDATE stores SET rules = ?, updated_at = ? WHERE store_id = ?")
            .bind(rules)
            .bind(now)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::UnknownStore(id.to_string()));
        }
        Ok(())
    }

    async fn catalog_keys(&self, id: &StoreId) -> Result<CatalogKeys, StoreError> {
        let mut keys = CatalogKeys::default();
        let mut rows = sqlx::query(
            "SELECT variant_id, sku, product_id, title, variant_title FROM products \
             WHERE store_id = ? ORDER BY variant_id",
        )
        .bind(id.as_str())
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let variant_id: &str = row.try_get(0)?;
            let sku: Option<&str> = row.try_get(1)?;
            let product_id: &str = row.try_get(2)?;
            let title: &str = row.try_get(3)?;
            let variant_title: Option<&str> = row.try_get(4)?;
            keys.insert(variant_id, sku, product_id, title);
            if let Some(v) = variant_title {
                keys.insert(variant_id, sku, product_id, &format!("{title} - {v}"));
            }
        }
        Ok(keys)
    }

    #[tracing::instrument(skip_all, fields(store = %store.id, products = batch.products.len(), orders = batch.orders.len()))]
    async fn write_ingest(
        &self,
        store: &domain::Store,
        batch: &IngestBatch,
    ) -> Result<WriteSummary, StoreError> {
        let sid = store.id.as_str();
        let ts = now();
        let clock = std::time::Instant::now();
        let step = |what: &str| tracing::debug!(elapsed = clock.elapsed().as_secs_f64(), "{what}");
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO stores (store_id, currency, locale, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (store_id) DO UPDATE SET currency = excluded.currency, locale = excluded.locale, \
             updated_at = excluded.updated_at",
        )
        .bind(sid)
        .bind(store.currency.code())
        .bind(&store.locale)
        .bind(ts)
        .bind(ts)
        .execute(&mut *tx)
        .await?;

        // An order with a rejected line never replaces the stored one.
        let mut kept_stored: HashSet<&str> = HashSet::new();
        for id in &batch.incomplete_orders {
            let stored: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM orders WHERE store_id = ? AND order_id = ?)",
            )
            .bind(sid)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if stored {
                kept_stored.insert(id.as_str());
            }
        }
        let orders: Vec<&domain::Order> = batch
            .orders
            .iter()
            .filter(|o| !kept_stored.contains(o.order_id.as_str()))
            .collect();
        let line_count: u64 = orders.iter().map(|o| o.lines.len() as u64).sum();
        let bulk = line_count >= BULK_LINES;
        if bulk {
            sqlx::query("DROP INDEX IF EXISTS orders_by_time")
                .execute(&mut *tx)
                .await?;
        }

        let tags: Vec<String> = batch
            .products
            .iter()
            .map(|p| serde_json::to_string(&p.tags).unwrap_or_else(|_| "[]".into()))
            .collect();
        let products: Vec<(&Product, &String)> = batch.products.iter().zip(&tags).collect();
        insert_chunked(
            &mut tx,
            sid,
            "INSERT INTO products (store_id, variant_id, product_id, sku, handle, title, variant_title, \
             description, category, product_type, vendor, tags, currency, price_minor, compare_at_minor, \
             cost_minor, inventory, status, created_at, gift_card, inventory_item_id, updated_at)",
            // A value the file does not give (no column, a blank cell, a bad optional
            // value ignored) keeps the stored one: a thinner export or one bad cell
            // must not erase what an earlier file said.
            "ON CONFLICT (store_id, variant_id) DO UPDATE SET product_id = excluded.product_id, \
             sku = COALESCE(excluded.sku, products.sku), \
             handle = COALESCE(excluded.handle, products.handle), title = excluded.title, \
             variant_title = COALESCE(excluded.variant_title, products.variant_title), \
             description = CASE WHEN excluded.description = '' THEN products.description \
                           ELSE excluded.description END, \
             category = COALESCE(excluded.category, products.category), \
             product_type = COALESCE(excluded.product_type, products.product_type), \
             vendor = COALESCE(excluded.vendor, products.vendor), \
             tags = CASE WHEN excluded.tags = '[]' THEN products.tags ELSE excluded.tags END, \
             currency = excluded.currency, price_minor = excluded.price_minor, \
             compare_at_minor = COALESCE(excluded.compare_at_minor, products.compare_at_minor), \
             cost_minor = COALESCE(excluded.cost_minor, products.cost_minor), \
             inventory = COALESCE(excluded.inventory, products.inventory), \
             status = COALESCE(excluded.status, products.status), \
             created_at = COALESCE(excluded.created_at, products.created_at), \
             gift_card = excluded.gift_card, \
             inventory_item_id = COALESCE(excluded.inventory_item_id, products.inventory_item_id), \
             updated_at = excluded.updated_at",
            22,
            &products,
            |q, sid, (p, tags)| {
                q.bind(sid)
                    .bind(p.variant_id.as_str())
                    .bind(p.product_id.as_str())
                    .bind(p.sku.as_deref())
                    .bind(p.handle.as_deref())
                    .bind(p.title.as_str())
                    .bind(p.variant_title.as_deref())
                    .bind(p.description.as_str())
                    .bind(p.category.as_deref())
                    .bind(p.product_type.as_deref())
                    .bind(p.vendor.as_deref())
                    .bind(tags.as_str())
                    .bind(p.price.currency.code())
                    .bind(p.price.minor)
                    .bind(p.compare_at_price.map(|m| m.minor))
                    .bind(p.cost.map(|m| m.minor))
                    .bind(p.inventory)
                    .bind(p.status.map(|s| s.as_str()))
                    .bind(p.created_at.map(|t| t.timestamp()))
                    .bind(p.gift_card)
                    .bind(p.inventory_item_id.as_deref())
                    .bind(ts)
            },
        )
        .await?;

        step("Products written");
        write_observations(&mut tx, sid, batch, ts).await?;

        // Re-ingested orders replace their lines whole; a fresh store has none to replace.
        let has_orders: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE store_id = ?)")
                .bind(sid)
                .fetch_one(&mut *tx)
                .await?;
        if has_orders && !orders.is_empty() {
            sqlx::query(
                "CREATE TEMP TABLE IF NOT EXISTS incoming_orders (order_id TEXT PRIMARY KEY)",
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM incoming_orders")
                .execute(&mut *tx)
                .await?;
            insert_chunked(
                &mut tx,
                sid,
                "INSERT INTO incoming_orders (order_id)",
                "ON CONFLICT DO NOTHING",
                1,
                &orders,
                |q, _, o| q.bind(o.order_id.as_str()),
            )
            .await?;
            sqlx::query(
                "DELETE FROM order_lines WHERE store_id = ? \
                 AND order_id IN (SELECT order_id FROM incoming_orders)",
            )
            .bind(sid)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DROP TABLE incoming_orders")
                .execute(&mut *tx)
                .await?;
        }
        insert_chunked(
            &mut tx,
            sid,
            "INSERT INTO orders (store_id, order_id, name, created_at, customer_key, currency, currency_assumed)",
            "ON CONFLICT (store_id, order_id) DO UPDATE SET name = COALESCE(excluded.name, orders.name), \
             created_at = excluded.created_at, \
             customer_key = COALESCE(excluded.customer_key, orders.customer_key), \
             currency = excluded.currency, currency_assumed = excluded.currency_assumed",
            7,
            &orders,
            |q, sid, o| {
                q.bind(sid)
                    .bind(o.order_id.as_str())
                    .bind(o.name.as_deref())
                    .bind(o.created_at.timestamp())
                    .bind(o.customer_key.as_deref())
                    .bind(o.currency.code())
                    .bind(o.currency_assumed)
            },
        )
        .await?;

        step("Orders written");
        let keys: Vec<String> = orders
            .iter()
            .flat_map(|o| o.lines.iter().map(|l| l.line_key()))
            .collect();
        let lines: Vec<(&str, &domain::OrderLine, &str)> = orders
            .iter()
            .flat_map(|o| o.lines.iter().map(move |l| (o.order_id.as_str(), l)))
            .zip(&keys)
            .map(|((oid, l), k)| (oid, l, k.as_str()))
            .collect();
        insert_chunked(
            &mut tx,
            sid,
            "INSERT INTO order_lines (store_id, order_id, line_key, item_id, ref_variant_id, ref_sku, \
             ref_product_id, title, quantity, unit_price_minor, discount_minor)",
            "",
            11,
            &lines,
            |q, sid, (oid, l, key)| {
                q.bind(sid)
                    .bind(*oid)
                    .bind(*key)
                    .bind(l.item_id.as_deref())
                    .bind(l.product.variant_id.as_deref())
                    .bind(l.product.sku.as_deref())
                    .bind(l.product.product_id.as_deref())
                    .bind(l.product.title.as_deref())
                    .bind(l.quantity)
                    .bind(l.unit_price_minor)
                    .bind(l.discount_minor)
            },
        )
        .await?;
        step("Order lines written");

        if bulk {
            sqlx::query(
                "CREATE INDEX IF NOT EXISTS orders_by_time ON orders (store_id, created_at)",
            )
            .execute(&mut *tx)
            .await?;
        }
        step("Indexes built");
        let unjoined: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM order_lines WHERE store_id = ? AND item_id IS NULL)",
        )
        .bind(sid)
        .fetch_one(&mut *tx)
        .await?;
        let lines_joined_later = if batch.products.is_empty() || !unjoined {
            0
        } else {
            join_stored_lines(&mut tx, sid).await?
        };
        step("Stored lines joined");
        tx.commit().await?;
        step("Committed");
        Ok(WriteSummary {
            products: batch.products.len() as u64,
            orders: orders.len() as u64,
            order_lines: line_count,
            lines_joined_later,
            stored_orders_kept: kept_stored.len() as u64,
        })
    }

    #[tracing::instrument(skip_all, fields(store = %id))]
    async fn product_observations(
        &self,
        id: &StoreId,
    ) -> Result<Vec<ProductObservations>, StoreError> {
        let mut out = Vec::new();
        let mut rows = sqlx::query(
            "SELECT variant_id, descriptions, rows FROM product_observations \
             WHERE store_id = ? ORDER BY variant_id",
        )
        .bind(id.as_str())
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let variant_id: String = row.try_get("variant_id")?;
            let corrupt = |what: &str| {
                StoreError::Corrupt(format!(
                    "product_observations of {variant_id}: {what} cannot be read"
                ))
            };
            let descriptions: String = row.try_get("descriptions")?;
            let descriptions: Vec<String> =
                serde_json::from_str(&descriptions).map_err(|_| corrupt("descriptions"))?;
            let packed: Vec<u8> = row.try_get("rows")?;
            let rows = unpack_rows(&packed).ok_or_else(|| corrupt("rows"))?;
            out.push(ProductObservations {
                variant_id,
                descriptions,
                rows,
            });
        }
        Ok(out)
    }

    async fn load(&self, id: &StoreId) -> Result<StoreData, StoreError> {
        let store = self
            .get_store(id)
            .await?
            .ok_or_else(|| StoreError::UnknownStore(id.to_string()))?;
        let sid = id.as_str();
        // One read transaction: WAL gives it one snapshot, so webhooks and uploads
        // writing meanwhile cannot show it an order's lines without the order.
        let mut tx = self.pool.begin().await?;
        let mut products = Vec::new();
        {
            let mut rows =
                sqlx::query("SELECT * FROM products WHERE store_id = ? ORDER BY variant_id")
                    .bind(sid)
                    .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                products.push(product_from_row(&row)?);
            }
        }
        let item_index: HashMap<&str, u32> = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.variant_id.as_str(), i as u32))
            .collect();

        let mut orders: Vec<HistoryOrder> = Vec::new();
        let mut order_index: HashMap<String, usize> = HashMap::new();
        {
            let mut rows = sqlx::query(
                "SELECT order_id, created_at, customer_key, currency_assumed FROM orders \
                 WHERE store_id = ? ORDER BY order_id",
            )
            .bind(sid)
            .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                let order_id: String = row.try_get(0)?;
                let ts: i64 = row.try_get(1)?;
                let created_at = DateTime::<Utc>::from_timestamp(ts, 0).ok_or_else(|| {
                    StoreError::Corrupt(format!("order {order_id} has time {ts}"))
                })?;
                order_index.insert(order_id.clone(), orders.len());
                orders.push(HistoryOrder {
                    order_id,
                    created_at,
                    customer_key: row.try_get(2)?,
                    currency_assumed: row.try_get(3)?,
                    lines: Vec::new(),
                });
            }
        }
        {
            // One row per order with its lines as a JSON array: sqlx hands rows over one
            // at a time through a channel, which at half a million lines costs more than
            // reading them (the whole load of Online Retail: 3.05 s row by row, 0.51 s so).
            let mut rows = sqlx::query(
                "SELECT order_id, json_group_array(json_array(item_id, quantity, \
                 unit_price_minor, discount_minor) ORDER BY line_key) FROM order_lines \
                 WHERE store_id = ? GROUP BY order_id",
            )
            .bind(sid)
            .fetch(&mut *tx);
            type LineRow = (Option<String>, i64, i64, i64);
            while let Some(row) = rows.try_next().await? {
                let order_id: &str = row.try_get(0)?;
                let oi = *order_index.get(order_id).ok_or_else(|| {
                    StoreError::Corrupt(format!("order line of unknown order {order_id}"))
                })?;
                let lines: &str = row.try_get(1)?;
                let lines: Vec<LineRow> = serde_json::from_str(lines)
                    .map_err(|e| StoreError::Corrupt(format!("lines of order {order_id}: {e}")))?;
                orders[oi].lines = lines
                    .into_iter()
                    .map(
                        |(item, quantity, unit_price_minor, discount_minor)| HistoryLine {
                            item: item.and_then(|id| item_index.get(id.as_str()).copied()),
                            quantity,
                            unit_price_minor,
                            discount_minor,
                        },
                    )
                    .collect();
            }
        }
        orders.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.order_id.cmp(&b.order_id))
        });
        let first_ingest: Option<i64> =
            sqlx::query_scalar("SELECT created_at FROM stores WHERE store_id = ?")
                .bind(sid)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(StoreData {
            store,
            products,
            orders,
            first_ingest: first_ingest.and_then(|t| DateTime::from_timestamp(t, 0)),
        })
    }

    async fn cached_embeddings(
        &self,
        model_id: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>, StoreError> {
        let mut out = HashMap::with_capacity(hashes.len());
        for chunk in hashes.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "SELECT content_hash, dim, vector FROM embeddings WHERE model_id = ? AND content_hash IN ({})",
                vec!["?"; chunk.len()].join(",")
            );
            let mut q = sqlx::query(&sql).bind(model_id);
            for h in chunk {
                q = q.bind(h.as_str());
            }
            for row in q.fetch_all(&self.pool).await? {
                let hash: String = row.try_get(0)?;
                let dim: i64 = row.try_get(1)?;
                let bytes: &[u8] = row.try_get(2)?;
                out.insert(hash, decode_vector(bytes, dim)?);
            }
        }
        Ok(out)
    }

    async fn put_embeddings(
        &self,
        model_id: &str,
        dim: usize,
        items: &[(String, Vec<f32>)],
    ) -> Result<(), StoreError> {
        let ts = now();
        let encoded: Vec<(&str, Vec<u8>)> = items
            .iter()
            .map(|(h, v)| (h.as_str(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let dim = dim as i64;
        let mut tx = self.pool.begin().await?;
        insert_chunked(
            &mut tx,
            model_id,
            "INSERT INTO embeddings (model_id, content_hash, dim, vector, created_at)",
            "ON CONFLICT (model_id, content_hash) DO UPDATE SET dim = excluded.dim, \
             vector = excluded.vector, created_at = excluded.created_at",
            5,
            &encoded,
            |q, model, (hash, bytes)| {
                q.bind(model)
                    .bind(*hash)
                    .bind(dim)
                    .bind(bytes.as_slice())
                    .bind(ts)
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn save_run(
        &self,
        run: &super::RunRecord,
        bundles: &[domain::Bundle],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_run(&mut tx, run, bundles).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn latest_run_id(&self, id: &StoreId) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT run_id FROM runs WHERE store_id = ? ORDER BY finished_at DESC, run_id DESC LIMIT 1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn stored_run(
        &self,
        id: &StoreId,
        run_id: Option<&str>,
    ) -> Result<Option<super::StoredRun>, StoreError> {
        let row = match run_id {
            Some(r) => sqlx::query(
                "SELECT run_id, summary, status, started_at, finished_at, report_html FROM runs \
                     WHERE store_id = ? AND run_id = ?",
            )
            .bind(id.as_str())
            .bind(r)
            .fetch_optional(&self.pool)
            .await?,
            None => sqlx::query(
                "SELECT run_id, summary, status, started_at, finished_at, report_html FROM runs \
                     WHERE store_id = ? ORDER BY finished_at DESC, run_id DESC LIMIT 1",
            )
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?,
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let run_id: String = row.try_get("run_id")?;
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM bundles WHERE run_id = ? ORDER BY position, rowid",
        )
        .bind(&run_id)
        .fetch_all(&self.pool)
        .await?;
        let bundles = bodies
            .iter()
            .map(|body| bundle_from(body, &format!("run {run_id}")))
            .collect::<Result<_, _>>()?;
        Ok(Some(super::StoredRun {
            run_id,
            summary: row.try_get("summary")?,
            status: row.try_get("status")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            bundles,
            report_html: row.try_get("report_html")?,
        }))
    }

    async fn catalog_upload(
        &self,
        id: &StoreId,
        role: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT body FROM catalog_uploads WHERE store_id = ? AND role = ?")
                .bind(id.as_str())
                .bind(role)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn put_catalog_upload(
        &self,
        id: &StoreId,
        role: &str,
        body: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let Some(body) = body else {
            sqlx::query("DELETE FROM catalog_uploads WHERE store_id = ? AND role = ?")
                .bind(id.as_str())
                .bind(role)
                .execute(&self.pool)
                .await?;
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO catalog_uploads (store_id, role, body, uploaded_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (store_id, role) DO UPDATE SET body = excluded.body, uploaded_at = excluded.uploaded_at",
        )
        .bind(id.as_str())
        .bind(role)
        .bind(body)
        .bind(chrono::Utc::now().timestamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn put_approval(&self, a: &super::Approval) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO approvals (store_id, bundle_id, decision, run_id, bundle, decided_by, decided_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (store_id, bundle_id) DO UPDATE SET decision = excluded.decision, \
               run_id = excluded.run_id, bundle = excluded.bundle, \
               decided_by = excluded.decided_by, decided_at = excluded.decided_at",
        )
        .bind(&a.store_id)
        .bind(&a.bundle_id)
        .bind(a.decision.as_str())
        .bind(&a.run_id)
        .bind(bundle_json(&a.bundle)?)
        .bind(&a.decided_by)
        .bind(a.decided_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn approvals(&self, id: &StoreId) -> Result<Vec<super::Approval>, StoreError> {
        let rows = sqlx::query(
            "SELECT store_id, bundle_id, decision, run_id, bundle, decided_by, decided_at \
             FROM approvals WHERE store_id = ? ORDER BY decided_at, bundle_id",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let decision: String = row.try_get("decision")?;
                let bundle_id: String = row.try_get("bundle_id")?;
                let bundle = bundle_from(
                    &row.try_get::<String, _>("bundle")?,
                    &format!("the approval of bundle {bundle_id}"),
                )?;
                Ok(super::Approval {
                    store_id: row.try_get("store_id")?,
                    bundle_id,
                    decision: super::Decision::parse(&decision).ok_or_else(|| {
                        StoreError::Corrupt(format!("bad decision {decision:?} in approvals"))
                    })?,
                    run_id: row.try_get("run_id")?,
                    bundle,
                    decided_by: row.try_get("decided_by")?,
                    decided_at: row.try_get("decided_at")?,
                })
            })
            .collect()
    }

    async fn set_shop_domain(&self, id: &StoreId, domain: &str) -> Result<(), StoreError> {
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT store_id FROM stores WHERE shop_domain = ? AND store_id <> ?",
        )
        .bind(domain)
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(store) = taken {
            return Err(StoreError::ShopTaken {
                domain: domain.to_owned(),
                store,
            });
        }
        let updated =
            sqlx::query("UPDATE stores SET shop_domain = ?, updated_at = ? WHERE store_id = ?")
                .bind(domain)
                .bind(chrono::Utc::now().timestamp())
                .bind(id.as_str())
                .execute(&self.pool)
                .await?
                .rows_affected();
        if updated == 0 {
            return Err(StoreError::UnknownStore(id.to_string()));
        }
        Ok(())
    }

    async fn store_for_shop(&self, domain: &str) -> Result<Option<StoreId>, StoreError> {
        let set: Option<String> =
            sqlx::query_scalar("SELECT store_id FROM stores WHERE shop_domain = ?")
                .bind(domain)
                .fetch_optional(&self.pool)
                .await?;
        let id =
            match set {
                Some(id) => Some(id),
                None => match domain.strip_suffix(".myshopify.com") {
                    Some(name) => sqlx::query_scalar(
                        "SELECT store_id FROM stores WHERE store_id = ? AND shop_domain IS NULL",
                    )
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?,
                    None => None,
                },
            };
        id.map(|id: String| {
            StoreId::parse(&id).map_err(|e| StoreError::Corrupt(format!("store id {id:?}: {e}")))
        })
        .transpose()
    }

    async fn products_page(
        &self,
        id: &StoreId,
        offset: u64,
        limit: u64,
    ) -> Result<super::Page<Product>, StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE store_id = ?")
            .bind(id.as_str())
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT * FROM products WHERE store_id = ? ORDER BY variant_id LIMIT ? OFFSET ?",
        )
        .bind(id.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(product_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::Page {
            items,
            total: total as u64,
        })
    }

    async fn find_product(&self, id: &StoreId, key: &str) -> Result<Option<Product>, StoreError> {
        // One lookup per kind of key, most specific first: a SKU that equals another
        // product's variant id still finds that variant.
        for column in ["variant_id", "sku", "product_id"] {
            let sql = format!(
                "SELECT * FROM products WHERE store_id = ? AND {column} = ? ORDER BY variant_id LIMIT 1"
            );
            let row = sqlx::query(&sql)
                .bind(id.as_str())
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = row {
                return Ok(Some(product_from_row(&row)?));
            }
        }
        Ok(None)
    }

    async fn runs_page(
        &self,
        id: &StoreId,
        offset: u64,
        limit: u64,
    ) -> Result<super::Page<super::RunListing>, StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE store_id = ?")
            .bind(id.as_str())
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT r.run_id, r.status, r.started_at, r.finished_at, r.as_of, \
                    (SELECT COUNT(*) FROM bundles b WHERE b.run_id = r.run_id) AS bundle_count \
             FROM runs r WHERE r.store_id = ? \
             ORDER BY r.finished_at DESC, r.run_id DESC LIMIT ? OFFSET ?",
        )
        .bind(id.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(super::RunListing {
                    run_id: row.try_get("run_id")?,
                    status: row.try_get("status")?,
                    started_at: row.try_get("started_at")?,
                    finished_at: row.try_get("finished_at")?,
                    as_of: row.try_get("as_of")?,
                    bundles: row.try_get::<i64, _>("bundle_count")? as u64,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(super::Page {
            items,
            total: total as u64,
        })
    }

    async fn cached_classifications(
        &self,
        model_id: &str,
        prompt_version: &str,
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let mut out = HashMap::with_capacity(hashes.len());
        for chunk in hashes.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "SELECT content_hash, tags FROM classifications \
                 WHERE model_id = ? AND prompt_version = ? AND content_hash IN ({})",
                vec!["?"; chunk.len()].join(",")
            );
            let mut q = sqlx::query(&sql).bind(model_id).bind(prompt_version);
            for h in chunk {
                q = q.bind(h.as_str());
            }
            for row in q.fetch_all(&self.pool).await? {
                let hash: String = row.try_get(0)?;
                let tags: String = row.try_get(1)?;
                let tags: Vec<String> = serde_json::from_str(&tags).map_err(|e| {
                    StoreError::Corrupt(format!("classification tags of {hash}: {e}"))
                })?;
                out.insert(hash, tags);
            }
        }
        Ok(out)
    }

    async fn put_classifications(
        &self,
        model_id: &str,
        prompt_version: &str,
        items: &[(String, Vec<String>)],
    ) -> Result<(), StoreError> {
        let ts = now();
        let encoded: Vec<(&str, String)> = items
            .iter()
            .map(|(h, tags)| (h.as_str(), serde_json::json!(tags).to_string()))
            .collect();
        let mut tx = self.pool.begin().await?;
        insert_chunked(
            &mut tx,
            model_id,
            "INSERT INTO classifications (model_id, prompt_version, content_hash, tags, created_at)",
            "ON CONFLICT (model_id, prompt_version, content_hash) DO UPDATE SET \
             tags = excluded.tags, created_at = excluded.created_at",
            5,
            &encoded,
            |q, model, (hash, tags)| {
                q.bind(model)
                    .bind(prompt_version)
                    .bind(*hash)
                    .bind(tags.as_str())
                    .bind(ts)
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl SqliteStore {
    /// Runs of a store, newest first: (run id, status, bundles).
    pub async fn runs(&self, store_id: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.run_id, r.status, (SELECT COUNT(*) FROM bundles b WHERE b.run_id = r.run_id) \
             FROM runs r WHERE r.store_id = ? ORDER BY r.started_at DESC, r.run_id DESC",
        )
        .bind(store_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}

/// Little-endian f32s, `dim` of them.
fn decode_vector(bytes: &[u8], dim: i64) -> Result<Vec<f32>, StoreError> {
    if bytes.len() != dim.max(0) as usize * 4 {
        return Err(StoreError::Corrupt(format!(
            "embedding of {} bytes for dimension {dim}",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}
