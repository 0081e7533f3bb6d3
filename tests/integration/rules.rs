//! Association rules against every reference count in ../shared/data/README.md
//! (computed there with Borgelt's fpgrowth and mlxtend, which agree).

use std::collections::HashMap;
use std::io::Read;

use bundleforge::cancel::CancelToken;
use bundleforge::rules::{self, Baskets, Mined, MiningOptions, Separator, Target};
use serde_json::Value;

use bundleforge::domain::StoreId;
use bundleforge::store::CatalogStore;

use crate::support::{TestDb, cli, orders, shared_data};

fn options(minsup: &str, minconf: Option<&str>, target: Target) -> MiningOptions {
    MiningOptions {
        minsup: minsup.parse().unwrap(),
        minconf: minconf.map(|c| c.parse().unwrap()),
        max_len: None,
        max_basket: None,
        target,
        budget_bytes: 4 << 30,
        budget_covers_process: true,
        threads: 2,
    }
}

fn mine(b: &Baskets, minsup: &str, minconf: Option<&str>, target: Target) -> Mined {
    let m = rules::mine(b, &options(minsup, minconf, target));
    assert!(!m.report.threshold_raised, "{:?}", m.report.attempts);
    m
}

fn read(rel: &str) -> Baskets {
    let path = shared_data(rel);
    Baskets::read(&path, Separator::Auto).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn retail_dat_frequent_closed_and_maximal_match_the_table() {
    let b = read("fimi_retail/retail.dat.gz");
    assert_eq!(b.len(), 88_162);
    assert_eq!(b.item_count(), 16_470);
    // minsup, min count, frequent, closed, maximal
    let table = [
        ("0.05", 4_409, 16, 16, 4),
        ("0.01", 882, 159, 159, 78),
        ("0.005", 441, 580, 580, 284),
        ("0.002", 177, 2_691, 2_691, 1_341),
        ("0.001", 89, 7_589, 7_572, 3_452),
        ("0.0005", 45, 19_242, 19_114, 8_143),
        ("0.0002", 18, 67_186, 65_301, 25_580),
    ];
    for (minsup, min_count, frequent, closed, maximal) in table {
        let m = mine(&b, minsup, None, Target::Closed);
        assert_eq!(m.report.min_count, min_count, "{minsup}");
        assert_eq!(m.frequent.len(), frequent, "frequent at {minsup}");
        assert_eq!(m.itemset_count(), closed, "closed at {minsup}");
        let m = mine(&b, minsup, None, Target::Maximal);
        assert_eq!(m.itemset_count(), maximal, "maximal at {minsup}");
    }
}

#[test]
fn groceries_itemsets_and_rules_match_the_table() {
    let b = read("groceries/groceries.csv");
    assert_eq!(b.len(), 9_835);
    // 169 categories: the two labels with a trailing space are kept as written.
    assert_eq!(b.item_count(), 169);
    assert!(b.labels().iter().any(|l| l == "cream cheese "));
    for (minsup, want) in [("0.01", 333), ("0.005", 1_001), ("0.001", 13_492)] {
        assert_eq!(
            mine(&b, minsup, None, Target::Frequent).frequent.len(),
            want
        );
    }
    assert_eq!(
        mine(&b, "0.001", Some("0.8"), Target::Frequent).rules.len(),
        410
    );
    assert_eq!(
        mine(&b, "0.001", Some("0.6"), Target::Frequent).rules.len(),
        2_918
    );
    // "≥ 2 items": rules with an empty left-hand side are never produced.
    assert_eq!(
        mine(&b, "0.006", Some("0.25"), Target::Frequent)
            .rules
            .len(),
        463
    );
}

#[test]
fn rules_agree_with_counts_recomputed_from_the_baskets() {
    let b = read("groceries/groceries.csv");
    let m = mine(&b, "0.005", Some("0.3"), Target::Frequent);
    assert!(m.rules.len() > 100);
    let count = |items: &[u32]| {
        b.iter()
            .filter(|bk| items.iter().all(|i| bk.contains(i)))
            .count() as u32
    };
    for rule in m.rules.iter().step_by(7) {
        let all = m.frequent.items(rule.itemset as usize);
        let lhs: Vec<u32> = all.iter().copied().filter(|&i| i != rule.rhs).collect();
        assert_eq!(rule.count, count(all));
        assert_eq!(rule.lhs_count, count(&lhs));
        assert_eq!(rule.rhs_count, count(&[rule.rhs]));
        let metrics = rule.metrics(b.len() as u64);
        assert!(metrics.confidence >= 0.3);
        let want_lift = f64::from(rule.count) * b.len() as f64
            / (f64::from(rule.lhs_count) * f64::from(rule.rhs_count));
        assert!((metrics.lift - want_lift).abs() < 1e-9);
    }
}

/// Online Retail, first filter: drop cancellations, quantity ≤ 0 and price ≤ 0; stock
/// codes as given; one basket per invoice.
fn online_retail_first_filter() -> Baskets {
    let path = shared_data("online_retail/online_retail.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut invoices: Vec<Vec<String>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in reader.records() {
        let row = row.unwrap();
        let (invoice, code) = (&row[0], &row[1]);
        let quantity: f64 = row[3].parse().unwrap();
        let price: f64 = row[5].parse().unwrap();
        if invoice.starts_with('C') || quantity <= 0.0 || price <= 0.0 {
            continue;
        }
        let at = *index.entry(invoice.to_owned()).or_insert_with(|| {
            invoices.push(Vec::new());
            invoices.len() - 1
        });
        invoices[at].push(code.to_owned());
    }
    Baskets::from_lists(invoices)
}

#[test]
fn online_retail_first_filter_matches_the_table() {
    let b = online_retail_first_filter();
    assert_eq!(b.len(), 19_960);
    assert_eq!(b.item_count(), 3_922);
    for (minsup, min_count, itemsets, rules) in [
        ("0.05", 998, 36, 0),
        ("0.03", 599, 142, 12),
        ("0.02", 400, 385, 59),
        ("0.01", 200, 2_026, 919),
    ] {
        let m = mine(&b, minsup, Some("0.5"), Target::Frequent);
        assert_eq!(m.report.min_count, min_count, "{minsup}");
        assert_eq!(
            (m.frequent.len(), m.rules.len()),
            (itemsets, rules),
            "{minsup}"
        );
    }
}

fn json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json on stdout")
}

