#include "jsonl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

int jsonl_open(jsonl_reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    if (!path || strcmp(path, "-") == 0) {
        r->f = stdin;
        r->name = "stdin";
        return 0;
    }
    r->f = fopen(path, "r");
    r->name = path;
    if (!r->f) return -1;
    struct stat st; /* fopen takes a directory; reading it fails only later */
    if (fstat(fileno(r->f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(r->f);
        r->f = NULL;
        errno = EISDIR;
        return -1;
    }
    return 0;
}

bool jsonl_next(jsonl_reader *r)
{
    ssize_t n;
    while ((n = getline(&r->line, &r->cap, r->f)) >= 0) {
        r->lineno++;
        size_t len = (size_t)n;
        /* a byte-order mark, as some Windows editors write, is no part of the first event */
        if (r->lineno == 1 && len >= 3 && memcmp(r->line, "\xEF\xBB\xBF", 3) == 0) {
            len -= 3;
            memmove(r->line, r->line + 3, len + 1);
        }
        while (len > 0 && (r->line[len - 1] == '\n' || r->line[len - 1] == '\r'))
            r->line[--len] = '\0';
        size_t i = 0;
        while (i < len && (r->line[i] == ' ' || r->line[i] == '\t'))
            i++;
        if (i == len) continue; /* blank lines separate nothing */
        r->len = len;
        return true;
    }
    return false;
}

int jsonl_close(jsonl_reader *r)
{
    int failed = r->f && ferror(r->f);
    int saved = errno;
    if (r->f && r->f != stdin) fclose(r->f);
    free(r->line);
    memset(r, 0, sizeof *r);
    if (!failed) return 0;
    errno = saved ? saved : EIO;
    return -1;
}
