"""Whole-process timing of frequent itemset and rule mining: bundleforge, Borgelt's
fpgrowth (PyPI `pyfim`) and mlxtend, on the same uncompressed baskets files, in one run.

Each measurement is a fresh process (interpreter start, file parsing and mining all
count), timed by wall clock; peak memory is the child's own maximum resident set size
(os.wait4). Reported: medians over the runs, and each tool's itemset or rule count,
which must agree.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# Peers read the file the way its format needs: whitespace-separated FIMI files split on
# whitespace; comma files split on commas with labels kept exactly (Groceries has two
# labels ending in a space).
READ = r"""
import sys
path, sep = sys.argv[1], sys.argv[2]
with open(path) as f:
    if sep == "ws":
        tracts = [line.split() for line in f]
    else:
        tracts = [[x for x in line.rstrip("\n").split(",") if x] for line in f]
"""

PYFIM = READ + r"""
import fim
count, conf = int(sys.argv[3]), float(sys.argv[4])
if conf > 0:
    # mode "o": rule support = support(LHS u RHS), the convention of the reference counts.
    out = fim.fpgrowth(tracts, target="r", supp=-count, conf=conf * 100, zmin=2,
                       report="a", mode="o")
else:
    out = fim.fpgrowth(tracts, target="s", supp=-count, zmin=1, report="a")
print(len(out))
"""

MLXTEND = READ + r"""
import pandas as pd
from mlxtend.preprocessing import TransactionEncoder
from mlxtend.frequent_patterns import fpgrowth, association_rules
count, conf = int(sys.argv[3]), float(sys.argv[4])
te = TransactionEncoder()
matrix = te.fit(tracts).transform(tracts, sparse=True)
df = pd.DataFrame.sparse.from_spmatrix(matrix, columns=te.columns_)
# Support is a float fraction in mlxtend: half a basket below the count is exact.
sets = fpgrowth(df, min_support=(count - 0.5) / len(tracts))
if conf > 0:
    # Confidence is a ratio of float supports here: 16/20 can come out just under 0.8.
    rules = association_rules(sets, metric="confidence", min_threshold=conf - 1e-9)
    print(int((rules["consequents"].apply(len) == 1).sum()))
else:
    print(len(sets))
"""


def run(cmd, env=None):
    """Runs one process; returns (seconds, peak RSS bytes, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{cmd[:3]} failed: {err.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, out.decode()


def measure(name, cmd, parse, runs, env=None):
    times, peaks, result = [], [], None
    for _ in range(runs):
        seconds, peak, out = run(cmd, env)
        times.append(seconds)
        peaks.append(peak)
        result = parse(out)
    return {
        "tool": name,
        "result": result,
        "seconds": statistics.median(times),
        "peak_rss_bytes": int(statistics.median(peaks)),
        "runs": runs,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--retail", required=True, help="retail.dat, uncompressed")
    ap.add_argument("--groceries", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mlxtend-runs", type=int, default=5)
    ap.add_argument("--skip-mlxtend", action="store_true")
    args = ap.parse_args()

    py = sys.executable
    # (data set, file, separator, minsup, min count, minconf or 0 for itemsets only)
    cases = [
        ("retail.dat", args.retail, "ws", "0.001", 89, 0.0),
        ("retail.dat", args.retail, "ws", "0.0002", 18, 0.0),
        ("groceries", args.groceries, "comma", "0.001", 10, 0.8),
    ]
    rows = []
    for data, path, sep, minsup, count, conf in cases:
        key = "rules" if conf > 0 else "itemsets"
        ours = [args.bin, "rules", "--baskets", path, "--minsup", minsup, "--json"]
        # For itemset cases the figure is itemsets; ours also derives rules at the
        # default confidence, which the peers are not asked to.
        if conf > 0:
            ours += ["--minconf", str(conf)]
        ours_result = lambda out: json.loads(out)[key]
        case = {"data": data, "minsup": minsup, "min_count": count, "minconf": conf,
                "figure": key, "tools": []}
        for threads in (2, 1):
            env = dict(os.environ, BUNDLEFORGE__RULES__THREADS=str(threads))
            m = measure(f"bundleforge ({threads} thread{'s' if threads > 1 else ''})",
                        ours, ours_result, args.runs, env)
            case["tools"].append(m)
        peer_args = [path, sep, str(count), str(conf)]
        case["tools"].append(measure("pyfim fpgrowth", [py, "-c", PYFIM, *peer_args],
                                     lambda o: int(o.strip()), args.runs))
        if not args.skip_mlxtend:
            case["tools"].append(measure("mlxtend fpgrowth", [py, "-c", MLXTEND, *peer_args],
                                         lambda o: int(o.strip()), args.mlxtend_runs))
        rows.append(case)
        for t in case["tools"]:
            print(f"{data} {minsup} {t['tool']}: {t['result']} {key}, "
                  f"{t['seconds']:.3f} s, {t['peak_rss_bytes'] / 2**20:.0f} MiB",
                  file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
