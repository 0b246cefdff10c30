"""Paired dev-MCC differences between two acceptability --compare outputs (docs/ablation.md, multi-seed check of beta).

usage: python3 paired_dev_mcc.py A/compare.json B/compare.json [METHOD_IN_A [METHOD_IN_B]]
Prints A minus B per seed (seeds present in both), the mean, the 95 % Student-t interval and the sign count.
Methods default to prilora.
"""
import json, math, statistics, sys

def dev(path, method):
    d = json.load(open(path))
    m = next(m for m in d["methods"] if m["method"] == method)
    return {s["seed"]: s["devMcc"] for s in m["perSeed"]}
if len(sys.argv) < 3:
    sys.exit(__doc__)
a_m = sys.argv[3] if len(sys.argv) > 3 else "prilora"
b_m = sys.argv[4] if len(sys.argv) > 4 else "prilora"
a, b = dev(sys.argv[1], a_m), dev(sys.argv[2], b_m)
seeds = sorted(set(a) & set(b))
diffs = [a[s] - b[s] for s in seeds]
n = len(diffs)
T975 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306, 10: 2.262}  # Student t, df = n - 1
if n not in T975:
    sys.exit(f"{n} common seeds; this script handles 2 to 10")
t975 = T975[n]
mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
half = t975 * sd / math.sqrt(n)
for s, x in zip(seeds, diffs):
    print(f"seed {s}: {a[s]:.4f} - {b[s]:.4f} = {x:+.4f}")
print(f"mean {mean:+.4f}, 95% interval [{mean - half:+.4f}, {mean + half:+.4f}], ahead on {sum(x > 0 for x in diffs)} of {n}")
