# trainer.mk — `precast train` (issue 9): its unit test's link rule, the training benchmark.
# Included by the Makefile (which builds trainer/*.c into libprecast.a).

# The trainer's unit test: job file checks, ONNX writer round trip, diagnostics on synthetic
# curves (tests/integration/test_train.sh runs real training jobs).
$(BIN)/test_trainer: $(BUILD)/tests/test_trainer.o $(BUILD)/libprecast.a

# make bench-train: training rows/s of the example architecture (64 -> 256 -> 256 -> 10,
# batch 64) on 1 and 2 ranks beside PyTorch on one thread, and sampled softmax against the
# full softmax on a 20,000-class task (docs/TRAINING.md has the figures).
.PHONY: bench-train
bench-train: all
	scripts/bench_train.sh
