//! One run request: what phase 0 prepares (the store as of a day, which of its orders,
//! which prior), what the run varies ([`Variant`], the merchant's own inputs
//! included), and the id it is saved under. The CLI's flags, a queued job, the HTTP
//! trigger, a cohort's arms and a bench case all build (or read back) this one shape.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::variant::{InvalidVariant, Variant};
use crate::domain::{BundleType, Objective};
use crate::ingest::YEARS;

/// Why a run request cannot run: bad input, refused before anything runs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidRequest {
    #[error(transparent)]
    Variant(#[from] InvalidVariant),
    #[error("as_of: {day} is outside the years {first}–{last}, the years orders can be dated in")]
    AsOf {
        day: NaiveDate,
        first: i32,
        last: i32,
    },
}

/// A run of the engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunRequest {
    /// Phase 0: the store as of when, and what of it.
    pub prepare: PrepareOptions,
    /// Phases 1–3: what the run varies.
    pub variant: Variant,
    /// The id the run is saved under (a job's id); a fresh ULID when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl RunRequest {
    /// A default run with one seed for phase 0 and the run, as every front end sets
    /// them.
    pub fn seeded(seed: u64) -> RunRequest {
        let mut r = RunRequest::default();
        r.prepare.seed = seed;
        r.variant.seed = seed;
        r
    }

    /// What the types can't say, of phase 0 and of the variant.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        self.prepare.validate()?;
        self.variant.validate()?;
        Ok(())
    }

    /// A queued job's request as stored: a `RunRequest`, or the flat shape jobs were
    /// queued in before (`{}` is a default run with [`FlatRequest::DEFAULT_SEED`]).
    pub fn from_stored(text: &str) -> Result<RunRequest, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            // First: `{}` and every flat body are flat, and a stored RunRequest
            // (it always has `prepare` and `variant`) never is.
            Flat(FlatRequest),
            Run(RunRequest),
        }
        Ok(match serde_json::from_str::<Stored>(text)? {
            Stored::Flat(flat) => flat.into_run_request(),
            Stored::Run(run) => run,
        })
    }
}

/// The flat request of `POST /v1/stores/{store}/jobs` (every `generate` option, all
/// optional), and the shape jobs were stored in before [`RunRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objectives: Vec<Objective>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bundle_types: Vec<BundleType>,
    /// α, β, γ instead of the tier's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<[f64; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bundles: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// End every window on this day (YYYY-MM-DD) instead of the latest order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
}

impl FlatRequest {
    /// `generate`'s default seed, so a job and the CLI give the same run.
    pub const DEFAULT_SEED: u64 = 42;

    pub fn into_run_request(self) -> RunRequest {
        let mut r = RunRequest::seeded(self.seed.unwrap_or(Self::DEFAULT_SEED));
        r.prepare.as_of = self.as_of;
        r.variant.weights = self.weights;
        r.variant.objectives = self.objectives;
        r.variant.bundle_types = self.bundle_types;
        r.variant.max_bundles = self.max_bundles;
        r
    }
}

/// Which of the store's orders a context counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderScope {
    /// Every order up to `as_of`.
    #[default]
    All,
    /// The last N orders up to `as_of` (a small shop's history).
    Last(usize),
    /// None: the catalog alone (a cold start).
    None,
}

/// What phase 0 is prepared for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrepareOptions {
    /// The day the store is seen as of (its end); `None`: the latest order, with the
    /// catalog as it is now.
    pub as_of: Option<NaiveDate>,
    /// Seed of phase 0's own randomness (category clustering).
    pub seed: u64,
    pub orders: OrderScope,
    pub prior: PriorScope,
}

impl PrepareOptions {
    /// A day to see the store as of within [`YEARS`]: no order can be dated outside
    /// them, so such a run would see an empty store, and still be saved as the latest.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        match self.as_of {
            Some(day) if !YEARS.contains(&day.year()) => Err(InvalidRequest::AsOf {
                day,
                first: *YEARS.start(),
                last: *YEARS.end(),
            }),
            _ => Ok(()),
        }
    }
}

/// Which of the complement prior's sources a context may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorScope {
    /// Every source `prior` settings allow.
    #[default]
    All,
    /// Not those mined from this store's own orders (an honest cold-start figure).
    NotFromThisStore,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_stored_flat_still_runs_and_an_empty_one_is_a_default_run_with_seed_42() {
        let empty = RunRequest::from_stored("{}").unwrap();
        assert_eq!(empty, RunRequest::seeded(42));
        let old = RunRequest::from_stored(
            r#"{"objectives":["cross_sell"],"max_bundles":8,"seed":7,"as_of":"2026-04-30"}"#,
        )
        .unwrap();
        assert_eq!(old.variant.objectives, [Objective::CrossSell]);
        assert_eq!(old.variant.max_bundles, Some(8));
        assert_eq!((old.prepare.seed, old.variant.seed), (7, 7));
        assert_eq!(old.prepare.as_of, NaiveDate::from_ymd_opt(2026, 4, 30));
    }

    #[test]
    fn a_day_outside_the_years_orders_can_be_dated_in_is_refused() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let with = |as_of: Option<NaiveDate>| {
            let mut r = RunRequest::seeded(42);
            r.prepare.as_of = as_of;
            r.validate()
        };
        for fine in [
            None,
            Some(day(1970, 1, 1)),
            Some(day(2026, 4, 30)),
            Some(day(2100, 12, 31)),
        ] {
            assert_eq!(with(fine), Ok(()), "{fine:?}");
        }
        for bad in [
            day(1900, 1, 1),
            day(1969, 12, 31),
            day(2101, 1, 1),
            day(2200, 1, 1),
        ] {
            let err = with(Some(bad)).unwrap_err();
            assert!(matches!(err, InvalidRequest::AsOf { .. }), "{bad}");
            assert!(
                err.to_string()
                    .contains(&format!("as_of: {bad} is outside the years 1970–2100")),
                "{err}"
            );
        }
        // A flat job body reads the day and is refused the same way.
        let flat: FlatRequest = serde_json::from_str(r#"{"as_of": "2200-01-01"}"#).unwrap();
        assert!(flat.into_run_request().validate().is_err());
    }

    #[test]
    fn a_stored_run_request_reads_back_as_itself() {
        let mut r = RunRequest::seeded(9);
        r.prepare.orders = OrderScope::Last(300);
        r.variant.merchant.pins = false;
        r.run_id = Some("01J".into());
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(RunRequest::from_stored(&text).unwrap(), r);
        assert!(RunRequest::from_stored(r#"{"seed":1,"prepare":{}}"#).is_err());
        assert!(RunRequest::from_stored(r#"{"max_bundle":3}"#).is_err());
    }
}
