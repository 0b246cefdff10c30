#!/usr/bin/env python3
"""PyTorch anchor of EncoderBenchmark: the same encoder training step in PyTorch, one thread, float32.

The Java benchmark starts this script once and then, in every interleaved round, asks it for one timed step, so
PyTorch and the Java variants share the same minutes of a shared machine. Protocol: one JSON object per line on
stdin, one JSON answer per line on stdout (stdout carries nothing else; logs go to stderr):

    (on start, unasked)                 {"ready": true, "torch": ..., "variants": {...param counts...}, ...}
    {"variant": "lora", "steps": 1}     {"ms": [1234.5]}          one timed optimizer step each
    {"op": "gemm", "m": 2048, "k": 384, "n": 1536, "reps": 5}
                                        {"gflops": 180.2}         best of reps, float32 matmul
    {"op": "quit"}                      (exits)
    anything that fails                 {"error": "..."}

The workload matches EncoderBenchmark's MINILM encoder (BertEncoderFactory): 6 post-LayerNorm BERT blocks,
width 384, 12 heads, FFN 1536 with the exact (erf) GELU, LayerNorm eps 1e-12, vocabulary 30522, 512 positions,
2 token types; embeddings frozen in every variant (word + position + type, LayerNorm); mask-aware mean pooling and a
2-class softmax head trained with cross-entropy averaged over the batch; Adam(1e-4); no dropout (the project's
blocks have none); batch 32 x 64 random ids in [0, 30000), token types 0, every token real, labels i % 2.

Variants:
    full    every block weight, bias and LayerNorm trains, and the head (EncoderBenchmark "full")
    lora    the blocks frozen; rank-8 adapters y = xW + b + (alpha/r)(x A^T) B^T on all six projections of every
            block (query, key, value, attention output, intermediate, output); A Kaiming-uniform, B = 0; alpha 16;
            the head trains (EncoderBenchmark "lora")
    linear  as lora with PRILoRA's depth-increasing ranks 4 -> 12 (4, 6, 7, 9, 10, 12) and nothing else: no input
            statistics, no EMA, no pruning (EncoderBenchmark "prilora" does those too)

Run standalone to check it: echo '{"variant":"lora","steps":2}' | python3 encoder_step.py
"""
import json
import math
import os
import sys
import time


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write("[encoder_step.py] " + msg + "\n")
    sys.stderr.flush()


def linear_ranks(r_start, r_end, blocks):
    """RankSchedule.linear: r_l = round_half_up(r_start + (r_end - r_start) * l / (L - 1))."""
    if blocks == 1:
        return [int(math.floor((r_start + r_end) / 2 + 0.5))]
    return [int(math.floor(r_start + (r_end - r_start) * l / (blocks - 1) + 0.5)) for l in range(blocks)]


