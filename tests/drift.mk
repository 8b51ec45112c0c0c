# Input drift (issue 10): unit-test link rules, the drift benchmark.  -include'd by the Makefile.
#
# test_featstats needs only mapper/ and kernels/ (featstats is part of mapper/); test_drift
# links the whole library (jobs/drift.c compares sketches and reads job files).
$(BIN)/test_featstats: $(BUILD)/tests/test_featstats.o $(MAPPER_OBJ) $(JSON_OBJ) $(KERNELS_OBJ)
$(BIN)/test_drift:     $(BUILD)/tests/test_drift.o $(BUILD)/libprecast.a

# make bench-drift: the 1,000,000-row bench input, mpirun -np 2, input.drift = warn against
# off, side by side (scripts/bench_drift.sh; docs/DRIFT.md has the figures).
.PHONY: bench-drift
bench-drift: all
	scripts/bench_drift.sh

# The sketch alone: nanoseconds per value (scripts/bench_drift.sh prints it).
$(BIN)/bench_featstats: $(BUILD)/tests/bench_featstats.o $(MAPPER_OBJ) $(JSON_OBJ) $(KERNELS_OBJ)
bench-drift: $(BIN)/bench_featstats
