//! Webhooks and resource versions on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use crate::domain::StoreId;
use crate::store::StoreError;
use crate::store::webhooks::{
    CustomerOrder, CustomerOrderLine, FinishedWebhook, RefundedLine, WebhookRecord, WebhookStore,
};

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn record_webhook(&self, w: &WebhookRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO webhooks (webhook_id, shop_domain, store_id, topic, body, received_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (webhook_id) DO NOTHING",
        )
        .bind(&w.webhook_id)
        .bind(&w.shop_domain)
        .bind(&w.store_id)
        .bind(&w.topic)
        .bind(&w.body)
        .bind(w.received_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn get_webhook(
        &self,
        webhook_id: &str,
    ) -> Result<Option<(WebhookRecord, Option<(String, String, i64)>)>, StoreError> {
        let row = sqlx::query(
            "SELECT webhook_id, shop_domain, store_id, topic, body, received_at, applied_at, \
             outcome, message FROM webhooks WHERE webhook_id = ?",
        )
        .bind(webhook_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let record = WebhookRecord {
            webhook_id: r.try_get("webhook_id")?,
            shop_domain: r.try_get("shop_domain")?,
            store_id: r.try_get("store_id")?,
            topic: r.try_get("topic")?,
            body: r.try_get("body")?,
            received_at: r.try_get("received_at")?,
        };
        let applied: Option<i64> = r.try_get("applied_at")?;
        let result = match applied {
            Some(at) => Some((
                r.try_get::<Option<String>, _>("outcome")?
                    .unwrap_or_default(),
                r.try_get::<Option<String>, _>("message")?
                    .unwrap_or_default(),
                at,
            )),
            None => None,
        };
        Ok(Some((record, result)))
    }

    async fn pending_webhooks(&self, limit: u32) -> Result<Vec<WebhookRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT webhook_id, shop_domain, store_id, topic, body, received_at FROM webhooks \
             WHERE applied_at IS NULL ORDER BY received_at, rowid LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(webhook_record).collect()
    }

    async fn finish_webhooks(&self, done: &[FinishedWebhook], now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for w in done {
            sqlx::query(
                "UPDATE webhooks SET applied_at = ?, outcome = ?, message = ?, \
                 body = CASE WHEN ? THEN X'' ELSE body END WHERE webhook_id = ?",
            )
            .bind(now)
            .bind(w.outcome.as_str())
            .bind(&w.note)
            .bind(w.drop_body)
            .bind(&w.webhook_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn redact_webhook_bodies(
        &self,
        store: &StoreId,
        needles: &[String],
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut erased = 0;
        for needle in needles.iter().filter(|n| !n.is_empty()) {
            // Both sides as blobs: instr then compares bytes, whatever the body holds.
            erased += sqlx::query(
                "UPDATE webhooks SET body = X'' WHERE store_id = ? AND applied_at IS NOT NULL \
                 AND length(body) > 0 AND instr(body, ?) > 0",
            )
            .bind(store.as_str())
            .bind(needle.as_bytes())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(erased)
    }

    async fn pending_webhooks_holding(
        &self,
        store: &StoreId,
        needles: &[String],
    ) -> Result<Vec<WebhookRecord>, StoreError> {
        let mut found: Vec<(i64, WebhookRecord)> = Vec::new();
        for needle in needles.iter().filter(|n| !n.is_empty()) {
            let rows = sqlx::query(
                "SELECT rowid, webhook_id, shop_domain, store_id, topic, body, received_at \
                 FROM webhooks WHERE store_id = ? AND applied_at IS NULL \
                 AND length(body) > 0 AND instr(body, ?) > 0",
            )
            .bind(store.as_str())
            .bind(needle.as_bytes())
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                let w = webhook_record(r)?;
                if !found.iter().any(|(_, f)| f.webhook_id == w.webhook_id) {
                    found.push((r.try_get("rowid")?, w));
                }
            }
        }
        // In the order the applier takes them.
        found.sort_by_key(|(rowid, w)| (w.received_at, *rowid));
        Ok(found.into_iter().map(|(_, w)| w).collect())
    }

    async fn replace_pending_body(
        &self,
        webhook_id: &str,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        // COALESCE: an empty body stays an empty blob, never NULL (the column is NOT
        // NULL and an empty body is how an erased one reads).
        let done = sqlx::query(
            "UPDATE webhooks SET body = COALESCE(?, X'') WHERE webhook_id = ? AND applied_at IS NULL",
        )
        .bind(body)
        .bind(webhook_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn expire_webhook_bodies(&self, applied_before: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("UPDATE webhooks SET body = X'' WHERE length(body) > 0 AND applied_at < ?")
                .bind(applied_before)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    async fn resource_version(
        &self,
        store: &StoreId,
        resource: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT updated_at FROM resource_versions WHERE store_id = ? AND resource = ?",
        )
        .bind(store.as_str())
        .bind(resource)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn take_version(
        &self,
        store: &StoreId,
        resource: &str,
        updated_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO resource_versions (store_id, resource, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (store_id, resource) DO UPDATE SET updated_at = excluded.updated_at \
             WHERE excluded.updated_at > resource_versions.updated_at",
        )
        .bind(store.as_str())
        .bind(resource)
        .bind(updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn archive_product(&self, store: &StoreId, product_id: &str) -> Result<u64, StoreError> {
        let gid = format!("gid://shopify/Product/{product_id}");
        let done = sqlx::query(
            "UPDATE products SET status = 'archived', updated_at = ? \
             WHERE store_id = ? AND (product_id = ? OR product_id = ?)",
        )
        .bind(chrono::Utc::now().timestamp())
        .bind(store.as_str())
        .bind(product_id)
        .bind(&gid)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn delete_order(&self, store: &StoreId, order_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM order_lines WHERE store_id = ? AND order_id = ?")
            .bind(store.as_str())
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM orders WHERE store_id = ? AND order_id = ?")
            .bind(store.as_str())
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn refund_lines(
        &self,
        store: &StoreId,
        order_id: &str,
        refunded: &[RefundedLine],
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for r in refunded.iter().filter(|r| r.quantity > 0) {
            // The line by the variant it joined or was named by, else by SKU.
            let key: Option<String> = sqlx::query_scalar(
                "SELECT line_key FROM order_lines WHERE store_id = ? AND order_id = ? \
                 AND ((? IS NOT NULL AND (item_id = ? OR ref_variant_id = ?)) \
                      OR (? IS NOT NULL AND ref_sku = ?)) \
                 ORDER BY line_key LIMIT 1",
            )
            .bind(store.as_str())
            .bind(order_id)
            .bind(&r.variant_id)
            .bind(&r.variant_id)
            .bind(&r.variant_id)
            .bind(&r.sku)
            .bind(&r.sku)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(key) = key else { continue };
            sqlx::query(
                "UPDATE order_lines SET quantity = quantity - ? \
                 WHERE store_id = ? AND order_id = ? AND line_key = ?",
            )
            .bind(r.quantity)
            .bind(store.as_str())
            .bind(order_id)
            .bind(&key)
            .execute(&mut *tx)
            .await?;
            changed += 1;
        }
        sqlx::query(
            "DELETE FROM order_lines WHERE store_id = ? AND order_id = ? AND quantity <= 0",
        )
        .bind(store.as_str())
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM orders WHERE store_id = ? AND order_id = ? AND NOT EXISTS \
             (SELECT 1 FROM order_lines l WHERE l.store_id = orders.store_id AND l.order_id = orders.order_id)",
        )
        .bind(store.as_str())
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn set_inventory(
        &self,
        store: &StoreId,
        inventory_item_id: &str,
        available: i64,
    ) -> Result<u64, StoreError> {
        let gid = format!("gid://shopify/InventoryItem/{inventory_item_id}");
        let done = sqlx::query(
            "UPDATE products SET inventory = ?, updated_at = ? \
             WHERE store_id = ? AND (inventory_item_id = ? OR inventory_item_id = ?)",
        )
        .bind(available)
        .bind(chrono::Utc::now().timestamp())
        .bind(store.as_str())
        .bind(inventory_item_id)
        .bind(&gid)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn customer_orders(
        &self,
        store: &StoreId,
        keys: &[String],
        order_ids: &[String],
    ) -> Result<Vec<CustomerOrder>, StoreError> {
        let ids = self.customer_order_ids(store, keys, order_ids).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "SELECT name, created_at FROM orders WHERE store_id = ? AND order_id = ?",
            )
            .bind(store.as_str())
            .bind(&id)
            .fetch_one(&self.pool)
            .await?;
            let lines = sqlx::query(
                "SELECT COALESCE(item_id, ref_variant_id) AS variant_id, ref_sku, title, quantity, unit_price_minor \
                 FROM order_lines WHERE store_id = ? AND order_id = ? ORDER BY line_key",
            )
            .bind(store.as_str())
            .bind(&id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|l| {
                Ok(CustomerOrderLine {
                    variant_id: l.try_get("variant_id")?,
                    sku: l.try_get("ref_sku")?,
                    title: l.try_get("title")?,
                    quantity: l.try_get("quantity")?,
                    unit_price_minor: l.try_get("unit_price_minor")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            out.push(CustomerOrder {
                order_id: id,
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
                lines,
            });
        }
        Ok(out)
    }

    async fn redact_customer(
        &self,
        store: &StoreId,
        keys: &[String],
        order_ids: &[String],
    ) -> Result<u64, StoreError> {
        let ids = self.customer_order_ids(store, keys, order_ids).await?;
        let mut tx = self.pool.begin().await?;
        for id in &ids {
            sqlx::query(
                "UPDATE orders SET customer_key = NULL WHERE store_id = ? AND order_id = ?",
            )
            .bind(store.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        // A data request's answer is the customer's orders (its note, as JSON with
        // `"order_id":"…"` per order): it goes with them, those the redaction names
        // whether held or not.
        let mut listed: Vec<&String> = ids.iter().chain(order_ids).collect();
        listed.sort();
        listed.dedup();
        for id in listed {
            let entry = format!("\"order_id\":{}", serde_json::Value::String(id.clone()));
            sqlx::query(
                "UPDATE webhooks SET message = 'answered; erased with the customer''s redaction' \
                 WHERE store_id = ? AND topic = 'customers/data_request' \
                 AND applied_at IS NOT NULL AND instr(message, ?) > 0",
            )
            .bind(store.as_str())
            .bind(&entry)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ids.len() as u64)
    }

    async fn mark_uninstalled(&self, store: &StoreId, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE stores SET uninstalled_at = ? WHERE store_id = ?")
            .bind(at)
            .bind(store.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn erase_store(&self, store: &StoreId) -> Result<(), StoreError> {
        let sid = store.as_str();
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM bundles WHERE run_id IN (SELECT run_id FROM runs WHERE store_id = ?)",
            "DELETE FROM runs WHERE store_id = ?",
            "DELETE FROM approvals WHERE store_id = ?",
            "DELETE FROM order_lines WHERE store_id = ?",
            "DELETE FROM orders WHERE store_id = ?",
            "DELETE FROM product_observations WHERE store_id = ?",
            "DELETE FROM products WHERE store_id = ?",
            "DELETE FROM catalog_uploads WHERE store_id = ?",
            "DELETE FROM resource_versions WHERE store_id = ?",
            "DELETE FROM api_tokens WHERE store_id = ?",
            "DELETE FROM jobs WHERE store_id = ?",
            "DELETE FROM app_uploads WHERE store_id = ?",
            // The webhooks stay as a record that they came, without what they carried.
            // A data request's note is its answer (the customer's orders): gone too.
            "UPDATE webhooks SET body = X'', \
             message = CASE WHEN topic = 'customers/data_request' \
                 THEN 'answered; erased with the shop' ELSE message END \
             WHERE store_id = ?",
            "DELETE FROM stores WHERE store_id = ?",
        ] {
            sqlx::query(sql).bind(sid).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A webhook as a row of `webhooks` holds it.
fn webhook_record(r: &SqliteRow) -> Result<WebhookRecord, StoreError> {
    Ok(WebhookRecord {
        webhook_id: r.try_get("webhook_id")?,
        shop_domain: r.try_get("shop_domain")?,
        store_id: r.try_get("store_id")?,
        topic: r.try_get("topic")?,
        body: r.try_get("body")?,
        received_at: r.try_get("received_at")?,
    })
}

impl SqliteStore {
    /// A customer's orders by their key, and the orders named.
    async fn customer_order_ids(
        &self,
        store: &StoreId,
        keys: &[String],
        order_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = Vec::new();
        for key in keys.iter().filter(|k| !k.is_empty()) {
            let found: Vec<String> = sqlx::query_scalar(
                "SELECT order_id FROM orders WHERE store_id = ? AND customer_key = ?",
            )
            .bind(store.as_str())
            .bind(key)
            .fetch_all(&self.pool)
            .await?;
            ids.extend(found);
        }
        for id in order_ids {
            let found: Option<String> = sqlx::query_scalar(
                "SELECT order_id FROM orders WHERE store_id = ? AND order_id = ?",
            )
            .bind(store.as_str())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            ids.extend(found);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}
