"""Default configuration of m3a (YACS / fvcore ``CfgNode``).

Every key is documented where it is defined. A YAML file given with ``--cfg`` may only set keys
that exist here; ``KEY VALUE`` pairs on the command line override both. Call :func:`get_cfg` for a
fresh copy and ``m3a.config.load_config`` to merge a YAML file and command-line overrides with clear
errors.
"""
import torch
from fvcore.common.config import CfgNode

_C = CfgNode()

# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
_C.TRAIN = CfgNode()
# Train the model when True.
_C.TRAIN.ENABLE = True
# Dataset registry name for training and validation (mmit, charades, kinetics, pose_rgb).
_C.TRAIN.DATASET = "mmit"
# Total mini-batch size over all processes of the run.
_C.TRAIN.BATCH_SIZE = 64
# Validate every this many epochs (0 disables validation).
_C.TRAIN.EVAL_PERIOD = 1
# Save a checkpoint every this many epochs.
_C.TRAIN.CHECKPOINT_PERIOD = 1
# Keep only this many newest epoch checkpoints, deleting older ones after each save (0 keeps all).
_C.TRAIN.CHECKPOINT_KEEP = 0
# Keep the best epoch by validation class mAP as checkpoints/checkpoint_best.pyth (its "best"
# field records epoch, metric and value); never pruned.
_C.TRAIN.SAVE_BEST = False
# Resume from the newest complete checkpoint in OUTPUT_DIR/checkpoints when True.
_C.TRAIN.AUTO_RESUME = True
# Checkpoint to initialise from (a backbone-only file leaves the head fresh); "" for none.
_C.TRAIN.CHECKPOINT_FILE_PATH = ""
# More checkpoints to initialise from, loaded in order before CHECKPOINT_FILE_PATH (when not
# resuming), e.g. one file per input stream of a two-stream model (EPAM-Net's stream files).
_C.TRAIN.INIT_FILES = []
# Restart the epoch counter at 0 when initialising from CHECKPOINT_FILE_PATH.
_C.TRAIN.CHECKPOINT_EPOCH_RESET = True
# Mixed precision: fp16 with a gradient scaler on CUDA; on CPU bf16 autocast as TRAIN.CPU_AMP says.
_C.TRAIN.ENABLE_AMP = False
# bf16 autocast on CPU when ENABLE_AMP is True: auto (only if the CPU has native bf16, flags
# avx512_bf16 / amx_bf16 / bf16; emulated bf16 is ~2.5x slower than fp32), on (always), off (fp32).
_C.TRAIN.CPU_AMP = "auto"
# Autocast dtype when ENABLE_AMP is True: auto (float16 on CUDA, bfloat16 on CPU), bfloat16 (CPU
# or CUDA, no gradient scaler) or float16 (CUDA only, with a gradient scaler; a ConfigError on CPU).
_C.TRAIN.AMP_DTYPE = "auto"
# Channels-last weights and inputs for training: channels_last_3d for 5-D tensors (video
# convolutions), channels_last for 4-D ones; same results, often faster convolutions.
_C.TRAIN.CHANNELS_LAST = False
# Stop each epoch after this many iterations (0 = the whole epoch). For smoke tests and demos.
_C.TRAIN.MAX_ITERS_PER_EPOCH = 0
# Gradient accumulation: each optimizer step sums the gradients of this many micro-batches of
# TRAIN.BATCH_SIZE / ACCUM_STEPS videos (over all processes), each micro-batch's mean loss
# scaled by 1/ACCUM_STEPS, so a step sees the gradient of one batch of TRAIN.BATCH_SIZE (e.g. the
# recipe's 64 on fewer GPUs). Iterations (MAX_ITERS_PER_EPOCH, LOG_PERIOD, the LR schedule) count
# optimizer steps; an epoch makes (micro-batches // ACCUM_STEPS) steps and the leftover
# micro-batches (fewer than one batch) are not loaded, as a whole incomplete batch is dropped
# without accumulation. Under DDP, micro-batches that do not step skip the gradient all-reduce.
_C.TRAIN.ACCUM_STEPS = 1
# Exponential moving average (EMA) of the model, updated after every optimizer step:
# ema = DECAY * ema + (1 - DECAY) * model, for parameters and floating-point buffers (BN running
# statistics); integer buffers (BN's num_batches_tracked) are copied. Saved in each checkpoint as
# ema_state; validation (and save-best) scores the EMA model, testing uses TEST.WEIGHTS.
_C.TRAIN.EMA = CfgNode()
_C.TRAIN.EMA.ENABLE = False
# Weight of the old average at each update (per optimizer step), in [0, 1).
_C.TRAIN.EMA.DECAY = 0.999

