//! The binary's contract: flags, one JSON document on stdout, one-line errors.

use std::process::Command;

use crate::support::{cli, repo_root};

fn db_in(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("cli.sqlite").display())
}

#[test]
fn ingest_and_stats_print_one_json_document_each() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_in(&dir);
    let small = repo_root().join("fixtures/stores/small");
    let out = cli(
        &url,
        &[
            "ingest",
            "--store",
            "small",
            "--catalog",
            small.join("products.csv").to_str().unwrap(),
            "--orders",
            small.join("orders.csv").to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    for key in [
        "rows_read",
        "rows_kept",
        "rejected",
        "dropped",
        "orders",
        "order_lines",
        "products",
        "baskets",
        "errors",
    ] {
        assert!(v.get(key).is_some(), "ingest JSON lacks {key}");
    }
    assert_eq!(v["products"], 151);

    let out = cli(
        &url,
        &[
            "stats",
            "--store",
            "small",
            "--json",
            "--as-of",
            "2026-06-30",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["as_of"], "2026-06-30");
    assert_eq!(v["tier"], "small");

    let out = cli(&url, &["stats", "--store", "small"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Small tier"), "{text}");
}

#[test]
fn errors_are_one_line_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_in(&dir);
    let out = cli(&url, &["stats", "--store", "nobody"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: unknown store \"nobody\""), "{err}");
    assert!(out.stdout.is_empty());

    // A system error is said once, not once per layer that wraps it.
    let out = cli(
        &url,
        &["ingest", "--store", "s", "--orders", "/no/such/file.csv"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let out = cli(&url, &["ingest", "--store", "bad id!", "--orders", "x.csv"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("store id"));

    // The library names the file's role; the binary adds the flag that gives it.
    let catalog = repo_root().join("fixtures/stores/small/products.csv");
    let catalog = catalog.to_str().unwrap();
    let out = cli(&url, &["ingest", "--store", "s", "--orders", catalog]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("read as the catalog file")
            && err.trim_end().ends_with("(pass it with --catalog)"),
        "{err}"
    );
}

#[test]
fn a_negative_or_malformed_value_is_named_with_what_it_must_be() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_in(&dir);
    let cases: [(&[&str], &str); 9] = [
        (
            &["generate", "--store", "s", "--max-bundles", "-1"],
            "must be at least 1",
        ),
        (
            &["generate", "--store", "s", "--seed", "-1"],
            "must be 0 or more",
        ),
        (
            &["similar", "--store", "s", "--product", "a", "--k", "-3"],
            "must be 0 or more",
        ),
        (&["stats", "--store", "s", "--as-of", "-1"], "YYYY-MM-DD"),
        (
            &["generate", "--store", "s", "--as-of", "1900-01-01"],
            "outside the years 1970–2100",
        ),
        (
            &["generate", "--store", "s", "--as-of", "2200-01-01"],
            "outside the years 1970–2100",
        ),
        (
            &["generate", "--store", "s", "--weights", "-1,1,1"],
            "sum to 1",
        ),
        (
            &["rules", "--baskets", "x.dat", "--minsup", "-1"],
            "a count of at least 1",
        ),
        (
            &[
                "eval",
                "--store",
                "s",
                "--cutoff",
                "2024-01-01",
                "--max-orders",
                "abc",
            ],
            "not a whole number",
        ),
    ];
    for (args, says) in cases {
        let out = cli(&url, args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: invalid value"), "{args:?}: {err}");
        assert!(first.contains(says), "{args:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
    // A setting's serde wording is said in a person's.
    let out = Command::new(env!("CARGO_BIN_EXE_bundleforge"))
        .args(["stats", "--store", "s"])
        .env("BUNDLEFORGE__DATABASE__URL", &url)
        .env("BUNDLEFORGE__LLM__CONCURRENCY", "-1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`llm.concurrency`: -1 is not a whole number of 0 or more"),
        "{err}"
    );
}

#[test]
fn row_errors_come_one_per_line_in_file_and_line_order() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_in(&dir);
    let orders = dir.path().join("orders.csv");
    // Line 2's price is found bad only once its order is complete, after line 3 is
    // found cut short; line 4 has a value with a line break.
    std::fs::write(
        &orders,
        "order_id,created_at,sku,quantity,price\n\
         1,2024-01-05,A,1,\"12,50\"\n\
         2,2024-01-05,A,1\n\
         3,2024-01-06,\"B\nC\",y,3.00\n\
         4,2024-01-06,A,1,3.00\n",
    )
    .unwrap();
    let out = cli(
        &url,
        &[
            "ingest",
            "--store",
            "s",
            "--orders",
            orders.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    let at: Vec<&str> = lines
        .iter()
        .map(|l| {
            let at = l.split(": ").next().unwrap_or_default();
            at.rsplit(['/', '\\']).next().unwrap_or_default()
        })
        .collect();
    assert_eq!(
        at,
        ["orders.csv:2", "orders.csv:3", "orders.csv:4"],
        "{err}"
    );
    assert!(
        lines[1].contains("orders.csv:3: the row has 4 fields, the header has 5"),
        "{err}"
    );
}

#[test]
fn config_layers_reach_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_in(&dir);
    let cfg = dir.path().join("bf.toml");
    std::fs::write(
        &cfg,
        "[database]\nurl = \"sqlite://x.db\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let out = cli(
        &url,
        &["--config", cfg.to_str().unwrap(), "stats", "--store", "s"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key `database.colour`"), "{err}");

    // DATABASE_URL alone names the database; an unknown BUNDLEFORGE__ variable warns.
    let other = format!("sqlite://{}", dir.path().join("other.sqlite").display());
    let out = Command::new(env!("CARGO_BIN_EXE_bundleforge"))
        .args(["stats", "--store", "s"])
        .env_remove("BUNDLEFORGE__DATABASE__URL")
        .env("DATABASE_URL", &other)
        .env("BUNDLEFORGE__NOPE__THING", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BUNDLEFORGE__NOPE__THING"), "{err}");
    assert!(
        dir.path().join("other.sqlite").exists(),
        "the SQLite file a URL names is created"
    );
}

#[test]
fn fixtures_command_writes_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(
        "sqlite://unused.db",
        &[
            "fixtures",
            "--size",
            "small",
            "--out",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["products.csv", "orders.csv", "planted.json"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let committed = std::fs::read(repo_root().join("fixtures/stores/small/planted.json")).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("planted.json")).unwrap(),
        committed
    );
}

async fn runs_stored(url: &str) -> i64 {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// The small fixture's catalog and orders as store `small`.
pub fn ingest_small(url: &str) {
    let small = repo_root().join("fixtures/stores/small");
    let ingest = cli(
        url,
        &[
            "ingest",
            "--store",
            "small",
            "--catalog",
            small.join("products.csv").to_str().unwrap(),
            "--orders",
            small.join("orders.csv").to_str().unwrap(),
        ],
    );
    assert!(
        ingest.status.success(),
        "{}",
        String::from_utf8_lossy(&ingest.stderr)
    );
}

fn run_id_in(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(dir.join("bundles.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["run"]["run_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_out_that_holds_files_needs_force_and_a_failed_write_stores_no_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_in(&dir);
    ingest_small(&url);
    let out_dir = dir.path().join("run");
    let out_arg = out_dir.to_str().unwrap();
    let generate = |extra: &[&str]| {
        let mut args = vec!["generate", "--store", "small", "--json"];
        args.extend_from_slice(extra);
        cli(&url, &args)
    };
    let first = generate(&["--out", out_arg]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let first_id = run_id_in(&out_dir);
    assert_eq!(runs_stored(&url).await, 1);

    // The same folder again: refused before any work, nothing stored, files kept.
    let again = generate(&["--out", out_arg]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    assert!(again.stdout.is_empty());
    assert_eq!(run_id_in(&out_dir), first_id);
    assert_eq!(runs_stored(&url).await, 1);

    // With --force the folder is replaced whole by the new run's files.
    let forced = generate(&["--out", out_arg, "--force"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_ne!(run_id_in(&out_dir), first_id);
    let names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(runs_stored(&url).await, 2);

    // Files that cannot be written (the folder's parent is a file): no run is stored.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("run");
    let failed = generate(&["--out", under_file.to_str().unwrap()]);
    assert!(!failed.status.success());
    assert!(failed.stdout.is_empty());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("a-file"));
    assert_eq!(runs_stored(&url).await, 2);
    // An existing file as --out: refused, unless --force replaces it with the folder.
    let on_file = generate(&["--out", file.to_str().unwrap()]);
    assert!(!on_file.status.success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    assert_eq!(runs_stored(&url).await, 2);
    // No temporary folder is left behind by any of it.
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // rules and eval follow the same rule.
    let baskets = dir.path().join("baskets.txt");
    std::fs::write(&baskets, "a b\na b\nb c\n").unwrap();
    let rules_out = dir.path().join("rules.json");
    std::fs::write(&rules_out, "keep me").unwrap();
    let rules = |extra: &[&str]| {
        let mut args = vec![
            "rules",
            "--baskets",
            baskets.to_str().unwrap(),
            "--minsup",
            "2",
            "--out",
            rules_out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cli(&url, &args)
    };
    let refused = rules(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&rules_out).unwrap(), "keep me");
    let replaced = rules(&["--force"]);
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rules_out).unwrap()).unwrap();
    assert!(written.is_object());
    let eval = cli(
        &url,
        &[
            "eval",
            "--store",
            "small",
            "--cutoff",
            "2026-04-30",
            "--out",
            out_arg,
        ],
    );
    assert!(!eval.status.success());
    assert!(String::from_utf8_lossy(&eval.stderr).contains("--force"));
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly_and_zero_bundles_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_in(&dir);
    let small = repo_root().join("fixtures/stores/small");
    let ingest = cli(
        &url,
        &[
            "ingest",
            "--store",
            "small",
            "--catalog",
            small.join("products.csv").to_str().unwrap(),
        ],
    );
    assert!(ingest.status.success());
    // `bundleforge stats … | head -c 0`: the pipe is closed before anything is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_bundleforge"))
        .args(["stats", "--store", "small", "--json"])
        .env("BUNDLEFORGE__DATABASE__URL", &url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");

    for command in ["generate", "eval"] {
        let mut args = vec![command, "--store", "small", "--max-bundles", "0"];
        if command == "eval" {
            args.extend(["--cutoff", "2026-04-30"]);
        }
        let out = cli(&url, &args);
        assert!(!out.status.success(), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--max-bundles") && err.contains("at least 1"),
            "{err}"
        );
    }
}

#[test]
fn two_ingests_on_a_new_database_file_take_turns_at_its_migrations() {
    let catalog = repo_root().join("fixtures/stores/small/products.csv");
    for attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = db_in(&dir);
        let spawn = |store: &str| {
            Command::new(env!("CARGO_BIN_EXE_bundleforge"))
                .args(["ingest", "--store", store, "--catalog"])
                .arg(&catalog)
                .env("BUNDLEFORGE__DATABASE__URL", &url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn("a"), spawn("b"));
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "attempt {attempt}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn ingest_check_stores_nothing_and_rejected_rows_come_back_fixable() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_in(&dir);
    let orders = dir.path().join("orders.csv");
    // Shopify's export: order 1002's second line has a bad price; its date is on its
    // first row only, so that row must come along for the order to come back whole.
    std::fs::write(
        &orders,
        "Name,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku\n\
#1001,2024-03-05 10:00:00,1,Mug,10.00,MUG-1\n\
#1002,2024-03-06 10:00:00,1,Mug,10.00,MUG-1\n\
#1002,,2,Saucer,ten,SAU-1\n\
#1003,2024-03-07 10:00:00,x,Mug,10.00,MUG-1\n",
    )
    .unwrap();
    let rejected = dir.path().join("fix-me.csv");
    let orders_arg = orders.to_str().unwrap();
    fn args<'a>(orders: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["ingest", "--store", "s", "--orders", orders];
        a.extend_from_slice(extra);
        a
    }
    let out = cli(
        &url,
        &args(
            orders_arg,
            &[
                "--check",
                "--json",
                "--rejected",
                rejected.to_str().unwrap(),
            ],
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["checked"], true);
    assert_eq!(v["rejected"]["bad_price"], 1);
    assert_eq!(v["rejected"]["bad_quantity"], 1);
    assert!(
        !dir.path().join("cli.sqlite").exists(),
        "--check creates no database"
    );
    assert_eq!(v["rejected_files"][0]["rows"], 3);
    assert_eq!(v["rejected_files"][0]["rejected"], 2);
    let text = std::fs::read_to_string(&rejected).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Name,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,rejected_reason"
    );
    assert_eq!(lines[1], "#1002,2024-03-06 10:00:00,1,Mug,10.00,MUG-1,");
    assert!(
        lines[2].starts_with("#1002,,2,Saucer,ten,SAU-1,") && lines[2].contains("Lineitem price"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("#1003,") && lines[3].contains("not a whole number"),
        "{}",
        lines[3]
    );
    assert_eq!(lines.len(), 4);

    // An existing file is not replaced without --force.
    let again = cli(
        &url,
        &args(
            orders_arg,
            &["--check", "--rejected", rejected.to_str().unwrap()],
        ),
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    // Stored for real, then the fixed rows uploaded: every order whole.
    assert!(cli(&url, &args(orders_arg, &[])).status.success());
    let fixed = text.replace(",ten,", ",5.00,").replace(",x,", ",1,");
    let fixed_path = dir.path().join("fixed.csv");
    std::fs::write(&fixed_path, fixed).unwrap();
    let out = cli(
        &url,
        &[
            "ingest",
            "--store",
            "s",
            "--orders",
            fixed_path.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rejected"], serde_json::json!({}), "{v}");
    assert_eq!(v["orders"], 2);
    let stats = cli(&url, &["stats", "--store", "s", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(
        (s["orders"].as_u64(), s["order_lines"].as_u64()),
        (Some(3), Some(4))
    );
}

#[tokio::test]
async fn approve_records_decisions_on_a_runs_bundles_and_refuses_ids_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_in(&dir);
    ingest_small(&url);
    let out_dir = dir.path().join("run");
    let generate = cli(
        &url,
        &[
            "generate",
            "--store",
            "small",
            "--json",
            "--max-bundles",
            "4",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(
        generate.status.success(),
        "{}",
        String::from_utf8_lossy(&generate.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&generate.stdout).unwrap();
    let run_id = doc["run"]["run_id"].as_str().unwrap().to_owned();
    let ids: Vec<String> = doc["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.len() >= 2);

    let two = format!("{},{}", ids[0], ids[1]);
    let approved = cli(
        &url,
        &[
            "approve",
            "--store",
            "small",
            "--run",
            "latest",
            "--bundles",
            &two,
            "--json",
        ],
    );
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let recorded: serde_json::Value = serde_json::from_slice(&approved.stdout).unwrap();
    let recorded = recorded.as_array().unwrap();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|a| a["decision"] == "approved"
        && a["decided_by"] == "cli"
        && a["run_id"] == run_id.as_str()));

    // Every bundle of the run, rejected: the later decision replaces the earlier one.
    let rejected = cli(
        &url,
        &[
            "approve", "--store", "small", "--run", &run_id, "--reject", "--by", "Ana",
        ],
    );
    assert!(
        rejected.status.success(),
        "{}",
        String::from_utf8_lossy(&rejected.stderr)
    );
    let db = bundleforge::store::SqliteStore::open(&url).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT decision, decided_by FROM approvals WHERE store_id = 'small'")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), ids.len());
    assert!(
        rows.iter().all(|(d, by)| d == "rejected" && by == "Ana"),
        "{rows:?}"
    );

    // An id the run lacks, or a run the store lacks: refused, nothing recorded.
    let wrong = format!("{},nope", ids[0]);
    let refused = cli(
        &url,
        &[
            "approve",
            "--store",
            "small",
            "--run",
            &run_id,
            "--bundles",
            &wrong,
        ],
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("has no bundle \"nope\""), "{err}");
    let refused = cli(&url, &["approve", "--store", "small", "--run", "R0"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("has no run \"R0\""));
    let still: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM approvals WHERE decision = 'rejected'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(still as usize, ids.len());
}

#[test]
fn ingest_sets_a_shop_domain_and_names_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_in(&dir);
    let csv = crate::support::write_file(
        dir.path(),
        "c.csv",
        b"variant_id,product_id,title,price\nv1,p1,Mug,12.00\n",
    );
    let bad = cli(
        &url,
        &[
            "ingest",
            "--store",
            "s",
            "--catalog",
            csv.to_str().unwrap(),
            "--shop-domain",
            "my shop",
        ],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--shop-domain") && err.contains("example.myshopify.com"),
        "{err}"
    );
    let ok = cli(
        &url,
        &[
            "ingest",
            "--store",
            "s",
            "--catalog",
            csv.to_str().unwrap(),
            "--shop-domain",
            "Mugs.myshopify.com",
        ],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let domain: Option<String> = rt.block_on(async {
        let db = bundleforge::store::SqliteStore::open(&url).await.unwrap();
        sqlx::query_scalar("SELECT shop_domain FROM stores WHERE store_id = 's'")
            .fetch_one(db.pool())
            .await
            .unwrap()
    });
    assert_eq!(domain.as_deref(), Some("mugs.myshopify.com"));
}
