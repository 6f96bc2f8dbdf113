# m3a: the two set-up commands are `make demo` and `make test`; both create .venv when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DATA ?= demo_data
DEMO_OUT ?= output/demo
MOTION_DATA ?= demo_motion
CLIP_DATA ?= demo_clip

.PHONY: install demo demo-motion demo-families demo-clip test clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e .[test]
	touch $@

$(DEMO_DATA)/.complete: $(VENV)/.installed tools/make_demo_data.py
	$(PY) tools/make_demo_data.py --out $(DEMO_DATA)

demo: $(DEMO_DATA)/.complete
	$(PY) tools/run_net.py --cfg configs/demo/demo.yaml DATA.PATH_TO_DATA_DIR $(DEMO_DATA) OUTPUT_DIR $(DEMO_OUT)

$(MOTION_DATA)/.complete: $(VENV)/.installed tools/make_demo_data.py
	$(PY) tools/make_demo_data.py --kind motion --out $(MOTION_DATA)

# TSN, TSM and ACTION-Net on the motion-direction demo (GETTING_STARTED.md, section 1).
demo-motion: $(MOTION_DATA)/.complete
	for v in tsn tsm action; do \
	  $(PY) tools/run_net.py --cfg configs/demo/motion.yaml ACTION.VARIANT $$v DATA.PATH_TO_DATA_DIR $(MOTION_DATA) \
	    DATA.CLASS_NAMES_FILE $(MOTION_DATA)/classes.txt OUTPUT_DIR output/motion_$$v || exit 1; \
	done

# FC, GCN and transformer heads on four model families, compared on the demo data
# (GETTING_STARTED.md, section 1): table and plot in output/demo_families/.
DEMO_FAMILIES := $(foreach f,video_resnet action_resnet xshift_rgb clip_vit,$(foreach h,fc gcn trsfmr,--cfg configs/demo/families/$(f)_$(h).yaml))
demo-families: $(DEMO_DATA)/.complete
	$(PY) tools/benchmark.py models $(DEMO_FAMILIES) --data-dir $(DEMO_DATA) --out output/demo_families

$(CLIP_DATA)/.complete: $(VENV)/.installed tools/make_demo_data.py
	$(PY) tools/make_demo_data.py --classes 12 --out $(CLIP_DATA)

# M2CLIP on the 12-class demo: train on 9 classes, then zero-shot on the 3 held-out class names
# (GETTING_STARTED.md, section 1).
demo-clip: $(CLIP_DATA)/.complete
	$(PY) tools/clip_demo.py --data $(CLIP_DATA) --out output/demo_clip

test: $(VENV)/.installed
	$(PY) -m pytest tests

clean:
	rm -rf $(DEMO_DATA) $(DEMO_OUT) $(MOTION_DATA) output/motion_tsn output/motion_tsm output/motion_action output/demo_families \
	  $(CLIP_DATA) output/demo_clip
