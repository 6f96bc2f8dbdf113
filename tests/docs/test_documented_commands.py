"""Every shell command of the docs and every example of every tool's --help runs, as written.

The commands run with bash in a scratch folder that looks like the repository root (``tools``,
``configs``, ``lib``, ``Makefile`` linked in), with the test's Python first on PATH, so relative
paths such as ``demo_data`` and ``output/demo`` mean what they mean for a user. The only changes:

- ``make_demo_data.py`` gets size options appended (a tiny demo set: 24 videos of 4 classes);
- commands using ``configs/demo/demo.yaml`` get ``MODEL.NUM_CLASSES 4`` and one test view per
  video appended (``DEMO_SMALL``) and, for training, a short schedule (``DEMO_TRAIN``), so the demo
  checkpoint is ``checkpoint_epoch_00001`` where the docs (after the full ``make demo``) say
  ``checkpoint_epoch_00024``;
- ``make_pose_demo_data.py`` gets a small size (``POSE_DEMO_ARGS``) and training on its data
  (``configs/EPAM/DEMO_EPAM.yaml``) a short schedule (``POSE_DEMO_TRAIN``);
- M-MiT commands run on a stand-in of the release (its csv/txt layout, the demo videos) built
  by ``_make_mmit_standin``: M-MiT itself is tens of GB behind a request form.
- the motion demo (``--kind motion``) is made with 4 clips of 8 frames per class and its
  ``configs/demo/motion.yaml`` runs get the same short schedule (``MOTION_TRAIN``);
- the family comparison (``benchmark.py models`` on ``configs/demo/families/``) gets the tiny
  demo's class count, one test view, one epoch of two iterations and one timed step per model
  appended (``FAMILIES_SMALL``): the documented run trains twelve models for 8 epochs each;
- the M2CLIP demo's 12-class data set (``--out demo_clip``) is made with 24 videos of 1.5 s at 64
  pixels (``CLIP_DEMO_SMALL``) and ``tools/clip_demo.py`` gets a short schedule (``CLIP_DEMO_TRAIN``);
- Something-Something V2, Jester and EgoGesture commands run on stand-ins in the official layouts
  (``_make_frames_standins``: a few demo videos, annotation files, frame folders).
- Charades commands run on a stand-in of the download (``_make_charades_standin``: the official
  annotation files with a few hand-made rows, 157 classes, demo videos as ``Charades_v1_480/<id>.mp4``).

Commands that need a GPU, the network, several machines or downloaded files are listed in
``SKIP`` with the reason; the test fails on any documented command that is neither run nor listed.
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.docs.commands import ROOT, doc_commands, help_examples, tool_help_texts

TINY_DEMO_ARGS = "--videos 24 --classes 4 --duration 1.5 --size 64 --workers 1"
DEMO_SMALL = "MODEL.NUM_CLASSES 4 TEST.NUM_ENSEMBLE_VIEWS 1 TEST.NUM_SPATIAL_CROPS 1"
DEMO_TRAIN = ("SOLVER.MAX_EPOCH 1 TRAIN.MAX_ITERS_PER_EPOCH 2 TRAIN.BATCH_SIZE 4 TEST.BATCH_SIZE 4 "
              "DATA_LOADER.NUM_WORKERS 0 DATA_LOADER.PERSISTENT_WORKERS False LOG_MODEL_INFO False")
FAMILIES_SMALL = ("--batch 2 --steps 1 MODEL.NUM_CLASSES 4 TEST.NUM_ENSEMBLE_VIEWS 1 SOLVER.MAX_EPOCH 1 "
                  "TRAIN.MAX_ITERS_PER_EPOCH 2 TRAIN.CHECKPOINT_PERIOD 1 TRAIN.BATCH_SIZE 4 TEST.BATCH_SIZE 4 "
                  "DATA_LOADER.NUM_WORKERS 0 DATA_LOADER.PERSISTENT_WORKERS False")
MOTION_SMALL = "--clips-per-class 4 --frames 8 --size 32"
MOTION_TRAIN = ("SOLVER.MAX_EPOCH 1 TRAIN.MAX_ITERS_PER_EPOCH 2 TRAIN.BATCH_SIZE 4 TEST.BATCH_SIZE 4 "
                "DATA_LOADER.NUM_WORKERS 0 DATA_LOADER.PERSISTENT_WORKERS False LOG_MODEL_INFO False")
MOTION_DATA_CMD = "python tools/make_demo_data.py --kind motion --out demo_motion"
DEMO_DATA_CMD = "python tools/make_demo_data.py --out demo_data"
DEMO_TRAIN_CMD = ("python tools/run_net.py --cfg configs/demo/demo.yaml DATA.PATH_TO_DATA_DIR demo_data "
                  "OUTPUT_DIR output/demo NUM_GPUS 0")
BASELINE_PREFIX = "python tools/run_net.py --cfg configs/demo/demo.yaml M3A.MODE NONE"
POSE_DEMO_ARGS = "--samples-per-class 4 --size 48"
POSE_DEMO_TRAIN = ("SOLVER.MAX_EPOCH 1 TRAIN.MAX_ITERS_PER_EPOCH 2 TRAIN.BATCH_SIZE 4 TEST.BATCH_SIZE 4 "
                   "DATA_LOADER.NUM_WORKERS 0 DATA_LOADER.PERSISTENT_WORKERS False")
POSE_DEMO_DATA_CMD = "python tools/make_pose_demo_data.py --out pose_demo_data"
CLIP_DEMO_SMALL = "--videos 24 --duration 1.5 --size 64 --workers 1"
CLIP_DEMO_TRAIN = ("SOLVER.MAX_EPOCH 1 TRAIN.MAX_ITERS_PER_EPOCH 2 TRAIN.BATCH_SIZE 4 TEST.BATCH_SIZE 4 "
                   "TEST.NUM_ENSEMBLE_VIEWS 1 DATA_LOADER.NUM_WORKERS 0 DATA_LOADER.PERSISTENT_WORKERS False "
                   "LOG_MODEL_INFO False")
CLIP_DEMO_DATA_CMD = "python tools/make_demo_data.py --classes 12 --out demo_clip"

_GPU = "needs GPUs (NUM_GPUS > 0)"
_NODES = "needs several machines (node0)"
_MMIT = "needs the M-MiT videos (tens of GB, behind a request form) and a GPU"
_ZOO = "downloads a published checkpoint (network, hundreds of MB)"
_GLOVE = "needs GloVe 6B (glove.6B.zip, 822 MB download)"
_VGGISH = "needs the VGGish weights (downloaded files)"
_ZOO_RUN = "needs a downloaded published checkpoint and the M-MiT data"
_ZOO_DROPBOX = ("downloads a released ACTION-Net checkpoint (network: a zipped Dropbox folder); "
                "tests/tools/test_download_model_zoo.py and tests/utils/test_model_zoo_archive.py run the same path "
                "against a local server")
_ZOO_ACTION_RUN = ("needs a downloaded released ACTION-Net checkpoint, the EgoGesture / Jester frames (tens of GB) and "
                   "a GPU for the full 10-clip test")
_NTU = "needs the NTU RGB+D skeletons / videos (downloads behind a request form)"
SKIP = {
    "make demo": "creates .venv and installs torch (network); test_make_demo_is_the_two_getting_started_commands "
                 "checks that its recipe is the two commands of GETTING_STARTED section 1, which run here",
    "make test": "runs this test suite itself",
    "python tools/make_shaped_data.py --cfg configs/Mmit/R2PLUS1D_GRAPH_8x2.yaml --out shaped_mmit_256 --videos 256 "
    "--workers 16": "writes 256 videos (about 2.5 core-minutes) for the GPU measurement; the 16-video command before "
                    "it runs the same tool here",
    "python tools/benchmark.py train --cfg configs/Mmit/R2PLUS1D_GRAPH_8x2.yaml --workers 16 NUM_GPUS 1 "
    "DATA.PATH_TO_DATA_DIR shaped_mmit_256": _GPU,
    "python tools/run_net.py --cfg CONFIG.yaml [--num_shards K --shard_id I --init_method tcp://HOST:PORT] "
    "[KEY VALUE ...]": "a usage synopsis with placeholders",
    "python tools/run_net.py --cfg configs/Mmit/R2PLUS1D_GRAPH_8x2.yaml NUM_GPUS 1 DATA.PATH_TO_DATA_DIR "
    "/data/mmit OUTPUT_DIR out/graph": _GPU,
    "python tools/run_net.py --cfg configs/Mmit/R2PLUS1D_GRAPH_8x2.yaml NUM_GPUS 8 DATA.PATH_TO_DATA_DIR "
    "/data/mmit OUTPUT_DIR out/graph": _GPU,
    "torchrun --nproc_per_node 8 tools/run_net.py --cfg configs/Mmit/R2PLUS1D_GRAPH_8x2.yaml NUM_GPUS 8 "
    "DATA.PATH_TO_DATA_DIR /data/mmit OUTPUT_DIR out/graph": _GPU,
    "python tools/run_net.py --cfg configs/Mmit/R2PLUS1D_GRAPH_8x2.yaml --num_shards 2 --shard_id 0 "
    "--init_method tcp://node0:9999 NUM_GPUS 8 OUTPUT_DIR /shared/out/graph": _NODES,
    "python tools/run_net.py --cfg configs/Mmit/R2PLUS1D_GRAPH_8x2.yaml --num_shards 2 --shard_id 1 "
    "--init_method tcp://node0:9999 NUM_GPUS 8 OUTPUT_DIR /shared/out/graph": _NODES,
    "torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --master_addr node0 --master_port 29500 "
    "tools/run_net.py --cfg configs/Mmit/R2PLUS1D_GRAPH_8x2.yaml NUM_GPUS 8 OUTPUT_DIR /shared/out/graph": _NODES,
    "python tools/run_net.py --cfg configs/Mmit/R2PLUS1D_GRAPH_8x2.yaml TRAIN.CHECKPOINT_FILE_PATH "
    "checkpoints/r2plus1d-34-pretrained-model.pth OUTPUT_DIR out/finetune":
        "needs the downloaded pretraining file and the M-MiT data",
    "python tools/download_model_zoo.py mmit-v1-t-vat --dir checkpoints": _ZOO,
    "python tools/download_model_zoo.py mmit-v1-baseline mmit-v1-g-vat --dir checkpoints": _ZOO,
    "python tools/download_model_zoo.py --all --dir checkpoints": _ZOO,
    "python tools/download_model_zoo.py --url URL --sha256 HEX --out FILE": "placeholders (URL, HEX, FILE)",
    "python tools/download_model_zoo.py action-net-egogesture-r50-8f action-net-jester-r50-8f --dir checkpoints":
        _ZOO_DROPBOX,
    "python tools/download_model_zoo.py action-net-jester-r50-8f --dir checkpoints": _ZOO_DROPBOX,
    "python tools/convert_checkpoint.py checkpoints/checkpoint-29.pth checkpoints/m2clip_k400_b16.pyth --cfg "
    "configs/M2CLIP/K400_VITB16_8F.yaml --base checkpoints/ViT-B-16.pt DATA.PATH_TO_DATA_DIR data/k400":
        "needs a checkpoint of a run of the M2CLIP release (none is published), OpenAI's ViT-B-16.pt (335 MB "
        "download) and the Kinetics-400 class names; tests/tools/test_convert_checkpoint_base.py runs the same "
        "on the demo M2CLIP config",
    "python tools/run_net.py --cfg configs/ActionNet/EGOGESTURE_ACTION_R50_8F.yaml TRAIN.ENABLE False "
    "TEST.CHECKPOINT_FILE_PATH checkpoints/action-net-egogesture-r50-8f.pth.tar DATA.PATH_TO_DATA_DIR data/ego "
    "DATA.PATH_PREFIX data/ego/clips OUTPUT_DIR output/action-net-egogesture NUM_GPUS 1": _ZOO_ACTION_RUN,
    "python tools/run_net.py --cfg configs/ActionNet/JESTER_ACTION_R50_8F.yaml TRAIN.ENABLE False "
    "TEST.CHECKPOINT_FILE_PATH checkpoints/action-net-jester-r50-8f.pth.tar DATA.PATH_TO_DATA_DIR data/jester "
    "DATA.PATH_PREFIX data/jester/frames OUTPUT_DIR output/action-net-jester NUM_GPUS 1": _ZOO_ACTION_RUN,
    "python tools/run_net.py --cfg configs/Mmit/v1/R2PLUS1D_T_VAT.yaml TRAIN.ENABLE False "
    "TEST.CHECKPOINT_FILE_PATH checkpoints/mmit-v1-t-vat.pyth DATA.PATH_TO_DATA_DIR /data/mmit NUM_GPUS 1": _ZOO_RUN,
    "python tools/run_net.py --cfg configs/Mmit/v1/R2PLUS1D_T_VAT.yaml TRAIN.ENABLE False "
    "TEST.CHECKPOINT_FILE_PATH checkpoints/mmit-v1-t-vat.pyth DATA.PATH_TO_DATA_DIR /data/mmit "
    "OUTPUT_DIR output/mmit-v1-t-vat NUM_GPUS 1": _ZOO_RUN,
    "python tools/predict.py --cfg configs/Mmit/v1/R2PLUS1D_T_VAT.yaml --checkpoint checkpoints/mmit-v1-t-vat.pyth "
    "--topk 5 a.mp4 b.mp4 DATA.PATH_TO_DATA_DIR /data/mmit": _ZOO_RUN,
    "python tools/predict.py --cfg configs/Mmit/v1/R2PLUS1D_T_VAT.yaml --checkpoint checkpoints/mmit-v1-t-vat.pyth "
    "--topk 5 video1.mp4 video2.mp4 DATA.PATH_TO_DATA_DIR /data/mmit": _ZOO_RUN,
    "python tools/visualize.py gradcam --cfg configs/Mmit/v1/R2PLUS1D_G_VAT.yaml --checkpoint "
    "checkpoints/mmit-v1-g-vat.pyth --video a.mp4 --classes swimming,wetting --out vis/gradcam "
    "DATA.PATH_TO_DATA_DIR /data/mmit": _ZOO_RUN,
    "python tools/visualize.py tsne --cfg configs/Mmit/v1/R2PLUS1D_G_VAT.yaml --checkpoint "
    "checkpoints/mmit-v1-g-vat.pyth --classes 12,40,57 --out vis/tsne DATA.PATH_TO_DATA_DIR /data/mmit": _ZOO_RUN,
    "python tools/visualize.py apboost --pred output/mmit-v1-g-vat/test_predictions.npz --baseline "
    "output/mmit-v1-baseline/test_predictions.npz --class-names /data/mmit/categories-v1.txt --top 25 "
    "--out vis/apboost": "needs the test runs of two published checkpoints on M-MiT",
    "python tools/gen_text_lexicon.py --class-names data/mmit/categories-v1.txt --out "
    "data/mmit/mmit-m3a/text-lexicon-v1.npz --glove data/glove/glove.6B.zip": _GLOVE,
    "python tools/gen_text_lexicon.py --class-names data/mmit/categories-v2.txt --out "
    "data/mmit/mmit-m3a/text-lexicon-v2.npz --glove data/glove/glove.6B.zip": _GLOVE,
    "cp data/mmit/mmit-m3a/text-lexicon-v1.npz data/mmit/mmit-m3a/text-lexicon-mini.npz":
        "copies the GloVe lexicon, which needs the GloVe download",
    "python tools/gen_text_lexicon.py --class-names data/mine/categories-mydata.txt --out "
    "data/mine/mmit-m3a/text-lexicon-mydata.npz --glove data/glove/glove.6B.zip": _GLOVE,
    "python tools/gen_text_lexicon.py --class-names data/charades/categories-charades.txt --out "
    "data/charades/mmit-m3a/text-lexicon-charades.npz --glove data/glove/glove.6B.zip": _GLOVE,
    "python tools/run_net.py --cfg configs/Charades/R2PLUS1D_G_VT.yaml DATA.PATH_TO_DATA_DIR data/charades "
    "TRAIN.CHECKPOINT_FILE_PATH checkpoints/r2plus1d-34-pretrained-model.pth OUTPUT_DIR output/charades_r2plus1d_g_vt":
        "needs the Charades videos (Charades_v1_480.zip), the pretraining file and 8 GPUs; "
        "tests/models/test_charades_configs.py runs this config (tiny overrides) on the tool's lists",
    "python tools/gen_text_lexicon.py --class-names data/mmit/categories-v1.txt --out "
    "data/mmit/mmit-m3a/text-lexicon-v1.npz --method clip --clip-weights data/weights/ViT-B-16.pt":
        "needs OpenAI's CLIP ViT-B/16 file (a download) and the M-MiT class names; "
        "tests/tools/test_gen_text_lexicon_clip.py runs --method clip on a tiny CLIP file of its own",
    "python tools/run_net.py --cfg configs/Mmit/families/CLIP_B16_ADAPTER_GRAPH.yaml DATA.PATH_TO_DATA_DIR "
    "/data/mmit TRAIN.CHECKPOINT_FILE_PATH data/weights/ViT-B-16.pt OUTPUT_DIR out/clip_graph":
        "needs M-MiT, its lexicons, OpenAI's CLIP file and GPUs; tests/models/test_family_configs.py builds "
        "every configs/Mmit/families config and tests/models/test_family_heads.py trains every family's heads",
    "python tools/ntu_skeletons_to_pickle.py --skeletons /data/nturgb+d_skeletons --benchmark ntu60 "
    "--out /data/ntu/ntu60_2d.pkl": _NTU,
    "python tools/crop_person_videos.py --ann /data/ntu/ntu60_2d.pkl --videos /data/ntu/videos "
    "--out /data/ntu/cropped --workers 8": _NTU,
    "python tools/run_net.py --cfg configs/M2CLIP/K400_VITB16_8F.yaml TRAIN.ENABLE False TEST.ZERO_SHOT True "
    "TEST.CHECKPOINT_FILE_PATH output/m2clip_k400_vitb16_8f/checkpoints/checkpoint_epoch_00012.pyth "
    "DATA.PATH_TO_DATA_DIR /data/ucf101 DATA.CLASS_NAMES_FILE /data/ucf101/class_names.txt MODEL.NUM_CLASSES 101 "
    "TEST.NUM_ENSEMBLE_VIEWS 1 TEST.NUM_SPATIAL_CROPS 1 OUTPUT_DIR output/zeroshot_ucf101":
        "needs an M2CLIP checkpoint trained on Kinetics-400 (OpenAI CLIP weights, GPUs) and UCF101; "
        "tests/models/test_m2clip_end_to_end.py runs TEST.ZERO_SHOT on the demo videos",
}
# Any command naming the VGGish weights needs the download.
SKIP_PATTERNS = {"--vggish data/weights/": _VGGISH}
# Lines of MODEL_ZOO.md's download list carry a comment, as users see them.
_COMMENT = re.compile(r"\s+#\s.*$")


def _strip(command: str) -> str:
    return _COMMENT.sub("", command).strip()


def skip_reason(command: str):
    """Why a documented command is not run here, or None."""
    command = _strip(command)
    if command in SKIP:
        return SKIP[command]
    return next((why for pattern, why in SKIP_PATTERNS.items() if pattern in command), None)


def adjusted(command: str) -> str:
    """The command as run: the changes listed in the module docstring, nothing else."""
    command = _strip(command)
    if command.startswith("run_net.py "):
        command = "python tools/" + command
    if command.startswith(CLIP_DEMO_DATA_CMD):
        return f"{command} {CLIP_DEMO_SMALL}"
    if command.startswith("python tools/clip_demo.py"):
        return f"{command} {CLIP_DEMO_TRAIN}"
    if command.startswith("python tools/make_demo_data.py"):
        return f"{command} {MOTION_SMALL if '--kind motion' in command else TINY_DEMO_ARGS}"
    if "configs/demo/motion.yaml" in command:
        return f"{command} {MOTION_TRAIN}"
    if command.startswith("python tools/make_pose_demo_data.py"):
        return f"{command} {POSE_DEMO_ARGS}"
    if "configs/EPAM/DEMO_EPAM.yaml" in command and "tools/run_net.py" in command:
        return f"{command} {POSE_DEMO_TRAIN}"
    if "tools/benchmark.py models" in command and "configs/demo/families/" in command:
        return f"{command} {FAMILIES_SMALL}"
    command = command.replace("checkpoint_epoch_00024", "checkpoint_epoch_00001")
    if "configs/demo/demo.yaml" in command:
        command += f" {DEMO_SMALL}"
        if "tools/run_net.py" in command:
            command += f" {DEMO_TRAIN}"
    return command


def all_commands(env):
    """(source, command) for every documented command, docs first, then --help examples."""
    seen, out = set(), []
    sources = [(doc, c) for doc, cmds in doc_commands().items() for c in cmds]
    sources += [(f"{tool} --help", c) for tool, text in tool_help_texts(env=env).items() for c in help_examples(text)]
    for source, command in sources:
        if _strip(command) not in seen:
            seen.add(_strip(command))
            out.append((source, command))
    return out


class Workspace:
    """A scratch repository root where documented commands run, each at most once."""

    def __init__(self, path):
        self.path = str(path)
        for name in ("tools", "configs", "lib", "Makefile", "setup.py"):
            os.symlink(os.path.join(ROOT, name), os.path.join(self.path, name))
        self.env = dict(os.environ)
        self.env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + self.env.get("PATH", "")
        self.env["PYTHONPATH"] = os.path.join(ROOT, "lib")
        self.env.pop("OMP_NUM_THREADS", None)
        self.done = {}
        self.lexicons = {}

    def run(self, command: str, timeout: int = 300) -> subprocess.CompletedProcess:
        """Run a documented command (adjusted) once; fail the test if it fails."""
        command = adjusted(command)
        if command not in self.done:
            self._prerequisites(command)
            done = subprocess.run(["bash", "-c", command], cwd=self.path, env=self.env, capture_output=True,
                                  text=True, timeout=timeout)
            report = f"{command}\nexit {done.returncode}\n{done.stdout[-3000:]}\n{_crash_lines(done.stderr)}"
            assert done.returncode == 0, report
            assert "Traceback" not in done.stderr, done.stderr[-3000:]
            self.done[command] = done
            if command.startswith("python tools/make_demo_data.py") and "--kind motion" not in command \
                    and not command.startswith(CLIP_DEMO_DATA_CMD):
                self.lexicons = _read_lexicons(os.path.join(self.path, "demo_data"))
        return self.done[command]

    def _prerequisites(self, command: str) -> None:
        if not command.startswith("python tools/make_demo_data.py"):
            self.run(DEMO_DATA_CMD)
        if "output/demo/" in command and not command.startswith(adjusted(DEMO_TRAIN_CMD)):
            self.run(DEMO_TRAIN_CMD)
        if "output/demo_baseline/" in command:
            self.run(next(c for _, c in COMMANDS if c.startswith(BASELINE_PREFIX)))
        if "demo_motion" in command and not command.startswith("python tools/make_demo_data.py"):
            self.run(MOTION_DATA_CMD)
        if "demo_clip" in command and not command.startswith("python tools/make_demo_data.py"):
            self.run(CLIP_DEMO_DATA_CMD)
        if "pose_demo_data" in command and not command.startswith(POSE_DEMO_DATA_CMD):
            self.run(POSE_DEMO_DATA_CMD)
        if "DATA.PATH_TO_DATA_DIR shaped_mmit" in command:
            self.run(next(c for c in doc_commands()["GETTING_STARTED.md"] if "--out shaped_mmit " in c))
        if "data/mine/" in command:
            _make_own_data_standin(self.path)
        if any(f"data/{name}" in command for name in ("ssv2", "jester", "ego")):
            _make_frames_standins(self.path)
            if "build_frame_lists.py ssv2" in command:
                self.run(next(c for c in doc_commands()["PREPARATION.md"] if "extract_frames.py" in c))
        if "data/charades" in command:
            _make_charades_standin(self.path)
            self._run_earlier_preparation("data/charades", command)
        if "data/mmit" in command:
            _make_mmit_standin(self.path)
            self._run_earlier_preparation("data/mmit", command)

    def _run_earlier_preparation(self, folder: str, command: str) -> None:
        """Run the PREPARATION.md commands on ``folder`` that come before ``command`` (those that
        can run here), so that it finds the files they write."""
        for earlier in [c for c in doc_commands()["PREPARATION.md"] if folder in c]:
            if adjusted(earlier) == command:
                break
            if not skip_reason(earlier):
                self.run(earlier)


def _make_charades_standin(root: str) -> None:
    """data/charades/Charades/ (Charades_v1_classes.txt, Charades_v1_{train,test}.csv as released:
    a header, quoted free text, ``cNNN start end`` intervals, a video without actions) and
    data/charades/Charades_v1_480/<id>.mp4 (demo videos)."""
    charades = os.path.join(root, "data", "charades")
    if os.path.isdir(charades):
        return
    os.makedirs(os.path.join(charades, "Charades"))
    os.makedirs(os.path.join(charades, "Charades_v1_480"))
    with open(os.path.join(charades, "Charades", "Charades_v1_classes.txt"), "w") as f:
        f.writelines(f"c{i:03d} Doing thing number {i}\n" for i in range(157))
    header = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length"
    rows = {"train": [("TR001", "c000 0.0 5.0;c156 2.0 9.0;c000 4.0 8.0"), ("TR002", "c000 1.0 3.0;c010 0.5 2.5"),
                      ("TR003", "")],
            "test": [("TE001", "c010 0.0 1.0;c156 0.2 1.2"), ("TE002", "")]}
    for split, videos in rows.items():
        with open(os.path.join(charades, "Charades", f"Charades_v1_{split}.csv"), "w") as f:
            f.write(header + "\n")
            f.writelines(f'{v},P1,Kitchen,6,7,Yes,"A person, at home",cup,"Does things, then more",{a},9.0\n'
                         for v, a in videos)
    for i, video in enumerate(["TR001", "TR002", "TR003", "TE001", "TE002"]):
        shutil.copy(os.path.join(root, "demo_data", "videos", "train", f"train-{i:04d}.mp4"),
                    os.path.join(charades, "Charades_v1_480", f"{video}.mp4"))


def _read_lexicons(data_dir: str) -> dict:
    out = {}
    for name in ("graph-adj", "text-lexicon", "audio-lexicon"):
        with np.load(os.path.join(data_dir, "mmit-m3a", f"{name}-demo.npz"), allow_pickle=False) as f:
            out[name] = {k: f[k] for k in f.files}
    return out


def _make_mmit_standin(root: str) -> None:
    """data/mmit/raw{,-v2}/ and data/mmit/videos/{training,validation}/ as the M-MiT release lays
    them out (lists relative to the split folders, ``name,index`` categories), from the demo set."""
    mmit = os.path.join(root, "data", "mmit")
    if os.path.isdir(mmit):
        return
    demo = os.path.join(root, "demo_data")
    for split in ("training", "validation"):
        shutil.copytree(os.path.join(demo, "videos"), os.path.join(mmit, "videos", split, "videos"))
    names = open(os.path.join(demo, "categories-demo.txt")).read().splitlines()
    for raw in ("raw", "raw-v2"):
        os.makedirs(os.path.join(mmit, raw))
        for ours, theirs in (("train", "trainingSet"), ("val", "validationSet")):
            lines = open(os.path.join(demo, f"{ours}-demo.csv")).read()
            open(os.path.join(mmit, raw, f"{theirs}.csv"), "w").write(lines)
        with open(os.path.join(mmit, raw, "moments_categories.txt"), "w") as f:
            f.writelines(f"{names[i]},{i}\n" for i in reversed(range(len(names))))


def _make_own_data_standin(root: str) -> None:
    """data/mine/ of PREPARATION.md section 8 (version mydata), from the demo set's lists."""
    mine = os.path.join(root, "data", "mine")
    if os.path.isdir(mine):
        return
    os.makedirs(mine)
    demo = os.path.join(root, "demo_data")
    for split in ("train", "val", "test"):
        shutil.copy(os.path.join(demo, f"{split}-demo.csv"), os.path.join(mine, f"{split}-mydata.csv"))
    shutil.copy(os.path.join(demo, "categories-demo.txt"), os.path.join(mine, "categories-mydata.txt"))
    os.symlink(os.path.join(demo, "videos"), os.path.join(mine, "videos"))


