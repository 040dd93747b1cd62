# edgepose — `make test` and `make demo` set everything up on a fresh machine.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# where PyPI's torch==2.13.0 is the CUDA build (x86_64 Linux off this build machine, whose pip finds the CPU
# wheel locally): make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

.PHONY: setup test demo weights movenet-weights lint clean

$(STAMP): pyproject.toml
	# Chromium (Debian's package) for tests/profiling/test_html_chromium.py, which renders bench.html. As root (CI);
	# without apt-get, or when apt-get fails (not root, offline), say so and go on: that test then fails saying why.
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: apt-get not found; install Chromium yourself so that 'chromium' is on PATH (the HTML report test needs it)"; \
	else \
	  echo "installing chromium with apt-get (for the HTML report test)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y --no-install-recommends chromium \
	    || (apt-get update && apt-get install -y --no-install-recommends chromium) \
	    || echo "warning: apt-get could not install chromium (run 'make setup' as root?); the HTML report test will fail until it is installed"; \
	fi
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and exactly: the CPU build of 2.13.0 lies on this machine's disk; a bare `torch`
	# requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP)

# Two pytest-xdist workers by default (one per core of the 2-core CI machines), one thread each (tests/conftest.py),
# grouped by module / class (a crashed worker fails the run), then the tests that signal their own process in one
# plain process. PYTEST_WORKERS=0: everything in one process. Timings: docs/benchmarks.md.
PYTEST_WORKERS ?= 2
test: setup
ifeq ($(PYTEST_WORKERS),0)
	$(PY) -m pytest -q $(PYTEST_ARGS)
else
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadscope --max-worker-restart 0 -m 'not signals' $(PYTEST_ARGS)
	$(PY) -m pytest -q -m signals $(PYTEST_ARGS)
endif

demo: setup
	$(VENV)/bin/edgepose demo

# Retrain the embedded default weights (edgepose/weights/RECIPE.md records the run that made the shipped files).
WEIGHTS_TMP ?= .weights-build
VIDEOS ?= ../shared/data/real-video
DISTILL_TRAIN = $(VIDEOS)/opencv-vtest.avi $(foreach k,singleperson multiperson,$(foreach c,1 2 3,$(VIDEOS)/pose2sim-$(k)-cam0$(c).mp4))
DISTILL_HELD_OUT = $(VIDEOS)/pose2sim-singleperson-cam04.mp4 $(VIDEOS)/pose2sim-multiperson-cam04.mp4 \
    $(VIDEOS)/sports2d-demo.mp4
weights: setup
	mkdir -p $(WEIGHTS_TMP)
	$(VENV)/bin/edgepose train --model simplebaseline-mnv2s-edge --data synthetic --epochs 12 --batch-size 32 \
	    --seed 0 --threads 1 --flip-prob 0.5 --out $(WEIGHTS_TMP)/sb-stage1.pt
	$(VENV)/bin/edgepose train --model simplebaseline-mnv2s-edge --weights $(WEIGHTS_TMP)/sb-stage1.pt \
	    --data synthetic --epochs 30 --batch-size 32 --seed 1 --threads 1 --out $(WEIGHTS_TMP)/sb-stage2.pt
	$(VENV)/bin/edgepose train --model simplebaseline-mnv2s-edge --weights $(WEIGHTS_TMP)/sb-stage2.pt \
	    --data synthetic --epochs 20 --batch-size 32 --lr 5e-4 --seed 2 --threads 1 \
	    --out edgepose/weights/simplebaseline-mnv2s-edge.pt
	$(VENV)/bin/edgepose train --model centernet-mnv2s --init-backbone edgepose/weights/simplebaseline-mnv2s-edge.pt \
	    --data synthetic --epochs 12 --batch-size 16 --seed 0 --threads 1 --out $(WEIGHTS_TMP)/cn-stage1.pt
	$(VENV)/bin/edgepose train --model centernet-mnv2s --weights $(WEIGHTS_TMP)/cn-stage1.pt \
	    --data synthetic --epochs 8 --batch-size 16 --lr 5e-4 --seed 1 --threads 1 \
	    --out edgepose/weights/centernet-mnv2s.pt
	# the real-footage models: MoveNet Lightning's trunk and pyramid, distilled from Thunder (+ MultiPose for the people;
	# Thunder's heatmaps as soft targets, --soft-weight; every layer learns; a second person pasted into half the crops)
	# on whole training videos; Pose2Sim camera 4 and the Sports2D clip are held out (RECIPE.md, docs/benchmarks.md)
	$(VENV)/bin/edgepose distill --student movenet-heatmap-edge --init-trunk movenet-lightning \
	    --data $(DISTILL_TRAIN) --val $(DISTILL_HELD_OUT) --eval coco:../shared/data/coco-mini/test_coco.json \
	    --epochs 4 --batch-size 32 --lr 1e-4 --synthetic-ratio 0.1 --max-per-video 300 --seed 0 --threads 2 \
	    --workers 1 --soft-weight 0.5 --paste-prob 0.5 --save-half --out edgepose/weights/movenet-heatmap-edge.pt
	# the bottom-up one: MultiPose's trunk, pyramid and heads re-laid as CenterNet's; only the joint-offset head learns
	$(VENV)/bin/edgepose distill --student movenet-centernet-edge --init-trunk movenet-multipose --freeze-trunk \
	    --freeze-pyramid --train-heads hp_offset --data $(DISTILL_TRAIN) --val $(DISTILL_HELD_OUT) \
	    --eval coco:../shared/data/coco-mini/test_coco.json --epochs 3 --batch-size 16 --lr 1e-3 --synthetic-ratio 0 \
	    --max-per-video 300 --seed 0 --threads 2 --workers 1 --save-half --out edgepose/weights/movenet-centernet-edge.pt

# Re-convert Google's MoveNet from its TFJS files (edgepose/weights/MOVENET.md); numpy does the reading.
MOVENET_TFJS ?= ../shared/models/movenet-tfjs
movenet-weights: setup
	for m in lightning thunder multipose; do \
	  $(PY) -m edgepose.models.movenet_convert $(MOVENET_TFJS)/movenet-$$m.json --model movenet-$$m \
	      --out edgepose/weights/movenet-$$m.pt || exit 1; \
	done

lint: setup
	$(VENV)/bin/ruff check edgepose tests

clean:
	rm -rf $(VENV) .pytest_cache
