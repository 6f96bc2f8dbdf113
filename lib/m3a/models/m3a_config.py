"""Config keys of the M3A head (the ``M3A`` section) and their validation."""
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError

# Choices (the valid combinations are listed in every error message).
M3A_MODES = ("NONE", "GRAPH", "TRSFMR")
MODALITIES = ("RGB", "AUDIO", "TEXT", "AUDIOTEXT")
JOINTS = ("NONE", "SUM", "CROSS")
VALID_M3A = (
    "valid M3A combinations: MODE NONE (plain FC head; MODAL_TYPE/MODAL_JOINT_TYPE ignored); "
    "MODE GRAPH or TRSFMR with MODAL_JOINT_TYPE NONE and exactly one modality; "
    "MODE GRAPH or TRSFMR with MODAL_JOINT_TYPE SUM and one or more distinct modalities; "
    "MODE TRSFMR with MODAL_JOINT_TYPE CROSS and 2 or 3 distinct modalities; "
    "modalities are RGB, AUDIO, TEXT, AUDIOTEXT joined by '_' (e.g. RGB_AUDIO_TEXT)"
)


def add_m3a_config(cfg: CfgNode) -> None:
    """Add the ``M3A`` section to ``cfg``."""
    cfg.M3A = CfgNode()
    # Relation learner: NONE (the FC baseline head), GRAPH (GCN) or TRSFMR (transformer).
    cfg.M3A.MODE = "GRAPH"
    # "_"-joined modalities, one learner each: RGB, AUDIO, TEXT, AUDIOTEXT.
    cfg.M3A.MODAL_TYPE = "RGB_AUDIO_TEXT"
    # How per-modality scores are joined: NONE (one modality), SUM, CROSS (transformer only).
    cfg.M3A.MODAL_JOINT_TYPE = "SUM"
    # Number of layers of each relation learner.
    cfg.M3A.NLAYERS = 2
    # Hidden width of the GCN layers / feed-forward width of a standard transformer layer.
    cfg.M3A.HIDDEN_LAYER = 1024
    # Transformer layers without feed-forward (the paper's simplified encoder) when True.
    cfg.M3A.TRSFMR_SIMPLIFIED = True
    # Attention heads of the transformer learner.
    cfg.M3A.TRSFMR_NHEAD = 1
    # Add sinusoidal positional encodings to the transformer tokens.
    cfg.M3A.TRSFMR_POS_ENCODE = False
    # Width P of an audio lexicon entry (3 x 128 VGGish).
    cfg.M3A.AUDIO_VEC_SIZE = 384
    # Audio features drawn per class before one becomes the node feature.
    cfg.M3A.AUDIO_SYNONYM_SIZE = 1
    # How the audio node feature is drawn: fixed (deterministic from RNG_SEED) or random (fresh
    # draw each training step, fixed at eval).
    cfg.M3A.AUDIO_SAMPLING = "fixed"
    # Width Q of a text lexicon entry: 0 = the text lexicon's own width (300 GloVe, 768 BERT,
    # 512 CLIP ViT-B/16); another value is checked against the lexicon file.
    cfg.M3A.TEXT_VEC_SIZE = 0
    # Co-occurrence threshold t of the graph adjacency.
    cfg.M3A.GRAPH_THRESHOLD = 0.4
    # Re-weighting p of the binarised adjacency (0 gives the plain A + I).
    cfg.M3A.GRAPH_REWEIGHT = 0.25


def _fail(msg: str) -> None:
    raise ConfigError(msg)