# ---------------------------------------------------------------------------------------------
# Testing
# ---------------------------------------------------------------------------------------------
_C.TEST = CfgNode()
# Run multi-view testing on the test list when True.
_C.TEST.ENABLE = True
# Dataset registry name for testing.
_C.TEST.DATASET = "mmit"
# Videos per test batch over all processes (each video carries all of its views).
_C.TEST.BATCH_SIZE = 8
# Checkpoint to test; "" tests the newest checkpoint in OUTPUT_DIR, or the trained model.
_C.TEST.CHECKPOINT_FILE_PATH = ""
# Number of uniformly spaced temporal clips per test video.
_C.TEST.NUM_ENSEMBLE_VIEWS = 10
# Number of spatial crops along the long side (1 = centre, 3 = left/centre/right or
# top/centre/bottom, 4 = four from one end to the other; placed by TEST.CROP_OFFSETS).
_C.TEST.NUM_SPATIAL_CROPS = 3
# Also write the predictions in the published pickle format to this path ("" = do not).
_C.TEST.SAVE_RESULTS_PATH = ""
# Zero-shot transfer: rebuild the model from the checkpoint's own config and let its head score
# this config's classes (DATA.CLASS_NAMES_FILE, MODEL.NUM_CLASSES) by name (text-prompt heads,
# e.g. M2CLIP's); the test data are this config's.
_C.TEST.ZERO_SHOT = False
# Multi-label decision threshold of the precision / recall / F1 reported next to mAP: a class is
# predicted for a video when its score (the mean over views with DATA.ENSEMBLE_METHOD sum, the
# max with max) is >= THRESHOLD.
_C.TEST.THRESHOLD = 0.5
# Weights a checkpoint is tested (and predicted, visualised, validated) with: auto (its EMA
# weights ema_state when it holds them, else model_state), ema (an error without them; training
# with ema but without TRAIN.EMA.ENABLE stops before the first epoch) or model. The model a run
# trains and tests is selected the same way (m3a.engine.ema.choose_weights).
_C.TEST.WEIGHTS = "auto"

# ---------------------------------------------------------------------------------------------
# Mixup / CutMix of training batches (m3a.engine.mixup)
# ---------------------------------------------------------------------------------------------
_C.MIXUP = CfgNode()
# Mix each training (micro-)batch with itself in reverse order when True: inputs
# lam * x + (1 - lam) * x.flip(0) (mixup) or a box of x.flip(0) pasted into x (CutMix, the same
# box in every frame); multi-hot targets (or one-hot, for single-label losses) are mixed with the
# same lam (for CutMix corrected to the pasted box's area).
_C.MIXUP.ENABLE = False
# Beta(ALPHA, ALPHA) draws mixup's lam (0 disables mixup).
_C.MIXUP.ALPHA = 0.8
# Beta(CUTMIX_ALPHA, CUTMIX_ALPHA) draws CutMix's lam (0 disables CutMix).
_C.MIXUP.CUTMIX_ALPHA = 1.0
# Probability that a batch is mixed at all.
_C.MIXUP.PROB = 1.0
# Probability of CutMix rather than mixup for a mixed batch when both alphas are > 0.
_C.MIXUP.SWITCH_PROB = 0.5

# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
_C.MODEL = CfgNode()
# Registered composition (see `run_net.py --list-models`); M3ANET is backbone -> neck -> head.
_C.MODEL.MODEL_NAME = "M3ANET"
# Registered backbone; "" = video_resnet (MODEL.ARCH / MODEL.DEPTH pick the architecture).
_C.MODEL.BACKBONE = ""
# Registered neck (pooling); "" = the backbone's default (video_avgpool for video_resnet).
_C.MODEL.NECK = ""
# Registered head; "" = fc when M3A.MODE is NONE, m3a otherwise.
_C.MODEL.HEAD = ""
# Number of action classes.
_C.MODEL.NUM_CLASSES = 313
# Loss: bce_logit, bce, cross_entropy, soft_cross_entropy, wlsep.
_C.MODEL.LOSS_FUNC = "bce_logit"
# Activation applied at eval: sigmoid (multi-label) or softmax (single-label).
_C.MODEL.HEAD_ACT = "sigmoid"
# torch.compile the training model (forward and backward; validation, testing and saved
# checkpoints use the plain model, so checkpoint keys are unchanged). Inductor needs a C++
# compiler on CPU (g++, or the one CXX names) and Triton on CUDA; without them training stops
# with a ConfigError that says so (testing and prediction need neither). The first iterations
# compile (tens of seconds or more).
_C.MODEL.COMPILE = False
# Each registered component adds its own keys when a config is created (get_cfg): the video
# ResNet MODEL.ARCH, DEPTH, BASE_WIDTH, STAGE_BLOCKS, SE_RATIO (m3a/models/video_resnet.py), the
# FC head MODEL.DROPOUT_RATE (m3a/models/heads.py), the M3A head the M3A section
# (m3a/models/m3a_config.py).

# ---------------------------------------------------------------------------------------------
# Batch normalisation
# ---------------------------------------------------------------------------------------------
_C.BN = CfgNode()
# batchnorm or sync_batchnorm (synchronised across processes under DDP).
_C.BN.NORM_TYPE = "batchnorm"
# Freeze BN affine parameters and running statistics when True.
_C.BN.FREEZE_PARAMS = False
# Weight decay applied to BN parameters.
_C.BN.WEIGHT_DECAY = 0.0
# Recompute BN statistics precisely before each evaluation when True.
_C.BN.USE_PRECISE_STATS = False
# Batches used to compute precise BN statistics.
_C.BN.NUM_BATCHES_PRECISE = 200
# BN momentum and epsilon.
_C.BN.MOMENTUM = 0.1
_C.BN.EPSILON = 1e-5

