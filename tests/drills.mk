# make drills — the reliability drills of issue 8 (tests/drills/, docs/RELIABILITY.md).
# Each drill prints "drill NAME: trials=T failures=F ..."; the summary table is the lines of
# $(DRILL_RESULTS). Counts (override on the command line): passes over every crash point,
# random kill -9 trials, journaled runs for the power-loss drill (each fsync in each is a crash
# point), tmpfs sizes for the table and for the spill dir, byte flips, seconds of lookups
# against publish/rollback/--keep, idle connections, malformed requests, seconds of steady
# load on the server (10 minutes).
DRILL_CRASH_ROUNDS ?= 3
DRILL_KILLS ?= 100
DRILL_POWERLOSS_RUNS ?= 4
DRILL_DISKFULL_STEPS ?= 6
DRILL_FLIPS ?= 200
DRILL_CONCURRENCY_SECONDS ?= 60
DRILL_IDLE_CONNS ?= 1000
DRILL_MALFORMED ?= 10000
DRILL_LOAD_SECONDS ?= 600
DRILL_RESULTS ?= $(BUILD)/drills/results.txt

DRILL_SHIM := $(BUILD)/drills/powerloss_shim.so
$(DRILL_SHIM): tests/drills/powerloss_shim.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

$(BIN)/drill_lookup: tests/drills/drill_lookup.c $(BUILD)/libprecast.a
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -I. $(SAN) -o $@ $< $(BUILD)/libprecast.a -lleveldb -lpthread

.PHONY: drills drill-tools
drill-tools: $(BIN)/precast $(FIXTURES) $(DRILL_SHIM) $(BIN)/drill_lookup
check check-asan: $(DRILL_SHIM) $(BIN)/drill_lookup

drills: drill-tools
	@mkdir -p $(dir $(DRILL_RESULTS)); : >$(DRILL_RESULTS)
	@export BUILD=$(BUILD) DRILL_RESULTS=$(abspath $(DRILL_RESULTS)); \
	for d in "crash_points.sh $(DRILL_CRASH_ROUNDS)" "random_kill.sh $(DRILL_KILLS)" \
	         "powerloss.sh $(DRILL_POWERLOSS_RUNS)" "disk_full.sh $(DRILL_DISKFULL_STEPS)" \
	         "corruption.sh $(DRILL_FLIPS)" "concurrency.sh $(DRILL_CONCURRENCY_SECONDS)" \
	         "abuse.sh $(DRILL_IDLE_CONNS) $(DRILL_MALFORMED) $(DRILL_LOAD_SECONDS)"; do \
	    name=$${d%%.sh*}; start=$$(date +%s); echo "== tests/drills/$$d  (log: $(dir $(DRILL_RESULTS))$$name.log)"; \
	    bash tests/drills/$$d >$(dir $(DRILL_RESULTS))$$name.log 2>&1; \
	    grep -v '^# ' $(dir $(DRILL_RESULTS))$$name.log | tail -15; \
	    echo "   ($$(( $$(date +%s) - start )) s)"; \
	done; \
	echo "== summary ($(DRILL_RESULTS))"; cat $(DRILL_RESULTS); \
	! grep -qv 'failures=0 ' $(DRILL_RESULTS)
