/*
 * get.c — `precast get [--format F] TABLE KEY...` and `precast get TABLE -`: point lookups in
 * the current version through the public library (storage/precast.h), BATCH keys per
 * precast_table_multi_get.
 *
 *   json (default)  {"key": K, "found": true, "value": V}  or  {"key": K, "found": false}
 *   tsv             KEY<TAB>VALUE, and KEY<TAB> for a miss; tab, newline, carriage return
 *                   and backslash in a key are written \t \n \r \\ so that a line is a row
 *   raw             the stored value bytes and a newline; a miss is an empty line
 * V and VALUE are JSON (f32 values as an array of numbers); raw writes f32 values as their
 * little-endian bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/commands.h"
#include "kernels/status.h"
#include "mapper/head.h"
#include "storage/precast.h"

#define BATCH 1000

typedef enum get_format { GET_JSON, GET_TSV, GET_RAW } get_format;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: precast get [--format json|tsv|raw] TABLE KEY...\n"
            "       precast get [--format json|tsv|raw] TABLE -     (keys on stdin, one per line)\n"
            "\n"
            "Looks keys up in the table's current version, one output line per key, in order:\n"
            "  json (default)  {\"key\": K, \"found\": true, \"value\": V}  or  {\"key\": K, \"found\": false}\n"
            "  tsv             KEY<TAB>VALUE; a miss is KEY<TAB> (\\t \\n \\r \\\\ escaped in keys)\n"
            "  raw             the value alone; a miss is an empty line\n"
            "Keys read from stdin are looked up %d at a time, all from one version.\n"
            "Exit status: 0 when every lookup ran (found or not), 64 usage, 66 no table,\n"
            "74 I/O error.\n",
            BATCH);
}

/* One batch's keys, and the table's value format, for printing. */
typedef struct batch {
    const char *keys[BATCH];
    size_t klens[BATCH];
    char *values[BATCH];
    size_t vlens[BATCH];
    bool found[BATCH];
    size_t n;
} batch;

static void print_json_text(FILE *out, size_t (*render)(char *, size_t, const char *, size_t),
                            const char *s, size_t n)
{
    size_t need = render(NULL, 0, s, n) + 1;
    char *buf = malloc(need);
    if (buf == NULL) {
        fputs("null", out); /* out of memory for one rendering: say so in the line */
        return;
    }
    render(buf, need, s, n);
    fwrite(buf, 1, need - 1, out);
    free(buf);
}

static size_t render_f32(char *out, size_t cap, const char *v, size_t n)
{
    return value_json(out, cap, v, n, VALUE_FORMAT_F32);
}

static size_t render_json(char *out, size_t cap, const char *v, size_t n)
{
    return value_json(out, cap, v, n, VALUE_FORMAT_JSON);
}

static void print_tsv_key(FILE *out, const char *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *esc = k[i] == '\t' ? "\\t" : k[i] == '\n' ? "\\n" : k[i] == '\r' ? "\\r"
                        : k[i] == '\\' ? "\\\\" : NULL;
        if (esc != NULL)
            fputs(esc, out);
        else
            fputc(k[i], out);
    }
}

static void print_one(FILE *out, get_format fmt, bool f32, const char *key, size_t klen,
                      const char *val, size_t vlen, bool found)
{
    size_t (*render)(char *, size_t, const char *, size_t) = f32 ? render_f32 : render_json;
    if (fmt == GET_RAW) {
        if (found)
            fwrite(val, 1, vlen, out);
    } else if (fmt == GET_TSV) {
        print_tsv_key(out, key, klen);
        fputc('\t', out);
        if (found)
            print_json_text(out, render, val, vlen);
    } else {
        fputs("{\"key\": ", out);
        print_json_text(out, json_quote, key, klen);
        fputs(found ? ", \"found\": true, \"value\": " : ", \"found\": false", out);
        if (found)
            print_json_text(out, render, val, vlen);
        fputc('}', out);
    }
    fputc('\n', out);
}

