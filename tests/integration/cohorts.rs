//! `cohorts` on the small fixture store: every variant on every scenario over one
//! context each, the paired comparison against the control, a seed that repeats the
//! report, the page in a browser, and the CLI's contract (the JSON keys, `--out`,
//! `cohorts assign`, a bad cohorts file named).

use bundleforge::cohorts::{self, CohortOptions, Cohorts, CohortsReport, Scenario};
use bundleforge::domain::StoreId;
use chrono::NaiveDate;
use serde_json::Value;

use crate::publish::small_store;
use crate::support::cli;

fn cutoff() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 4, 30).unwrap()
}

fn options() -> CohortOptions {
    CohortOptions {
        cutoff: cutoff(),
        seed: 11,
        scenarios: Scenario::defaults(),
        resamples: 200,
        k: 20,
        concurrent_runs: 2,
    }
}

/// The report without its timings, which differ from run to run.
fn without_timings(report: &CohortsReport) -> Value {
    fn strip(v: Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .filter(|(k, _)| !k.ends_with("seconds") && k != "timings")
                    .map(|(k, v)| (k, strip(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(strip).collect()),
            other => other,
        }
    }
    strip(serde_json::to_value(report).unwrap())
}

#[tokio::test]
async fn every_variant_runs_on_every_scenario_and_is_compared_with_the_control_in_pairs() {
    let (db, deps) = small_store().await;
    let id = StoreId::parse("small").unwrap();
    // The presets, and a copy of the control under another name: the same runs, so
    // its paired difference must be exactly zero on every resample.
    let file = Cohorts::from_toml(
        "cohorts.toml",
        "[[variant]]\nname = \"twin\"\nsources = { co_purchase = true, meaning = false, model = false }\n",
    )
    .unwrap();
    let twin = file.variants[6].clone();
    assert_eq!(twin.run.weights, None);
    let mut variants = file.variants[..6].to_vec();
    variants.push(twin);
    let mut steps = Vec::new();
    let progress = std::sync::Mutex::new(&mut steps);
    let report = cohorts::run(&deps, &id, &variants, &options(), &|done, total, what| {
        progress
            .lock()
            .unwrap()
            .push((done, total, what.to_owned()))
    })
    .await
    .unwrap();

    // Nothing of the store was written: no run, no bundle.
    assert_eq!(db.count("SELECT COUNT(*) FROM runs").await, 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM bundles").await, 0);
    // One phase 0 per scenario, one run per variant and scenario.
    assert_eq!(steps.last().map(|s| (s.0, s.1)), Some((24, 24)));
    assert_eq!(steps.iter().filter(|s| s.2.ends_with("phase 0")).count(), 3);

    let names: Vec<&str> = report.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["control", "A", "B", "C", "D", "E", "twin"]);
    assert!(report.heldout_orders > 100, "{}", report.heldout_orders);
    let scenario_names = ["full", "last_300", "last_1200"];
    for v in &report.variants {
        let got: Vec<&str> = v.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(got, scenario_names, "{}", v.name);
        for s in &v.scenarios {
            assert!(s.bundles > 0, "{} {}: no bundle", v.name, s.name);
            assert!(s.strong_hit <= s.hit && (0.0..=1.0).contains(&s.hit));
            for [lo, hi] in [s.intervals.hit, s.intervals.strong_hit] {
                assert!(0.0 <= lo && lo <= hi && hi <= 1.0, "{} {}", v.name, s.name);
            }
            assert!(s.intervals.median_lift[0] <= s.intervals.median_lift[1]);
            let r = &s.recall_at;
            assert_eq!(
                r.keys().map(String::as_str).collect::<Vec<_>>(),
                ["10", "5", "50"]
            );
            assert!(r.values().all(|x| (0.0..=1.0).contains(x)));
            assert!((0.0..=1.0).contains(&s.novelty));
            assert!(s.novel_hits <= s.bundles);
            assert_eq!(s.hit_margin.currency.to_string(), "USD");
            assert_eq!(
                s.hit_margin.bundles,
                (s.hit * s.bundles as f64).round() as usize,
                "{} {}: hitting bundles",
                v.name,
                s.name
            );
            let d = &s.vs_control.strong_hit;
            assert!(d.interval[0] <= d.interval[1]);
        }
    }
    // The scenarios hold what they say.
    let control = &report.variants[0];
    assert_eq!(control.scenarios[1].orders, 300);
    assert!(
        control.scenarios[0].orders > 500,
        "{}",
        control.scenarios[0].orders
    );
    assert_eq!(
        control.scenarios[2].orders,
        1200.min(control.scenarios[0].orders)
    );
    // The presets' weights are used as given; the control's are the tier's.
    assert_eq!(report.variants[3].scenarios[0].weights, [0.56, 0.24, 0.2]);
    assert_eq!(control.weights, Value::from("tier"));
    // The control against itself, and its twin against it: zero, with a zero-wide
    // interval, in every scenario and measure.
    for v in [&report.variants[0], &report.variants[6]] {
        for s in &v.scenarios {
            for d in [
                &s.vs_control.hit,
                &s.vs_control.strong_hit,
                &s.vs_control.median_lift,
            ] {
                assert_eq!((d.difference, d.interval), (0.0, [0.0, 0.0]), "{}", v.name);
            }
        }
    }
    // The differences are the points' differences.
    for v in &report.variants[1..] {
        for (s, c) in v.scenarios.iter().zip(&control.scenarios) {
            let want = s.strong_hit - c.strong_hit;
            assert!((s.vs_control.strong_hit.difference - want).abs() < 1e-12);
        }
    }
    // Baselines per scenario, from that scenario's training orders.
    for name in scenario_names {
        let b = &report.baselines[name];
        assert_eq!(b.random.bundles, 2000);
        assert_eq!(b.top_count_pairs.bundles, 20);
    }
    assert_eq!(report.baselines["last_300"].orders, 300);
    assert_eq!(report.verdict.len(), 3);
    assert_eq!(report.timings.len(), 3);

    // The same seed gives the same report.
    let again = cohorts::run(&deps, &id, &variants, &options(), &|_, _, _| {})
        .await
        .unwrap();
    assert_eq!(without_timings(&report), without_timings(&again));

    // The page: every variant in every scenario's table, both plots, the verdict.
    let dir = db.dir.path().join("cohorts");
    let paths = cohorts::write_files(&dir, false, &report).unwrap();
    assert_eq!(paths.len(), 2);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cohorts.json")).unwrap()).unwrap();
    assert_eq!(json["variants"].as_array().unwrap().len(), 7);
    assert!(
        cohorts::write_files(&dir, false, &report).is_err(),
        "a folder holding files needs force"
    );
    let dom = crate::support::rendered_dom(&dir.join("cohorts.html"));
    for name in scenario_names {
        let start = dom
            .find(&format!("<table data-scenario=\"{name}\">"))
            .unwrap_or_else(|| panic!("no table for {name}"));
        let table = &dom[start..start + dom[start..].find("</table>").unwrap()];
        for v in &names {
            assert!(
                table.contains(&format!("data-variant=\"{v}\"")),
                "{v} is not in the {name} table"
            );
        }
        assert!(dom.contains(&format!("<li data-scenario=\"{name}\">")));
    }
    assert_eq!(dom.matches("<svg").count(), 2, "the two plots");
}

#[test]
fn the_cli_prints_the_comparison_and_assigns_customers_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.sqlite").display());
    crate::cli::ingest_small(&url);

    // A comparison of the control and one custom variant, from a cohorts file.
    let toml = dir.path().join("cohorts.toml");
    std::fs::write(
        &toml,
        "presets = false\nsalt = \"spring\"\n\
         [[variant]]\nname = \"now\"\ncontrol = true\n\
         [[variant]]\nname = \"gifts\"\nweights = [0.4, 0.4, 0.2]\nobjectives = [\"gift\", \"cross_sell\"]\nshare = 3.0\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let args = [
        "cohorts",
        "--store",
        "small",
        "--cutoff",
        "2026-04-30",
        "--variants",
        toml.to_str().unwrap(),
        "--resamples",
        "50",
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ];
    let out = cli(&url, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let variants = v["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    for variant in variants {
        for key in ["name", "weights", "sources", "scenarios"] {
            assert!(variant.get(key).is_some(), "a variant lacks {key}");
        }
        for s in variant["scenarios"].as_array().unwrap() {
            for key in [
                "name",
                "orders",
                "hit",
                "strong_hit",
                "median_lift",
                "by_pick",
                "recall_at",
                "intervals",
                "vs_control",
            ] {
                assert!(s.get(key).is_some(), "a scenario lacks {key}");
            }
            for m in ["hit", "strong_hit", "median_lift"] {
                assert_eq!(s["intervals"][m].as_array().unwrap().len(), 2);
                assert!(s["vs_control"][m]["difference"].is_number());
                assert_eq!(s["vs_control"][m]["interval"].as_array().unwrap().len(), 2);
            }
        }
    }
    assert_eq!(variants[1]["weights"], serde_json::json!([0.4, 0.4, 0.2]));
    for name in ["full", "last_300", "last_1200"] {
        assert!(v["baselines"][name]["top_lift_pairs"].is_object(), "{name}");
    }
    assert!(out_dir.join("cohorts.json").is_file() && out_dir.join("cohorts.html").is_file());
    // The same --out again needs --force, and says so before any work.
    let out = cli(&url, &args);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));

    // The split: the file's salt and shares, the same on every call.
    let assign = |extra: &[&str]| {
        let mut a = vec![
            "cohorts",
            "assign",
            "--store",
            "small",
            "--variants",
            toml.to_str().unwrap(),
            "--json",
        ];
        a.extend_from_slice(extra);
        let out = cli(&url, &a);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let split = assign(&[]);
    assert_eq!(split["salt"], "spring");
    assert_eq!(split["unit"], "customer");
    assert_eq!(split["orders_without_customer"], 0);
    let arms = split["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2);
    assert_eq!(arms[1]["expected_share"], 0.75);
    let total = split["total"].as_u64().unwrap();
    assert!(total > 100);
    assert_eq!(
        arms[0]["count"].as_u64().unwrap() + arms[1]["count"].as_u64().unwrap(),
        total
    );
    assert_eq!(split["srm"]["mismatch"], false, "{split}");
    assert_eq!(split["srm"]["checkable"], true, "{split}");
    assert_eq!(assign(&[]), split);
    let other = assign(&["--salt", "autumn"]);
    assert_eq!(other["salt"], "autumn");
    assert_eq!(other["total"], split["total"]);
    // Stores, by their ids, the same rule.
    let out = cli(
        &url,
        &[
            "cohorts", "assign", "--stores", "--salt", "autumn", "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stores: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (stores["unit"].as_str(), stores["total"].as_u64()),
        (Some("store"), Some(1))
    );
    let arm = bundleforge::cohorts::assign::arm("autumn", "small", &[1.0; 6]).unwrap();
    assert_eq!(stores["arms"][arm]["count"], 1);
    assert_eq!(
        stores["srm"]["checkable"], false,
        "one store can't be checked"
    );

    // A bad cohorts file: one line naming the file, the variant and the field.
    std::fs::write(
        &toml,
        "[[variant]]\nname = \"x\"\nweights = [0.9, 0.9, 0.2]\n",
    )
    .unwrap();
    let out = cli(
        &url,
        &[
            "cohorts",
            "--store",
            "small",
            "--cutoff",
            "2026-04-30",
            "--variants",
            toml.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cohorts.toml") && err.contains("variant 1 (\"x\"): weights"),
        "{err}"
    );
}
