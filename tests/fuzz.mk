# check-fuzz (alias: fuzz): libFuzzer over eight targets, each run for FUZZ_SECONDS (one after
# the other; under make -j, side by side):
#   check-fuzz-onnx      the ONNX reader and the graph compiler (tests/fuzz_onnx.c)
#   check-fuzz-resp      the RESP parser and reply writers of precast serve (tests/fuzz_resp.c)
#   check-fuzz-csv       the CSV reader, its sources (plain, gzip) and splits, parse_float
#   check-fuzz-libsvm    the LIBSVM reader, the same way (tests/fuzz_libsvm.c)
#   check-fuzz-job       the job file: INI syntax, --set overrides, validation (tests/fuzz_job.c)
#   check-fuzz-manifest  MANIFEST.json: strict reader, validation, write-read round trip
#   check-fuzz-value     the value codec: heads' encodings, value_json, json_quote
#   check-fuzz-http      the HTTP batchGet body: json_parse, the keys rule, the reply's JSON
#
# The harnesses and the code they test are compiled with clang's fuzzer, ASan and UBSan flags
# into their own objects under $(BUILD)/fuzz/ (never the normal build's objects), then run
# with bounded memory.  Any crash, leak, timeout or allocation over the limits fails the
# target; libFuzzer leaves the input that caused it in $(FUZZ_DIR)/artifacts/ (ONNX) or
# $(FUZZ_DIR)/<target>/artifacts/ (the others).
#
# ONNX seeds: the fixture models (make fixtures) and a few of the ONNX backend test models
# (Debian's libonnx-testdata).  The other targets' seeds: the files in tests/corpus/<target>/,
# which `make check` also replays through the same checks (test_resp links fuzz_resp.o;
# test_fuzz_replay links the six harnesses of tests/fuzz_util.h, below).
# Seeds are copied at run time into a scratch directory; each target's corpus directory
# keeps what the fuzzer finds between runs (nothing it finds is committed).
#
#   make check-fuzz                      60 s per target
#   make fuzz FUZZ_SECONDS=600           longer
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
# Known leaks are suppressed by tests/fuzz_known.supp (see there).
FUZZ_ENV     = ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                LSAN_OPTIONS=suppressions=$(abspath tests/fuzz_known.supp):print_suppressions=0
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

# The six targets of tests/fuzz_util.h; each has tests/fuzz_<t>.c and tests/corpus/<t>/.
FUZZ_TARGETS := csv libsvm job manifest value http

.PHONY: fuzz check-fuzz check-fuzz-onnx check-fuzz-resp $(FUZZ_TARGETS:%=check-fuzz-%)
check-fuzz: check-fuzz-onnx check-fuzz-resp $(FUZZ_TARGETS:%=check-fuzz-%)
fuzz: check-fuzz

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

# ---- the six targets of tests/fuzz_util.h ----
#
# They link the library's code (kernels, mapper, storage, the job-file parser) from one
# archive of fuzz-built objects, so that each binary takes only the objects it calls.
FUZZ_LIB     := $(FUZZ_DIR)/libprecast-fuzz.a
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_DIR)/%.o,$(KERNELS_SRC) $(MAPPER_SRC) $(STORAGE_SRC) \
                    jobs/ini.c jobs/job.c)
FUZZ_LIBS    := -lleveldb -lz $(BLAS_LIBS) -lm -lpthread
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/mapper/%.o: mapper/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/storage/%.o: storage/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/jobs/%.o: jobs/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# Known findings, compiled around so that fuzzing goes on past them: none now.  A finding is
# kept as tests/corpus/<target>/finding-* (test_fuzz_replay skips those unless
# PRECAST_FUZZ_FINDINGS=1) until it is fixed, then renamed regress-* and replayed always; the
# five of issue 8 (json_quote's overlong forms, NULL + 1 and a leak in load_bindings, an
# unchecked float-to-int and a NaN share in max_bad_rows) are fixed.  FUZZ_KNOWN_JOB takes
# sanitizer exclusions for jobs/job.c, FUZZ_KNOWN_HARNESS -DFUZZ_KNOWN_* for the harnesses.
FUZZ_KNOWN_JOB     ?=
FUZZ_KNOWN_HARNESS ?=
$(FUZZ_DIR)/jobs/job.o: FUZZ_CFLAGS += $(FUZZ_KNOWN_JOB)

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS:%=%.o): $(FUZZ_DIR)/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_KNOWN_HARNESS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BINS): $(FUZZ_DIR)/%: $(FUZZ_DIR)/%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(FUZZ_LIBS)

# Per target: the largest input, and the memory limits.  The harnesses allocate copies of
# their input, the readers' buffers (1 MiB by default) and small trees, so one allocation
# over 64 MB is a finding; the RSS limit leaves room for ASan's quarantine.  Inputs: a few
# KiB reach every limit of the readers' tests (16..1000-byte records, 64 segments) and of
# the parsers; manifests and job files get more room for their many fields.
FUZZ_MAXLEN_csv      := 4096
FUZZ_MAXLEN_libsvm   := 4096
FUZZ_MAXLEN_job      := 4096
FUZZ_MAXLEN_manifest := 8192
FUZZ_MAXLEN_value    := 2048
FUZZ_MAXLEN_http     := 8192
FUZZ_LIMITS = -rss_limit_mb=1536 -malloc_limit_mb=64 -max_len=$(FUZZ_MAXLEN_$*)

# The seeds are every file of tests/corpus/<t>/.  The harnesses' scratch files (inputs the
# code under test reads by path, tests/fuzz_util.h) go to a directory under /dev/shm, so the
# disk sees only libFuzzer's corpus; it is removed after the run, crash or not.
$(FUZZ_TARGETS:%=check-fuzz-%): check-fuzz-%: $(FUZZ_DIR)/fuzz_%
	@rm -rf $(FUZZ_DIR)/$*/seeds
	@mkdir -p $(FUZZ_DIR)/$*/seeds $(FUZZ_DIR)/$*/corpus $(FUZZ_DIR)/$*/artifacts
	cp tests/corpus/$*/* $(FUZZ_DIR)/$*/seeds/
	t=$$(mktemp -d /dev/shm/precast-fuzz-$*-XXXXXX 2>/dev/null || mktemp -d); \
	cd $(FUZZ_DIR)/$* && PRECAST_FUZZ_TMP=$$t OPENBLAS_NUM_THREADS=1 $(FUZZ_ENV) \
	    ../fuzz_$* $(FUZZ_RUN) $(FUZZ_LIMITS) corpus seeds; \
	rc=$$?; rm -rf "$$t"; exit $$rc

# test_fuzz_replay (a `make check` unit test) runs every seed of the six corpora through the
# harnesses, built by the normal compiler and flags (gcc; ASan and UBSan under check-asan);
# each harness's entry point gets its own name so that all six link into one binary.
FUZZ_REPLAY_OBJ := $(FUZZ_TARGETS:%=$(BUILD)/tests/replay/fuzz_%.o)
$(FUZZ_REPLAY_OBJ): $(BUILD)/tests/replay/fuzz_%.o: tests/fuzz_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DFUZZ_ENTRY=fuzz_$*_one -c -o $@ $<
$(BIN)/test_fuzz_replay: $(BUILD)/tests/test_fuzz_replay.o $(FUZZ_REPLAY_OBJ) $(BUILD)/libprecast.a
check check-asan: $(BIN)/test_fuzz_replay

-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
