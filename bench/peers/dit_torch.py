"""Peer for the DiT benchmark: DiT's forward in PyTorch (Debian python3-torch), written from the architecture of the
official models.py (patch embedding conv, timestep/label embedders, adaLN-Zero blocks, final layer, unpatchify).

  dit DEPTH HIDDEN PATCH HEADS BATCH REPEAT WEIGHTS.pt : builds the model (input 32x32x4 latents, 1000 classes,
      learn_sigma), fills every parameter with random values (seeded), saves the state dict with the official key
      names to WEIGHTS.pt (so the other side runs the same weights), then times REPEAT forwards after a warm-up
      (inference mode, threads = OMP_NUM_THREADS); prints JSON {"runs": [seconds...]}.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, freq=256):
        super().__init__()
        self.freq = freq
        self.mlp = nn.Sequential(nn.Linear(freq, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t):
        half = self.freq // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class LabelEmbedder(nn.Module):
    def __init__(self, classes, hidden):
        super().__init__()
        self.embedding_table = nn.Embedding(classes + 1, hidden)

    def forward(self, y):
        return self.embedding_table(y)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden, hidden * 4)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x, c):
        s1, sc1, g1, s2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), s1, sc1))
        return x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), s2, sc2))


class FinalLayer(nn.Module):
    def __init__(self, hidden, patch, out):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, patch * patch * out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class PatchEmbed(nn.Module):
    def __init__(self, patch, cin, hidden):
        super().__init__()
        self.proj = nn.Conv2d(cin, hidden, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class DiT(nn.Module):
    def __init__(self, depth, hidden, patch, heads, size=32, cin=4, classes=1000):
        super().__init__()
        self.patch, self.cout, self.size = patch, cin * 2, size
        self.x_embedder = PatchEmbed(patch, cin, hidden)
        self.t_embedder = TimestepEmbedder(hidden)
        self.y_embedder = LabelEmbedder(classes, hidden)
        self.pos_embed = nn.Parameter(torch.zeros(1, (size // patch) ** 2, hidden), requires_grad=False)
        self.blocks = nn.ModuleList([Block(hidden, heads) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden, patch, self.cout)

    def forward(self, x, t, y):
        x = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for block in self.blocks:
            x = block(x, c)
        x = self.final_layer(x, c)
        b, p, h = x.shape[0], self.patch, self.size // self.patch
        x = x.reshape(b, h, h, p, p, self.cout)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(b, self.cout, h * p, h * p)


def main():
    depth, hidden, patch, heads, batch, repeat = (int(a) for a in sys.argv[2:8])
    weights = sys.argv[8]
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(0)
    net = DiT(depth, hidden, patch, heads).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.02)
    torch.save(net.state_dict(), weights)
    x = torch.randn(batch, 4, 32, 32)
    t = torch.randint(0, 1000, (batch,))
    y = torch.randint(0, 1000, (batch,))
    runs = []
    with torch.inference_mode():
        net(x, t, y)
        for _ in range(repeat):
            t0 = time.perf_counter()
            net(x, t, y)
            runs.append(time.perf_counter() - t0)
    print(json.dumps({"runs": runs, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
