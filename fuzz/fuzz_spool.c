/* libFuzzer target: the spool reader (daemon/spool.c).  The input is
 * written as a spool directory and read the way a restarted daemon reads
 * it: spool_open counts the backlog, a cursor reads every record, a commit
 * writes the checkpoint and removes what was read.
 *
 * First byte: bit 0: the next 32 bytes are the checkpoint file "drained";
 * bit 1: prepend a valid segment header (so that mutations reach the
 * records); the rest is segment 1.  Every record read must be one that
 * spool_encode would write: an id of 1..SPOOL_ID_MAX bytes without NUL,
 * JSON inside the record. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modfilterd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[64];

static void
fuzz_write(const char *name, const uint8_t *p, size_t len, int header)
{
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", fuzz_dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        __builtin_trap();
    if (header && write(fd, "MFSPOOL1\1\0\0\0\0\0\0\0", 16) != 16)
        __builtin_trap();
    if (len > 0 && write(fd, p, len) != (ssize_t)len)
        __builtin_trap();
    close(fd);
}

static void
fuzz_clean(void)
{
    DIR *d = opendir(fuzz_dir);
    struct dirent *e;
    char path[400];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", fuzz_dir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spool *s;
    struct spool_cursor c;
    struct spool_record r;
    struct spool_stats st;
    unsigned long long n = 0;
    char err[300];
    int got;

    if (fuzz_dir[0] == '\0') {
        const char *tmp = getenv("TMPDIR");

        snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fuzz-spool-XXXXXX",
                 tmp && strlen(tmp) < 40 ? tmp : "/tmp");
        if (mkdtemp(fuzz_dir) == NULL)
            __builtin_trap();
        log_init(1, 0);
    }
    if (size < 1)
        return 0;
    fuzz_clean();
    if ((data[0] & 1) && size >= 33) {
        fuzz_write("drained", data + 1, 32, 0);
        fuzz_write("seg-0000000000000001.spool", data + 33, size - 33,
                   data[0] & 2);
    } else {
        fuzz_write("seg-0000000000000001.spool", data + 1, size - 1,
                   data[0] & 2);
    }
    s = spool_open(fuzz_dir, 1ULL << 30, err, sizeof(err));
    if (s == NULL)
        return 0;
    spool_stats(s, &st);
    spool_cursor_init(s, &c);
    while ((got = spool_read(s, &c, &r)) == 1) {
        size_t id_len = strlen(r.id);

        if (id_len == 0 || id_len > SPOOL_ID_MAX ||
            r.json_len > SPOOL_RECORD_MAX)
            __builtin_trap();
        if (r.json_len > 0) { /* the whole record is readable (ASan) */
            volatile char last = r.json[r.json_len - 1];

            (void)last;
        }
        n++;
    }
    /* The backlog counted at open is exactly what the reader returns. */
    if (got == 0 && n != st.records)
        __builtin_trap();
    spool_commit(s, &c, NULL, 0);
    spool_cursor_release(&c);
    spool_close(s);
    return 0;
}
