"""Checks of value combinations that the type-checked merge cannot catch."""
from fvcore.common.config import CfgNode


def _fail(msg: str) -> None:
    from m3a.config.loading import ConfigError

    raise ConfigError(msg)


def assert_and_infer_cfg(cfg: CfgNode) -> CfgNode:
    """Validate ``cfg`` in place and return it; raise ConfigError naming the offending key."""
    if cfg.DATA.ENSEMBLE_METHOD not in ("sum", "max"):
        _fail(f"DATA.ENSEMBLE_METHOD must be sum or max, got '{cfg.DATA.ENSEMBLE_METHOD}'")
    if cfg.DATA.INPUT_FORMAT not in ("video", "frames"):
        _fail(f"DATA.INPUT_FORMAT must be video or frames, got '{cfg.DATA.INPUT_FORMAT}'")
    if cfg.TEST.NUM_SPATIAL_CROPS not in (1, 3):
        _fail(f"TEST.NUM_SPATIAL_CROPS must be 1 or 3, got {cfg.TEST.NUM_SPATIAL_CROPS}")
    if cfg.NUM_GPUS < 0:
        _fail(f"NUM_GPUS must be >= 0, got {cfg.NUM_GPUS}")
    check_model_cfg(cfg)
    return cfg


# Backbone choices (DESIGN.md section 2).
_ARCHS = ("r2plus1d", "r3d", "i3d", "ir_csn")
_DEPTHS = (18, 34, 50, 101, 152)
# M3A choices (DESIGN.md section 1).
_M3A_MODES = ("NONE", "GRAPH", "TRSFMR")
_MODALITIES = ("RGB", "AUDIO", "TEXT", "AUDIOTEXT")
_JOINTS = ("NONE", "SUM", "CROSS")
_VALID_M3A = (
    "valid M3A combinations: MODE NONE (plain FC head; MODAL_TYPE/MODAL_JOINT_TYPE ignored); "
    "MODE GRAPH or TRSFMR with MODAL_JOINT_TYPE NONE and exactly one modality; "
    "MODE GRAPH or TRSFMR with MODAL_JOINT_TYPE SUM and one or more distinct modalities; "
    "MODE TRSFMR with MODAL_JOINT_TYPE CROSS and 2 or 3 distinct modalities; "
    "modalities are RGB, AUDIO, TEXT, AUDIOTEXT joined by '_' (e.g. RGB_AUDIO_TEXT)"
)


def _check_backbone(cfg: CfgNode) -> None:
    model = cfg.MODEL
    if model.ARCH not in _ARCHS:
        _fail(f"MODEL.ARCH must be one of {', '.join(_ARCHS)}, got '{model.ARCH}'")
    if model.DEPTH not in _DEPTHS:
        _fail(f"MODEL.DEPTH must be one of {_DEPTHS}, got {model.DEPTH}")
    if model.ARCH == "ir_csn" and model.DEPTH < 50:
        _fail(f"MODEL.ARCH ir_csn uses bottleneck blocks: MODEL.DEPTH must be 50, 101 or 152, "
              f"got {model.DEPTH}")
    if model.BASE_WIDTH < 1:
        _fail(f"MODEL.BASE_WIDTH must be >= 1, got {model.BASE_WIDTH}")
    blocks = list(model.STAGE_BLOCKS)
    if blocks and (len(blocks) != 4 or any(int(b) < 1 for b in blocks)):
        _fail(f"MODEL.STAGE_BLOCKS must be [] or 4 positive block counts, got {blocks}")
    if model.HEAD_ACT not in ("sigmoid", "softmax"):
        _fail(f"MODEL.HEAD_ACT must be sigmoid or softmax, got '{model.HEAD_ACT}'")
    if model.NUM_CLASSES < 1:
        _fail(f"MODEL.NUM_CLASSES must be >= 1, got {model.NUM_CLASSES}")
    if not 0.0 <= model.DROPOUT_RATE < 1.0:
        _fail(f"MODEL.DROPOUT_RATE must be in [0, 1), got {model.DROPOUT_RATE}")
    if model.SE_RATIO < 0:
        _fail(f"MODEL.SE_RATIO must be >= 0, got {model.SE_RATIO}")
    if cfg.BN.NORM_TYPE not in ("batchnorm", "sync_batchnorm"):
        _fail(f"BN.NORM_TYPE must be batchnorm or sync_batchnorm, got '{cfg.BN.NORM_TYPE}'")


def _check_m3a(cfg: CfgNode) -> None:
    m3a = cfg.M3A
    if m3a.MODE not in _M3A_MODES:
        _fail(f"M3A.MODE must be one of {', '.join(_M3A_MODES)}, got '{m3a.MODE}'; {_VALID_M3A}")
    if m3a.MODAL_JOINT_TYPE not in _JOINTS:
        _fail(f"M3A.MODAL_JOINT_TYPE must be one of {', '.join(_JOINTS)}, got "
              f"'{m3a.MODAL_JOINT_TYPE}'; {_VALID_M3A}")
    if m3a.MODE == "NONE":
        return
    mods = m3a.MODAL_TYPE.split("_")
    unknown = [m for m in mods if m not in _MODALITIES]
    if unknown or len(set(mods)) != len(mods):
        _fail(f"M3A.MODAL_TYPE '{m3a.MODAL_TYPE}' must list distinct modalities; {_VALID_M3A}")
    joint, combo = m3a.MODAL_JOINT_TYPE, f"{m3a.MODE}/{m3a.MODAL_TYPE}/{m3a.MODAL_JOINT_TYPE}"
    if joint == "NONE" and len(mods) != 1:
        _fail(f"M3A combination {combo}: MODAL_JOINT_TYPE NONE takes one modality; {_VALID_M3A}")
    if joint == "CROSS" and (m3a.MODE != "TRSFMR" or len(mods) not in (2, 3)):
        _fail(f"M3A combination {combo}: CROSS needs MODE TRSFMR and 2 or 3 modalities; "
              f"{_VALID_M3A}")
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
        _check_heads(cfg, mods)


def _check_heads(cfg: CfgNode, mods: list) -> None:
    """Every transformer token width must split evenly over M3A.TRSFMR_NHEAD heads."""
    expansion = 4 if cfg.MODEL.DEPTH >= 50 else 1
    widths = {
        "RGB": cfg.MODEL.BASE_WIDTH * 8 * expansion,
        "AUDIO": cfg.M3A.AUDIO_VEC_SIZE,
        "TEXT": cfg.M3A.TEXT_VEC_SIZE,
        "AUDIOTEXT": cfg.M3A.AUDIO_VEC_SIZE + cfg.M3A.TEXT_VEC_SIZE,
    }
    for mod in mods:
        if widths[mod] % cfg.M3A.TRSFMR_NHEAD:
            _fail(f"M3A.TRSFMR_NHEAD {cfg.M3A.TRSFMR_NHEAD} does not divide the {mod} token "
                  f"width {widths[mod]}")


def check_model_cfg(cfg: CfgNode) -> None:
    """Validate the backbone (MODEL, BN) and M3A head settings; raise ConfigError listing the
    valid choices."""
    _check_backbone(cfg)
    _check_m3a(cfg)
