/* tidectl.c: tidectl's main: global options, subcommand dispatch, and the ops-socket client
 * (tidectl.h) every subcommand uses. */
#include "tidectl.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/ops.h"
#include "utf8.h"
#include "version.h"

#define MAX_CMDS 128
/* How long tidectl waits for the control plane's answer: long enough for node actions with
 * deadlines (drain waits for in-flight sessions), short enough that a hung daemon is noticed. */
#define CALL_TIMEOUT_MS 120000

static struct {
    const char *name;
    tidectl_cmd_fn fn;
    const char *usage;
} cmds[MAX_CMDS];
static int ncmds;
static struct {
    const char *name;
    tidectl_help_fn fn;
} helps[MAX_CMDS];
static int nhelps;

void tidectl_register_help(const char *name, tidectl_help_fn fn) {
    if (nhelps == MAX_CMDS) {
        fprintf(stderr, "tidectl: too many help texts registered\n");
        abort();
    }
    helps[nhelps].name = name;
    helps[nhelps].fn = fn;
    nhelps++;
}

int tidectl_progress_wanted(const tidectl_ctx *ctx) {
    return !ctx->quiet && isatty(STDERR_FILENO);
}

void tidectl_register(const char *name, tidectl_cmd_fn fn, const char *usage) {
    if (ncmds == MAX_CMDS) {
        fprintf(stderr, "tidectl: too many subcommands registered\n");
        abort();
    }
    cmds[ncmds].name = name;
    cmds[ncmds].fn = fn;
    cmds[ncmds].usage = usage;
    ncmds++;
}

void tidectl_print_json(const cJSON *j) {
    char *s = cJSON_Print(j);
    /* cJSON escapes control characters but copies other bytes as they are: a string holding
     * Latin-1 (a cgroup name, a CSV path) would make the output invalid JSON */
    char *clean = s ? utf8_sanitize(s) : NULL;
    free(s);
    if (!clean) {
        fprintf(stderr, "tidectl: out of memory\n");
        return;
    }
    fputs(clean, stdout);
    fputc('\n', stdout);
    free(clean);
}

static int unreachable(const tidectl_ctx *ctx, const char *reason) {
    fprintf(stderr, "cannot reach control plane at %s: %s\n", ctx->socket_path, reason);
    return 2;
}

