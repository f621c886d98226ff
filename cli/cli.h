/*
 * cli.h - the `modfilter` command-line tool: one file per command group.
 *
 * Exit codes (also in `modfilter --help`): 0 success, 1 runtime failure
 * (I/O, bad model file, invalid input under --strict), 2 usage error.
 */
#ifndef MODFILTER_CLI_H
#define MODFILTER_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "classifier.h"

#define EXIT_USAGE 2

/* jsonl.c: one record of a training or scoring file. */
struct record {
    char *id;   /* NULL when absent */
    char *text; /* required */
    size_t text_len;
    char *lang; /* NULL when absent */
    unsigned n_labels;
    char labels[CLF_MAX_LABELS][CLF_LABEL_MAX];
    int values[CLF_MAX_LABELS];
};

/* Reads a JSON Lines file ("-" = stdin) record by record. */
struct jsonl;
struct jsonl *jsonl_open(const char *path); /* NULL: errno set */
/* 1 a record, 0 end of file, -1 an invalid line (message in err, formatted
 * "file:line: reason"; the caller decides whether to go on), -2 the file
 * could not be read ("file: reason"; the caller stops: a run on part of a
 * file is not a success). The record's strings are owned by the reader and
 * valid until the next call. */
int jsonl_next(struct jsonl *j, struct record *rec, char *err, size_t len);
/* "file:line: why" for the line read last, into err (as jsonl_next does);
 * returns -1. */
int jsonl_error(const struct jsonl *j, char *err, size_t len, const char *why);
void jsonl_close(struct jsonl *j);

/* clf_label_valid's rule, for messages. */
#define LABEL_RULE "a-z, 0-9, _ and -, at most 31 bytes"

/* Training options shared by train and eval. */
struct train_opts {
    struct clf_settings settings;
    struct {
        char label[CLF_LABEL_MAX];
        double p;
    } priors[CLF_MAX_LABELS];
    unsigned n_priors;
    int strict;
    const char *setting; /* the first settings flag given (not --prior or
                            --strict): a --from model keeps its own */
};
void train_opts_init(struct train_opts *o);
/* Parse one training option at argv[*i] (advancing *i over its value);
 * 1 taken, 0 not a training option, -1 bad value (message printed). */
int train_opts_parse(struct train_opts *o, int argc, char **argv, int *i);

/* Learn (or forget) every record of a file; counts to *learned etc. */
int train_file(struct clf_scorer *sc, struct clf_model *m, const char *path,
               int forget, int strict, unsigned long *learned,
               unsigned long *dups, unsigned long *errors);

/* Each command's usage: on standard error after a usage error, on standard
 * output for `modfilter COMMAND --help` (main.c). */
extern const char cli_usage_train[], cli_usage_forget[], cli_usage_score[],
    cli_usage_explain[], cli_usage_eval[], cli_usage_export[],
    cli_usage_queue[];

int cmd_train(int argc, char **argv);
int cmd_forget(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_queue(int argc, char **argv); /* queue.c: against a daemon */

#endif