# ---------------------------------------------------------------------------------------------
# Optimisation
# ---------------------------------------------------------------------------------------------
_C.SOLVER = CfgNode()
# Base learning rate (for the whole batch TRAIN.BATCH_SIZE).
_C.SOLVER.BASE_LR = 0.1
# LR policy: steps_with_relative_lrs, cosine, cosine_after_warmup, constant.
_C.SOLVER.LR_POLICY = "cosine"
# Final LR of the cosine policy.
_C.SOLVER.COSINE_END_LR = 0.0
# Epochs at which steps_with_relative_lrs changes the LR (first entry 0, last MAX_EPOCH).
_C.SOLVER.STEPS = []
# Relative LR of each step (multiplied by BASE_LR).
_C.SOLVER.LRS = []
# Number of training epochs.
_C.SOLVER.MAX_EPOCH = 300
# SGD momentum, dampening and Nesterov.
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.DAMPENING = 0.0
_C.SOLVER.NESTEROV = True
# L2 weight decay.
_C.SOLVER.WEIGHT_DECAY = 1e-4
# Linear warm-up length in epochs and its starting LR.
_C.SOLVER.WARMUP_EPOCHS = 0.0
_C.SOLVER.WARMUP_START_LR = 0.01
# Optimiser: sgd or adamw.
_C.SOLVER.OPTIMIZING_METHOD = "sgd"
# No weight decay on 1-d parameters (biases, norms) when True.
_C.SOLVER.ZERO_WD_1D_PARAM = False
# LR multipliers of parameters whose name contains a pattern: LR_SCALE_PATTERNS[i] gets
# LR_SCALES[i] x the LR (first match wins; e.g. M2CLIP's text adapters "textad_" at 0.5).
_C.SOLVER.LR_SCALE_PATTERNS = []
_C.SOLVER.LR_SCALES = []
# Clip gradients by value / by global L2 norm (None disables).
_C.SOLVER.CLIP_GRAD_VAL = None
_C.SOLVER.CLIP_GRAD_L2NORM = None

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
_C.DATA = CfgNode()
# Folder holding the lists {train,val,test}-{MMIT_VERSION}.csv and mmit-m3a/ lexicons.
_C.DATA.PATH_TO_DATA_DIR = ""
# Folder that relative video paths of a list are resolved against ("" = PATH_TO_DATA_DIR);
# absolute paths are used as written.
_C.DATA.PATH_PREFIX = ""
# Separator between path and labels in a list line of the mmit_csv format ("," for M-MiT).
_C.DATA.PATH_LABEL_SEPARATOR = ","
# Format of the list lines (m3a.datasets.list_formats): mmit_csv (path,label[,label...]),
# path_label (path label, whitespace-separated) or frame_folder (path num_frames label
# [label...]); "" = the dataset's own (mmit, charades: mmit_csv; kinetics: path_label).
_C.DATA.LIST_FORMAT = ""
# Suffix naming the list and lexicon files (e.g. v1, v2, mini, demo).
_C.DATA.MMIT_VERSION = "v1"
# File of class names, one per line in label order ("" = look for category names in the data
# folder: categories-{MMIT_VERSION}.txt).
_C.DATA.CLASS_NAMES_FILE = ""
# How the frames of an item are placed in time (m3a.datasets.temporal_sampler): dense (a clip
# of NUM_FRAMES frames every SAMPLING_RATE at TARGET_FPS; random start in train/val,
# TEST.NUM_ENSEMBLE_VIEWS evenly spaced clips at test) or tsn (NUM_FRAMES equal segments over the
# whole video; train: a random frame per segment; val: the segment centres; test:
# TEST.NUM_ENSEMBLE_VIEWS offsets evenly spread inside every segment), tsn_tsm (TSN segments by
# TSM's / ACTION-Net's integer rules) or tsn_rounded (TSN segments by M2CLIP's rounded-integer
# rule, one test clip).
_C.DATA.TEMPORAL_SAMPLER = "dense"
# Frames per clip and the stride between them (in frames at TARGET_FPS).
_C.DATA.NUM_FRAMES = 8
_C.DATA.SAMPLING_RATE = 8
# Frame rate videos are resampled to before sampling. For tsn_tsm and tsn_rounded on videos it
# is also the rate the frame count is taken at (n = duration x TARGET_FPS, the frames the
# segments are cut from): set it to the videos' native rate to count frames as the releases,
# which decode every frame, do (SSv2's webm files: 12, as configs/M2CLIP/SSV2_VITB16_8F.yaml).
_C.DATA.TARGET_FPS = 30
# Short-side scale range of training jitter.
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
# Spatial size of training and test crops.
_C.DATA.TRAIN_CROP_SIZE = 224
_C.DATA.TEST_CROP_SIZE = 256
# Random horizontal flip in training.
_C.DATA.RANDOM_FLIP = True
# Per-channel mean and std used to normalise [0, 1] pixels.
_C.DATA.MEAN = [0.43216, 0.394666, 0.37645]
_C.DATA.STD = [0.22803, 0.22145, 0.216989]
# Input channels per pathway.
_C.DATA.INPUT_CHANNEL_NUM = [3]
# Multi-label lists (multi-hot targets) when True, single-label otherwise.
_C.DATA.MULTI_LABEL = True
# How the views of one test video combine: sum or max.
_C.DATA.ENSEMBLE_METHOD = "sum"
# video (encoded files decoded with PyAV) or frames (folders of JPEG frames).
_C.DATA.INPUT_FORMAT = "video"
# Score a video listed on several lines of a val/test list once per line (True) instead of once.
_C.DATA.ALLOW_DUPLICATE_VIDEOS = False
# How many other videos a training sample tries when its video fails to decode.
_C.DATA.NUM_RETRIES = 10
# Frame rate of JPEG frame folders (DATA.INPUT_FORMAT frames): frame i is shown at i / FRAMES_FPS s.
_C.DATA.FRAMES_FPS = 30

