"""The M3A head (Eq. 3 of the paper): per-modality relation learners joined by SUM or CROSS,
registered as head ``m3a``; it works on the clip features of any backbone.

Published names: ``m3a_head.m3a_joint_learning.multi_modal.<MODALITY>.relation_learner.*`` and
``...multi_modal.CROSS_FUSION.relation_x_fusion.*``. The adjacency and lexicon tensors are
non-persistent buffers: they follow the model's device but are not part of the state dict; the
checkpoint stores them apart (:meth:`M3AHead.checkpoint_inputs`).

Config keys: the ``M3A`` section (:mod:`m3a.models.m3a_config`).
"""
import random
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.models.build import HEAD_REGISTRY, register
from m3a.models.heads import Head, as_positions, head_activation
from m3a.models.m3a_config import add_m3a_config, check_m3a_config, check_token_widths, token_widths
from m3a.models.node_features import AudioBank, load_m3a_inputs, modal_list, seeded_draw
from m3a.models.relation_learner import CrossFusion, RelationLearner, normalize_adjacency
from m3a.utils.lexicon import LexiconError


def learner_dims(cfg: CfgNode, modality: str, feature_dim: int, text_dim: int) -> tuple:
    """(node input width, output width) of a modality's learner; RGB outputs N scores/node;
    ``text_dim`` is the text lexicon's width (:func:`text_width`)."""
    dim_in = token_widths(cfg, feature_dim, text_dim)[modality]
    dim_out = cfg.MODEL.NUM_CLASSES if modality == "RGB" else feature_dim
    return dim_in, dim_out


def text_width(cfg: CfgNode, inputs: Dict[str, object]) -> int:
    """Width of the text nodes: the text lexicon's (read from the data folder or stored in a
    checkpoint), else M3A.TEXT_VEC_SIZE; LexiconError when a text modality has neither."""
    if "text" in inputs:
        return int(tuple(inputs["text"].shape)[1])
    needs_text = any(m in ("TEXT", "AUDIOTEXT") for m in modal_list(cfg))
    if needs_text and cfg.M3A.TEXT_VEC_SIZE == 0:
        raise LexiconError(f"M3A.MODAL_TYPE {cfg.M3A.MODAL_TYPE} needs a text lexicon and none was given "
                           "(M3A.TEXT_VEC_SIZE 0 takes the width from it)")
    return cfg.M3A.TEXT_VEC_SIZE


