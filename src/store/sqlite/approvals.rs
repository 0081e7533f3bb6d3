//! Merchants' decisions on SQLite: one row per store and bundle id, holding the bundle
//! as its run published it.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqliteStore, bundle_from, bundle_json};
use crate::domain::StoreId;
use crate::store::StoreError;
use crate::store::approvals::{Approval, ApprovalStore, Decision};

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn put_approval(&self, a: &Approval) -> Result<(), StoreError> {
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

    async fn approvals(&self, id: &StoreId) -> Result<Vec<Approval>, StoreError> {
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
                Ok(Approval {
                    store_id: row.try_get("store_id")?,
                    bundle_id,
                    decision: Decision::parse(&decision).ok_or_else(|| {
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
}
