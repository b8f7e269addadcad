# Developer shortcuts. The README's two commands are the supported entry points.
PY ?= .venv/bin/python
# The datasets folder (MNIST, Tiny Shakespeare) for the targets that train: $TINYTORCH_DATASETS if set.
export TINYTORCH_DATASETS ?= $(abspath ../shared/datasets)

.PHONY: test test-fast build check comparisons course bench bench-grading bench-load bench-load-cluster xor mnist mnist-design tinygpt tinygpt-long screenshots
test:            ## every test (what CI runs)
	bash tests/run.sh
test-fast:       ## skip the slow tests while iterating
	bash tests/run.sh -m "not slow"
build:           ## regenerate tinytorch/ from course/
	$(PY) -m course.build export
check:           ## fail if tinytorch/ drifted from course/ or a stored PyTorch comparison is stale
	$(PY) -m course.build check
comparisons:     ## run every module's PyTorch comparison (torch 2.13 installed) -> tinytorch/comparisons.json
	$(PY) -m course.build comparisons
course:          ## the nbgrader course: make course DIR=/path/to/course [CONFIG=course.yml]
	$(PY) -m autograder course $(DIR) $(if $(CONFIG),--config $(CONFIG))
bench:           ## speed/memory vs PyTorch at 1 and 2 threads -> results/bench.json, bench.md, curve_*.png
	BENCH_THREADS=1 $(PY) -m bench.run
	BENCH_THREADS=2 $(PY) -m bench.run
bench-grading:   ## grading throughput: 100 submissions in hardened containers -> results/grading.json and .md
	$(PY) -m bench.grading
bench-load:      ## 50 then 100 students arriving at once on the deployed classroom -> results/deploy/load-*.json
	$(PY) deploy/bench_load.py --students 50 --arrive-in 120
	$(PY) deploy/bench_load.py --students 100 --arrive-in 180
bench-load-cluster: ## the same classes on the test cluster (three engines, students on two nodes) -> results/deploy/cluster-load-*.json
	TINYTORCH_CLUSTER_STUDENTS=50 TINYTORCH_CLUSTER_ARRIVE_IN=120 bash tests/run.sh tests/test_deploy_swarm.py -k class_arriving -s
	TINYTORCH_CLUSTER_STUDENTS=100 TINYTORCH_CLUSTER_ARRIVE_IN=180 bash tests/run.sh tests/test_deploy_swarm.py -k class_arriving -s
xor:             ## milestones 1 and 2
	$(PY) -m course.milestones.xor
mnist:           ## milestone 3: the MNIST CNN (datasets: TINYTORCH_DATASETS, set at the top)
	$(PY) -m course.milestones.mnist_cnn
mnist-design:    ## milestone 3 with the course design's CNN, 12 epochs on a cosine: >= 99% (fails below)
	$(PY) -m course.milestones.mnist_cnn --design --cosine --epochs 12 --lr 2e-3 --target 0.99
tinygpt:         ## milestone 4: TinyGPT on Tiny Shakespeare (datasets as for mnist)
	$(PY) -m course.milestones.tinygpt
tinygpt-long:    ## milestone 4 twice as long (6,000 iterations, about 12 minutes): validation loss <= 1.70 (fails above)
	$(PY) -m course.milestones.tinygpt --max-iters 6000 --target 1.70
screenshots:     ## the guides' pictures (docs/img/*.jpg), taken again by the browser tests on a test deploy
	TINYTORCH_SCREENSHOTS=$(CURDIR)/docs/img bash tests/run.sh tests/test_deploy.py -k in_a_browser