/* Writes all of buf; 0 or -errno. */
static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly len bytes with an overall deadline; 0, -ETIMEDOUT, -ECONNRESET on EOF, -errno. */
static int read_all(int fd, void *buf, size_t len, int timeout_ms) {
    char *p = buf;
    while (len > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return -ETIMEDOUT;
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return -ECONNRESET;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int tidectl_call(const tidectl_ctx *ctx, const char *cmd, cJSON *args, cJSON **data) {
    return tidectl_call_detail(ctx, cmd, args, data, NULL);
}

int tidectl_call_detail(const tidectl_ctx *ctx, const char *cmd, cJSON *args, cJSON **data,
                        cJSON **error_data) {
    int fd = -1, status = 2;
    char *req_text = NULL, *resp = NULL;
    cJSON *req = NULL, *root = NULL;
    *data = NULL;
    if (error_data) *error_data = NULL;

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(ctx->socket_path) >= sizeof sa.sun_path) {
        cJSON_Delete(args);
        return unreachable(ctx, "socket path too long");
    }
    strcpy(sa.sun_path, ctx->socket_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        status = unreachable(ctx, strerror(errno));
        cJSON_Delete(args);
        goto out;
    }
    req = cJSON_CreateObject();
    if (!req) {
        cJSON_Delete(args);
        goto oom;
    }
    cJSON_AddStringToObject(req, "cmd", cmd);
    cJSON_AddItemToObject(req, "args", args ? args : cJSON_CreateObject());
    req_text = cJSON_PrintUnformatted(req);
    if (!req_text) goto oom;
    size_t len = strlen(req_text);
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    int rc;
    if ((rc = write_all(fd, hdr, 4)) < 0 || (rc = write_all(fd, req_text, len)) < 0) {
        status = unreachable(ctx, strerror(-rc));
        goto out;
    }
    if ((rc = read_all(fd, hdr, 4, CALL_TIMEOUT_MS)) < 0) {
        status = unreachable(ctx, rc == -ECONNRESET  ? "connection closed without an answer"
                                  : rc == -ETIMEDOUT ? "no answer within 120 s"
                                                     : strerror(-rc));
        goto out;
    }
    size_t rlen = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
    if (rlen == 0 || rlen > OPS_MAX_FRAME) {
        status = unreachable(ctx, "answer has an invalid length");
        goto out;
    }
    resp = malloc(rlen + 1);
    if (!resp) goto oom;
    if ((rc = read_all(fd, resp, rlen, CALL_TIMEOUT_MS)) < 0) {
        status =
            unreachable(ctx, rc == -ECONNRESET ? "connection closed mid-answer" : strerror(-rc));
        goto out;
    }
    resp[rlen] = 0;
    root = cJSON_Parse(resp);
    if (!root || !cJSON_IsObject(root)) {
        fprintf(stderr, "tidectl: control plane sent an answer that is not a JSON object\n");
        status = 1;
        goto out;
    }
    cJSON *ok = cJSON_GetObjectItemCaseSensitive(root, "ok");
    if (cJSON_IsTrue(ok)) {
        *data = cJSON_DetachItemFromObjectCaseSensitive(root, "data");
        if (!*data) *data = cJSON_CreateNull();
        status = 0;
    } else {
        cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
        cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "status");
        fprintf(stderr, "tidectl %s: %s\n", cmd,
                cJSON_IsString(err) ? err->valuestring : "failed (no reason given)");
        status = cJSON_IsNumber(st) && st->valueint > 0 && st->valueint < 126 ? st->valueint : 1;
        if (error_data) *error_data = cJSON_DetachItemFromObjectCaseSensitive(root, "data");
    }
    goto out;
oom:
    fprintf(stderr, "tidectl: out of memory\n");
    status = 1;
out:
    cJSON_Delete(root);
    free(resp);
    free(req_text);
    cJSON_Delete(req);
    if (fd >= 0) close(fd);
    return status;
}

static int cmp_cmd(const void *a, const void *b) {
    const char *const *x = a, *const *y = b;
    return strcmp(*x, *y);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: tidectl [--socket PATH] [--json] [--quiet] COMMAND [ARGS...]\n"
            "       tidectl help [COMMAND] | tidectl COMMAND --help | tidectl --version\n\n"
            "  --socket PATH   control plane ops socket (default $TIDE_SOCKET or %s)\n"
            "  --json          print JSON for scripts instead of tables (always valid UTF-8)\n"
            "  --quiet, -q     no progress lines on stderr (they only appear on a terminal)\n"
            "  --version, -V   print tidectl's version\n"
            "  --help, -h      this text\n\n"
            "Times (--start, --end) take unix seconds, RFC 3339, now, now-DURATION or -DURATION\n"
            "(DURATION like 90s, 15m, 1h30m, 2d, 1w).\n\ncommands:\n",
            TIDECTL_DEFAULT_SOCKET);
    const char *names[MAX_CMDS];
    for (int i = 0; i < ncmds; i++)
        names[i] = cmds[i].name;
    qsort(names, (size_t)ncmds, sizeof names[0], cmp_cmd);
    for (int i = 0; i < ncmds; i++)
        for (int k = 0; k < ncmds; k++)
            if (cmds[k].name == names[i]) {
                /* the first line of each usage: the full text is `tidectl help NAME` */
                const char *u = cmds[k].usage ? cmds[k].usage : cmds[k].name;
                fprintf(f, "  %.*s\n", (int)strcspn(u, "\n"), u);
            }
    fprintf(f, "  help [COMMAND]           this text, or one command's usage\n"
               "  version [--json]         tidectl's version\n");
    fprintf(f, "\nexit status: 0 ok, 1 failure reported by the control plane, 2 usage error, bad "
               "input or control plane unreachable\n");
}

