//! Offline A/B cohorts: several variants of the engine run over one prepared context
//! per scenario and are scored on the same held-out orders, each against the control
//! with a paired interval, so a merchant knows which configuration sells before rolling
//! it out.
//!
//! The seed design's groups are built in: the control (the tier's weights, candidates
//! from co-purchase only) and A–E, the seed's α and β scaled to 0.8 with γ = 0.2 so the
//! business signal stays in every arm, with every candidate source. A `cohorts.toml`
//! adds custom variants (or replaces the presets): weights, objectives, bundle types,
//! candidate sources, pricing knobs, and each arm's share of customers.

pub mod assign;
mod evaluate;
mod measures;
mod report;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::domain::{BundleType, Objective};
use crate::pipeline::{CandidateSources, MerchantInputs, PricingKnobs, Variant, WEIGHT_PRESETS};

pub use evaluate::{
    CohortOptions, CohortsReport, Difference, HitMargin, Intervals, Scenario, ScenarioBaselines,
    VariantReport, VariantScenario, Verdict, VsControl, run,
};
pub use report::{assignment_text, html, table, write_files};

#[derive(Debug, thiserror::Error)]
pub enum CohortsError {
    /// A cohorts file that cannot be used, naming the file and the variant or field.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    #[error("{0}")]
    Data(String),
}

/// One arm of a comparison: a named run of the engine.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CohortVariant {
    pub name: String,
    pub description: String,
    /// What the arm's runs vary (weights — `None`: the tier's —, sources, objectives,
    /// types, pricing); its seed is the comparison's.
    pub run: Variant,
    /// The arm the others are compared with (exactly one).
    pub control: bool,
    /// Its share of customers when assigned (relative to the others').
    pub share: f64,
}

impl CohortVariant {
    /// The run this arm is, with the comparison's seed: the engine alone (a cohort
    /// compares configurations, not a merchant's pins and approvals).
    pub fn variant(&self, seed: u64) -> Variant {
        Variant {
            seed,
            merchant: MerchantInputs::NONE,
            ..self.run.clone()
        }
    }

    fn preset(name: &str, description: &str, weights: [f64; 3]) -> CohortVariant {
        CohortVariant {
            name: name.into(),
            description: description.into(),
            run: Variant {
                weights: Some(weights),
                ..Variant::default()
            },
            control: false,
            share: 1.0,
        }
    }
}

/// The seed design's six groups.
pub fn presets() -> Vec<CohortVariant> {
    let mut control = CohortVariant::preset(
        "control",
        "FP-Growth only: the tier's weights, candidates from co-purchase alone",
        [0.0; 3],
    );
    control.run.weights = None;
    control.run.sources = CandidateSources::CO_PURCHASE_ONLY;
    control.control = true;
    std::iter::once(control)
        .chain(
            WEIGHT_PRESETS.iter().map(|(name, description, weights)| {
                CohortVariant::preset(name, description, *weights)
            }),
        )
        .collect()
}

/// A cohorts file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CohortsFile {
    /// Keep the six built-in arms beside the file's (default true).
    presets: Option<bool>,
    /// The assignment salt `cohorts assign` uses without `--salt`.
    salt: Option<String>,
    #[serde(default)]
    variant: Vec<FileVariant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVariant {
    name: String,
    #[serde(default)]
    description: String,
    weights: Option<[f64; 3]>,
    sources: Option<CandidateSources>,
    #[serde(default)]
    objectives: Vec<Objective>,
    #[serde(default)]
    bundle_types: Vec<BundleType>,
    max_bundles: Option<usize>,
    #[serde(default)]
    pricing: PricingKnobs,
    #[serde(default)]
    control: bool,
    share: Option<f64>,
}

/// The arms of a comparison and the assignment salt a file names.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohorts {
    pub variants: Vec<CohortVariant>,
    pub salt: Option<String>,
}

impl Cohorts {
    /// The presets alone.
    pub fn presets() -> Cohorts {
        Cohorts {
            variants: presets(),
            salt: None,
        }
    }

