//! The catalog on SQLite: an ingest written in one transaction (the store's row,
//! products and their observations, orders and their lines, then lines stored earlier
//! joined to the new catalog), a store read back from one snapshot, pages of products,
//! and the catalog files a store uploaded.

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::{Row, SqliteConnection};

use super::{SqliteStore, insert_chunked, now};
use crate::domain::{
    self, Currency, HistoryLine, HistoryOrder, Money, ObservedRow, Product, ProductObservations,
    ProductStatus, StoreData, StoreId,
};
use crate::ingest::CatalogKeys;
use crate::store::catalog::{CatalogStore, IngestWriter, WriteSummary};
use crate::store::stores::StoreRegistry;
use crate::store::{Page, StoreError};

/// Line loads above this many rows rebuild secondary indexes once instead of
/// maintaining them per row.
const BULK_LINES: u64 = 50_000;

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

/// Stores an ingest's observations, and forgets those of products it brings without
/// them: a real catalog entry replaces a derived one.
async fn write_observations(
    tx: &mut SqliteConnection,
    sid: &str,
    products: &[Product],
    observations: &[ProductObservations],
    ts: i64,
) -> Result<(), sqlx::Error> {
    let observed: HashSet<&str> = observations.iter().map(|o| o.variant_id.as_str()).collect();
    let any_stored: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM product_observations WHERE store_id = ?)")
            .bind(sid)
            .fetch_one(&mut *tx)
            .await?;
    if any_stored {
        for p in products
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
    let rows: Vec<(&str, String, Vec<u8>)> = observations
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

/// The store's row: written by its first ingest, its currency and locale updated by
/// every later one.
async fn upsert_store(
    conn: &mut SqliteConnection,
    sid: &str,
    store: &domain::Store,
    ts: i64,
) -> Result<(), sqlx::Error> {
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The orders of a chunk with a rejected line that the store has already: those are
/// kept as stored, not replaced.
async fn stored_incomplete_orders<'b>(
    conn: &mut SqliteConnection,
    sid: &str,
    incomplete: &'b BTreeSet<String>,
) -> Result<HashSet<&'b str>, sqlx::Error> {
    let mut kept_stored: HashSet<&str> = HashSet::new();
    for id in incomplete {
        let stored: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE store_id = ? AND order_id = ?)",
        )
        .bind(sid)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        if stored {
            kept_stored.insert(id.as_str());
        }
    }
    Ok(kept_stored)
}

