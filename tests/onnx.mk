# check-onnx: the ONNX backend test cases Debian ships (libonnx-testdata) through precast's
# loader and forward pass (tests/onnx_conformance.c).  Every case whose ops precast runs must
# pass (rtol 1e-3, atol 1e-7); the others are listed as skipped with the reason.  The last
# line is `onnx conformance: N passed, N failed, N skipped`; the target fails if any failed.
#
#   make check-onnx
#   build/bin/onnx_conformance [DATA_DIR [CASE_FILTER]]     one case, e.g. test_gather_0

ONNX_TESTDATA ?= /usr/share/libonnx-testdata/data

.PHONY: check-onnx

$(BIN)/onnx_conformance: $(BUILD)/tests/onnx_conformance.o $(KERNELS_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

check-onnx: $(BIN)/onnx_conformance
	OPENBLAS_NUM_THREADS=1 $(BIN)/onnx_conformance $(ONNX_TESTDATA)