# ---------------------------------------------------------------------------------------------
# Spatial augmentation and test views (m3a.datasets.clip_pipeline). The defaults are the
# long-standing pipeline: short side random in TRAIN_JITTER_SCALES, a random TRAIN_CROP_SIZE
# crop, bilinear resizing; short side TEST_CROP_SIZE and evenly spread crops at test.
# ---------------------------------------------------------------------------------------------
# Resizing of every frame: bilinear (on uint8, torch's 2-pixel kernel at any scale),
# pil_bilinear (the TSN/TSM/ACTION-Net releases' resizing: PIL's Image.resize BILINEAR, which
# widens the kernel when shrinking, on whole frames before the crop, long side truncated as
# torchvision's Resize) or bicubic (on float32, torch's a = -0.75 kernel).
_C.DATA.INTERPOLATION = "bilinear"
# RandAugment applied to training frames as decoded, one draw per clip, in timm's spelling
# (e.g. rand-m7-n4-mstd0.5-inc1: 4 ops of the 15 "increasing" ones, magnitude N(7, 0.5), each
# with probability 0.5; m3a.datasets.rand_augment); "" = none.
_C.DATA.RAND_AUGMENT = ""
# Sampling of RandAugment's rotate / shear / translate ops, as PIL's affine transform: bilinear,
# bicubic (what the SlowFast/EVL video RandAugment uses when its dataset names bicubic, as
# M2CLIP's does) or random (timm's default without one: a fair draw per frame and op).
_C.DATA.RAND_AUGMENT_INTERPOLATION = "bilinear"
# Size of the frame a training crop is drawn in: short_side (short side random in
# TRAIN_JITTER_SCALES), square (TRAIN_JITTER_SCALES side on both axes, aspect ratio ignored) or
# none (the frames as decoded).
_C.DATA.TRAIN_RESIZE = "short_side"
# Training crop box: random (a TRAIN_CROP_SIZE square at a random position), multi_scale (TSN's
# multi-scale crop: sides int(min(h, w) * s) for s in MULTI_SCALES, within 3 px of
# TRAIN_CROP_SIZE counting as it, width/height scale indices at most MULTI_SCALE_MAX_DISTORT
# apart, at one of 13 fixed positions on a quarter-step grid) or random_resized (Inception crop,
# RRC_SCALE / RRC_RATIO); the box is then resized to TRAIN_CROP_SIZE.
_C.DATA.TRAIN_CROP = "random"
# Crop-side scales (of the short side) and maximum scale-index distortion of the multi_scale crop.
_C.DATA.MULTI_SCALES = [1.0, 0.875, 0.75, 0.66]
_C.DATA.MULTI_SCALE_MAX_DISTORT = 1
# Area fraction range and aspect-ratio (w / h, drawn log-uniformly) range of random_resized crops.
_C.DATA.RRC_SCALE = [0.08, 1.0]
_C.DATA.RRC_RATIO = [0.75, 1.3333333333333333]
# Scaling of validation and test frames: short_side (short side TRAIN_JITTER_SCALES[0] for
# validation, TEST_CROP_SIZE for test) or square (that size on both axes, aspect ratio ignored).
_C.DATA.TEST_RESIZE = "short_side"
# Where test crops sit along the long side, margin m = long side - TEST_CROP_SIZE: even
# (1: m//2; 3: 0, m//2, m; 4: 0, m//4, m//2, m; centred across) or quarter_steps (TSM's and
# ACTION-Net's test crops, multiples of s = m//4: 1: 2s; 3: 0, 2s, 4s; 4: 0, s, 2s, 4s; across:
# 2 * ((short side - TEST_CROP_SIZE) // 4)).
_C.TEST.CROP_OFFSETS = "even"

