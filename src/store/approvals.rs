//! Merchants' decisions on bundles: approved or rejected, per store and bundle id.

use serde::Serialize;

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