def check_m3a_config(cfg: CfgNode, in_dim: int) -> None:
    """Validate the M3A keys for clip features of width ``in_dim`` (ConfigError)."""
    m3a = cfg.M3A
    if m3a.MODE not in M3A_MODES:
        _fail(f"M3A.MODE must be one of {', '.join(M3A_MODES)}, got '{m3a.MODE}'; {VALID_M3A}")
    if m3a.MODAL_JOINT_TYPE not in JOINTS:
        _fail(f"M3A.MODAL_JOINT_TYPE must be one of {', '.join(JOINTS)}, got "
              f"'{m3a.MODAL_JOINT_TYPE}'; {VALID_M3A}")
    if m3a.MODE == "NONE":
        _fail("MODEL.HEAD m3a needs M3A.MODE GRAPH or TRSFMR (MODE NONE is the fc head); "
              + VALID_M3A)
    mods = m3a.MODAL_TYPE.split("_")
    unknown = [m for m in mods if m not in MODALITIES]
    if unknown or len(set(mods)) != len(mods):
        _fail(f"M3A.MODAL_TYPE '{m3a.MODAL_TYPE}' must list distinct modalities; {VALID_M3A}")
    joint, combo = m3a.MODAL_JOINT_TYPE, f"{m3a.MODE}/{m3a.MODAL_TYPE}/{m3a.MODAL_JOINT_TYPE}"
    if joint == "NONE" and len(mods) != 1:
        _fail(f"M3A combination {combo}: MODAL_JOINT_TYPE NONE takes one modality; {VALID_M3A}")
    if joint == "CROSS" and (m3a.MODE != "TRSFMR" or len(mods) not in (2, 3)):
        _fail(f"M3A combination {combo}: CROSS needs MODE TRSFMR and 2 or 3 modalities; "
              f"{VALID_M3A}")
    if m3a.TEXT_VEC_SIZE < 0:
        _fail(f"M3A.TEXT_VEC_SIZE must be >= 0 (0 = the text lexicon's width), got {m3a.TEXT_VEC_SIZE}")
    if m3a.NLAYERS < 1 or m3a.HIDDEN_LAYER < 1 or m3a.TRSFMR_NHEAD < 1:
        _fail(f"M3A.NLAYERS, M3A.HIDDEN_LAYER and M3A.TRSFMR_NHEAD must be >= 1, got "
              f"{m3a.NLAYERS}, {m3a.HIDDEN_LAYER}, {m3a.TRSFMR_NHEAD}")
    if m3a.AUDIO_SAMPLING not in ("fixed", "random"):
        _fail(f"M3A.AUDIO_SAMPLING must be fixed or random, got '{m3a.AUDIO_SAMPLING}'")
    if m3a.AUDIO_SYNONYM_SIZE < 1:
        _fail(f"M3A.AUDIO_SYNONYM_SIZE must be >= 1, got {m3a.AUDIO_SYNONYM_SIZE}")
    if m3a.GRAPH_REWEIGHT < 0:
        _fail(f"M3A.GRAPH_REWEIGHT must be >= 0, got {m3a.GRAPH_REWEIGHT}")
    if m3a.MODE == "TRSFMR":
        _check_heads(cfg, mods, in_dim)


def _check_heads(cfg: CfgNode, mods: list, in_dim: int) -> None:
    """Every transformer token width must split evenly over M3A.TRSFMR_NHEAD heads (text widths
    taken from the lexicon, TEXT_VEC_SIZE 0, are checked when the head is built)."""
    check_token_widths(cfg, mods, in_dim, cfg.M3A.TEXT_VEC_SIZE)


def token_widths(cfg: CfgNode, in_dim: int, text_dim: int) -> dict:
    """Node feature width of each modality: RGB the clip feature's, AUDIO M3A.AUDIO_VEC_SIZE,
    TEXT ``text_dim`` (the text lexicon's), AUDIOTEXT both concatenated."""
    audio = cfg.M3A.AUDIO_VEC_SIZE
    return {"RGB": in_dim, "AUDIO": audio, "TEXT": text_dim, "AUDIOTEXT": audio + text_dim}


def check_token_widths(cfg: CfgNode, mods: list, in_dim: int, text_dim: int) -> None:
    """ConfigError when a transformer token width does not split over M3A.TRSFMR_NHEAD heads
    (a ``text_dim`` of 0, not yet known, is skipped)."""
    widths = token_widths(cfg, in_dim, text_dim)
    for mod in mods:
        if text_dim == 0 and mod in ("TEXT", "AUDIOTEXT"):
            continue
        if widths[mod] % cfg.M3A.TRSFMR_NHEAD:
            _fail(f"M3A.TRSFMR_NHEAD {cfg.M3A.TRSFMR_NHEAD} does not divide the {mod} token "
                  f"width {widths[mod]}")
