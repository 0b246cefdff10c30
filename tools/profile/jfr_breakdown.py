#!/usr/bin/env python3
"""Where a training step spends its time: JFR samples of a step loop, grouped by what the code does.

Usage (after `mvn -B -q install -DskipTests`):

    mvn -B -q -pl samples/benchmarks initialize exec:exec -Dexec.args="-Xmx8g -XX:StartFlightRecording=filename=/tmp/step.jfr,settings=profile \
        -classpath %classpath org.prilora.bench.StepProfile --variant lora --steps 15"
    jfr print --events jdk.NativeMethodSample,jdk.ExecutionSample --stack-depth 40 /tmp/step.jfr > /tmp/step.txt
    python3 tools/profile/jfr_breakdown.py /tmp/step.txt --since <the time StepProfile printed>

Each sample is charged to the innermost frame of org.prilora / org.deeplearning4j code; frames in the native BERT
block runtime and LoraLinear are classified by the text of their source line (read from this checkout, so the
grouping survives edits that move lines). With --since, only samples taken after StepProfile's "timed steps start
at" time are counted (warm-up and workspace sizing excluded).
"""
import argparse
import collections
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = {
    "PriLoraBertBlockRuntime": ROOT / "prilora-layers/src/main/java/org/prilora/bert/PriLoraBertBlockRuntime.java",
    "LoraLinear": ROOT / "prilora-samediff-ops/src/main/java/org/prilora/ops/LoraLinear.java",
}
LINES = {k: p.read_text(encoding="utf-8").splitlines() for k, p in SOURCES.items()}


def classify(cls, method, line):
    text = LINES[cls][line - 1] if cls in LINES and 0 < line <= len(LINES[cls]) else ""
    big = "projection GEMMs (x·W, δ·Wᵀ; W folded with the adapter in adapter mode)"
    if cls == "LoraLinear":
        return "adapter GEMMs and adds"
    if method == "projectBackward":
        if "wEff" in text or "δ·Wᵀ" in text:
            return big
        if "uᵀ·δ" in text:
            return "weight-gradient GEMMs (full fine-tuning only)"
        return "adapter GEMMs and adds"
    if method == "projectQkv":
        return big if "gemm(x, w," in text else "adapter GEMMs and adds"
    if method == "qkvBackward":
        if "gemm(delta, c.wQkv" in text:
            return big
        if "xᵀ·δ" in text or "gradTable.get(BertBlock." in text or "columnSums" in text:
            return "weight-gradient GEMMs (full fine-tuning only)"
        return "adapter GEMMs and adds"
    if method in ("softmaxLastDim", "rowSums") or "dotTerms" in text or "dS2" in text:
        return "softmax (forward and backward)"
    if method == "project":
        return big if ("gemm(u, w," in text or "gemm(u, wEff" in text) else "adapter GEMMs and adds"
    if "matmul" in text:
        return "attention matmuls"
    if "SoftMax" in text or "rowDot" in text or "dS =" in text:
        return "softmax (forward and backward)"
    if "Erf" in text or "exp(" in text or "cdf" in text or "gelu" in text or "pdf" in text:
        return "exact GELU (erf, exp)"
    if method in ("normalize", "normBackward", "affine", "columnSums"):
        return "LayerNorm (forward and backward)"
    if method in ("toHeads", "fromHeads") or "dup(" in text or "permute" in text:
        return "layout copies (heads, NCW)"
    if method == "measureNorms":
        return "input statistics"
    return "other block element-wise ops"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jfr_text", help="output of `jfr print --events jdk.NativeMethodSample,jdk.ExecutionSample --stack-depth 40`")
    ap.add_argument("--since", help="count samples from this wall-clock time (HH:MM:SS.mmm) on")
    ap.add_argument("--entry", default="StepProfile", help="count only samples whose stack holds this class (default: StepProfile)")
    ap.add_argument("--detail", metavar="GROUP", help="also list the source lines charged to GROUP (a prefix of its name)")
    args = ap.parse_args()
    text = pathlib.Path(args.jfr_text).read_text(encoding="utf-8")
    counts = collections.Counter()
    lines = collections.Counter()
    total = 0
    for event in text.split("jdk.")[1:]:
        frames = re.findall(r"^\s+([\w.$<>]+)\(.*?\)\s+line: (\d+)", event, re.M)
        when = re.search(r"startTime = ([\d:.]+)", event)
        if not frames or not when or (args.since and when.group(1) < args.since):
            continue
        if not any(args.entry in f for f, _ in frames):
            continue
        total += 1
        for f, line in frames:
            if f.startswith("org.prilora.") or f.startswith("org.deeplearning4j."):
                parts = f.split(".")
                cls, method = parts[-2], parts[-1]
                if cls in LINES:
                    group = classify(cls, method, int(line))
                    counts[group] += 1
                    if args.detail and group.startswith(args.detail):
                        src = LINES[cls][int(line) - 1].strip() if int(line) <= len(LINES[cls]) else ""
                        lines[f"{cls}.{method}:{line}  {src}"] += 1
                elif cls == "InputNormStats":
                    counts["input statistics"] += 1
                elif "updater" in f or "stepfunctions" in f or "Updater" in cls:
                    counts["DL4J updater (Adam, gradient bookkeeping)"] += 1
                else:
                    counts["rest of DL4J (embeddings, pooling, loss, listeners)"] += 1
                break
        else:
            counts["outside DL4J/PRILoRA frames"] += 1
    if total == 0:
        sys.exit(f"no samples of {args.entry} found")
    print(f"| where | share of step samples |\n|---|---|")
    for k, v in counts.most_common():
        print(f"| {k} | {100.0 * v / total:.1f}% |")
    print(f"\n{total} samples")
    for k, v in lines.most_common(25):
        print(f"{100.0 * v / total:5.1f}%  {k}")


if __name__ == "__main__":
    main()
