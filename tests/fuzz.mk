# check-fuzz: libFuzzer over two targets, each run for FUZZ_SECONDS (one after the other; under
# make -j, side by side):
#   check-fuzz-onnx  the ONNX reader and the graph compiler (tests/fuzz_onnx.c)
#   check-fuzz-resp  the RESP parser and reply writers of precast serve (tests/fuzz_resp.c)
#
# The harnesses and the code they test are compiled with clang's fuzzer, ASan and UBSan flags
# into their own objects under $(BUILD)/fuzz/ (never the normal build's objects), then run
# with bounded memory.  Any crash, leak, timeout or allocation over the limits fails the
# target; libFuzzer leaves the input that caused it in $(FUZZ_DIR)/artifacts/ (ONNX) or
# $(FUZZ_DIR)/resp/artifacts/ (RESP).
#
# ONNX seeds: the fixture models (make fixtures) and a few of the ONNX backend test models
# (Debian's libonnx-testdata).  RESP seeds: the text files in tests/corpus/resp/, which
# `make check` also replays through the same checks (test_resp links fuzz_resp.o, below).
# Seeds are copied at run time into a scratch directory; each target's corpus directory
# keeps what the fuzzer finds between runs (nothing it finds is committed).
#
#   make check-fuzz                      60 s per target
#   make check-fuzz FUZZ_SECONDS=600     longer
#   make check-fuzz FUZZ_JOBS=4          four fuzzing processes per target, each for FUZZ_SECONDS
#   make check-fuzz-resp                 one target

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE \
                -D_FILE_OFFSET_BITS=64 -I. $(BLAS_CFLAGS) -MMD -MP $(FUZZ_SAN)
# Fork mode (FUZZ_JOBS > 1) ignores OOMs and timeouts unless told not to.
FUZZ_FORK_STRICT := -ignore_crashes=0 -ignore_ooms=0 -ignore_timeouts=0
# What every target's run shares; each adds its memory limits, input size and directories.
FUZZ_ENV     = ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
FUZZ_RUN     = -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
                -artifact_prefix=artifacts/ \
                $(if $(filter-out 1,$(FUZZ_JOBS)),-fork=$(FUZZ_JOBS) $(FUZZ_FORK_STRICT))
FUZZ_OBJ     := $(patsubst %.c,$(FUZZ_DIR)/%.o,$(KERNELS_SRC))
FUZZ_TESTDATA ?= /usr/share/libonnx-testdata/data/node
# Backend test models whose ops (or near misses of them) precast runs: seeds that reach
# the compiler's checks rather than stopping at "unsupported op".
FUZZ_SEED_CASES := test_gemm_default_single_elem_vector_bias test_matmul_2d test_relu \
    test_softmax_axis_1 test_logsoftmax_axis_1 test_sigmoid test_tanh test_gather_0 \
    test_concat_2d_axis_0 test_reshape_reduced_dims test_flatten_axis1 test_transpose_default \
    test_unsqueeze_axis_0 test_squeeze test_top_k_smallest test_argmax_default_axis_example \
    test_cast_FLOAT_to_DOUBLE test_add_bcast test_batchnorm_example test_leakyrelu \
    test_reduce_mean_default_axes_keepdims_example test_loop11 test_if test_constant

.PHONY: check-fuzz check-fuzz-onnx check-fuzz-resp
check-fuzz: check-fuzz-onnx check-fuzz-resp

$(FUZZ_DIR)/kernels/%.o: kernels/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_onnx.o: tests/fuzz_onnx.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_onnx: $(FUZZ_DIR)/fuzz_onnx.o $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(BLAS_LIBS) -lm -lpthread

check-fuzz-onnx: $(FUZZ_DIR)/fuzz_onnx $(FIXTURES)
	@rm -rf $(FUZZ_DIR)/seeds
	@mkdir -p $(FUZZ_DIR)/seeds $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	cp $(BUILD)/fixtures/*.onnx $(FUZZ_DIR)/seeds/
	@for c in $(FUZZ_SEED_CASES); do \
	    f=$(FUZZ_TESTDATA)/$$c/model.onnx; \
	    if [ -f $$f ]; then cp $$f $(FUZZ_DIR)/seeds/$$c.onnx; fi; \
	done
	cd $(FUZZ_DIR) && OPENBLAS_NUM_THREADS=1 $(FUZZ_ENV) \
	    ./fuzz_onnx $(FUZZ_RUN) -rss_limit_mb=2560 -malloc_limit_mb=1100 -max_len=65536 \
	        corpus seeds

# RESP: the harness allocates only copies of its input, so one allocation over 64 MB is a
# finding; the RSS limit leaves room for ASan's quarantine (peaks near 350 MB in 30 s).  4 KiB
# inputs are well past the harness's small limits (16 arguments of 64 bytes, 256-byte inline
# lines), so every limit is reached; longer inputs would only make each run slower.
$(FUZZ_DIR)/server/%.o: server/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_resp.o: tests/fuzz_resp.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_resp: $(FUZZ_DIR)/fuzz_resp.o $(FUZZ_DIR)/server/resp.o
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^

check-fuzz-resp: $(FUZZ_DIR)/fuzz_resp
	@rm -rf $(FUZZ_DIR)/resp/seeds
	@mkdir -p $(FUZZ_DIR)/resp/seeds $(FUZZ_DIR)/resp/corpus $(FUZZ_DIR)/resp/artifacts
	cp tests/corpus/resp/*.txt $(FUZZ_DIR)/resp/seeds/
	cd $(FUZZ_DIR)/resp && $(FUZZ_ENV) \
	    ../fuzz_resp $(FUZZ_RUN) -rss_limit_mb=1024 -malloc_limit_mb=64 -max_len=4096 \
	        corpus seeds

# The unit test replays tests/corpus/resp/ through resp_fuzz_check (tests/fuzz_resp.c), so
# that `make check` runs the fuzzer's checks on the seeds; built by the normal rules, the
# harness's LLVMFuzzerTestOneInput is just an unused function.
$(BIN)/test_resp: $(BUILD)/tests/fuzz_resp.o

-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
