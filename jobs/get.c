/*
 * get.c — `precast get TABLE KEY...` and `precast get TABLE -`: point lookups in the current
 * version, one JSON object per key per line:
 *   {"key": K, "found": true, "value": V}    V the stored JSON value (f32 values as an array)
 *   {"key": K, "found": false}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/commands.h"
#include "mapper/head.h"
#include "storage/table.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: precast get TABLE KEY...\n"
            "       precast get TABLE -        (keys on stdin, one per line)\n"
            "\n"
            "Looks keys up in the table's current version and prints one JSON object per key:\n"
            "  {\"key\": K, \"found\": true, \"value\": V}  or  {\"key\": K, \"found\": false}\n"
            "Exit status: 0 when every lookup ran (found or not), 66 no table, 74 I/O error.\n");
}

/* Prints the value as JSON: stored JSON as is, f32 vectors as an array of numbers. */
static void print_value(FILE *out, const char *val, size_t vlen, bool f32)
{
    if (!f32) {
        fwrite(val, 1, vlen, out);
        return;
    }
    fputc('[', out);
    for (size_t i = 0; i + 4 <= vlen; i += 4) {
        float f;
        memcpy(&f, val + i, 4);
        fprintf(out, "%s%.9g", i ? "," : "", (double)f);
    }
    fputc(']', out);
}

static pc_status lookup(table *t, const char *key, size_t klen, bool f32, char *err, size_t errlen)
{
    char *val = NULL;
    size_t vlen = 0;
    bool found = false;
    pc_status s = table_get(t, key, klen, &val, &vlen, &found, err, errlen);
    if (s != PC_OK) return s;
    size_t qlen = json_quote(NULL, 0, key, klen) + 1;
    char *quoted = malloc(qlen);
    if (quoted == NULL) {
        free(val);
        return pc_err(err, errlen, PC_ERR_INTERNAL, "out of memory");
    }
    json_quote(quoted, qlen, key, klen);
    printf("{\"key\": %s, \"found\": %s", quoted, found ? "true" : "false");
    if (found) {
        fputs(", \"value\": ", stdout);
        print_value(stdout, val, vlen, f32);
    }
    fputs("}\n", stdout);
    free(quoted);
    free(val);
    return PC_OK;
}

int cmd_get(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 3) {
        usage(stderr);
        return PC_ERR_USAGE;
    }
    char err[PC_ERRLEN];
    table *t = NULL;
    pc_status s = table_open(argv[1], &t, err, sizeof err);
    if (s != PC_OK) {
        fprintf(stderr, "precast: %s\n", err);
        return s;
    }
    bool f32 = strcmp(table_manifest(t)->value_format, "f32") == 0;
    if (argc == 3 && strcmp(argv[2], "-") == 0) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while (s == PC_OK && (len = getline(&line, &cap, stdin)) != -1) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
            s = lookup(t, line, (size_t)len, f32, err, sizeof err);
        }
        free(line);
    } else {
        for (int i = 2; s == PC_OK && i < argc; i++) s = lookup(t, argv[i], strlen(argv[i]), f32, err, sizeof err);
    }
    if (s != PC_OK) fprintf(stderr, "precast: %s\n", err);
    table_close(t);
    return s;
}
