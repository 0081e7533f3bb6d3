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