def blas_libraries():
    """The BLAS/LAPACK shared libraries this process has mapped (which one torch's matmuls run on)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path).lower()
                if any(s in name for s in ("blas", "lapack", "mkl", "dnnl", "gomp", "omp")):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def build(torch, args):
    nn = torch.nn
    F = torch.nn.functional

    class Projection(nn.Module):
        """x W^T + b (nn.Linear layout), plus an optional LoRA adapter; W and b train only in full fine-tuning."""

        def __init__(self, n_in, n_out, rank, alpha, train_base):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(n_out, n_in).normal_(0, 0.02), requires_grad=train_base)
            self.bias = nn.Parameter(torch.zeros(n_out), requires_grad=train_base)
            self.rank = rank
            if rank:
                self.lora_a = nn.Parameter(torch.empty(rank, n_in))
                nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))   # PEFT's (and the project's) A init
                self.lora_b = nn.Parameter(torch.zeros(n_out, rank))
                self.scale = alpha / rank

        def forward(self, x):
            y = F.linear(x, self.weight, self.bias)
            if self.rank:
                y = y + self.scale * F.linear(F.linear(x, self.lora_a), self.lora_b)
            return y

    class Block(nn.Module):
        """Post-LN BERT block: h1 = LN(x + Attn(x) Wao), y = LN(h1 + GELU(h1 Wi) Wo), exact GELU."""

        def __init__(self, h, heads, f, rank, alpha, train_base, eps):
            super().__init__()
            self.heads = heads
            p = lambda i, o: Projection(i, o, rank, alpha, train_base)
            self.q, self.k, self.v, self.ao = p(h, h), p(h, h), p(h, h), p(h, h)
            self.i, self.o = p(h, f), p(f, h)
            self.ln1, self.ln2 = nn.LayerNorm(h, eps=eps), nn.LayerNorm(h, eps=eps)
            for ln in (self.ln1, self.ln2):
                ln.weight.requires_grad_(train_base)
                ln.bias.requires_grad_(train_base)

        def forward(self, x, key_bias):
            b, t, h = x.shape
            d = h // self.heads
            split = lambda z: z.view(b, t, self.heads, d).transpose(1, 2)
            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + key_bias
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, t, h)
            h1 = self.ln1(x + self.ao(ctx))
            return self.ln2(h1 + self.o(F.gelu(self.i(h1))))

    class Encoder(nn.Module):
        def __init__(self, ranks, train_base):
            super().__init__()
            h = args["hidden"]
            self.word = nn.Embedding(args["vocab"], h)
            self.pos = nn.Embedding(args["positions"], h)
            self.type_emb = nn.Embedding(args["types"], h)
            self.ln = nn.LayerNorm(h, eps=args["eps"])
            for m in (self.word, self.pos, self.type_emb, self.ln):
                for prm in m.parameters():
                    prm.requires_grad_(False)   # frozen in every variant, as BertEmbeddings
            self.blocks = nn.ModuleList(Block(h, args["heads"], args["ffn"], r, args["alpha"], train_base, args["eps"])
                                        for r in ranks)
            self.head = nn.Linear(h, args["classes"])

        def forward(self, ids, types, mask, labels):
            t = ids.shape[1]
            x = self.ln(self.word(ids) + self.pos(torch.arange(t)).unsqueeze(0) + self.type_emb(types))
            key_bias = ((1.0 - mask) * -1e9)[:, None, None, :]   # masked keys get no attention
            for blk in self.blocks:
                x = blk(x, key_bias)
            m = mask.unsqueeze(-1)
            pooled = (x * m).sum(1) / m.sum(1)                     # mask-aware mean (GlobalPoolingLayer AVG)
            return F.cross_entropy(self.head(pooled), labels)     # softmax + MCXENT, mean over the batch

    blocks = args["blocks"]
    specs = {
        "full": ([0] * blocks, True),
        "lora": ([args["loraRank"]] * blocks, False),
        "linear": (linear_ranks(args["rankStart"], args["rankEnd"], blocks), False),
    }
    gen = torch.Generator().manual_seed(3)
    mb, t = args["batch"], args["seq"]
    data = (torch.randint(0, 30000, (mb, t), generator=gen), torch.zeros(mb, t, dtype=torch.long),
            torch.ones(mb, t), torch.arange(mb) % args["classes"])
    models = {}
    for name in args["variants"]:
        ranks, train_base = specs[name]
        torch.manual_seed(7)
        model = Encoder(ranks, train_base)
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(trainable, lr=args["lr"])
        models[name] = {
            "model": model, "opt": opt, "ranks": ranks,
            "trainableParams": sum(p.numel() for p in trainable),
            "totalParams": sum(p.numel() for p in model.parameters()),
            "adapterParams": sum(p.numel() for n, p in model.named_parameters() if "lora_" in n),
        }
    return models, data


def step(torch, entry, data):
    model, opt = entry["model"], entry["opt"]
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = model(*data)
    loss.backward()
    opt.step()
    ms = (time.perf_counter() - t0) * 1e3
    entry["lastLoss"] = float(loss)
    return ms


def gemm_gflops(torch, m, k, n, reps):
    a, b = torch.rand(m, k), torch.rand(k, n)
    c = torch.empty(m, n)
    for _ in range(3):
        torch.matmul(a, b, out=c)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * m * k * n / best / 1e9


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", default="full,lora,linear")
    a = ap.parse_args()
    try:
        import torch
    except Exception as e:   # the Java side records this as {"skipped": ...}
        reply({"error": "cannot import torch with %s: %s" % (sys.executable, e)})
        return 1
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    args = {"vocab": 30522, "hidden": 384, "blocks": 6, "heads": 12, "ffn": 1536, "positions": 512, "types": 2,
            "eps": 1e-12, "classes": 2, "lr": 1e-4, "alpha": 16.0, "loraRank": 8, "rankStart": 4, "rankEnd": 12,
            "batch": a.batch, "seq": a.seq, "variants": [v for v in a.variants.split(",") if v]}
    try:
        models, data = build(torch, args)
    except Exception as e:
        reply({"error": "building the PyTorch encoders failed: %r" % (e,)})
        return 1
    variants = {n: {k: v for k, v in e.items() if k in ("ranks", "trainableParams", "totalParams", "adapterParams")}
                for n, e in models.items()}
    for n, v in variants.items():
        log("%-6s trainable %11d of %11d parameters (adapters %d), ranks %s"
            % (n, v["trainableParams"], v["totalParams"], v["adapterParams"], v["ranks"]))
    reply({"ready": True, "torch": torch.__version__, "python": sys.executable, "threads": torch.get_num_threads(),
           "interopThreads": torch.get_num_interop_threads(), "blasLibraries": blas_libraries(),
           "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                  "OPENBLAS_CORETYPE", "LD_LIBRARY_PATH")},
           "config": {k: v for k, v in args.items() if k != "variants"}, "variants": variants})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            op = req.get("op", "step")
            if op == "quit":
                return 0
            if op == "gemm":
                reply({"gflops": gemm_gflops(torch, int(req["m"]), int(req["k"]), int(req["n"]), int(req.get("reps", 5)))})
            elif op == "step":
                entry = models[req["variant"]]
                ms = [step(torch, entry, data) for _ in range(int(req.get("steps", 1)))]
                reply({"ms": ms, "loss": entry["lastLoss"]})
            else:
                reply({"error": "unknown op %r" % op})
        except Exception as e:
            reply({"error": "%s failed: %r" % (line, e)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
