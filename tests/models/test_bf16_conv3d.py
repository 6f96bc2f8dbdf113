"""Our Conv3d gives correct weight gradients under CPU bf16 autocast when the clip is shorter than
the temporal kernel (oneDNN's bf16 kernels of torch 2.13 do not for 1 < T < kt)."""
import pytest
import torch

from m3a.models.blocks import Conv3d


def _relative_grad_error(conv: torch.nn.Module, x: torch.Tensor) -> float:
    reference = torch.nn.Conv3d(conv.in_channels, conv.out_channels, conv.kernel_size, 1, conv.padding, bias=False)
    reference.weight.data = conv.weight.data.to(torch.bfloat16).float()
    reference(x.to(torch.bfloat16).float()).sum().backward()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x)
    out.float().sum().backward()
    want = reference.weight.grad
    return float((conv.weight.grad - want).abs().max() / want.abs().max())


@pytest.mark.parametrize("frames, kt", [(2, 3), (2, 5), (4, 5), (1, 3), (4, 3), (8, 3)])
def test_weight_gradients_match_fp32_under_cpu_bf16(frames, kt):
    torch.manual_seed(0)
    for _ in range(4):  # the faulty kernels return garbage on most, not all, calls
        conv = Conv3d(36, 16, (kt, 1, 1), 1, (kt // 2, 0, 0), bias=False)
        x = torch.randn(4, 36, frames, 8, 8)
        assert _relative_grad_error(conv, x) < 0.05  # bf16 rounding is about 3e-3


def test_short_clips_run_in_fp32_and_others_in_bf16():
    conv = Conv3d(4, 4, (3, 1, 1), 1, (1, 0, 0), bias=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(torch.randn(1, 4, 2, 4, 4)).dtype == torch.float32
        assert conv(torch.randn(1, 4, 3, 4, 4)).dtype == torch.bfloat16
        assert conv(torch.randn(1, 4, 1, 4, 4)).dtype == torch.bfloat16
