/* lookup.c — look ids up in a precast table from C.
 *   cc lookup.c $(pkg-config --cflags --libs precast) -o lookup
 *   ./lookup var/example/table u000000 u042042                                           */
#include <precast.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    char err[512];
    precast_table *t;
    if (argc < 3) {
        fprintf(stderr, "usage: lookup TABLE KEY...\n");
        return 64;
    }
    int rc = precast_table_open(argv[1], &t, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "lookup: %s\n", err);
        return rc;
    }
    for (int i = 2; i < argc && rc == 0; i++) {
        char *value;
        size_t len;
        bool found;
        rc = precast_table_get(t, argv[i], strlen(argv[i]), &value, &len, &found, err, sizeof err);
        if (rc != 0) fprintf(stderr, "lookup: %s\n", err);
        else if (found) printf("%s\t%s\n", argv[i], value);
        else printf("%s\t(not found)\n", argv[i]);
        precast_free(value);
    }
    precast_table_close(t);
    return rc;
}
