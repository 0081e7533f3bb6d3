//! Association-rule mining on the real data sets in ../shared/data (read in place):
//! FP-Growth on retail.dat at the two peer thresholds with 1 and 2 threads, the exact
//! pair path, and basket parsing. Whole-process peer figures: benches/peers/rules.

use std::path::{Path, PathBuf};

use bundleforge::rules::{Baskets, Budget, MineParams, Separator, count_pairs, frequent_itemsets};
use criterion::{Criterion, criterion_group, criterion_main};

fn shared(rel: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("{} is missing: skipping its benchmarks", path.display());
        None
    }
}

fn mining(c: &mut Criterion) {
    let Some(path) = shared("fimi_retail/retail.dat.gz") else {
        return;
    };
    let bytes = {
        use std::io::Read;
        let mut out = Vec::new();
        let file = std::fs::File::open(&path).expect("retail.dat");
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    };
    let mut group = c.benchmark_group("rules");
    group.sample_size(20);
    group.bench_function("parse/retail.dat", |b| {
        b.iter(|| Baskets::parse(&bytes, Separator::Auto, &path).expect("parse"))
    });
    let baskets = Baskets::parse(&bytes, Separator::Auto, &path).expect("parse");
    for (minsup, min_count) in [("0.001", 89), ("0.0002", 18)] {
        for threads in [1, 2] {
            let params = MineParams {
                min_count,
                max_len: None,
                max_basket: None,
                threads,
            };
            group.bench_function(format!("fpgrowth/retail.dat/{minsup}/{threads}t"), |b| {
                b.iter(|| frequent_itemsets(&baskets, &params, &Budget::new(usize::MAX)))
            });
        }
    }
    // The `fp-growth` crate (generic, reference-counted tree nodes), for comparison.
    let lists: Vec<Vec<u32>> = baskets.iter().map(<[u32]>::to_vec).collect();
    group.sample_size(10);
    for (minsup, min_count) in [("0.001", 89), ("0.0002", 18)] {
        group.bench_function(format!("fp-growth-crate/retail.dat/{minsup}"), |b| {
            b.iter(|| {
                fp_growth::algorithm::FPGrowth::new(lists.clone(), min_count)
                    .find_frequent_patterns()
                    .frequent_patterns_num()
            })
        });
    }
    group.sample_size(20);
    for threads in [1, 2] {
        group.bench_function(format!("pairs/retail.dat/min3/{threads}t"), |b| {
            b.iter(|| count_pairs(&baskets, 3, threads))
        });
    }
    if let Some(path) = shared("online_retail/online_retail.csv.gz") {
        let retail = online_retail_baskets(&path);
        for threads in [1, 2] {
            group.bench_function(format!("pairs/online_retail/min3/{threads}t"), |b| {
                b.iter(|| count_pairs(&retail, 3, threads))
            });
        }
    }
    if let Some(groceries) = shared("groceries/groceries.csv") {
        let g = Baskets::read(&groceries, Separator::Auto).expect("groceries");
        let params = MineParams {
            min_count: 10,
            max_len: None,
            max_basket: None,
            threads: 2,
        };
        group.bench_function("fpgrowth/groceries/0.001/2t", |b| {
            b.iter(|| frequent_itemsets(&g, &params, &Budget::new(usize::MAX)))
        });
    }
    group.finish();
}

/// One basket per invoice, after dropping cancellations and non-positive quantities
/// and prices (the data README's first filter).
fn online_retail_baskets(path: &Path) -> Baskets {
    let file = std::fs::File::open(path).expect("online retail");
    let mut reader = csv::Reader::from_reader(flate2::read::GzDecoder::new(file));
    let mut invoices: Vec<Vec<String>> = Vec::new();
    let mut last = String::new();
    for row in reader.records() {
        let row = row.expect("csv row");
        let quantity: f64 = row[3].parse().unwrap_or(0.0);
        let price: f64 = row[5].parse().unwrap_or(0.0);
        if row[0].starts_with('C') || quantity <= 0.0 || price <= 0.0 {
            continue;
        }
        // Invoices are contiguous in the file.
        if row[0] != last {
            last = row[0].to_owned();
            invoices.push(Vec::new());
        }
        if let Some(basket) = invoices.last_mut() {
            basket.push(row[1].to_owned());
        }
    }
    Baskets::from_lists(invoices)
}

criterion_group!(benches, mining);
criterion_main!(benches);
