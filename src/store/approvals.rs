//! Merchants' decisions on bundles: approved or rejected, per store and bundle id.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;
use crate::domain::StoreId;

/// A merchant's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "approved" => Some(Decision::Approved),
            "rejected" => Some(Decision::Rejected),
            _ => None,
        }
    }
}

/// A decision as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub store_id: String,
    pub bundle_id: String,
    pub decision: Decision,
    /// The run it was decided in.
    pub run_id: String,
    /// The bundle as that run published it.
    #[serde(skip)]
    pub bundle: crate::domain::Bundle,
    pub decided_by: String,
    /// Unix milliseconds.
    pub decided_at: i64,
}

/// The merchant's decisions on bundles, latest per bundle id.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Records a decision, replacing the store's earlier one on the same bundle id.
    async fn put_approval(&self, approval: &Approval) -> Result<(), StoreError>;

    /// A store's decisions, in the order they were made.
    async fn approvals(&self, id: &StoreId) -> Result<Vec<Approval>, StoreError>;
}