# ---------------------------------------------------------------------------------------------
# Skeleton + RGB data (dataset pose_rgb; see m3a.datasets.pose). Clip sizes come from the model
# keys: DATA.NUM_FRAMES RGB frames of DATA.TRAIN_CROP_SIZE / TEST_CROP_SIZE, EPAM.POSE_FRAMES
# heatmaps of EPAM.HEATMAP_SIZE for EPAM.NUM_JOINTS joints.
# ---------------------------------------------------------------------------------------------
_C.POSE = CfgNode()
# Annotation pickle (PoseC3D format: split + annotations), relative to DATA.PATH_TO_DATA_DIR.
_C.POSE.ANN_FILE = "ntu60_2d.pkl"
# Split names inside the annotation file used for training, validation and testing.
_C.POSE.TRAIN_SPLIT = "xsub_train"
_C.POSE.VAL_SPLIT = "xsub_val"
_C.POSE.TEST_SPLIT = "xsub_val"
# RGB video of an annotation: this template with {} = its frame_dir, relative to
# DATA.PATH_PREFIX (or DATA.PATH_TO_DATA_DIR when that is empty).
_C.POSE.VIDEO_TEMPLATE = "{}_rgb.avi"
# True: the videos are already cut to the person box (published: one box per video, 224 x 224);
# False: each clip's frames are cut with the clip's person box (from its sampled pose frames).
_C.POSE.VIDEOS_CROPPED = True
# Standard deviation (heatmap pixels) of the joint Gaussians.
_C.POSE.HEATMAP_SIGMA = 0.6
# Probability of the joint horizontal flip (RGB mirrored, joints mirrored and left/right
# swapped) of a training clip.
_C.POSE.FLIP_PROB = 0.5
# Input streams of an item, in order: rgb and/or pose (two-stream EPAM-Net: [rgb, pose]; the
# single-stream models: [rgb] or [pose]).
_C.POSE.STREAMS = ["rgb", "pose"]

# ---------------------------------------------------------------------------------------------
# Data loader
# ---------------------------------------------------------------------------------------------
_C.DATA_LOADER = CfgNode()
# Loader worker processes per training process.
_C.DATA_LOADER.NUM_WORKERS = 8
# Pin host memory for faster host-to-device copies.
_C.DATA_LOADER.PIN_MEMORY = True
# Keep a loader's workers alive when it starts over (validation at every evaluation; training
# after precise BN). Training batches run on from one epoch into the next either way: the
# workers load the next epoch's first batches while the last steps of an epoch run.
_C.DATA_LOADER.PERSISTENT_WORKERS = True
# Niceness (0-19) added to every loader worker process: when workers and the training process
# compete for cores, the training process (the step on CPU, feeding the GPU otherwise) runs
# first. On the demo (2 cores, 1 step thread, 2 workers) 10 raised the share of the step's
# speed kept with real input (benchmark.py train) from 0.82-0.94 to 0.88-0.99. 0: workers keep
# the training process's priority.
_C.DATA_LOADER.WORKER_NICENESS = 10
# Let the codec decode with several threads.
_C.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE = False

# ---------------------------------------------------------------------------------------------
# TensorBoard
# ---------------------------------------------------------------------------------------------
_C.TENSORBOARD = CfgNode()
# Write TensorBoard scalars when True.
_C.TENSORBOARD.ENABLE = False
# Log folder ("" = OUTPUT_DIR/runs).
_C.TENSORBOARD.LOG_DIR = ""

# ---------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------
# GPUs (one process each) per node; 0 runs one process on CPU. Defaults to 1 when a GPU is
# visible and 0 otherwise.
_C.NUM_GPUS = 1 if torch.cuda.is_available() else 0
# Processes per node when NUM_GPUS is 0 (CPU): more than 1 runs gloo DDP on CPU (tests, debugging).
_C.NUM_CPU_PROCESSES = 1
# Number of nodes (shards) and this node's index, for the --num_shards/--shard_id launch style.
_C.NUM_SHARDS = 1
_C.SHARD_ID = 0
# Distributed backend: nccl on GPU, gloo on CPU ("" = choose by device).
_C.DIST_BACKEND = ""
# Seconds (an integer) a collective (all-reduce, barrier, ...) waits for every rank. A rank that
# hangs longer (SIGSTOPped, a stuck decoder) ends the run: the others exit with one line naming it.
_C.DIST_TIMEOUT_S = 600
# Folder for checkpoints, logs and results.
_C.OUTPUT_DIR = "./output"
# Seed of every random number generator; an epoch's data order and augmentations depend only on
# (RNG_SEED, epoch), so a resumed run repeats an uninterrupted one.
_C.RNG_SEED = 0
# Iterations between JSON-line training stats.
_C.LOG_PERIOD = 10
# Log parameter count and GFLOPs when the model is built.
_C.LOG_MODEL_INFO = True


def get_cfg() -> CfgNode:
    """Return a fresh copy of the default configuration, with every registered model
    component's keys."""
    import m3a.models  # noqa: F401  (registers the model families)
    from m3a.models.build import add_component_configs

    cfg = _C.clone()
    add_component_configs(cfg)
    return cfg
