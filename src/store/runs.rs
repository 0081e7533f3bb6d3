//! Finished runs: a run's record and its bundles saved in one transaction, listed by
//! store, and read back as documents.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Page, StoreError};
use crate::domain::{self, StoreId};

/// A finished run as stored: JSON documents as text.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: String,
    pub store_id: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    pub config: String,
    pub timings: String,
    pub counts: String,
    /// The run's summary as `generate --json` prints it under `"run"`.
    pub summary: String,
    /// The run's `report.html`.
    pub report_html: String,
}

/// A saved run as documents: its summary (absent for runs saved before summaries
/// were kept) and its bundles' JSON, in published order.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub run_id: String,
    pub summary: Option<String>,
    /// The run's columns, for runs without a summary.
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// In published order.
    pub bundles: Vec<domain::Bundle>,
    /// Absent for runs saved before reports were kept.
    pub report_html: Option<String>,
}

/// A run in a store's list of runs: when, and how many bundles.
#[derive(Debug, Clone)]
pub struct RunListing {
    pub run_id: String,
    pub status: String,
    /// Unix seconds.
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub as_of: Option<i64>,
    pub bundles: u64,
}

/// Finished runs and their bundles: saved whole, listed, read back typed.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Writes a finished run and its bundles in one transaction.
    async fn save_run(&self, run: &RunRecord, bundles: &[domain::Bundle])
    -> Result<(), StoreError>;

    /// A page of a store's saved runs, latest first.
    async fn runs_page(
        &self,
        id: &StoreId,
        offset: u64,
        limit: u64,
    ) -> Result<Page<RunListing>, StoreError>;

    /// The id of the store's latest saved run (as [`RunStore::stored_run`] finds it),
    /// without loading it.
    async fn latest_run_id(&self, id: &StoreId) -> Result<Option<String>, StoreError>;

    /// A saved run of a store (`None`: its latest) with its bundles in published order.
    async fn stored_run(
        &self,
        id: &StoreId,
        run_id: Option<&str>,
    ) -> Result<Option<StoredRun>, StoreError>;
}
