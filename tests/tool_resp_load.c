/* tool_resp_load TABLE — benchmark helper (scripts/bench_serve.sh): streams every (key, value)
 * pair of TABLE's current version to stdout as Redis SET commands in RESP,
 *
 *   *3\r\n$3\r\nSET\r\n$<klen>\r\n<key>\r\n$<vlen>\r\n<value>\r\n
 *
 * for `redis-cli --pipe`, so that redis-server holds exactly the bytes the table holds.  Reads
 * through table_scan (key order, shard checksums checked as it goes, bounded memory).  Ends
 * with one line on stderr, "tool_resp_load: N pairs of VERSION", and fails (exit 1) if the
 * scan fails or N differs from the manifest's rows_written. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "storage/table.h"

/* Large stdout buffer: one write(2) per MiB rather than per pair. */
enum { OUT_BUFFER = 1 << 20 };

static int write_bulk(FILE *out, const char *p, size_t n)
{
    if (fprintf(out, "$%zu\r\n", n) < 0 || fwrite(p, 1, n, out) != n || fputs("\r\n", out) == EOF)
        return -1;
    return 0;
}

static int write_set(FILE *out, const char *key, size_t klen, const char *val, size_t vlen)
{
    if (fputs("*3\r\n$3\r\nSET\r\n", out) == EOF)
        return -1;
    if (write_bulk(out, key, klen) != 0 || write_bulk(out, val, vlen) != 0)
        return -1;
    return 0;
}

/* Streams the scan to out; *pairs counts the pairs written.  Returns 0 or 1 (message printed). */
static int stream_pairs(table_scan *s, FILE *out, int64_t *pairs)
{
    char err[PC_ERRLEN];
    for (;;) {
        const char *key, *val;
        size_t klen, vlen;
        bool eof;
        if (table_scan_next(s, &key, &klen, &val, &vlen, &eof, err, sizeof err) != PC_OK) {
            fprintf(stderr, "tool_resp_load: %s\n", err);
            return 1;
        }
        if (eof)
            return 0;
        if (write_set(out, key, klen, val, vlen) != 0) {
            perror("tool_resp_load: stdout");
            return 1;
        }
        (*pairs)++;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tool_resp_load TABLE   (RESP SET commands on stdout, for redis-cli --pipe)\n");
        return 2;
    }
    char err[PC_ERRLEN];
    table_scan *s = NULL;
    if (table_scan_open(argv[1], NULL, &s, err, sizeof err) != PC_OK) {
        fprintf(stderr, "tool_resp_load: %s\n", err);
        return 1;
    }
    char *buffer = malloc(OUT_BUFFER); /* stdout's buffer until fclose; NULL: stdio's own */
    if (buffer != NULL)
        setvbuf(stdout, buffer, _IOFBF, OUT_BUFFER);
    int64_t pairs = 0;
    int rc = stream_pairs(s, stdout, &pairs);
    if (fclose(stdout) != 0 && rc == 0) {
        perror("tool_resp_load: stdout");
        rc = 1;
    }
    free(buffer);
    const manifest *m = table_scan_manifest(s);
    if (rc == 0 && pairs != m->rows_written) {
        fprintf(stderr, "tool_resp_load: %" PRId64 " pairs, manifest rows_written %" PRId64 "\n", pairs, m->rows_written);
        rc = 1;
    }
    if (rc == 0)
        fprintf(stderr, "tool_resp_load: %" PRId64 " pairs of %s\n", pairs, m->version);
    table_scan_close(s);
    return rc;
}