def _make_frames_standins(root: str) -> None:
    """data/ssv2 (videos and the label JSON files), data/jester (CSV files and frame folders) and
    data/ego (per-subject label CSVs and frames) as the official downloads lay them out."""
    import json

    from PIL import Image

    if os.path.isdir(os.path.join(root, "data", "ssv2")):
        return
    ssv2, jester, ego = (os.path.join(root, "data", name) for name in ("ssv2", "jester", "ego"))
    os.makedirs(os.path.join(ssv2, "videos"))
    os.makedirs(os.path.join(ssv2, "labels"))
    for i in range(3):
        shutil.copy(os.path.join(root, "demo_data", "videos", "train", f"train-{i:04d}.mp4"),
                    os.path.join(ssv2, "videos", f"{10 + i}.mp4"))
    templates = ["Pushing [something] from left to right", "Pushing [something] from right to left"]
    names = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates)}
    split = {"train": ["10", "11"], "validation": ["12"]}
    with open(os.path.join(ssv2, "labels", "something-something-v2-labels.json"), "w") as f:
        json.dump(names, f)
    for name, ids in split.items():
        with open(os.path.join(ssv2, "labels", f"something-something-v2-{name}.json"), "w") as f:
            json.dump([{"id": v, "label": "x", "template": templates[int(v) % 2], "placeholders": []} for v in ids], f)

    def frames(folder, count, template):
        os.makedirs(folder, exist_ok=True)
        for i in range(1, count + 1):
            Image.new("RGB", (16, 12), (10 * i % 255, 0, 0)).save(os.path.join(folder, template.format(i)))

    os.makedirs(jester)
    with open(os.path.join(jester, "jester-v1-labels.csv"), "w") as f:
        f.write("Swiping Left\nSwiping Right\n")
    for name, rows in (("train", ["100;Swiping Left", "101;Swiping Right"]), ("validation", ["102;Swiping Left"])):
        with open(os.path.join(jester, f"jester-v1-{name}.csv"), "w") as f:
            f.write("\n".join(rows) + "\n")
    for video in ("100", "101", "102"):
        frames(os.path.join(jester, "frames", video), 12, "{:05d}.jpg")
    for subject in range(1, 51):
        scene = os.path.join(ego, "labels-final-revised1", f"Subject{subject:02d}", "Scene1")
        os.makedirs(scene)
        if subject in (1, 2, 3):
            with open(os.path.join(scene, "Group1.csv"), "w") as f:
                f.write(f"{subject},2,9\n")
            frames(os.path.join(ego, "frames", f"Subject{subject:02d}", "Scene1", "Color", "rgb1"), 12, "{:06d}.jpg")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("docs_root"))


