# precast — build, test, demo, bench.  `make help` lists the targets.
#
# Layout: every module folder (kernels, mapper, reducer, storage, jobs) compiles into
# build/<module>/*.o; all of them form build/libprecast.a; bin/precast is jobs/main.c linked
# against it.  Unit tests are tests/test_<module>.c (Check); each links only the objects of
# its module and the modules below it, so one module's test builds without the others.

CC      ?= gcc
SAN     ?=
OPT     ?= -O2
MPI_CFLAGS  := $(shell mpicc -showme:compile 2>/dev/null)
MPI_LIBS    := $(shell mpicc -showme:link 2>/dev/null)
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 \
           -I. $(MPI_CFLAGS) $(BLAS_CFLAGS) -MMD -MP $(SAN)
LDFLAGS += $(SAN)
LDLIBS  := -lleveldb -lz $(BLAS_LIBS) $(MPI_LIBS) -lm -lpthread

# oneDNN's sgemm runs the wide dense layers of the forward pass (kernels/ops.c has the
# measurements); `make ONEDNN=0` builds with OpenBLAS alone.
ONEDNN ?= 1
ifeq ($(ONEDNN),1)
  CFLAGS += -DPRECAST_ONEDNN
  LDLIBS += -ldnnl -lgomp
endif

ifeq ($(SANITIZE),1)
  BUILD := build-asan
  SAN   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  OPT   := -O1
else
  BUILD := build
endif
# Objects compiled with and without oneDNN differ, so the OpenBLAS-only build has its own tree.
ifneq ($(ONEDNN),1)
  BUILD := $(BUILD)-openblas
endif
BIN := $(BUILD)/bin

