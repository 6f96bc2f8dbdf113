"""M2CLIP's heads and multi-task losses (``MODEL.HEAD m2clip``, on the ``m2clip`` backbone).

The head has no parameters of its own (the release keeps ``visual.adapter_fc`` and
``mlm_adapter`` in the CLIP model, and so does the backbone); it is built with the class prompts
(``M2CLIP.PROMPT`` of each name in DATA.CLASS_NAMES_FILE, e.g. "A video of abseiling") and the
masked-LM word vocabulary, which checkpoints store, and uses the backbone's text tower
(:meth:`bind_backbone`).

- Eval: ``MODEL.HEAD_ACT`` of ``XMODAL_SCALE * cos(video, prompt)`` for every class (the
  published ranking; softmax(100 cos)), or of the visual classifier's logits
  (``M2CLIP.EVAL_SCORES fc``). The prompts' embeddings are cached while evaluating without grad.
  :meth:`set_class_names` swaps in another class list (zero-shot transfer, ``TEST.ZERO_SHOT``).
- Train: ``forward`` returns a dict of outputs and :meth:`training_loss` combines
  ``W_CONTRAST * L_con + W_XMODAL * L_cls + W_FC * L_fc + W_MLM * L_mlm``:
  L_con, the video<->text contrastive loss (KL from softmax(KL_TARGET_TEMP * same_class) to the
  softmax of exp(logit_scale) * cos, both directions averaged); L_cls, the configured loss
  (MODEL.LOSS_FUNC) of the cross-modal logits over all class prompts (of their softmax with
  ``XMODAL_CE_ON_PROBS``, the release's quirk); L_fc, the same loss of the visual classifier;
  L_mlm (``M2CLIP.MLM.ENABLE``), cross-entropy of the masked words predicted from the masked
  prompt after it cross-attends to the frame embeddings. With MLM on, the contrastive loss uses
  the masked prompts' embeddings, as released. The release's MLM branch never ran (and logged
  NaN); here it trains when enabled and is 0 (skipped) when not.
"""
import os
import random
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError
from m3a.models.build import HEAD_REGISTRY, register
from m3a.models.clip.tokenizer import CONTEXT_LENGTH, END_ID, START_ID, default_tokenizer, tokenize
from m3a.models.heads import Head, head_activation
from m3a.models.losses import compute_loss
from m3a.utils.class_names import class_names_path, read_class_names

# The word that replaces a masked prompt word (an ordinary BPE word, as released).
MASK_WORD = "mask"


def read_mlm_vocab(path: str) -> List[str]:
    """Words of a masked-LM vocabulary file (lines ``word id``, ids 0..V-1 in any order);
    ValueError naming ``path:line`` for a malformed line or id."""
    words: Dict[int, str] = {}
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) in words:
                raise ValueError(f"{path}:{number}: expected 'word id' with a new integer id, got {line.strip()!r}")
            words[int(parts[1])] = parts[0]
    if sorted(words) != list(range(len(words))):
        raise ValueError(f"{path}: ids must run 0..{len(words) - 1}")
    return [words[i] for i in range(len(words))]


def prompt_vocab(prompts: List[str]) -> List[str]:
    """The sorted distinct lower-cased words of the prompts (how the release built its files)."""
    return sorted({w.lower() for p in prompts for w in p.split()})