class M3AJointLearning(nn.Module):
    """Relation learners of every modality and their join into per-class scores (B, N).

    SUM: Z = mean_nodes(G_v(broadcast X)) + sum_m X . G_m(X_m)^T (DESIGN.md section 1).
    CROSS: the first modality's tokens query the second's (keys) and third's (values; the second
    when only two) in one cross-attention layer; Linear(dim_q -> C) per node; per-node dot with X.
    """

    def __init__(self, cfg: CfgNode, feature_dim: int, inputs: Dict[str, object]) -> None:
        super().__init__()
        m3a = cfg.M3A
        self.mode, self.joint = m3a.MODE, m3a.MODAL_JOINT_TYPE
        self.modalities = modal_list(cfg)
        self.num_classes = cfg.MODEL.NUM_CLASSES
        cross = self.joint == "CROSS"
        self.multi_modal = nn.ModuleDict()
        dims_in = []
        text_dim = text_width(cfg, inputs)
        if m3a.MODE == "TRSFMR":
            check_token_widths(cfg, self.modalities, feature_dim, text_dim)
        for modality in self.modalities:
            dim_in, dim_out = learner_dims(cfg, modality, feature_dim, text_dim)
            dims_in.append(dim_in)
            self.multi_modal[modality] = RelationLearner(
                m3a.MODE, m3a.NLAYERS, dim_in, m3a.HIDDEN_LAYER, dim_out, m3a.TRSFMR_NHEAD,
                m3a.TRSFMR_SIMPLIFIED, m3a.TRSFMR_POS_ENCODE, cross,
            )
        if cross:
            self.multi_modal["CROSS_FUSION"] = CrossFusion(
                *self._query_key_value(dims_in), feature_dim, m3a.TRSFMR_NHEAD
            )
        self._register_inputs(cfg, inputs)

    def _register_inputs(self, cfg: CfgNode, inputs: Dict[str, object]) -> None:
        m3a = cfg.M3A
        self.psi = None
        if "psi" in inputs:
            self.psi = torch.as_tensor(inputs["psi"], dtype=torch.float64)
            adj = normalize_adjacency(self.psi, m3a.GRAPH_THRESHOLD, m3a.GRAPH_REWEIGHT)
            self.register_buffer("adj_hat", adj, persistent=False)
        else:
            self.adj_hat = None
        if "text" in inputs:
            text = torch.as_tensor(inputs["text"], dtype=torch.float32)
            self.register_buffer("text_lexicon", text, persistent=False)
        self.audio_sampling = m3a.AUDIO_SAMPLING
        self.synonym_size = m3a.AUDIO_SYNONYM_SIZE
        self._audio_bank = None
        if "audio" in inputs:
            bank = AudioBank(inputs["audio"], m3a.AUDIO_VEC_SIZE, inputs.get("audio_path", ""))
            self._audio_bank = bank
            self.register_buffer("audio_features", bank.bank, persistent=False)
            fixed = seeded_draw(bank, cfg.RNG_SEED, self.synonym_size)
            self.register_buffer("audio_fixed_index", fixed, persistent=False)
            # Stream of fresh draws for AUDIO_SAMPLING random (training only).
            self._audio_rng = random.Random(cfg.RNG_SEED)
        elif "audio_nodes" in inputs:  # the eval-time node features stored in a checkpoint
            nodes = torch.as_tensor(inputs["audio_nodes"], dtype=torch.float32)
            self.register_buffer("audio_features", nodes, persistent=False)
            self.register_buffer("audio_fixed_index", torch.arange(len(nodes)), persistent=False)

    def audio_nodes(self) -> torch.Tensor:
        """Audio node features (N, P): the fixed draw, or a fresh one per training forward."""
        index = self.audio_fixed_index
        if self.audio_sampling == "random" and self.training:
            if self._audio_bank is None:
                raise RuntimeError(
                    "M3A.AUDIO_SAMPLING random trains from the whole audio lexicon; this head "
                    "holds only a checkpoint's node features: build it from the data folder"
                )
            index = self._audio_bank.draw(self._audio_rng, self.synonym_size).to(index.device)
        return self.audio_features[index]

    def checkpoint_inputs(self) -> Dict[str, torch.Tensor]:
        """What the head was built with, for a checkpoint: ``psi`` (N, N) float64, ``text``
        (N, Q) and ``audio_nodes`` (N, P), the eval-time audio node features (CPU tensors)."""
        out = {}
        if self.psi is not None:
            out["psi"] = self.psi.cpu()
        if hasattr(self, "text_lexicon"):
            out["text"] = self.text_lexicon.detach().cpu()
        if hasattr(self, "audio_features"):
            out["audio_nodes"] = self.audio_features[self.audio_fixed_index].detach().cpu()
        return out

    def node_inputs(self, modality: str, x: Optional[torch.Tensor]) -> torch.Tensor:
        """Input node features: (B, N, C) broadcast of X for RGB, (N, D) lexicon rows otherwise."""
        if modality == "RGB":
            return x.unsqueeze(1).expand(x.shape[0], self.num_classes, x.shape[1])
        if modality == "AUDIO":
            return self.audio_nodes()
        if modality == "TEXT":
            return self.text_lexicon
        return torch.cat([self.audio_nodes(), self.text_lexicon], dim=1)

    def _run_learner(self, modality: str, x: Optional[torch.Tensor]) -> List[torch.Tensor]:
        nodes = self.node_inputs(modality, x).to(self.dtype_of(modality))
        if self.mode == "TRSFMR" and nodes.dim() == 2:
            outs = self.multi_modal[modality].forward_layers(nodes.unsqueeze(0))
            return [o.squeeze(0) for o in outs]
        return self.multi_modal[modality].forward_layers(nodes, self.adj_hat)

    def dtype_of(self, modality: str) -> torch.dtype:
        """Parameter dtype of a modality's learner."""
        return next(self.multi_modal[modality].parameters()).dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-class scores (B, N) from pooled clip features ``x`` (B, C)."""
        outs = [self._run_learner(m, x)[-1] for m in self.modalities]
        if self.joint == "CROSS":
            tokens = self._batch_tokens(*self._query_key_value(outs))
            fused = self.multi_modal["CROSS_FUSION"](*tokens)
            return torch.matmul(fused, x.unsqueeze(-1)).squeeze(-1)
        scores = []
        for modality, out in zip(self.modalities, outs):
            if modality == "RGB":
                scores.append(out.mean(1))
            else:
                scores.append(torch.matmul(x, out.t()))
        return torch.stack(scores).sum(0)

    @staticmethod
    def _query_key_value(per_modality: list) -> list:
        """CROSS roles of the modalities' items: [query, key, value]; the value is the third
        modality's, or the key's when there are only two."""
        value = per_modality[2] if len(per_modality) == 3 else per_modality[1]
        return [per_modality[0], per_modality[1], value]

    @staticmethod
    def _batch_tokens(*tokens: torch.Tensor) -> List[torch.Tensor]:
        """Give every token set a batch dim; lexicon sets (N, D) broadcast to the clip batch."""
        batch = max(t.shape[0] if t.dim() == 3 else 1 for t in tokens)
        return [
            (t if t.dim() == 3 else t.unsqueeze(0)).expand(batch, -1, -1) for t in tokens
        ]

    @torch.no_grad()
    def node_embeddings(
        self, features: Optional[torch.Tensor] = None
    ) -> Dict[str, List[torch.Tensor]]:
        """Per-layer node embeddings {modality: [input, layer 1, ..., output]} of (N, D) tensors.

        Lexicon modalities need no input; RGB (and, with CROSS, the fusion, as
        ``CROSS_FUSION: [cross-attention output, per-node output]``) need ``features``, the pooled
        clip feature (C,) or (1, C) of one clip, and are left out without it.
        """
        x = None if features is None else features.reshape(1, -1)
        result: Dict[str, List[torch.Tensor]] = {}
        for modality in self.modalities:
            if modality == "RGB" and x is None:
                continue
            outs = self._run_learner(modality, x)
            result[modality] = [o.reshape(o.shape[-2], o.shape[-1]) for o in outs]
        if self.joint == "CROSS" and all(m in result for m in self.modalities):
            last = [result[m][-1] for m in self.modalities]
            tokens = self._batch_tokens(*self._query_key_value(last))
            mids = self.multi_modal["CROSS_FUSION"].forward_layers(*tokens)
            result["CROSS_FUSION"] = [m[0] for m in mids]
        return result


@register(HEAD_REGISTRY, "m3a")
class M3AHead(Head):
    """Average the pooled positions, join the relation learners' scores, activate at eval.

    Training returns logits (B, N); eval returns ``MODEL.HEAD_ACT`` of the scores. ``inputs``
    are the lexicons/adjacency the configuration needs (:func:`load_m3a_inputs`, or a
    checkpoint's :meth:`checkpoint_inputs`).
    """

    state_prefix = "m3a_head."

    def __init__(self, cfg: CfgNode, in_dim: int, inputs: Dict[str, object]) -> None:
        super().__init__()
        self.m3a_joint_learning = M3AJointLearning(cfg, in_dim, inputs)
        self.act = head_activation(cfg.MODEL.HEAD_ACT, dim=1)

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """The M3A section (see :mod:`m3a.models.m3a_config`)."""
        add_m3a_config(cfg)

    @classmethod
    def check_config(cls, cfg: CfgNode, in_dim: int) -> None:
        """Validate the M3A keys; ConfigError lists the valid combinations."""
        check_m3a_config(cfg, in_dim)

    @classmethod
    def read_inputs(cls, cfg: CfgNode) -> Dict[str, object]:
        """The lexicons/adjacency of ``cfg`` from ``DATA.PATH_TO_DATA_DIR/mmit-m3a``."""
        return load_m3a_inputs(cfg)

    @classmethod
    def stored_inputs(cls, cfg: CfgNode, inputs: Dict[str, object]) -> Dict[str, torch.Tensor]:
        """What :meth:`checkpoint_inputs` holds for a head built from ``inputs`` (as read by
        :meth:`read_inputs`): psi, the text lexicon and the audio nodes of the ``fixed`` draw."""
        out = {}
        if "psi" in inputs:
            out["psi"] = torch.as_tensor(inputs["psi"], dtype=torch.float64)
        if "text" in inputs:
            out["text"] = torch.as_tensor(inputs["text"], dtype=torch.float32)
        if "audio" in inputs:
            bank = AudioBank(inputs["audio"], cfg.M3A.AUDIO_VEC_SIZE, inputs.get("audio_path", ""))
            out["audio_nodes"] = bank.bank[seeded_draw(bank, cfg.RNG_SEED, cfg.M3A.AUDIO_SYNONYM_SIZE)]
        return out

    @classmethod
    def make_tiny(cls, cfg: CfgNode) -> Dict[str, object]:
        """Shrink the lexicon and hidden widths in place; return random inputs of those sizes
        (psi, text lexicon, audio node features) for tests."""
        cfg.M3A.AUDIO_VEC_SIZE, cfg.M3A.TEXT_VEC_SIZE, cfg.M3A.HIDDEN_LAYER = 4, 6, 8
        gen = torch.Generator().manual_seed(0)
        n = cfg.MODEL.NUM_CLASSES
        return {
            "psi": torch.rand(n, n, generator=gen, dtype=torch.float64).fill_diagonal_(0.0),
            "text": torch.randn(n, cfg.M3A.TEXT_VEC_SIZE, generator=gen),
            "audio_nodes": torch.randn(n, cfg.M3A.AUDIO_VEC_SIZE, generator=gen),
        }

    def checkpoint_inputs(self) -> Dict[str, torch.Tensor]:
        """See :meth:`M3AJointLearning.checkpoint_inputs`."""
        return self.m3a_joint_learning.checkpoint_inputs()

    @staticmethod
    def recomputed_keys(state: Dict[str, torch.Tensor]) -> List[str]:
        """Keys of a published checkpoint that the head recomputes instead of loading: the
        transformer's constant positional-encoding table ``trsfmr_pos_encoder.pe``."""
        return [k for k in state if k.endswith("trsfmr_pos_encoder.pe")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores (B, N) from neck features (B, C) or (B, P, C): logits in training, activated
        at eval."""
        scores = self.m3a_joint_learning(as_positions(x).mean(dim=1))
        return scores if self.training else self.act(scores)

    def node_embeddings(
        self, features: Optional[torch.Tensor] = None
    ) -> Dict[str, List[torch.Tensor]]:
        """See :meth:`M3AJointLearning.node_embeddings`."""
        return self.m3a_joint_learning.node_embeddings(features)
