/*
 * dataset.h — the training rows of one rank, read once into memory with mapper/'s readers.
 *
 * Which rows a rank holds: the input files are cut into one byte range per rank exactly as
 * `precast run` cuts them (mapper/split.h), and each rank reads the records that start in its
 * range — or, with `whole` (deterministic training), every rank reads every record, so the
 * rows and their order do not depend on the rank count.
 *
 * Each row goes to the validation set when a hash of its bytes (FNV-1a 64 of the record as
 * written, mixed) falls below data.validation, so every rank and every rank count agree on
 * the split without talking. The row's dense features, embedding ids (bags padded with id 0),
 * label and key (id column, else "FILE:LINE") are kept.
 *
 * Labels: class names are read from data.labels if that file exists (a name not in it is an
 * error naming FILE:LINE), else gathered from every rank's rows and sorted (as numbers when
 * all are integers, else bytewise). Multilabel rows hold names separated by
 * label_separator. Binary labels are 0/1, true/false, yes/no or one of two names of the
 * labels file. Values are numbers, one per label column.
 *
 * Memory: everything a rank keeps is counted as it is read; above data.max_memory_mb the load
 * stops with PC_ERR_CONFIG (training data must fit in memory: use more ranks, or sample).
 *
 * Ownership: a dataset owns its arrays; dataset_free releases them. The layout (feature names,
 * classes, vocabularies) is shared by the train, validation and test sets of one load.
 */
#ifndef PRECAST_DATASET_H
#define PRECAST_DATASET_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels/status.h"
#include "trainer/net.h"
#include "trainer/train_config.h"

typedef struct data_layout {
    int64_t dense_width;
    char **feature_names;      /* (dense_width) CSV column names, or "f<i>" for LIBSVM */
    int nembeds;
    char **embed_names;        /* (nembeds) the id columns */
    int64_t *embed_vocab;      /* (nembeds) table rows */
    int64_t *embed_bag;        /* (nembeds) ids per row */
    int64_t *embed_dim;        /* (nembeds) */
    char **classes;            /* class names (class, multilabel, binary with a labels file) */
    int64_t nclasses;
    int64_t outputs;           /* the net's outputs: classes, 1 for binary, label columns for values */
    bool labels_written;       /* the class names were gathered from the data (not read) */
} data_layout;

typedef struct dataset {
    int64_t rows;
    float *dense;              /* (rows, dense_width) */
    int64_t **ids;             /* (nembeds) each (rows, bag) */
    int32_t *cls;              /* (rows) class index: class labels */
    int64_t *ml_off;           /* (rows + 1) multilabel: classes of row r are ml_cls[ml_off[r] ..) */
    int32_t *ml_cls;
    float *target;             /* (rows, outputs) binary and value labels */
    char *keys;                /* row keys, NUL-separated; key r starts at keys + key_off[r] */
    int64_t *key_off;          /* (rows) */
} dataset;

typedef struct data_load_stats {
    int64_t rows_read;         /* records of this rank */
    int64_t bytes_read;
    int64_t memory_bytes;      /* what the rank keeps */
} data_load_stats;

/* Reads the training files of cfg into *train and *val (each rank its part, or all with
 * cfg->deterministic) and fills the layout; rank 0 then writes the class names to
 * cfg->labels_path when they were gathered. Collective over comm.
 * Errors (agreed by every rank, the message naming the file and line, or the rank):
 * PC_ERR_NOINPUT (no file matches), PC_ERR_DATA (a malformed row, a bad number, an unknown
 * class, an id outside its vocabulary), PC_ERR_CONFIG (a column missing from the header,
 * no rows, memory above data.max_memory_mb). On failure everything is freed. */
pc_status dataset_load(const train_config *cfg, MPI_Comm comm, data_layout *layout, dataset *train, dataset *val,
                       data_load_stats *stats, char *err, size_t errlen);

/* Reads cfg->test_paths on this process alone (every record, no split) with the layout of a
 * previous dataset_load: unknown classes and out-of-vocabulary ids are errors. Not collective. */
pc_status dataset_load_test(const train_config *cfg, const data_layout *layout, dataset *test, char *err,
                            size_t errlen);

/* Copies rows idx[0..n) of d into the net's inputs and labels (n <= net_batch_rows). */
void dataset_fill(const dataset *d, const data_layout *layout, const int64_t *idx, int64_t n, net *nt);

/* The key of row r ("user17", or "data.csv:42"). */
const char *dataset_key(const dataset *d, int64_t r);

void dataset_free(dataset *d);          /* zeroes it; accepts a zeroed one */
void data_layout_free(data_layout *l);  /* zeroes it */

#endif
