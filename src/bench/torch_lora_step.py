"""PyTorch eager float32 peer of `slm-train bench --shape`: LoRA steps on a Llama-family model of the same
shape (random weights), the same rank on every linear layer, batch 1 x seq_len, AdamW, on the same number
of CPU threads. Run by the bench when /usr/bin/python3 imports torch (Debian's python3-torch); never a
dependency of slm-train.

    /usr/bin/python3 src/bench/torch_lora_step.py --config config.json --seq-len 512 --steps 1 --threads 2 --rank 16

Prints one JSON line: seconds_per_step, tokens_per_second, threads, torch, and blas: the BLAS library
torch's matrix products run on (Debian's torch takes whichever libblas.so.3 is installed: the reference
BLAS is some 30x slower than OpenBLAS, `apt-get install libopenblas0-pthread`).
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


class LoraLinear(torch.nn.Module):
    """A frozen linear layer plus scale * B(A(x)), A and B trainable (PEFT's layout and init)."""

    def __init__(self, inp, out, rank, alpha, bias=False):
        super().__init__()
        self.base = torch.nn.Linear(inp, out, bias=bias)
        self.base.requires_grad_(False)
        self.a = torch.nn.Parameter(torch.empty(rank, inp).uniform_(-1 / math.sqrt(inp), 1 / math.sqrt(inp)))
        self.b = torch.nn.Parameter(torch.zeros(out, rank))
        self.scale = alpha / rank

    def forward(self, x):
        return self.base(x) + (x @ self.a.t() @ self.b.t()) * self.scale


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Block(torch.nn.Module):
    def __init__(self, c, rank, alpha):
        super().__init__()
        d, hd = c["hidden_size"], c["head_dim"]
        h, kvh, f = c["num_attention_heads"], c["num_key_value_heads"], c["intermediate_size"]
        bias = c.get("model_type") == "qwen2"
        self.h, self.kvh, self.hd, self.eps = h, kvh, hd, c["rms_norm_eps"]
        self.q = LoraLinear(d, h * hd, rank, alpha, bias)
        self.k = LoraLinear(d, kvh * hd, rank, alpha, bias)
        self.v = LoraLinear(d, kvh * hd, rank, alpha, bias)
        self.o = LoraLinear(h * hd, d, rank, alpha)
        self.gate = LoraLinear(d, f, rank, alpha)
        self.up = LoraLinear(d, f, rank, alpha)
        self.down = LoraLinear(f, d, rank, alpha)
        self.norm1 = torch.nn.Parameter(torch.ones(d), requires_grad=False)
        self.norm2 = torch.nn.Parameter(torch.ones(d), requires_grad=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        n = rms_norm(x, self.norm1, self.eps)
        q = self.q(n).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.k(n).view(b, t, self.kvh, self.hd).transpose(1, 2)
        v = self.v(n).view(b, t, self.kvh, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.h // self.kvh, dim=1)
        v = v.repeat_interleave(self.h // self.kvh, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, self.h * self.hd)
        x = x + self.o(context)
        n = rms_norm(x, self.norm2, self.eps)
        return x + self.down(F.silu(self.gate(n)) * self.up(n))


def blas_library():
    """The BLAS shared object mapped into this process."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.split()[-1]}
    return sorted(paths)[0] if paths else "unknown"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(args.config) as f:
        c = json.load(f)
    c.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
    with torch.no_grad():
        embed = torch.randn(c["vocab_size"], c["hidden_size"]) * 0.02
        blocks = torch.nn.ModuleList(Block(c, args.rank, 2 * args.rank) for _ in range(c["num_hidden_layers"]))
        for p in blocks.parameters():
            if not p.requires_grad and p.dim() == 2:
                p.normal_(0, 0.02)
    final_norm = torch.ones(c["hidden_size"])
    params = [p for p in blocks.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)

    t, hd = args.seq_len, c["head_dim"]
    inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
    angles = torch.outer(torch.arange(t).float(), inv)
    cos, sin = torch.cat((angles, angles), -1).cos(), torch.cat((angles, angles), -1).sin()
    mask = torch.full((t, t), float("-inf")).triu(1)
    ids = torch.randint(0, min(c["vocab_size"], 32000), (1, t))
    targets = torch.roll(ids, -1, 1)

    def step():
        x = embed[ids]
        for block in blocks:
            x = block(x, cos, sin, mask)
        logits = rms_norm(x, final_norm, c["rms_norm_eps"]) @ embed.t()
        loss = F.cross_entropy(logits.view(t, -1), targets.view(t))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # untimed, as the slm-train side
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - started) / args.steps
    print(json.dumps({"seconds_per_step": seconds, "tokens_per_second": t / seconds, "threads": torch.get_num_threads(), "torch": torch.__version__, "blas": blas_library()}))


if __name__ == "__main__":
    main()
