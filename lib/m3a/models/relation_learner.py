"""Relation learners over the N action nodes (DESIGN.md section 1): GCN and simplified transformer.

State-dict names follow the published layout: a learner keeps its layers in a ``relation_learner``
ModuleDict (``graph_{i}``; ``trsfmr_encoder_{i}`` and ``trsfmr_decoder_{L}_fc``), the cross-modal
fusion in a ``relation_x_fusion`` ModuleDict (``trsfmr_decoder_cross``,
``trsfmr_decoder_cross_fc``).
"""
import math
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Negative slope of the LeakyReLU between relation layers.
LEAKY_SLOPE = 0.2
# Dropout inside and after the transformer layers.
TRSFMR_DROPOUT = 0.2
# Half-width of the uniform initialisation of the transformer output Linear layers.
TRSFMR_FC_INIT = 0.1


def normalize_adjacency(
    psi: Union[np.ndarray, torch.Tensor], threshold: float, reweight: float
) -> torch.Tensor:
    """Normalised adjacency Â (float32) from co-occurrence probabilities ``psi`` (N, N).

    1. A = 1[psi >= threshold]; 2. with ``reweight`` p > 0: A <- A * p / (column sums + 1e-6) + I,
    with p = 0: A <- A + I (the paper's plain self-connections); 3. Â = (A D)^T D with
    D = diag(row sums of A)^(-1/2).
    """
    psi = torch.as_tensor(np.asarray(psi), dtype=torch.float64)
    adj = (psi >= threshold).to(torch.float64)
    if reweight > 0:
        adj = adj * reweight / (adj.sum(0, keepdim=True) + 1e-6)
    adj = adj + torch.eye(adj.shape[0], dtype=torch.float64)
    d = torch.diag(adj.sum(1).pow(-0.5))
    return (adj @ d).t().matmul(d).to(torch.float32)


class GraphConvolution(nn.Module):
    """GCN layer Z' = Â Z W + b with W (in, out) and b (out), initialised U(-1/sqrt(out), ...)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim_in, dim_out))
        self.bias = nn.Parameter(torch.empty(dim_out))
        bound = 1.0 / math.sqrt(dim_out)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Propagate node features ``x`` (..., N, in) over ``adj`` (N, N)."""
        return torch.matmul(adj, torch.matmul(x, self.weight)) + self.bias