/* Looks the batch up and prints it; empties it. */
static int flush_batch(precast_table *t, batch *b, get_format fmt, bool f32, char *err,
                       size_t errlen)
{
    int rc = b->n == 0 ? 0
                       : precast_table_multi_get(t, b->n, (const void *const *)b->keys, b->klens,
                                                 b->values, b->vlens, b->found, err, errlen);
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        print_one(stdout, fmt, f32, b->keys[i], b->klens[i], b->values[i], b->vlens[i],
                  b->found[i]);
        precast_free(b->values[i]);
    }
    b->n = 0;
    return rc;
}

/* Keys from stdin, one per line (a trailing \r is dropped), BATCH at a time. */
static int get_stdin(precast_table *t, batch *b, get_format fmt, bool f32, char *err,
                     size_t errlen)
{
    char *lines[BATCH] = {0};
    size_t caps[BATCH] = {0};
    int rc = 0;
    ssize_t len;
    while (rc == 0 && (len = getline(&lines[b->n], &caps[b->n], stdin)) != -1) {
        while (len > 0 && (lines[b->n][len - 1] == '\n' || lines[b->n][len - 1] == '\r'))
            len--;
        b->keys[b->n] = lines[b->n];
        b->klens[b->n] = (size_t)len;
        if (++b->n == BATCH)
            rc = flush_batch(t, b, fmt, f32, err, errlen);
    }
    if (rc == 0)
        rc = flush_batch(t, b, fmt, f32, err, errlen);
    for (size_t i = 0; i < BATCH; i++)
        free(lines[i]);
    return rc;
}

static int get_args(precast_table *t, batch *b, get_format fmt, bool f32, int n, char **keys,
                    char *err, size_t errlen)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        b->keys[b->n] = keys[i];
        b->klens[b->n] = strlen(keys[i]);
        if (++b->n == BATCH)
            rc = flush_batch(t, b, fmt, f32, err, errlen);
    }
    return rc == 0 ? flush_batch(t, b, fmt, f32, err, errlen) : rc;
}

/* Parses leading options; returns the index of TABLE, 0 after --help, or -1 on a usage error. */
static int parse_opts(int argc, char **argv, get_format *fmt)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--help") == 0)
            return 0;
        if (strncmp(argv[i], "--format=", 9) == 0)
            v = argv[i] + 9;
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            v = argv[++i];
        if (v != NULL && strcmp(v, "json") == 0)
            *fmt = GET_JSON;
        else if (v != NULL && strcmp(v, "tsv") == 0)
            *fmt = GET_TSV;
        else if (v != NULL && strcmp(v, "raw") == 0)
            *fmt = GET_RAW;
        else {
            fprintf(stderr, "precast get: %s: expected --format json, tsv or raw\n", argv[i]);
            return -1;
        }
    }
    if (i < argc && strcmp(argv[i], "-h") == 0)
        return 0;
    return i + 1 < argc ? i : -1;
}

int cmd_get(int argc, char **argv)
{
    get_format fmt = GET_JSON;
    int at = parse_opts(argc, argv, &fmt);
    if (at <= 0) {
        usage(at == 0 ? stdout : stderr);
        return at == 0 ? 0 : PC_ERR_USAGE;
    }
    char err[PC_ERRLEN];
    precast_table *t = NULL;
    int rc = precast_table_open(argv[at], &t, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "precast: %s\n", err);
        return rc;
    }
    bool f32 = strcmp(precast_table_value_format(t), "f32") == 0;
    batch *b = calloc(1, sizeof *b);
    if (b == NULL) {
        precast_table_close(t);
        fprintf(stderr, "precast: out of memory\n");
        return PC_ERR_INTERNAL;
    }
    if (argc == at + 2 && strcmp(argv[at + 1], "-") == 0)
        rc = get_stdin(t, b, fmt, f32, err, sizeof err);
    else
        rc = get_args(t, b, fmt, f32, argc - at - 1, argv + at + 1, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "precast: %s\n", err);
    free(b);
    precast_table_close(t);
    return rc;
}
