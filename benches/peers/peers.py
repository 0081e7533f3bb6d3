"""Peer measurements for BENCHMARKS.md: FAISS, hnswlib and Python onnxruntime on the
very vectors and titles bundleforge measures itself on (written by `bundleforge bench
search --save-vectors` and `bundleforge bench embed --write-titles`).

Prints one JSON document: medians of several repetitions, search time only (data
loading and index building outside the timed part, except where build is the figure).
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def load(path, dim):
    v = np.fromfile(path, dtype="<f4")
    return np.ascontiguousarray(v.reshape(-1, dim))


def timed(fn, reps):
    times = []
    out = None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def faiss_peers(data, queries, graph_data, k, graph_k, reps, results):
    import faiss

    index = faiss.IndexFlatIP(data.shape[1])
    index.add(data)
    gindex = faiss.IndexFlatIP(graph_data.shape[1])
    gindex.add(graph_data)
    for threads in (1, 2):
        faiss.omp_set_num_threads(threads)
        secs, _ = timed(lambda: index.search(queries, k), reps)
        results.append({"peer": "faiss IndexFlatIP", "job": f"exact top-{k}", "n": data.shape[0],
                        "queries": queries.shape[0], "threads": threads, "seconds": secs,
                        "qps": queries.shape[0] / secs})
        # All vs all, k + 1 because each vector finds itself first.
        secs, _ = timed(lambda: gindex.search(graph_data, graph_k + 1), reps)
        results.append({"peer": "faiss IndexFlatIP", "job": f"knn graph k={graph_k}",
                        "n": graph_data.shape[0], "threads": threads, "seconds": secs})
    faiss.omp_set_num_threads(2)
    _, truth = index.search(queries, k)
    return truth


def hnswlib_peers(data, queries, truth, k, results):
    import hnswlib

    for threads in (2,):
        p = hnswlib.Index(space="ip", dim=data.shape[1])
        p.set_num_threads(threads)
        t = time.perf_counter()
        p.init_index(max_elements=data.shape[0], M=16, ef_construction=200, random_seed=100)
        p.add_items(data, np.arange(data.shape[0]))
        build = time.perf_counter() - t
        for ef in (64, 128):
            p.set_ef(ef)
            for qthreads in (1, 2):
                p.set_num_threads(qthreads)
                secs, (labels, _) = timed(lambda: p.knn_query(queries, k=k), 3)
                hits = sum(len(set(labels[i]) & set(truth[i])) for i in range(len(truth)))
                results.append({"peer": "hnswlib", "job": f"approximate top-{k} M=16 efC=200 ef={ef}",
                                "n": data.shape[0], "queries": queries.shape[0], "threads": qthreads,
                                "build_seconds": build, "build_threads": threads, "seconds": secs,
                                "qps": queries.shape[0] / secs, "recall": hits / truth.size})


def onnxruntime_peers(titles, model_dir, ort_batch, reps, results):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the batch's longest
    for threads in (1, 2):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), so,
                                    providers=["CPUExecutionProvider"])

        def run():
            out = []
            for i in range(0, len(titles), ort_batch):
                enc = tok.encode_batch(titles[i:i + ort_batch])
                ids = np.array([e.ids for e in enc], dtype=np.int64)
                mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
                types = np.zeros_like(ids)
                hidden = sess.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": types})[0]
                m = mask[..., None].astype(np.float32)
                pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
                out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
            return np.concatenate(out)

        run()  # warm-up
        secs, _ = timed(run, reps)
        results.append({"peer": "python onnxruntime " + ort.__version__, "job": "embed titles",
                        "titles": len(titles), "batch": ort_batch, "threads": threads,
                        "seconds": secs, "per_second": len(titles) / secs})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectors", required=True, help="base path of .data.f32 / .queries.f32")
    ap.add_argument("--graph-vectors", required=True)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--graph-k", type=int, default=20)
    ap.add_argument("--titles", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--skip-hnswlib", action="store_true")
    a = ap.parse_args()
    data = load(a.vectors + ".data.f32", a.dim)
    queries = load(a.vectors + ".queries.f32", a.dim)
    graph_data = load(a.graph_vectors + ".data.f32", a.dim)
    with open(a.titles, encoding="utf-8") as f:
        titles = [line.rstrip("\n") for line in f if line.strip()]
    results = []
    truth = faiss_peers(data, queries, graph_data, a.k, a.graph_k, a.reps, results)
    if not a.skip_hnswlib:
        hnswlib_peers(data, queries, truth, a.k, results)
    for batch in (32, 256):
        onnxruntime_peers(titles, a.model_dir, batch, a.reps, results)
    json.dump({"results": results}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