def sinusoidal_encoding(num: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Sinusoidal positional encodings (num, dim): sin on even, cos on odd feature indices."""
    position = torch.arange(num, dtype=torch.float32, device=device).unsqueeze(1)
    freq = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim)
    )
    pe = torch.zeros(num, dim, device=device)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return pe.to(dtype)


class PositionalEncoding(nn.Module):
    """Add sinusoidal encodings of the token index to (B, N, D) tokens, then dropout."""

    def __init__(self, dropout: float = TRSFMR_DROPOUT) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` + PE (one encoding per node/token)."""
        pe = sinusoidal_encoding(x.shape[-2], x.shape[-1], x.device, x.dtype)
        return self.dropout(x + pe)


class SimplifiedEncoderLayer(nn.Module):
    """Transformer encoder layer without feed-forward: self-attention + residual + LayerNorm."""

    def __init__(self, dim: int, nhead: int, dropout: float = TRSFMR_DROPOUT) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, nhead, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """LayerNorm(x + Dropout(SelfAttention(x))) for batch-first tokens (B, N, D)."""
        attn = self.self_attn(x, x, x, need_weights=False)[0]
        return self.norm(x + self.dropout(attn))


class CrossAttentionLayer(nn.Module):
    """Cross-attention + residual + LayerNorm; keys/values may have their own widths."""

    def __init__(
        self, dim: int, nhead: int, kdim: int, vdim: int, dropout: float = TRSFMR_DROPOUT
    ) -> None:
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(
            dim, nhead, dropout=dropout, batch_first=True, kdim=kdim, vdim=vdim
        )
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """LayerNorm(q + Dropout(Attention(q, k, v))) for batch-first tokens."""
        attn = self.cross_attn(q, k, v, need_weights=False)[0]
        return self.norm(q + self.dropout(attn))


def _uniform_linear(dim_in: int, dim_out: int) -> nn.Linear:
    fc = nn.Linear(dim_in, dim_out)
    nn.init.uniform_(fc.weight, -TRSFMR_FC_INIT, TRSFMR_FC_INIT)
    return fc


class RelationLearner(nn.Module):
    """One modality's relation learner: ``nlayers`` GCN or transformer layers over N nodes.

    GRAPH: dim_in -> hidden -> ... -> dim_out GCN layers, LeakyReLU(0.2) between them.
    TRSFMR: ``nlayers`` width-preserving encoder layers, each followed by LeakyReLU(0.2), then
    Linear(dim_in -> dim_out) + Dropout(0.2). With ``cross`` (the learner feeds a cross-modal
    fusion) the last layer has neither LeakyReLU nor Linear and the output width is dim_in.
    """

    def __init__(
        self, mode: str, nlayers: int, dim_in: int, dim_hidden: int, dim_out: int,
        nhead: int = 1, simplified: bool = True, pos_encode: bool = False, cross: bool = False,
    ) -> None:
        super().__init__()
        self.mode, self.nlayers, self.cross = mode, nlayers, cross
        self.relation_learner = nn.ModuleDict()
        if mode == "GRAPH":
            for i in range(nlayers):
                d_in = dim_in if i == 0 else dim_hidden
                d_out = dim_out if i == nlayers - 1 else dim_hidden
                self.relation_learner[f"graph_{i + 1}"] = GraphConvolution(d_in, d_out)
        elif mode == "TRSFMR":
            if pos_encode:
                self.relation_learner["trsfmr_pos_encoder"] = PositionalEncoding()
            for i in range(nlayers):
                self.relation_learner[f"trsfmr_encoder_{i + 1}"] = (
                    SimplifiedEncoderLayer(dim_in, nhead) if simplified
                    else nn.TransformerEncoderLayer(
                        dim_in, nhead, dim_hidden, dropout=TRSFMR_DROPOUT, batch_first=True
                    )
                )
            if not cross:
                self.relation_learner[f"trsfmr_decoder_{nlayers}_fc"] = _uniform_linear(
                    dim_in, dim_out
                )
                self.relation_learner[f"trsfmr_decoder_{nlayers}_dropout"] = nn.Dropout(
                    TRSFMR_DROPOUT
                )
        else:
            raise ValueError(f"unknown relation learner mode '{mode}'")

    def forward_layers(
        self, x: torch.Tensor, adj: Optional[torch.Tensor] = None
    ) -> List[torch.Tensor]:
        """Node features after every layer: [input, layer 1, ..., layer L (, output Linear)]."""
        outs = [x]
        if self.mode == "GRAPH":
            for i in range(self.nlayers):
                x = self.relation_learner[f"graph_{i + 1}"](x, adj)
                if i < self.nlayers - 1:
                    x = F.leaky_relu(x, LEAKY_SLOPE)
                outs.append(x)
            return outs
        if "trsfmr_pos_encoder" in self.relation_learner:
            x = self.relation_learner["trsfmr_pos_encoder"](x)
        for i in range(self.nlayers):
            x = self.relation_learner[f"trsfmr_encoder_{i + 1}"](x)
            if i < self.nlayers - 1 or not self.cross:
                x = F.leaky_relu(x, LEAKY_SLOPE)
            outs.append(x)
        if not self.cross:
            x = self.relation_learner[f"trsfmr_decoder_{self.nlayers}_fc"](x)
            x = self.relation_learner[f"trsfmr_decoder_{self.nlayers}_dropout"](x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor, adj: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Relation-enhanced node features (..., N, dim_out) from node features (..., N, dim_in)."""
        return self.forward_layers(x, adj)[-1]


class CrossFusion(nn.Module):
    """Cross-modal fusion: queries of one modality attend to keys/values of the others.

    One cross-attention layer (residual + LayerNorm), LeakyReLU(0.2), Linear(dim_q -> dim_out)
    initialised U(-0.1, 0.1) and Dropout(0.2).
    """

    def __init__(self, dim_q: int, dim_k: int, dim_v: int, dim_out: int, nhead: int = 1) -> None:
        super().__init__()
        self.relation_x_fusion = nn.ModuleDict()
        self.relation_x_fusion["trsfmr_decoder_cross"] = CrossAttentionLayer(
            dim_q, nhead, dim_k, dim_v
        )
        self.relation_x_fusion["trsfmr_decoder_cross_fc"] = _uniform_linear(dim_q, dim_out)
        self.relation_x_fusion["trsfmr_decoder_cross_dropout"] = nn.Dropout(TRSFMR_DROPOUT)

    def forward_layers(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(cross-attention output after LeakyReLU, per-node output (..., N, dim_out))."""
        x = self.relation_x_fusion["trsfmr_decoder_cross"](q, k, v)
        x = F.leaky_relu(x, LEAKY_SLOPE)
        out = self.relation_x_fusion["trsfmr_decoder_cross_fc"](x)
        return x, self.relation_x_fusion["trsfmr_decoder_cross_dropout"](out)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Per-node fused features (..., N, dim_out)."""
        return self.forward_layers(q, k, v)[1]
