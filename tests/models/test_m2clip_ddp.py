"""Two real gloo processes train a tiny M2CLIP with DDP, with masked LM off (its head unused:
DDP must be told) and on (the loss uses the text tower after the forward); the ranks stay equal."""
import os
import subprocess
import sys

import pytest
import torch

from m3a.config import load_config
from m3a.engine.train_loop import train
from m3a.utils import distributed as du
from tests.engine.test_ddp import free_port
from tests.models.test_m2clip_end_to_end import _cfg_file, _vocab_size

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _TrainJob:
    def __init__(self, out: str):
        self.out = out

    def __call__(self, cfg):
        model = train(cfg)
        params = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
        torch.save(params, os.path.join(self.out, f"params_rank{du.get_rank()}.pt"))


def launch(data_dir: str, out: str, mlm: str) -> None:
    """Entry point of the child interpreter: spawn the two gloo ranks."""
    cfg = load_config(_cfg_file(os.path.join(out, "cfg.yaml"), data_dir), [
        "OUTPUT_DIR", out, "NUM_CPU_PROCESSES", "2", "M2CLIP.MLM.ENABLE", mlm,
        "M2CLIP.MLM.VOCAB_SIZE", str(_vocab_size(data_dir)), "TEST.ENABLE", "False"])
    du.launch_job(cfg, _TrainJob(out), init_method=f"tcp://127.0.0.1:{free_port()}")


@pytest.mark.slow
@pytest.mark.parametrize("mlm", ["False", "True"])
def test_two_process_ddp_trains_m2clip(tiny_demo_dir, tmp_path, mlm):
    out = str(tmp_path / "ddp")
    os.makedirs(out)
    code = "import sys; from tests.models.test_m2clip_ddp import launch; launch(*sys.argv[1:])"
    proc = subprocess.run([sys.executable, "-c", code, tiny_demo_dir, out, mlm], cwd=ROOT,
                          capture_output=True, text=True, timeout=480)
    assert proc.returncode == 0, f"DDP run failed (rc {proc.returncode}); stderr tail:\n{proc.stderr[-6000:]}"
    p0, p1 = (torch.load(os.path.join(out, f"params_rank{r}.pt"), weights_only=True) for r in (0, 1))
    assert p0.keys() == p1.keys() and any(k.startswith("backbone.mlm_adapter") for k in p0)
    for key in p0:
        torch.testing.assert_close(p0[key], p1[key], rtol=0, atol=0)
