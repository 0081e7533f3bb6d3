//! The stores on SQLite: a store's row, the shop it is, its own rules.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::domain::{self, Currency, StoreId};
use crate::store::StoreError;
use crate::store::stores::StoreRegistry;

#[async_trait]
impl StoreRegistry for SqliteStore {
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
        // Webhooks of `NAME.myshopify.com` go to store NAME while it has no domain set
        // (`store_for_shop`): giving that domain to another store would take them.
        if let Some(name) = domain.strip_suffix(".myshopify.com")
            && name != id.as_str()
        {
            let named: Option<String> = sqlx::query_scalar(
                "SELECT store_id FROM stores WHERE store_id = ? AND shop_domain IS NULL",
            )
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(store) = named {
                return Err(StoreError::ShopIsStoreName {
                    domain: domain.to_owned(),
                    store,
                });
            }
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

    async fn uninstalled_at(&self, id: &StoreId) -> Result<Option<i64>, StoreError> {
        let at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT uninstalled_at FROM stores WHERE store_id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(at.flatten())
    }

    async fn reinstate_store(&self, id: &StoreId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE stores SET uninstalled_at = NULL, updated_at = ? \
             WHERE store_id = ? AND uninstalled_at IS NOT NULL",
        )
        .bind(chrono::Utc::now().timestamp())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
