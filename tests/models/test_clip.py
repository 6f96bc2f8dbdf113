"""CLIP ViT-B/16 / ViT-L/14 in OpenAI's layout, and the restricted TorchScript reader that loads
OpenAI's release files (TorchScript archives) without running their code."""
import io
import os
import pickle
import zipfile

import pytest
import torch

from m3a.models.clip.model import CLIP, CLIP_SPECS, ClipSpec, convert_openai_state
from m3a.utils.checkpoint import CheckpointError, read_checkpoint
from m3a.utils.torchscript_archive import ArchiveError, is_torchscript_archive, read_archive_state
from tests.models.clip_layouts import published

TINY = ClipSpec(embed_dim=8, image_resolution=8, vision_layers=2, vision_width=16, vision_patch_size=4,
                context_length=77, vocab_size=49408, transformer_width=8, transformer_heads=2, transformer_layers=2,
                vision_head_width=8)


@pytest.mark.parametrize("arch, name", [("ViT-B/16", "clip_vit_b16"), ("ViT-L/14", "clip_vit_l14")])
def test_clip_keys_shapes_and_counts_equal_openai(arch, name):
    ref = published(name)
    with torch.device("meta"):
        model = CLIP(CLIP_SPECS[arch])
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == ref["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == ref["params"]
    blocks = len(model.visual.transformer.resblocks)
    assert blocks == ref["config"]["vision_layers"]


def test_vit_l14_runs_every_block():
    """Perturbing the last visual block changes the output (all 24 blocks of L/14 run; the
    release's loop stopped after 12). Checked on a 24-block tiny tower."""
    spec = TINY._replace(vision_layers=24)
    torch.manual_seed(0)
    model = CLIP(spec).eval()
    frames = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        before = model.encode_image(frames)
        model.visual.transformer.resblocks[23].mlp.c_proj.bias.add_(torch.randn(16))
        after = model.encode_image(frames)
    assert not torch.allclose(before, after)


def _openai_like_archive(path: str, half: bool = True) -> dict:
    """A tiny CLIP traced and saved as OpenAI's files are (integer buffers, mostly fp16)."""
    torch.manual_seed(0)
    model = CLIP(TINY).eval()
    for name, value in (("input_resolution", 8), ("context_length", 77), ("vocab_size", 49408)):
        model.register_buffer(name, torch.tensor(value))
    if half:
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                module.half()
        model.float()
    traced = torch.jit.trace_module(model, {"encode_image": torch.randn(1, 3, 8, 8)})
    torch.jit.save(traced, path)
    return model.state_dict()


def test_reader_rebuilds_every_tensor_of_a_torchscript_archive(tmp_path):
    path = str(tmp_path / "ViT-tiny.pt")
    expected = _openai_like_archive(path)
    assert is_torchscript_archive(path)
    state = read_archive_state(path)
    # The same keys as TorchScript's own loader gives (our own file, so running it is safe here).
    assert list(state) == list(torch.jit.load(path).state_dict())
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value), key
    # load_checkpoint's reader serves it as a bare state dict that loads into CLIP strictly.
    state = read_checkpoint(path)
    state, dropped = convert_openai_state(state)
    assert dropped == ["input_resolution", "context_length", "vocab_size"]
    fresh = CLIP(TINY)
    fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.visual.conv1.weight, expected["visual.conv1.weight"])


def test_reader_keeps_fp16_weights_fp16(tmp_path):
    path = str(tmp_path / "half.pt")
    torch.manual_seed(0)
    model = CLIP(TINY).half()
    torch.jit.save(torch.jit.trace_module(model, {"encode_text": torch.ones(1, 77, dtype=torch.long)}), path)
    state = read_archive_state(path)
    assert state["visual.conv1.weight"].dtype == torch.float16
    assert torch.equal(state["token_embedding.weight"], model.token_embedding.weight)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_reader_refuses_code_in_data_pkl(tmp_path):
    path = str(tmp_path / "evil.pt")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"x": _Boom()}, protocol=2))
        archive.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("evil/code/__torch__.py", "")
    with pytest.raises(ArchiveError, match="does not allow"):
        read_archive_state(path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        read_checkpoint(path)


def test_reader_names_a_truncated_storage(tmp_path):
    path = str(tmp_path / "ok.pt")
    _openai_like_archive(path, half=False)
    broken = str(tmp_path / "broken.pt")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("/data/0"):
                data = data[:-2]
            dst.writestr(item, data)
    with pytest.raises(ArchiveError, match="bytes, expected"):
        read_archive_state(broken)


def test_a_plain_state_dict_is_not_an_archive(tmp_path):
    path = str(tmp_path / "plain.pt")
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())
    assert not is_torchscript_archive(path)
    assert torch.equal(read_checkpoint(path)["w"], torch.ones(2))
