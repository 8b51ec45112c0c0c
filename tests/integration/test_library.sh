#!/bin/bash
# The installed lookup library: make install PREFIX=..., then the README's example program,
# built with pkg-config, answers as `precast get` does.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cp "$FIX/small_softmax.onnx" .
make_csv a.csv 500 4 3
write_job job.ini small_softmax.onnx a.csv t "top_k = 2"
run_np 2 run job.ini || { not_ok "library: run" "$(cat "$TMP/err")"; exit 1; }
SANITIZE=0
case "$BUILD" in *asan*) SANITIZE=1 ;; esac
if make -s -C "$ROOT" SANITIZE=$SANITIZE BUILD="$BUILD" install PREFIX="$TMP/prefix" >install.log 2>&1; then
    ok "make install PREFIX=...: $(ls "$TMP/prefix/lib" "$TMP/prefix/include" | tr '\n' ' ')"
else
    not_ok "make install" "$(tail -5 install.log)"
fi
export PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig"
# Under make check-asan the installed library is instrumented: so must the programs be.
SAN=""
case "$BUILD" in *asan*) SAN="-fsanitize=address,undefined" ;; esac
if cc -std=c11 -Wall -Werror $SAN "$ROOT/docs/examples/lookup.c" $(pkg-config --cflags --libs precast) -o lookup 2>cc.err; then
    ok "the example builds with pkg-config --cflags --libs precast"
else
    not_ok "example build" "$(cat cc.err)"
fi
k1=$(sed -n 2p a.csv | cut -d, -f1); k2=$(sed -n 3p a.csv | cut -d, -f1)
./lookup t "$k1" "$k2" nope >lookup.out 2>lookup.err; rc=$?
want1=$("$PRECAST" get t "$k1" | sed 's/.*"value": //; s/}$//')
got1=$(grep "^$k1	" lookup.out | cut -f2)
[ $rc = 0 ] && [ "$got1" = "$want1" ] && grep -q "^nope	(not found)" lookup.out \
    && ok "the library answers as precast get does, and misses" || not_ok "library lookups" "rc $rc: $(cat lookup.out lookup.err)"
./lookup nosuchtable k >/dev/null 2>err.txt; rc=$?
[ $rc = 66 ] && ok "the library: a missing table is 66 with a message" || not_ok "library missing table" "rc $rc $(cat err.txt)"
cat >multi.c <<'CEOF'
#include <precast.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    char err[512];
    precast_table *t;
    precast_open_options o = {.cache_bytes = (size_t)1 << 20}; /* a small cache: still right */
    if (precast_table_open_opts(argv[1], &o, &t, err, sizeof err) != 0) return 1;
    size_t n = (size_t)argc - 2, klens[16];
    const void *keys[16];
    char *values[16];
    size_t vlens[16];
    bool found[16];
    for (size_t i = 0; i < n; i++) keys[i] = argv[i + 2], klens[i] = strlen(argv[i + 2]);
    int rc = precast_table_multi_get(t, n, keys, klens, values, vlens, found, err, sizeof err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        printf("%s\t%s\n", argv[i + 2], found[i] ? values[i] : "(not found)");
        precast_free(values[i]);
    }
    printf("version %s format %s\n", precast_table_version(t), precast_table_value_format(t));
    precast_table_close(t);
    return rc;
}
CEOF
cc -std=c11 -Wall -Werror $SAN multi.c $(pkg-config --cflags --libs precast) -o multi && ./multi t "$k1" nope "$k2" >multi.out \
    && [ "$(grep -v '^version' multi.out | sort)" = "$(grep -v '^version' <(./lookup t "$k1" nope "$k2") | sort)" ] \
    && grep -q "^version $(cat t/CURRENT) format json$" multi.out \
    && ok "precast_table_open_opts + precast_table_multi_get answer as single gets; version and format" || not_ok "multi_get" "$(cat multi.out)"
