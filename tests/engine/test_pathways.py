"""Items with several input streams: the real collate stacks each pathway, the engine moves,
slices and reshapes them per pathway and hands the list to the model untouched."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from m3a.config import get_cfg
from m3a.datasets.loader import collate
from m3a.engine.inputs import batch_size, flatten_views, slice_items, to_device
from m3a.engine.predict import score_views
from m3a.engine.test_loop import run_multiview_inference
from m3a.engine.train_loop import calculate_precise_bn, eval_epoch, train_epoch

NUM_CLASSES, VIEWS = 3, 2


def _rgb(index: int, *lead) -> torch.Tensor:
    return torch.full((*lead, 3, 4, 8, 8), float(index)) + torch.arange(3).view(3, 1, 1, 1) / 10


def _pose(index: int, *lead) -> torch.Tensor:
    return torch.full((*lead, 17, 4, 6, 6), -float(index))


class TwoPathwayDataset(Dataset):
    """RGB clips (3, 4, 8, 8) and pose heatmaps (17, 4, 6, 6) whose values encode the index."""

    def __init__(self, split: str, size: int = 5):
        self.split, self.size = split, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        label = torch.zeros(NUM_CLASSES)
        label[index % NUM_CLASSES] = 1.0
        if self.split == "test":
            views = [_rgb(index, VIEWS), _pose(index, VIEWS)]
            views[0][1] += 100.0  # the second view differs from the first
            return views, label, index, True
        return [_rgb(index), _pose(index)], label, index, {"failed": []}


class TwoPathwayNet(nn.Module):
    """Pools each pathway and classifies the concatenation; insists on a list of two tensors."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm3d(17)
        self.fc = nn.Linear(3 + 17, NUM_CLASSES)
        self.seen = []

    def forward(self, inputs):
        assert isinstance(inputs, list) and len(inputs) == 2
        rgb, pose = inputs
        self.seen.append((rgb.shape, pose.shape))
        feats = torch.cat([rgb.mean(dim=(2, 3, 4)), self.bn(pose).mean(dim=(2, 3, 4))], dim=1)
        return self.fc(feats)


def _loader(split: str, workers: int = 0) -> DataLoader:
    return DataLoader(TwoPathwayDataset(split), batch_size=2, collate_fn=collate, num_workers=workers)


def _cfg(tmp_path):
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = NUM_CLASSES
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.SOLVER.MAX_EPOCH = 1
    cfg.SOLVER.BASE_LR = 0.01
    cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS = VIEWS, 1
    return cfg


def test_collate_stacks_each_pathway_in_a_worker():
    inputs, labels, indices, meta = next(iter(_loader("train", workers=1)))
    assert isinstance(inputs, list) and len(inputs) == 2
    assert torch.equal(inputs[0], torch.stack([_rgb(0), _rgb(1)]))
    assert torch.equal(inputs[1], torch.stack([_pose(0), _pose(1)]))
    assert labels.shape == (2, NUM_CLASSES) and indices.tolist() == [0, 1] and meta == {"failed": []}
    views, _, _, ok = next(iter(_loader("test")))
    assert [v.shape for v in views] == [(2, VIEWS, 3, 4, 8, 8), (2, VIEWS, 17, 4, 6, 6)] and ok.tolist() == [True, True]


def test_collate_refuses_items_with_different_pathway_counts():
    item = TwoPathwayDataset("train")[0]
    with pytest.raises(ValueError, match="different numbers of pathways: \\[1, 2\\]"):
        collate([item, ([item[0][0]],) + item[1:]])


def test_device_move_slice_and_view_reshape_per_pathway():
    views, *_ = next(iter(_loader("test")))
    moved = to_device(views, torch.device("meta"))
    assert isinstance(moved, list) and [p.device.type for p in moved] == ["meta", "meta"]
    assert [p.shape for p in moved] == [p.shape for p in views]
    flat, b, v = flatten_views(views)
    assert (b, v) == (2, VIEWS) and [p.shape for p in flat] == [(4, 3, 4, 8, 8), (4, 17, 4, 6, 6)]
    for i in range(b):
        for j in range(v):
            assert torch.equal(flat[0][i * v + j], views[0][i, j]) and torch.equal(flat[1][i * v + j], views[1][i, j])
    assert batch_size(flat) == 4 and [p.shape[0] for p in slice_items(flat, 1, 3)] == [2, 2]
    with pytest.raises(ValueError, match="disagree on \\(videos, views\\)"):
        flatten_views([views[0], views[1][:, :1]])
    # a single tensor stays a tensor
    single = views[0]
    assert isinstance(to_device(single, torch.device("cpu")), torch.Tensor)
    assert flatten_views(single)[0].shape == (4, 3, 4, 8, 8) and batch_size(single) == 2


def test_engine_loops_pass_the_pathway_list_to_the_model(tmp_path):
    cfg, device = _cfg(tmp_path), torch.device("cpu")
    torch.manual_seed(0)
    model = TwoPathwayNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    stats = train_epoch(_loader("train"), model, nn.BCEWithLogitsLoss(), optimizer, scaler, 0, cfg, device)
    full, last = ((2, 3, 4, 8, 8), (2, 17, 4, 6, 6)), ((1, 3, 4, 8, 8), (1, 17, 4, 6, 6))
    assert np.isfinite(stats["loss"]) and stats["failed_videos"] == 0 and model.seen == [full, full, last]
    before = model.bn.running_mean.clone()
    calculate_precise_bn(_loader("train"), model, 3, device)
    assert not torch.equal(model.bn.running_mean, before) and len(model.seen) == 6
    assert set(eval_epoch(_loader("val"), model, 0, cfg, device)) >= {"map_class", "top1"}
    model.seen.clear()
    results = run_multiview_inference(_loader("test"), model, cfg, device)
    assert model.seen[0] == ((2 * VIEWS, 3, 4, 8, 8), (2 * VIEWS, 17, 4, 6, 6))
    assert results["scores"].shape == (5, NUM_CLASSES) and results["num_views"] == VIEWS
    for index in range(5):
        views = TwoPathwayDataset("test")[index][0]
        with torch.no_grad():
            expected = model(views).sum(dim=0)  # DATA.ENSEMBLE_METHOD sum over the views
        np.testing.assert_allclose(results["scores"][results["indices"] == index][0], expected.numpy(), rtol=1e-5)
        torch.testing.assert_close(score_views(model, views, "sum", chunk=1), expected)