static int find_cmd(const char *name) {
    for (int k = 0; k < ncmds; k++)
        if (!strcmp(cmds[k].name, name)) return k;
    return -1;
}

/* `tidectl help NAME` and `tidectl NAME --help`: the command's usage and extra text. */
static void command_help(int k, FILE *f) {
    fprintf(f, "usage: tidectl %s\n", cmds[k].usage ? cmds[k].usage : cmds[k].name);
    for (int i = 0; i < nhelps; i++)
        if (!strcmp(helps[i].name, cmds[k].name)) helps[i].fn(f);
}

static int print_version(int json) {
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "version", TIDE_VERSION);
        tidectl_print_json(o);
        cJSON_Delete(o);
    } else {
        printf("tidectl %s\n", TIDE_VERSION);
    }
    return 0;
}

/* Whether the arguments after the subcommand ask for help (up to a "--"). */
static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) return 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    tidectl_ctx ctx = {.socket_path = getenv("TIDE_SOCKET"), .json = 0};
    if (!ctx.socket_path || !*ctx.socket_path) ctx.socket_path = TIDECTL_DEFAULT_SOCKET;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            ctx.json = 1;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            ctx.quiet = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
            return print_version(ctx.json);
        } else if (!strcmp(a, "--socket")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tidectl: --socket needs a PATH\n");
                return 2;
            }
            ctx.socket_path = argv[++i];
        } else if (!strncmp(a, "--socket=", 9)) {
            ctx.socket_path = a + 9;
        } else if (a[0] == '-') {
            fprintf(stderr, "tidectl: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    /* `--json` and `--quiet` may also follow the subcommand; they are removed before dispatch. */
    int sub_argc = 0;
    char **sub_argv = calloc((size_t)(argc - i + 1), sizeof *sub_argv);
    if (!sub_argv) return 1;
    for (int k = i; k < argc; k++) {
        if (k > i && !strcmp(argv[k], "--json"))
            ctx.json = 1;
        else if (k > i && (!strcmp(argv[k], "--quiet") || !strcmp(argv[k], "-q")))
            ctx.quiet = 1;
        else
            sub_argv[sub_argc++] = argv[k];
    }
    int rc;
    const char *name = sub_argv[0];
    if (!strcmp(name, "help")) {
        if (wants_help(sub_argc, sub_argv)) {
            printf("usage: tidectl help [COMMAND]   all commands, or one command's usage\n");
            rc = 0;
        } else if (sub_argc == 1) {
            usage(stdout);
            rc = 0;
        } else if (sub_argc == 2 && find_cmd(sub_argv[1]) >= 0) {
            command_help(find_cmd(sub_argv[1]), stdout);
            rc = 0;
        } else if (sub_argc == 2 &&
                   (!strcmp(sub_argv[1], "help") || !strcmp(sub_argv[1], "version"))) {
            usage(stdout);
            rc = 0;
        } else {
            fprintf(stderr, "tidectl help: unknown command '%s'\n", sub_argv[1]);
            usage(stderr);
            rc = 2;
        }
    } else if (!strcmp(name, "version")) {
        if (wants_help(sub_argc, sub_argv)) {
            printf("usage: tidectl version [--json]\n");
            rc = 0;
        } else if (sub_argc > 1) {
            fprintf(stderr,
                    "tidectl version: unexpected argument '%s'\n"
                    "usage: tidectl version [--json]\n",
                    sub_argv[1]);
            rc = 2;
        } else {
            rc = print_version(ctx.json);
        }
    } else if (find_cmd(name) < 0) {
        fprintf(stderr, "tidectl: unknown command '%s'\n", name);
        usage(stderr);
        rc = 2;
    } else if (wants_help(sub_argc, sub_argv)) {
        /* answered here for every command, so that no command sends "--help" anywhere */
        command_help(find_cmd(name), stdout);
        rc = 0;
    } else {
        rc = cmds[find_cmd(name)].fn(&ctx, sub_argc, sub_argv);
    }
    free(sub_argv);
    return rc;
}