_ENV = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"))
COMMANDS = all_commands(_ENV)
def _is_slow(command: str) -> bool:
    """Training runs and the benchmark take 10-40 s each on 2 busy cores; the rest a few seconds."""
    trains = "run_net.py --cfg" in command and "TRAIN.ENABLE False" not in command
    return trains or "tools/benchmark.py" in command or "tools/clip_demo.py" in command


def _param(source, command):
    marks = [pytest.mark.slow] if _is_slow(command) else []
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", _strip(command))[:90]
    return pytest.param(command, id=f"{source}:{slug}", marks=marks)


def test_every_command_is_run_or_listed():
    assert len(COMMANDS) > 40
    listed = set(SKIP)
    documented = {_strip(c) for _, c in COMMANDS}
    stale = sorted(listed - documented)
    assert not stale, f"SKIP lists commands the docs no longer show: {stale}"


@pytest.mark.parametrize("command", [_param(s, c) for s, c in COMMANDS])
def test_documented_command_runs(workspace, command):
    reason = skip_reason(command)
    if reason:
        pytest.skip(reason)
    done = workspace.run(command)
    _check_output(workspace, adjusted(command), done.stdout + done.stderr)


def _crash_lines(stderr: str) -> str:
    """The end of ``stderr``, and before it any lines of a native crash (a fatal Python error, an
    uncaught C++ exception) with the Python stack that followed them, which the end may not reach."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if "Fatal Python error" in line or "terminate called" in line), None)
    crash = "\n".join(line[:300] for line in lines[start:start + 40]) if start is not None else ""
    return f"{crash}\n...\n{stderr[-3000:]}" if crash else stderr[-3000:]


def _check_output(workspace, command, output):
    """What a few commands must print or write, beyond exiting with 0."""
    tests_a_model = "tools/run_net.py" in command and "TRAIN.ENABLE False" in command
    if tests_a_model or command.startswith(adjusted(DEMO_TRAIN_CMD)):
        assert "test results: class-wise mAP" in output
    if command.startswith("python tools/predict.py"):
        assert "test-0000.mp4" in output and re.search(r"^  \d\.\d{4}  \S", output, re.M)
    if command.startswith("python tools/clip_demo.py"):
        assert re.search(r"^zero-shot, held-out names \(.*\): top-1 \d\.\d{3} on \d+ videos \(chance", output, re.M)
    if "--list-models" in command:
        assert re.search(r"^MODEL\.BACKBONE: (.*, )?video_resnet(,|$)", output, re.M)
    if "download_model_zoo.py --list" in command:
        assert "mmit-v1-t-vat" in output
    if command.startswith("python tools/build_charades_lists.py"):
        assert "train: 2 videos, 4 labels from 5 action intervals; skipped 1 videos without actions" in output
        assert "test: 1 videos, 2 labels from 2 action intervals; skipped 1 videos without actions" in output
    if "wc -l data/mmit/categories-v1.txt" in command:
        assert output.split()[0] == "4"
    if re.match(r"python tools/gen_\w+\.py .*--out demo_data/mmit-m3a/", command):  # "rebuild them exactly"
        name = re.search(r"mmit-m3a/([a-z-]+)-demo\.npz", command).group(1)
        rebuilt = _read_lexicons(os.path.join(workspace.path, "demo_data"))[name]
        assert rebuilt.keys() == workspace.lexicons[name].keys()
        for key, value in workspace.lexicons[name].items():
            np.testing.assert_array_equal(rebuilt[key], value, err_msg=f"{name}: {key}")


def _planned_make(workspace, target: str) -> list:
    """The commands `make -n TARGET` would run in the workspace (the venv step left out: it would
    create .venv and install torch over the network), with the venv's python as `python`."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    done = subprocess.run(["make", "--no-print-directory", "-n", "-B", "-o", ".venv/.installed", target],
                          cwd=workspace.path, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return [line.replace(".venv/bin/python", "python") for line in done.stdout.splitlines()]


def test_make_demo_is_the_two_getting_started_commands(workspace):
    """`make demo` (README) is the two commands of GETTING_STARTED section 1, which run above."""
    assert _planned_make(workspace, "demo") == [DEMO_DATA_CMD, DEMO_TRAIN_CMD.replace(" NUM_GPUS 0", "")]


def test_make_demo_families_is_the_documented_comparison(workspace):
    """`make demo-families` runs the family comparison command of GETTING_STARTED section 1."""
    compare = [c for c in doc_commands()["GETTING_STARTED.md"] if c.startswith("python tools/benchmark.py models")]
    assert _planned_make(workspace, "demo-families") == [DEMO_DATA_CMD, compare[0]]


def test_make_demo_clip_is_the_documented_zero_shot_demo(workspace):
    """`make demo-clip` runs the two M2CLIP demo commands of GETTING_STARTED section 1."""
    demo = [c for c in doc_commands()["GETTING_STARTED.md"] if c.startswith("python tools/clip_demo.py")]
    assert _planned_make(workspace, "demo-clip") == [CLIP_DEMO_DATA_CMD, demo[0]]
