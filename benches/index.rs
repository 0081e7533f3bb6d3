//! Vector-core benchmarks on seeded synthetic vectors (384-d, clustered, normalised):
//! the dot kernels, exact batched search, the kNN graph, and HNSW search.
//!
//! Run: `cargo bench --bench index`. The comparison with FAISS, hnswlib and
//! onnxruntime is `benches/peers/run` (see BENCHMARKS.md).

use bundleforge::index::metric::{Kernels, dot_scalar};
use bundleforge::index::{ExactIndex, HnswIndex, HnswParams, knn_graph, synthetic};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const DIM: usize = 384;

fn kernels(c: &mut Criterion) {
    let data = synthetic::clustered(2, DIM, 1, 1);
    let (a, b) = (data.row(0).to_vec(), data.row(1).to_vec());
    let mut group = c.benchmark_group("dot");
    group.throughput(Throughput::Elements(DIM as u64));
    group.bench_function(BenchmarkId::new("reference", DIM), |bench| {
        bench.iter(|| dot_scalar(std::hint::black_box(&a), std::hint::black_box(&b)))
    });
    for k in Kernels::available() {
        group.bench_function(BenchmarkId::new(k.name, DIM), |bench| {
            bench.iter(|| k.dot(std::hint::black_box(&a), std::hint::black_box(&b)))
        });
    }
    group.finish();
}

fn exact(c: &mut Criterion) {
    let mut group = c.benchmark_group("exact");
    group.sample_size(10);
    for n in [1_000usize, 10_000, 100_000] {
        let data = synthetic::clustered(n, DIM, 200, 42);
        let queries = synthetic::queries_near(&data, 1000, 0.3, 43);
        let index = ExactIndex::new(data);
        group.throughput(Throughput::Elements(1000));
        for threads in [1usize, 2] {
            group.bench_function(format!("{}k×{DIM}/top10/{threads}t", n / 1000), |b| {
                b.iter(|| index.search_batch(&queries, 10, threads))
            });
        }
    }
    group.finish();
}

fn graph(c: &mut Criterion) {
    let mut group = c.benchmark_group("knn_graph");
    group.sample_size(10);
    let data = synthetic::clustered(10_000, DIM, 200, 42);
    group.throughput(Throughput::Elements(10_000));
    for threads in [1usize, 2] {
        group.bench_function(format!("10k×{DIM}/k20/{threads}t"), |b| {
            b.iter(|| knn_graph(&data, 20, None, threads))
        });
    }
    group.finish();
}

fn hnsw(c: &mut Criterion) {
    let mut group = c.benchmark_group("hnsw");
    group.sample_size(10);
    let data = synthetic::clustered(20_000, DIM, 200, 42);
    let queries = synthetic::queries_near(&data, 1000, 0.3, 43);
    let index = HnswIndex::build(data, HnswParams::default(), 2);
    group.throughput(Throughput::Elements(1000));
    for ef in [64usize, 128] {
        group.bench_function(format!("20k×{DIM}/top10/ef{ef}/1t"), |b| {
            b.iter(|| index.search_batch(&queries, 10, ef, 1))
        });
    }
    group.finish();
}

criterion_group!(benches, kernels, exact, graph, hnsw);
criterion_main!(benches);
