"""Ranking summary of a calibration/trac/run results.tsv: rank.py RESULTS.TSV

Per pass, the configurations from fastest to slowest on each side (the real app, the imported
scenario); per pair of configurations, in how many passes each side put the first ahead, and
the mean req/s per configuration over the passes. A pair the real app orders the same way in
every pass is the only ranking there is to match."""
import csv
import itertools
import sys
from collections import defaultdict

SHORT = {"wal + normal": "WN", "wal + full": "WF", "delete + normal": "DN", "delete + full": "DF"}
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
passes = defaultdict(dict)
for r in rows:
    try:
        passes[r["pass"]][r["configuration"]] = (float(r["real_req_s"]), float(r["imported_req_s"]))
    except ValueError:
        continue  # a cell without numbers on one side (REAL_ONLY, a failed run)
if not passes:
    sys.exit("no pass with numbers on both sides")
configs = sorted({c for p in passes.values() for c in p}, key=list(SHORT).index)
print("pass  real (fastest first)   imported")
for p, cells in passes.items():
    order = lambda side: " > ".join(SHORT[c] for c in sorted(cells, key=lambda c: -cells[c][side]))
    print(f"{p:<5} {order(0):<22} {order(1)}")
print("\npair     passes  real: first ahead  imported: first ahead  same order")
for a, b in itertools.combinations(configs, 2):
    both = [p for p in passes.values() if a in p and b in p]
    real = sum(p[a][0] > p[b][0] for p in both)
    imp = sum(p[a][1] > p[b][1] for p in both)
    same = sum((p[a][0] > p[b][0]) == (p[a][1] > p[b][1]) for p in both)
    print(f"{SHORT[a]}-{SHORT[b]}    {len(both):>6}  {real:>17}  {imp:>21}  {same:>10}")
print("\nmean req/s  " + "  ".join(f"{SHORT[c]}: real {sum(p[c][0] for p in passes.values() if c in p) / sum(c in p for p in passes.values()):.1f}, "
                                   f"imported {sum(p[c][1] for p in passes.values() if c in p) / sum(c in p for p in passes.values()):.1f}" for c in configs))
