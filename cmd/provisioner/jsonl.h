/* The JSON-lines input of simulate, explain, encode and produce-events: a file named on the
 * command line (NULL or "-": stdin) read a line at a time, blank lines skipped, each numbered
 * for FILE:LINE in messages. */
#ifndef PROVISIONER_JSONL_H
#define PROVISIONER_JSONL_H

#include <stdbool.h>
#include <stdio.h>

typedef struct jsonl_reader {
    FILE *f;
    const char *name; /* the path, or "stdin" */
    char *line;       /* the current line, without its "\n" or "\r\n" */
    size_t len;
    unsigned long lineno; /* of the current line, from 1 */
    size_t cap;
} jsonl_reader;

/* -1 with errno when the file cannot be opened. */
int jsonl_open(jsonl_reader *r, const char *path);
/* Moves to the next line that is not blank; false at the end of the input or on a read error. */
bool jsonl_next(jsonl_reader *r);
/* -1 with errno when reading failed before the end. */
int jsonl_close(jsonl_reader *r);

#endif