KERNELS_SRC := $(wildcard kernels/*.c)
MAPPER_SRC  := $(wildcard mapper/*.c)
REDUCER_SRC := $(wildcard reducer/*.c)
STORAGE_SRC := $(wildcard storage/*.c)
JOBS_SRC    := $(filter-out jobs/main.c,$(wildcard jobs/*.c))
# server/ (precast serve) links libmicrohttpd; it stays out of libprecast.a so that programs
# using the lookup library need only LevelDB.
SERVER_SRC  := $(wildcard server/*.c)
# trainer/ (precast train, issue 9): the training loop, optimisers, diagnostics, ONNX writer.
TRAINER_SRC := $(wildcard trainer/*.c)

objs = $(patsubst %.c,$(BUILD)/%.o,$(1))
KERNELS_OBJ := $(call objs,$(KERNELS_SRC))
MAPPER_OBJ  := $(call objs,$(MAPPER_SRC))
REDUCER_OBJ := $(call objs,$(REDUCER_SRC))
STORAGE_OBJ := $(call objs,$(STORAGE_SRC))
JOBS_OBJ    := $(call objs,$(JOBS_SRC))
SERVER_OBJ  := $(call objs,$(SERVER_SRC))
TRAINER_OBJ := $(call objs,$(TRAINER_SRC))
MHD_LIBS    := $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
# mapper/featstats reads and writes its statistics file with storage/json (parser and buffer).
JSON_OBJ    := $(BUILD)/storage/json.o
ALL_OBJ     := $(KERNELS_OBJ) $(MAPPER_OBJ) $(REDUCER_OBJ) $(STORAGE_OBJ) $(JOBS_OBJ) \
               $(TRAINER_OBJ)

TESTS := $(patsubst tests/%.c,$(BIN)/%,$(wildcard tests/test_*.c))
TOOLS := $(patsubst tests/%.c,$(BIN)/%,$(wildcard tests/tool_*.c))

.PHONY: all check check-asan check-valgrind demo bench bench-scale clean help fixtures install
all: $(BIN)/precast bin/precast

# bin/precast is what users type; it is a symlink to the build's binary.
bin/precast: $(BUILD)/bin/precast
	@mkdir -p bin
	ln -sf ../$(BUILD)/bin/precast bin/precast

$(BUILD)/libprecast.a: $(ALL_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/precast: $(BUILD)/jobs/main.o $(SERVER_OBJ) $(BUILD)/libprecast.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(MHD_LIBS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

# Each unit test links its module and the modules below it.
$(BIN)/test_kernels: $(BUILD)/tests/test_kernels.o $(KERNELS_OBJ)
$(BIN)/test_mapper:  $(BUILD)/tests/test_mapper.o $(MAPPER_OBJ) $(JSON_OBJ) $(KERNELS_OBJ)
# reducer/ and storage/ need only the status codes from kernels/.
$(BIN)/test_reducer: $(BUILD)/tests/test_reducer.o $(REDUCER_OBJ) $(BUILD)/kernels/status.o
$(BIN)/test_storage: $(BUILD)/tests/test_storage.o $(STORAGE_OBJ) $(BUILD)/kernels/status.o
$(BIN)/test_head:    $(BUILD)/tests/test_head.o $(MAPPER_OBJ) $(JSON_OBJ) $(KERNELS_OBJ)
$(BIN)/test_onnx:    $(BUILD)/tests/test_onnx.o $(KERNELS_OBJ)
$(BIN)/test_libsvm:  $(BUILD)/tests/test_libsvm.o $(MAPPER_OBJ) $(JSON_OBJ) $(KERNELS_OBJ)
$(BIN)/test_jobs:    $(BUILD)/tests/test_jobs.o $(BUILD)/libprecast.a
$(BIN)/test_ops:     $(BUILD)/tests/test_ops.o $(BUILD)/libprecast.a
$(BIN)/test_resp:    $(BUILD)/tests/test_resp.o $(BUILD)/server/resp.o
$(BIN)/test_memindex: $(BUILD)/tests/test_memindex.o $(BUILD)/server/memindex.o $(BUILD)/server/holder.o \
                     $(STORAGE_OBJ) $(BUILD)/kernels/status.o
$(BIN)/test_numparse: $(BUILD)/tests/test_numparse.o $(MAPPER_OBJ) $(JSON_OBJ) $(KERNELS_OBJ)
# The training engine (issue 9): kernels' backward twins, and the net and optimisers alone
# (not the rest of trainer/).
$(BIN)/test_grad:    $(BUILD)/tests/test_grad.o $(KERNELS_OBJ)
$(BIN)/test_net:     $(BUILD)/tests/test_net.o $(BUILD)/trainer/net.o $(BUILD)/trainer/optim.o \
                     $(KERNELS_OBJ)
$(BIN)/test_%:
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(MHD_LIBS) $(LDLIBS)

# Model fixtures with numpy reference outputs (Debian's python3-onnx and python3-numpy).
FIXTURES := $(BUILD)/fixtures/.stamp
$(FIXTURES): tests/fixtures/make_fixtures.py tests/fixtures/make_kinds.py \
             tests/fixtures/make_train_step.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 tests/fixtures/make_fixtures.py $(dir $@)
	/usr/bin/python3 tests/fixtures/make_kinds.py $(dir $@)kinds
	/usr/bin/python3 tests/fixtures/make_train_step.py $(dir $@)train
	touch $@
fixtures: $(FIXTURES)

# Test helpers (tests/tool_*.c) link the whole library.
$(BIN)/tool_%: $(BUILD)/tests/tool_%.o $(BUILD)/libprecast.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

check: $(BIN)/precast $(TESTS) $(TOOLS) $(FIXTURES)
	BUILD=$(BUILD) tests/run-all.sh

check-asan:
	ASAN_OPTIONS=abort_on_error=0 $(MAKE) SANITIZE=1 check

check-valgrind: $(BIN)/precast $(TESTS) $(TOOLS) $(FIXTURES)
	BUILD=$(BUILD) VALGRIND=1 tests/run-all.sh

demo: all
	scripts/demo.sh

bench: all
	scripts/bench.sh

bench-scale: all
	scripts/bench_scale.sh

# Lookups beside redis-server (issue 6): redis-benchmark, wrk and in-process, side by side.
.PHONY: bench-serve
bench-serve: all $(BIN)/tool_resp_load $(BIN)/tool_bench_lookup
	scripts/bench_serve.sh

# make install PREFIX=/usr/local: the precast command, the library, <precast.h> (lookups)
# and a pkg-config file, so that `cc app.c $(pkg-config --cflags --libs precast)` works.
PREFIX ?= /usr/local
install: $(BIN)/precast $(BUILD)/libprecast.a
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BIN)/precast $(DESTDIR)$(PREFIX)/bin/precast
	install -m 644 $(BUILD)/libprecast.a $(DESTDIR)$(PREFIX)/lib/libprecast.a
	install -m 644 storage/precast.h $(DESTDIR)$(PREFIX)/include/precast.h
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	    'Name: precast' 'Description: point lookups in precast prediction tables' 'Version: 0.4.0' \
	    'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lprecast -lleveldb -lpthread' \
	    >$(DESTDIR)$(PREFIX)/lib/pkgconfig/precast.pc

clean:
	rm -rf build build-asan build-clang build-openblas build-asan-openblas bin

help:
	@echo "make            build bin/precast and build/libprecast.a"
	@echo "make check      unit and integration tests (ends with 'N passed, N failed')"
	@echo "make check-asan the same tests built with ASan + UBSan"
	@echo "make ONEDNN=0   any target, built with OpenBLAS alone (in build-openblas/)"
	@echo "make check-valgrind  unit tests and a one-rank job under valgrind"
	@echo "make demo       example model and data, the example job under mpirun, lookups"
	@echo "make bench      issue 7's table: forward, end to end, parse, write, scaling beside their baselines"
	@echo "make bench-scale  20M rows, -np 2, memory_mb 256: rows/s, peak RSS, spill, stages"
	@echo "make bench-serve  precast serve (LevelDB and --preload) and precast_table_get beside redis-server"
	@echo "make bench-train  precast train rows/s on 1 and 2 ranks beside PyTorch; sampled vs full softmax"
	@echo "make bench-drift  end to end with input.drift = warn against off, and the sketch alone"
	@echo "make check-onnx the ONNX backend conformance cases alone"
	@echo "make fuzz       (= check-fuzz) libFuzzer on every target: ONNX, RESP, CSV, LIBSVM, job, manifest, value, batchGet (FUZZ_SECONDS=60 each)"
	@echo "make drills     the reliability drills at full size (docs/RELIABILITY.md), about 25 minutes"
	@echo "make install PREFIX=DIR  the command, libprecast.a, precast.h and precast.pc"
	@echo "make clean      remove build output"

# check-fuzz and check-onnx live in their own makefiles, beside their harnesses.
-include tests/fuzz.mk
-include tests/onnx.mk
# make check also runs the ONNX backend conformance cases (tests/onnx.mk).
check check-asan: $(BIN)/onnx_conformance

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# The C sides of `make bench`: forward pass, CSV parsing, table writes.
$(BIN)/bench_forward: $(BUILD)/tests/bench_forward.o $(KERNELS_OBJ)
$(BIN)/bench_parse: $(BUILD)/tests/bench_parse.o $(MAPPER_OBJ) $(JSON_OBJ) $(KERNELS_OBJ)
$(BIN)/bench_write: $(BUILD)/tests/bench_write.o $(BUILD)/libprecast.a
$(BIN)/bench_%:
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
.SECONDARY:
-include tests/drills.mk
# Training (issue 9) and input drift (issue 10) keep their extra targets beside their code.
-include trainer/trainer.mk
-include tests/drift.mk
