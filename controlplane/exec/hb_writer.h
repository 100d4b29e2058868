/* hb_writer.h: the HAProxyBackend executor's records written off the event loop. A write to
 * disk takes milliseconds to tens of milliseconds on a busy disk (ext4 flushes a file renamed
 * over another; fsync waits for the device), and a loop that waits for it delays every other
 * action and answer: here one worker thread writes, and the loop only hands it the text.
 *
 * A write: the text to PATH.tmp, renamed over PATH (from then on every reader, such as a
 * restarted control plane, sees it), then fsync of the file and of its directory (durable).
 * Per file: at most one write under way; a text put while one is under way waits, and a later
 * put replaces it (only the newest text of a file is ever written next), so files end as the
 * last put left them, and a file is never written by two threads at once. A waiter (cb) is
 * called on the loop once a text holding its put, or a later one of the same file, is in
 * place (rc 0; the fsync follows) or could not be written (-errno; logged here with the path).
 * Between the rename and the fsync a power loss may lose the change (ext4 orders the renamed
 * file's data before the rename; elsewhere the file may come back empty, and a reader that
 * finds no valid record reconciles from the fleet alone). At hb_writer_free every text put is
 * written and made durable before it returns (on the loop's thread for those not yet
 * started). */
#ifndef TIDE_HB_WRITER_H
#define TIDE_HB_WRITER_H

#include <ev.h>
#include <stddef.h>

typedef struct hb_writer hb_writer;
typedef void (*hb_writer_cb)(void *arg, int rc);

/* Returns 0 or -ENOMEM / -errno of the thread pool. */
int hb_writer_new(struct ev_loop *loop, hb_writer **out);
/* Writes what is still waiting (see above), then frees. Accepts NULL. Waiters are not called. */
void hb_writer_free(hb_writer *w);
/* Queues text (taken over, freed by the writer) as the new content of path (< 1024 bytes).
 * cb (may be NULL) is called as said above; when the thread cannot take the write (its queue
 * full, out of memory) it is written at once on the caller's thread and cb is called before
 * put returns. Returns 0, or -ENOMEM / -ENAMETOOLONG (text freed, cb not called). */
int hb_writer_put(hb_writer *w, const char *path, char *text, hb_writer_cb cb, void *arg);
/* Removes every waiter with this arg (its owner goes away): their cb is not called. */
void hb_writer_forget(hb_writer *w, void *arg);
/* The newest text put for path that may not be on disk yet (NULL: the file holds the newest):
 * what a reader of the file must take instead. Valid until the next call into the writer. */
const char *hb_writer_pending(hb_writer *w, const char *path);
/* Writes text as path at once on the caller's thread (temporary file, fsync, rename, fsync of
 * the directory). Returns 0 or -errno. */
int hb_writer_write_now(const char *path, const char *text);

#endif