    /// Reads a cohorts file (its keys: docs/cohorts.md).
    pub fn from_file(path: &Path) -> Result<Cohorts, CohortsError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CohortsError::File {
            path: name.clone(),
            message: format!("cannot read it: {e}"),
        })?;
        Cohorts::from_toml(&name, &text)
    }

    /// Reads a cohorts file's text; `name` is what errors call it.
    pub fn from_toml(name: &str, text: &str) -> Result<Cohorts, CohortsError> {
        let bad = |message: String| CohortsError::File {
            path: name.to_owned(),
            message,
        };
        let file: CohortsFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut variants = if file.presets.unwrap_or(true) {
            presets()
        } else {
            Vec::new()
        };
        let custom_control = file.variant.iter().any(|v| v.control);
        if custom_control {
            for v in &mut variants {
                v.control = false;
            }
        }
        for (n, v) in file.variant.into_iter().enumerate() {
            let at = format!("variant {} ({:?})", n + 1, v.name);
            let name = v.name.trim().to_owned();
            if name.is_empty() || name.len() > 64 {
                return Err(bad(format!("{at}: name: 1 to 64 characters")));
            }
            if variants.iter().any(|o| o.name == name) {
                return Err(bad(format!("{at}: name: another variant is called that")));
            }
            let share = v.share.unwrap_or(1.0);
            if !(share.is_finite() && share >= 0.0) {
                return Err(bad(format!(
                    "{at}: share: {share} is not a share (0 or more)"
                )));
            }
            let run = Variant {
                weights: v.weights,
                sources: v.sources.unwrap_or(CandidateSources::ALL),
                objectives: v.objectives,
                bundle_types: v.bundle_types,
                max_bundles: v.max_bundles,
                pricing: v.pricing,
                seed: 0,
                merchant: MerchantInputs::NONE,
            };
            run.validate().map_err(|e| bad(format!("{at}: {}", e.0)))?;
            variants.push(CohortVariant {
                name,
                description: v.description,
                run,
                control: v.control,
                share,
            });
        }
        match variants.iter().filter(|v| v.control).count() {
            1 => {}
            0 => {
                return Err(bad(
                    "no variant is the control: set `control = true` on one, or keep the presets"
                        .into(),
                ));
            }
            _ => return Err(bad("more than one variant says `control = true`".into())),
        }
        if variants.len() < 2 {
            return Err(bad(
                "a comparison needs the control and at least one variant".into(),
            ));
        }
        if let Some(salt) = &file.salt
            && salt.trim().is_empty()
        {
            return Err(bad("salt: empty".into()));
        }
        Ok(Cohorts {
            variants,
            salt: file.salt,
        })
    }

    /// Each arm's name and share, for assignment.
    pub fn arms(&self) -> Vec<(String, f64)> {
        self.variants
            .iter()
            .map(|v| (v.name.clone(), v.share))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_presets_are_the_seeds_groups_with_the_business_signal_in_every_arm() {
        let p = presets();
        let names: Vec<&str> = p.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["control", "A", "B", "C", "D", "E"]);
        assert!(p[0].control && p[0].run.weights.is_none());
        assert_eq!(p[0].run.sources, CandidateSources::CO_PURCHASE_ONLY);
        for v in &p[1..] {
            let w = v.run.weights.unwrap();
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{}", v.name);
            assert_eq!(w[2], 0.2);
            assert_eq!(v.run.sources, CandidateSources::ALL);
            assert!(v.variant(1).validate().is_ok());
        }
        assert_eq!(p[3].run.weights, Some([0.56, 0.24, 0.2]));
    }

    #[test]
    fn a_file_adds_variants_and_names_what_is_wrong() {
        let text = r#"
salt = "spring-2027"

[[variant]]
name = "gifts"
description = "gift boxes only, cheaper"
weights = [0.5, 0.3, 0.2]
objectives = ["gift"]
bundle_types = ["fixed", "addon"]
sources = { co_purchase = true, meaning = true, model = false }
pricing = { bayesian_weight = 0.5, ranges = [["gift", [5.0, 15.0]]] }
share = 2.0
"#;
        let c = Cohorts::from_toml("cohorts.toml", text).unwrap();
        assert_eq!(c.variants.len(), 7);
        assert_eq!(c.salt.as_deref(), Some("spring-2027"));
        let g = &c.variants[6];
        assert_eq!(g.run.objectives, [Objective::Gift]);
        assert!(!g.run.sources.model);
        assert_eq!(g.run.pricing.bayesian_weight, Some(0.5));
        assert_eq!(c.arms()[6], ("gifts".to_string(), 2.0));

        for (text, want) in [
            (
                "[[variant]]\nname = \"x\"\nweights = [0.5, 0.5, 0.5]\n",
                "variant 1 (\"x\"): weights",
            ),
            ("[[variant]]\nname = \"A\"\n", "variant 1 (\"A\"): name"),
            ("[[variant]]\nname = \"x\"\ncolour = 1\n", "colour"),
            (
                "presets = false\n[[variant]]\nname = \"x\"\n",
                "no variant is the control",
            ),
            (
                "[[variant]]\nname = \"x\"\nsources = { co_purchase = false, meaning = false, model = false }\n",
                "sources",
            ),
            ("[[variant]]\nname = \"x\"\nshare = -1.0\n", "share"),
        ] {
            let err = Cohorts::from_toml("cohorts.toml", text)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("cohorts.toml: "), "{err}");
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn a_file_may_bring_its_own_control() {
        let text = "presets = false\n[[variant]]\nname = \"now\"\ncontrol = true\n[[variant]]\nname = \"next\"\nweights = [0.3, 0.5, 0.2]\n";
        let c = Cohorts::from_toml("c.toml", text).unwrap();
        assert_eq!(c.variants.len(), 2);
        assert!(c.variants[0].control && !c.variants[1].control);
    }
}