/// Upserts an ingest's products.
async fn write_products(
    conn: &mut SqliteConnection,
    sid: &str,
    products: &[Product],
    ts: i64,
) -> Result<(), sqlx::Error> {
    let tags: Vec<String> = products
        .iter()
        .map(|p| serde_json::to_string(&p.tags).unwrap_or_else(|_| "[]".into()))
        .collect();
    let rows: Vec<(&Product, &String)> = products.iter().zip(&tags).collect();
    insert_chunked(
        conn,
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
        &rows,
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
    .await
}

/// Re-ingested orders replace their lines whole (a store without orders before the
/// ingest has none to replace: within one ingest an order comes once).
async fn drop_replaced_lines(
    conn: &mut SqliteConnection,
    sid: &str,
    orders: &[&domain::Order],
) -> Result<(), sqlx::Error> {
    if orders.is_empty() {
        return Ok(());
    }
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS incoming_orders (order_id TEXT PRIMARY KEY)")
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM incoming_orders")
        .execute(&mut *conn)
        .await?;
    insert_chunked(
        &mut *conn,
        sid,
        "INSERT INTO incoming_orders (order_id)",
        "ON CONFLICT DO NOTHING",
        1,
        orders,
        |q, _, o| q.bind(o.order_id.as_str()),
    )
    .await?;
    sqlx::query(
        "DELETE FROM order_lines WHERE store_id = ? \
         AND order_id IN (SELECT order_id FROM incoming_orders)",
    )
    .bind(sid)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DROP TABLE incoming_orders")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Upserts the orders (their lines apart).
async fn write_orders(
    conn: &mut SqliteConnection,
    sid: &str,
    orders: &[&domain::Order],
) -> Result<(), sqlx::Error> {
    insert_chunked(
        conn,
        sid,
        "INSERT INTO orders (store_id, order_id, name, created_at, customer_key, currency, currency_assumed)",
        "ON CONFLICT (store_id, order_id) DO UPDATE SET name = COALESCE(excluded.name, orders.name), \
         created_at = excluded.created_at, \
         customer_key = COALESCE(excluded.customer_key, orders.customer_key), \
         currency = excluded.currency, currency_assumed = excluded.currency_assumed",
        7,
        orders,
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
    .await
}

/// Inserts the orders' lines.
async fn write_order_lines(
    conn: &mut SqliteConnection,
    sid: &str,
    orders: &[&domain::Order],
) -> Result<(), sqlx::Error> {
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
        conn,
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
    .await
}

/// Joins lines stored without a catalog product when the ingest brought products and
/// there are such lines (see [`join_stored_lines`]): how many it joined.
async fn join_lines_later(
    conn: &mut SqliteConnection,
    sid: &str,
    brought_products: bool,
) -> Result<u64, sqlx::Error> {
    let unjoined: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM order_lines WHERE store_id = ? AND item_id IS NULL)",
    )
    .bind(sid)
    .fetch_one(&mut *conn)
    .await?;
    if !brought_products || !unjoined {
        return Ok(0);
    }
    join_stored_lines(conn, sid).await
}

/// One ingest being written: a transaction open from [`CatalogStore::begin_ingest`]
/// to [`IngestWriter::commit`] (dropped before it, it rolls back).
struct SqliteIngest {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    sid: String,
    ts: i64,
    /// Whether the store had orders before: only then can an order replace lines.
    had_orders: bool,
    /// Whether the time index was dropped for a bulk load, to build once at the end.
    bulk: bool,
    summary: WriteSummary,
    clock: std::time::Instant,
}

#[async_trait]
impl IngestWriter for SqliteIngest {
    async fn products(
        &mut self,
        products: &[Product],
        observations: &[ProductObservations],
    ) -> Result<(), StoreError> {
        write_products(&mut self.tx, &self.sid, products, self.ts).await?;
        write_observations(&mut self.tx, &self.sid, products, observations, self.ts).await?;
        self.summary.products += products.len() as u64;
        tracing::debug!(
            elapsed = self.clock.elapsed().as_secs_f64(),
            "Products written"
        );
        Ok(())
    }

    async fn orders(
        &mut self,
        orders: &[domain::Order],
        incomplete: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let sid = self.sid.as_str();
        // An order with a rejected line never replaces the stored one.
        let kept_stored = if self.had_orders {
            stored_incomplete_orders(&mut self.tx, sid, incomplete).await?
        } else {
            HashSet::new()
        };
        let orders: Vec<&domain::Order> = orders
            .iter()
            .filter(|o| !kept_stored.contains(o.order_id.as_str()))
            .collect();
        if self.had_orders {
            drop_replaced_lines(&mut self.tx, sid, &orders).await?;
        }
        write_orders(&mut self.tx, sid, &orders).await?;
        write_order_lines(&mut self.tx, sid, &orders).await?;
        self.summary.orders += orders.len() as u64;
        self.summary.order_lines += orders.iter().map(|o| o.lines.len() as u64).sum::<u64>();
        self.summary.stored_orders_kept += kept_stored.len() as u64;
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<WriteSummary, StoreError> {
        let step =
            |what: &str| tracing::debug!(elapsed = self.clock.elapsed().as_secs_f64(), "{what}");
        step("Orders written");
        if self.bulk {
            sqlx::query(
                "CREATE INDEX IF NOT EXISTS orders_by_time ON orders (store_id, created_at)",
            )
            .execute(&mut *self.tx)
            .await?;
            step("Indexes built");
        }
        let brought_products = self.summary.products > 0;
        self.summary.lines_joined_later =
            join_lines_later(&mut self.tx, &self.sid, brought_products).await?;
        step("Stored lines joined");
        let SqliteIngest { tx, summary, .. } = *self;
        tx.commit().await?;
        Ok(summary)
    }
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
impl CatalogStore for SqliteStore {
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

    #[tracing::instrument(skip_all, fields(store = %store.id, expected_lines))]
    async fn begin_ingest(
        &self,
        store: &domain::Store,
        expected_lines: u64,
    ) -> Result<Box<dyn IngestWriter>, StoreError> {
        let sid = store.id.as_str();
        let ts = now();
        let mut tx = self.pool.begin().await?;
        upsert_store(&mut tx, sid, store, ts).await?;
        let had_orders: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM orders WHERE store_id = ?)")
                .bind(sid)
                .fetch_one(&mut *tx)
                .await?;
        let bulk = expected_lines >= BULK_LINES;
        if bulk {
            sqlx::query("DROP INDEX IF EXISTS orders_by_time")
                .execute(&mut *tx)
                .await?;
        }
        Ok(Box::new(SqliteIngest {
            tx,
            sid: sid.to_owned(),
            ts,
            had_orders,
            bulk,
            summary: WriteSummary::default(),
            clock: std::time::Instant::now(),
        }))
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

    async fn products_page(
        &self,
        id: &StoreId,
        offset: u64,
        limit: u64,
    ) -> Result<Page<Product>, StoreError> {
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
        Ok(Page {
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
}