/// The canonical filter is what `ingest` does; `rules --store` mines its orders.
#[tokio::test]
async fn online_retail_store_matches_the_canonical_table() {
    let db = TestDb::new().await;
    db.ingest_ok(
        "online-retail",
        orders(shared_data("online_retail/online_retail.csv.gz")),
    )
    .await;
    let url = format!("sqlite://{}", db.dir.path().join("test.sqlite").display());
    for (minsup, min_count, itemsets, rules) in [
        ("0.05", 989, 36, 0),
        ("0.03", 594, 143, 14),
        ("0.02", 396, 395, 58),
        ("0.01", 198, 2_026, 888),
    ] {
        let args = [
            "rules",
            "--store",
            "online-retail",
            "--minsup",
            minsup,
            "--minconf",
            "0.5",
            "--json",
        ];
        let out = json(&cli(&url, &args));
        assert_eq!(out["baskets"], 19_773);
        assert_eq!(out["min_count"], min_count, "{minsup}");
        assert_eq!(out["itemsets"], itemsets, "{minsup}");
        assert_eq!(out["rules"], rules, "{minsup}");
    }

    // The pipeline's defaults: the exact pair path, and itemsets of up to 4 items at
    // max(3, ⌈0.005 × N⌉) = 99, which Borgelt's code mines as 17,034 (7,148 of 3–4).
    // (a < b holds: pairs are ordered by item id.)
    let data = db
        .store
        .load(&StoreId::parse("online-retail").unwrap())
        .await
        .unwrap();
    let (baskets, unmatched) = Baskets::from_store(&data);
    assert_eq!((baskets.len(), unmatched), (19_773, 0));
    let threads = db.settings.threads_for(db.settings.rules.threads);
    let evidence =
        rules::evidence(&baskets, &db.settings.rules, threads, &CancelToken::never()).unwrap();
    // 2,183,829 pairs are bought together at least 3 times (the figure).
    assert_eq!(evidence.pairs.pairs.len(), 2_183_829);
    assert!(
        evidence
            .pairs
            .pairs
            .iter()
            .all(|p| p.count >= 3 && p.a < p.b)
    );
    let sets = &evidence.itemsets;
    assert_eq!(sets.report.min_count, 99);
    assert_eq!(sets.frequent.len(), 17_034);
    let by_size = sets.itemsets_by_size();
    assert_eq!(by_size[3] + by_size[4], 7_148);
    assert_eq!(by_size.len(), 5, "no itemset longer than 4");
}