@register(HEAD_REGISTRY, "m2clip")
class M2ClipHead(Head):
    """Cross-modal scores and M2CLIP's multi-task loss over the ``video_text`` neck's output."""

    LAYOUTS = ("video_text",)
    state_prefix = ""

    def __init__(self, cfg: CfgNode, in_dim: int, inputs: Dict[str, object]) -> None:
        super().__init__()
        m = cfg.M2CLIP
        self.prompts, self.template = list(inputs["prompts"]), m.PROMPT
        self.vocab = list(inputs.get("mlm_vocab") or [])
        self.word_id = {w: i for i, w in enumerate(self.vocab)}
        self.register_buffer("prompt_tokens", tokenize(self.prompts), persistent=False)
        self.loss_name, self.weights = cfg.MODEL.LOSS_FUNC, m.LOSS
        self.mlm, self.mask_rate, self.scale, self.eval_scores = m.MLM.ENABLE, m.MLM.MASK_RATE, m.XMODAL_SCALE, \
            m.EVAL_SCORES
        self.act = head_activation(cfg.MODEL.HEAD_ACT, dim=-1)
        self._towers: tuple = ()
        self._cache: Optional[tuple] = None

    @classmethod
    def check_config(cls, cfg: CfgNode, in_dim: int) -> None:
        """Validate the head's M2CLIP.* keys."""
        m = cfg.M2CLIP
        if m.EVAL_SCORES not in ("video_text", "fc"):
            raise ConfigError(f"M2CLIP.EVAL_SCORES must be video_text or fc, got '{m.EVAL_SCORES}'")
        if "{}" not in m.PROMPT:
            raise ConfigError(f"M2CLIP.PROMPT must contain {{}} for the class name, got '{m.PROMPT}'")
        if not 0.0 < m.MLM.MASK_RATE <= 1.0:
            raise ConfigError(f"M2CLIP.MLM.MASK_RATE must be in (0, 1], got {m.MLM.MASK_RATE}")
        for key in ("W_CONTRAST", "W_XMODAL", "W_FC", "W_MLM", "KL_TARGET_TEMP"):
            if m.LOSS[key] < 0:
                raise ConfigError(f"M2CLIP.LOSS.{key} must be >= 0, got {m.LOSS[key]}")
        if m.MLM.VOCAB_FILE and not os.path.isfile(m.MLM.VOCAB_FILE):
            raise ConfigError(f"M2CLIP.MLM.VOCAB_FILE not found: {m.MLM.VOCAB_FILE}")

    @classmethod
    def read_inputs(cls, cfg: CfgNode) -> Dict[str, object]:
        """Prompts of the class names and the masked-LM vocabulary (its size must equal
        M2CLIP.MLM.VOCAB_SIZE when masked LM is enabled or a file is given)."""
        names = read_class_names(class_names_path(cfg), cfg.MODEL.NUM_CLASSES)
        prompts = [cfg.M2CLIP.PROMPT.format(n) for n in names]
        path = cfg.M2CLIP.MLM.VOCAB_FILE
        vocab = read_mlm_vocab(path) if path else prompt_vocab(prompts)
        if (path or cfg.M2CLIP.MLM.ENABLE) and len(vocab) != cfg.M2CLIP.MLM.VOCAB_SIZE:
            raise ConfigError(f"M2CLIP.MLM.VOCAB_SIZE is {cfg.M2CLIP.MLM.VOCAB_SIZE} but the vocabulary "
                              f"({path or 'words of the prompts'}) has {len(vocab)} words")
        return {"prompts": prompts, "mlm_vocab": vocab}

    @classmethod
    def stored_inputs(cls, cfg: CfgNode, inputs: Dict[str, object]) -> Dict[str, object]:
        """Checkpoints store the prompts and the vocabulary."""
        return {"prompts": list(inputs["prompts"]), "mlm_vocab": list(inputs.get("mlm_vocab") or [])}

    @classmethod
    def make_tiny(cls, cfg: CfgNode) -> Dict[str, object]:
        """Prompts of NUM_CLASSES made-up names, masked LM on over their words."""
        names = [f"{w} thing {chr(97 + i % 26)}" for i, w in
                 zip(range(cfg.MODEL.NUM_CLASSES), ["lifting", "juggling", "eating"] * cfg.MODEL.NUM_CLASSES)]
        prompts = [cfg.M2CLIP.PROMPT.format(n) for n in names]
        cfg.M2CLIP.MLM.ENABLE = True
        cfg.M2CLIP.MLM.VOCAB_SIZE = len(prompt_vocab(prompts))
        return {"prompts": prompts, "mlm_vocab": prompt_vocab(prompts)}

    def checkpoint_inputs(self) -> Dict[str, object]:
        """The prompts and vocabulary, so a checkpoint rebuilds the head without the data."""
        return {"prompts": list(self.prompts), "mlm_vocab": list(self.vocab)}

    def set_class_names(self, names: List[str]) -> None:
        """Score the prompts of ``names`` (zero-shot transfer; the visual classifier keeps its
        trained classes, so ``EVAL_SCORES fc`` cannot)."""
        if self.eval_scores == "fc":
            raise ValueError("zero-shot transfer scores class prompts: set M2CLIP.EVAL_SCORES video_text")
        self.prompts = [self.template.format(n) for n in names]
        self.prompt_tokens = tokenize(self.prompts).to(self.prompt_tokens.device)
        self._cache = None

    def may_skip_parameters(self) -> bool:
        """With masked LM off its head and block-12 adapters stay unused (but count as trainable,
        as in the release)."""
        return not self.mlm

    def bind_backbone(self, backbone: nn.Module) -> None:
        """Use ``backbone``'s text tower (kept outside this module's parameters)."""
        self._towers = (backbone,)

    @property
    def backbone(self) -> nn.Module:
        """The bound ``m2clip`` backbone."""
        if not self._towers:
            raise RuntimeError("the m2clip head needs the m2clip backbone (Recognizer binds it)")
        return self._towers[0]

    def train(self, mode: bool = True) -> "M2ClipHead":
        """Switch mode; drops the cached prompt embeddings."""
        self._cache = None
        return super().train(mode)

    def class_text(self) -> torch.Tensor:
        """Normalised embeddings (C, E) of the class prompts, cached at eval without grad until
        a backbone weight changes (loading or an optimiser step bumps its version counter)."""
        cacheable = not self.training and not torch.is_grad_enabled()
        version = sum(p._version for p in self.backbone.parameters()) if cacheable else None
        if cacheable and self._cache is not None and self._cache[0] == version:
            return self._cache[1]
        text = F.normalize(self.backbone.encode_prompts(self.prompt_tokens)[0], dim=-1)
        if cacheable:
            self._cache = (version, text)
        return text

    def forward(self, x: Dict[str, torch.Tensor]):
        """Eval: scores (B, C). Train: {"logits" (cross-modal, B x C), "video" (normalised),
        "frames", "fc_logits", "text" (normalised prompt embeddings)}."""
        video = F.normalize(x["video"], dim=-1)
        if not self.training and self.eval_scores == "fc":
            return self.act(x["fc_logits"])
        text = self.class_text()
        logits = self.scale * video @ text.t().to(video.dtype)
        if not self.training:
            return self.act(logits)
        return {"logits": logits, "video": video, "frames": x["frames"], "fc_logits": x["fc_logits"], "text": text}

    def masked_prompts(self, labels: torch.Tensor):
        """Prompt tokens (B, 77) of each label with max(1, round(rate * words)) random words
        replaced by "mask", and the word-vocabulary ids of the masked tokens (-100 elsewhere)."""
        tokenizer = default_tokenizer()
        mask_ids = tokenizer.encode(MASK_WORD)
        tokens = torch.zeros(len(labels), CONTEXT_LENGTH, dtype=torch.long)
        targets = torch.full_like(tokens, -100)
        for row, label in enumerate(labels.tolist()):
            words = self.prompts[label].split()
            masked = set(random.sample(range(len(words)), max(1, round(self.mask_rate * len(words)))))
            ids, word_labels = [START_ID], [-100]
            for i, word in enumerate(words):
                piece = mask_ids if i in masked else tokenizer.encode(word)
                ids += piece
                word_labels += [self.word_id.get(word.lower(), 0) if i in masked else -100] * len(piece)
            ids, word_labels = (ids + [END_ID])[:CONTEXT_LENGTH], (word_labels + [-100])[:CONTEXT_LENGTH]
            tokens[row, : len(ids)] = torch.tensor(ids)
            targets[row, : len(ids)] = torch.tensor(word_labels)
        device = self.prompt_tokens.device
        return tokens.to(device), targets.to(device)

    def contrastive_loss(self, video: torch.Tensor, text: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        """(KL_v + KL_t) / 2 of exp(logit_scale) * video @ text.T against softmax(temp * same)."""
        logits = self.backbone.logit_scale.exp().float() * video.float() @ text.float().t()
        target = F.softmax(self.weights.KL_TARGET_TEMP * same, dim=1)
        kl_v = F.kl_div(F.log_softmax(logits, dim=1), target, reduction="batchmean")
        kl_t = F.kl_div(F.log_softmax(logits.t(), dim=1), target.t(), reduction="batchmean")
        return (kl_v + kl_t) / 2

    def training_loss(self, outputs: Dict[str, torch.Tensor], targets: torch.Tensor,
                      loss_fn: nn.Module) -> torch.Tensor:
        """The weighted multi-task loss of a training forward's ``outputs`` (see the module)."""
        w = self.weights
        labels = targets if targets.dim() == 1 else targets.argmax(dim=1)
        same = (labels[:, None] == labels[None]) if targets.dim() == 1 else (targets.float() @ targets.float().t() > 0)
        loss_mlm = outputs["logits"].new_zeros((), dtype=torch.float32)
        if self.mlm:
            tokens, word_targets = self.masked_prompts(labels)
            embedding, features = self.backbone.encode_prompts(tokens)
            text = F.normalize(embedding, dim=-1)
            mlm_logits = self.backbone.mlm_logits(features, outputs["frames"].to(features.dtype))
            loss_mlm = F.cross_entropy(mlm_logits.float().flatten(0, 1), word_targets.flatten(), ignore_index=-100)
        else:
            text = outputs["text"][labels]
        xmodal = outputs["logits"].float()
        if w.XMODAL_CE_ON_PROBS:
            xmodal = F.softmax(xmodal, dim=-1)
        loss = w.W_CONTRAST * self.contrastive_loss(outputs["video"], text, same.float())
        loss = loss + w.W_XMODAL * compute_loss(loss_fn, xmodal, targets, self.loss_name)
        loss = loss + w.W_FC * compute_loss(loss_fn, outputs["fc_logits"].float(), targets, self.loss_name)
        return loss + w.W_MLM * loss_mlm
