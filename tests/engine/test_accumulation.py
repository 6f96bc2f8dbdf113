"""Gradient accumulation (TRAIN.ACCUM_STEPS): N micro-batches of B/N make the step one batch of B
makes, in one process and over two gloo DDP processes (whose non-stepping micro-batches skip the
gradient all-reduce)."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from m3a.engine import accumulation, amp
from m3a.engine.optimizer import construct_optimizer
from m3a.engine.train_loop import set_seed, train, train_iteration
from m3a.models import build_model
from m3a.models.losses import get_loss_func
from m3a.utils import checkpoint as cu
from m3a.utils import distributed as du
from m3a.utils.logging import read_json_stats
from tests.engine.conftest import NUM_CLASSES, tiny_cfg
from tests.engine.test_ddp import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _frozen_bn_cfg(data_dir: str, out: str, accum: int):
    """The tiny model with frozen (eval-mode) BN and no dropout: every video's gradient is its
    own, whatever else shares its batch, so splitting a batch changes nothing but float sums."""
    cfg = tiny_cfg(data_dir, out)
    cfg.BN.FREEZE_PARAMS = True
    cfg.MODEL.DROPOUT_RATE = 0.0
    cfg.TRAIN.ACCUM_STEPS = accum
    cfg.TRAIN.EVAL_PERIOD = 0
    cfg.SOLVER.MAX_EPOCH = 2
    cfg.SOLVER.WEIGHT_DECAY = 1e-3
    return cfg


def _loader_batch(inputs, labels):
    """A batch as the loader yields it: (inputs, labels, indices, meta)."""
    return inputs, labels, torch.arange(len(labels)), {"failed": []}


def test_micro_batches_give_the_parameters_of_one_batch(tmp_path):
    cfg = _frozen_bn_cfg("", str(tmp_path), 1)
    cfg.SOLVER.LR_POLICY, cfg.SOLVER.BASE_LR = "constant", 0.5
    set_seed(0)
    inputs = torch.randn(8, 3, 4, 16, 16)
    labels = (torch.rand(8, NUM_CLASSES) > 0.5).float()
    models = {}
    for accum in (1, 2, 4):
        set_seed(1)  # the same initial weights
        model = build_model(cfg).train()  # as train_epoch sets it: frozen BN stays in eval mode
        optimizer = construct_optimizer(model, cfg)
        scaler = amp.build_grad_scaler(cfg, torch.device("cpu"))
        loss_fn = get_loss_func("bce_logit")(reduction="mean")
        micro = 8 // accum
        losses = []
        for _ in range(2):  # 2 optimizer steps (SGD momentum, weight decay), each over all 8 videos
            group = [_loader_batch(inputs[i:i + micro], labels[i:i + micro]) for i in range(0, 8, micro)]
            loss, videos, failed = train_iteration(model, group, loss_fn, optimizer, scaler, cfg, torch.device("cpu"))
            assert (videos, failed) == (8, 0)
            losses.append(loss)
        models[accum] = (model.state_dict(), losses)
    full, full_losses = models[1]
    initial = build_model(cfg).state_dict()
    assert any((full[k] - initial[k]).abs().max() > 1e-3 for k in full if full[k].is_floating_point())
    for accum in (2, 4):
        state, losses = models[accum]
        assert losses == pytest.approx(full_losses, abs=1e-6)
        for key, value in full.items():
            torch.testing.assert_close(state[key], value, rtol=0, atol=2e-6)


def test_epoch_plan_counts_optimizer_steps(tmp_path):
    cfg = tiny_cfg("", str(tmp_path))
    cfg.TRAIN.ACCUM_STEPS = 2
    plan = {n: (accumulation.optimizer_steps(n, cfg), accumulation.micro_batches_used(n, cfg)) for n in (9, 8, 1)}
    assert plan == {9: (4, 8), 8: (4, 8), 1: (1, 1)}  # 9: the ninth (less than a batch) is not used
    cfg.TRAIN.MAX_ITERS_PER_EPOCH = 3  # caps optimizer steps, not micro-batches
    assert (accumulation.optimizer_steps(9, cfg), accumulation.micro_batches_used(9, cfg)) == (3, 6)
    assert [(m.first, m.last, m.weight) for m in accumulation.positions(3)] == [
        (True, False, 1 / 3), (False, False, 1 / 3), (False, True, 1 / 3)]
    cfg.TRAIN.MAX_ITERS_PER_EPOCH = 0
    assert accumulation.describe(9, cfg, 1) == (
        "gradient accumulation: 4 optimizer step(s) per epoch, each of 2 micro-batches of 2 video(s) over 1 "
        "process(es) (TRAIN.BATCH_SIZE 4); the last 1 micro-batch(es) of each epoch (less than one batch) are not used")


def test_training_with_accumulation_matches_whole_batches(tiny_data, tmp_path):
    runs = {}
    for accum in (1, 4):
        out = str(tmp_path / f"accum{accum}")
        cfg = _frozen_bn_cfg(tiny_data, out, accum)
        cfg.SOLVER.LR_POLICY, cfg.SOLVER.WARMUP_EPOCHS, cfg.SOLVER.WARMUP_START_LR = "cosine", 1.0, 0.01
        train(cfg)
        stats = read_json_stats(out, "train_epoch")
        iters = read_json_stats(out, "train_iter")
        state = torch.load(cu.checkpoint_path(out, 2), weights_only=True)["model_state"]
        runs[accum] = (stats, iters, state)
    stats1, iters1, state1 = runs[1]
    stats, iters, state = runs[4]  # micro-batches of 1 video
    # The same optimizer steps (2 per epoch of 8 videos), learning rates, losses and weights.
    assert [i["iter"] for i in iters] == [i["iter"] for i in iters1] == ["1/2", "2/2"] * 2
    assert [i["lr"] for i in iters] == [i["lr"] for i in iters1]
    assert [s["samples"] for s in stats] == [s["samples"] for s in stats1] == [8, 8]
    assert [s["loss"] for s in stats] == pytest.approx([s["loss"] for s in stats1], abs=1e-5)
    for key, value in state1.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=1e-5)


def test_max_iters_per_epoch_counts_optimizer_steps(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    cfg = _frozen_bn_cfg(tiny_data, out, 2)
    cfg.SOLVER.MAX_EPOCH, cfg.TRAIN.MAX_ITERS_PER_EPOCH = 1, 1
    train(cfg)
    assert [i["iter"] for i in read_json_stats(out, "train_iter")] == ["1/1"]
    assert [s["samples"] for s in read_json_stats(out, "train_epoch")] == [4]  # 2 micro-batches of 2


class _CountedAllReduce:
    """DDP job: count the gradient all-reduces (a comm hook) of one accumulated step of 2
    micro-batches and of one whole-batch step; then train with ACCUM_STEPS 2 and save parameters."""

    def __init__(self, out: str):
        self.out = out

    def __call__(self, cfg):
        rank = du.get_rank()
        set_seed(0)
        model = build_model(cfg).train()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        calls = []

        def counting_hook(state, bucket):
            calls.append(bucket.index())
            tensor = bucket.buffer().div_(du.get_world_size())
            return dist.all_reduce(tensor, async_op=True).get_future().then(lambda fut: fut.value()[0])

        ddp.register_comm_hook(None, counting_hook)
        optimizer = construct_optimizer(model, cfg)
        scaler = amp.build_grad_scaler(cfg, torch.device("cpu"))
        loss_fn = get_loss_func("bce_logit")(reduction="mean")
        torch.manual_seed(rank)
        batches = [_loader_batch(torch.randn(1, 3, 4, 32, 32), (torch.rand(1, NUM_CLASSES) > 0.5).float())
                   for _ in range(2)]
        train_iteration(ddp, batches, loss_fn, optimizer, scaler, cfg, torch.device("cpu"))
        accumulated = len(calls)
        train_iteration(ddp, batches[:1], loss_fn, optimizer, scaler, cfg, torch.device("cpu"))
        whole = len(calls) - accumulated
        trained = train(cfg)
        torch.save({k: v.detach().clone() for k, v in trained.state_dict().items()},
                   os.path.join(self.out, f"state_rank{rank}.pt"))
        with open(os.path.join(self.out, f"calls_rank{rank}.json"), "w") as f:
            json.dump({"accumulated": accumulated, "whole": whole}, f)


def launch_counted(data_dir: str, out: str) -> None:
    """Entry point of the child interpreter: two gloo ranks, ACCUM_STEPS 2, micro-batches of 1."""
    cfg = _frozen_bn_cfg(data_dir, out, 2)
    cfg.NUM_CPU_PROCESSES = 2
    du.launch_job(cfg, _CountedAllReduce(out), init_method=f"tcp://127.0.0.1:{free_port()}")


@pytest.mark.slow
def test_ddp_accumulation_skips_all_reduce_and_matches_one_process(tiny_data, tmp_path):
    out = str(tmp_path / "ddp")
    os.makedirs(out)
    code = "import sys; from tests.engine.test_accumulation import launch_counted; launch_counted(*sys.argv[1:])"
    proc = subprocess.run([sys.executable, "-c", code, tiny_data, out], cwd=ROOT, capture_output=True, text=True,
                          timeout=480)
    assert proc.returncode == 0, proc.stderr[-6000:]
    for rank in range(2):
        with open(os.path.join(out, f"calls_rank{rank}.json")) as f:
            calls = json.load(f)
        # One all-reduce per bucket per optimizer step: the micro-batch that does not step skips it.
        assert calls["accumulated"] == calls["whole"] >= 1
    states = [torch.load(os.path.join(out, f"state_rank{r}.pt"), weights_only=True) for r in range(2)]
    single = str(tmp_path / "single")
    train(_frozen_bn_cfg(tiny_data, single, 1))  # one process, whole batches of 4
    expected = torch.load(cu.checkpoint_path(single, 2), weights_only=True)["model_state"]
    after_one = torch.load(cu.checkpoint_path(single, 1), weights_only=True)["model_state"]
    # The second epoch's 2 steps move the weights by far more than the tolerance, which allows
    # for the other summation order of 2 ranks with half the threads each.
    assert max(float((expected[k] - after_one[k]).abs().max()) for k in expected if expected[k].is_floating_point()) > 1e-2
    for key, value in expected.items():
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=0)
        torch.testing.assert_close(states[0][key], value, rtol=0, atol=2e-4)