#[test]
fn cli_prints_the_contract_keys_and_writes_itemsets_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("groceries-rules.json");
    let groceries = shared_data("groceries/groceries.csv");
    let args = [
        "rules",
        "--baskets",
        groceries.to_str().unwrap(),
        "--minsup",
        "0.001",
        "--minconf",
        "0.8",
        "--json",
        "--out",
        out_path.to_str().unwrap(),
    ];
    let out = json(&cli("sqlite://unused.sqlite", &args));
    assert_eq!(out["itemsets"], 13_492);
    assert_eq!(out["rules"], 410);
    assert_eq!(out["min_count"], 10);
    assert_eq!(out["minsup"], 0.001);
    let by_size = out["itemsets_by_size"].as_object().unwrap();
    let total: u64 = by_size.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 13_492);
    assert_eq!(by_size["1"], 157);
    assert!(out["seconds"].as_f64().unwrap() > 0.0);
    assert!(out["peak_rss_bytes"].as_u64().unwrap() > 0);

    let written: Value =
        serde_json::from_slice(&std::fs::read(&out_path).unwrap()).expect("--out is JSON");
    assert_eq!(written["itemsets"].as_array().unwrap().len(), 13_492);
    let rules = written["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 410);
    for r in rules {
        assert!(r["confidence"].as_f64().unwrap() >= 0.8);
        assert!(r["lift"].as_f64().unwrap() > 1.0);
        assert!(!r["lhs"].as_array().unwrap().is_empty());
    }
}

#[test]
fn caps_are_reported_and_a_minsup_count_is_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.txt");
    std::fs::write(&file, "a b c d e f\na b\na b\nb c\n").unwrap();
    let args = [
        "rules",
        "--baskets",
        file.to_str().unwrap(),
        "--minsup",
        "2",
        "--max-basket",
        "4",
        "--max-len",
        "1",
        "--json",
    ];
    let out = json(&cli("sqlite://unused.sqlite", &args));
    assert_eq!(out["baskets"], 4);
    assert_eq!(out["baskets_capped"], 1);
    assert_eq!(out["baskets_mined"], 3);
    assert_eq!(out["min_count"], 2);
    // a:2, b:3 (the 6-item basket is left out); length 1 only.
    assert_eq!(out["itemsets"], 2);
    assert_eq!(out["rules"], 0);
}

#[test]
fn an_unreadable_baskets_file_names_itself() {
    let out = cli(
        "sqlite://unused.sqlite",
        &["rules", "--baskets", "/nonexistent/baskets.txt"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/baskets.txt"), "{err}");
    let bad = cli(
        "sqlite://unused.sqlite",
        &["rules", "--baskets", "x", "--minsup", "0.5%"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("0.5%"));
}
