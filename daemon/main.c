/*
 * main.c - modfilterd: flags, start-up, signals, reload, shutdown.
 *
 * Start-up failures (config, model, bind) end the process with exit 1:
 * config and model errors printed as -t prints them, the others logged at
 * error level.  Once the workers run, nothing a request does ends it.  The main
 * thread keeps SIGHUP, SIGTERM and SIGINT blocked in every thread and takes
 * them with sigwait(): SIGHUP reloads config and model (the running ones stay
 * on any error), SIGTERM/SIGINT stop the workers gracefully.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "modfilterd.h"

#define MAIN_MAX_SETS 256

struct main_opts {
    const char *config_path;
    const char *sets[MAIN_MAX_SETS];
    unsigned n_sets;
    int check, foreground, verbose;
};

static void
main_usage(FILE *f)
{
    fprintf(f,
            "usage: modfilterd [-c FILE] [-t] [-f] [-v] "
            "[--set SECTION.KEY=VALUE ...]\n"
            "  -c FILE   config file (default config/modfilterd.conf)\n"
            "  -t        check the config, the model, the listen address,\n"
            "            the files written at start and the spool, then exit\n"
            "  -f        stay in the foreground, log to stderr\n"
            "  -v        more logging\n"
            "  --set S.K=V  override a config key (repeatable)\n");
}

/* The config file, then every --set, then the cross-key checks. */
static struct config *
main_load_config(const struct main_opts *o, struct config_error *err)
{
    struct config *c = config_new();
    unsigned i;

    if (c == NULL) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return NULL;
    }
    if (config_load_file(c, o->config_path, err) < 0)
        goto fail;
    for (i = 0; i < o->n_sets; i++)
        if (config_set_arg(c, o->sets[i], err) < 0)
            goto fail;
    if (config_check(c, err) < 0)
        goto fail;
    return c;
fail:
    config_free(c);
    return NULL;
}

/* model.path's model, whose labels are those cfg names; NULL with
 * "origin: model.path: path: reason" (or the label's key) in msg, like
 * the config's errors. */
static struct clf_model *
main_load_model(const struct config *cfg, char *msg, size_t len)
{
    const char *path = cfg->model_path;
    struct clf_model *m = NULL;
    struct clf_error e;
    struct config_error cerr;
    enum clf_status st;
    char where[240];

    memset(&e, 0, sizeof(e));
    st = clf_model_load(path, &m, &e);
    if (st != CLF_OK) {
        config_origin(cfg, "model", "path", where, sizeof(where));
        if (e.msg[0] && !strncmp(e.msg, path, strlen(path))) /* named */
            snprintf(msg, len, "%s: model.path: %s", where, e.msg);
        else
            snprintf(msg, len, "%s: model.path: %s: %s", where, path,
                     e.msg[0] ? e.msg : clf_status_str(st));
        return NULL;
    }
    if (config_check_labels(cfg, m, &cerr) < 0) {
        snprintf(msg, len, "%s", cerr.msg);
        clf_model_free(m);
        return NULL;
    }
    return m;
}

static int
main_write_port(const char *path, int port)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 ||
        rename(tmp, path) < 0) {
        log_err("server.port_file %s", path);
        return -1;
    }
    return 0;
}

static int
main_drop_privileges(const struct config *cfg)
{
    struct passwd *pw;

    if (geteuid() != 0)
        return 0;
    if (!cfg->user[0]) {
        log_warnx("running as root: set server.user to drop privileges");
        return 0;
    }
    pw = getpwnam(cfg->user);
    if (pw == NULL) {
        log_errx("server.user %s: no such user", cfg->user);
        return -1;
    }
    if (cfg->socket[0] && chown(cfg->socket, pw->pw_uid, pw->pw_gid) < 0)
        log_warn("chown %s", cfg->socket);
    if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        log_err("server.user %s: cannot switch", cfg->user);
        return -1;
    }
    log_info("switched to user %s", cfg->user);
    return 0;
}

/* -t: the account a daemon started now would serve as (server.user when
 * root, as main_drop_privileges does; else this process's).  *pw is NULL
 * for this process's own account.  -1 with the reason on stderr. */
static int
main_check_account(const struct config *cfg, struct passwd **pw)
{
    char where[240];

    *pw = NULL;
    if (geteuid() != 0 || !cfg->user[0])
        return 0;
    *pw = getpwnam(cfg->user);
    if (*pw != NULL)
        return 0;
    config_origin(cfg, "server", "user", where, sizeof(where));
    fprintf(stderr, "%s: server.user: %s: no such user\n", where, cfg->user);
    return -1;
}

/* -t: server.listen resolves as the start resolves it.  Binding is left
 * to the start: a port taken now may be free then, and a daemon running
 * on it now is no error of its config. */
static int
main_check_listen(const struct config *cfg)
{
    struct addrinfo *ai;
    char where[240], msg[256];

    if (!cfg->listen[0])
        return 0;
    if (http_resolve_tcp(cfg->listen, &ai, msg, sizeof(msg)) == 0) {
        freeaddrinfo(ai);
        return 0;
    }
    config_origin(cfg, "server", "listen", where, sizeof(where));
    fprintf(stderr, "%s: server.listen: %s: %s\n", where, cfg->listen, msg);
    return -1;
}

/* 0 when the account pw (NULL: this process's) may create files in dir;
 * else an errno.  Another account is tried in a child process that
 * switches to it, so modes, ACLs and read-only mounts all count. */
static int
main_writable_as(const char *dir, const struct passwd *pw)
{
    pid_t pid;
    int status;

    if (pw == NULL)
        return faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0 ? 0
                                                                      : errno;
    pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0) {
        if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
            setuid(pw->pw_uid) < 0)
            _exit(EPERM);
        _exit(access(dir, W_OK | X_OK) == 0 ? 0 : errno);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : EPERM;
}

/* -t: a directory the daemon writes in after any switch to server.user
 * (section.key = dir): it, or when missing the one it would be created in
 * (with parents: the nearest that exists, as mkdir -p), takes new files as
 * that account, and this process can list it (the start reads it before
 * the switch).  Changes nothing.  0 with *missing set or not, or -1 with
 * "origin: section.key: dir: reason" on stderr. */
static int
main_check_dir(const struct config *cfg, const char *section, const char *key,
               const char *dir, int parents, const struct passwd *pw,
               int *missing)
{
    char where[240], parent[PATH_MAX], reason[PATH_MAX + 128];
    const char *target = dir;
    struct stat sb;
    DIR *d;
    int e;

    *missing = 0;
    if (stat(dir, &sb) < 0) {
        if (errno != ENOENT) {
            snprintf(reason, sizeof(reason), "%s", strerror(errno));
            goto bad;
        }
        *missing = 1;
        snprintf(parent, sizeof(parent), "%s", dir);
        target = dirname(parent);
        /* created with its parents (mkdir -p): the nearest that exists */
        while (parents && stat(target, &sb) < 0 && errno == ENOENT &&
               strcmp(target, "/") && strcmp(target, "."))
            target = dirname((char *)target);
    } else if (!S_ISDIR(sb.st_mode)) {
        snprintf(reason, sizeof(reason), "not a directory");
        goto bad;
    } else if ((d = opendir(dir)) == NULL) {
        snprintf(reason, sizeof(reason), "cannot be read: %s", strerror(errno));
        goto bad;
    } else {
        closedir(d);
    }
    e = main_writable_as(target, pw);
    if (e == 0)
        return 0;
    config_origin(cfg, section, key, where, sizeof(where));
    if (*missing)
        fprintf(stderr, "%s: %s.%s: %s is missing and cannot be created in %s",
                where, section, key, dir, target);
    else
        fprintf(stderr, "%s: %s.%s: %s: not writable", where, section, key,
                dir);
    fprintf(stderr, "%s%s: %s\n", pw != NULL ? " by server.user " : "",
            pw != NULL ? pw->pw_name : "", strerror(e));
    return -1;
bad:
    config_origin(cfg, section, key, where, sizeof(where));
    fprintf(stderr, "%s: %s.%s: %s: %s\n", where, section, key, dir, reason);
    return -1;
}

/* -t with spool.path set: main_check_dir, and its segments read back
 * (damaged records are warnings, as in the daemon).  Takes no lock: a
 * running daemon's spool can be checked.  -1 (said on stderr). */
static int
main_check_spool(const struct config *cfg, const struct passwd *pw)
{
    char where[240], msg[600];
    const char *dir = cfg->spool_path;
    struct spool_stats st;
    int missing;

    if (main_check_dir(cfg, "spool", "path", dir, 0, pw, &missing) < 0)
        return -1;
    if (missing) {
        printf("spool %s: missing; the daemon will create it\n", dir);
        return 0;
    }
    config_origin(cfg, "spool", "path", where, sizeof(where));
    if (spool_check(dir, &st, msg, sizeof(msg)) < 0) {
        fprintf(stderr, "%s: %s\n", where, msg);
        return -1;
    }
    printf("spool %s: writable%s%s; %llu record(s), %llu bytes waiting for "
           "Redis; %llu damaged or torn region(s) skipped%s\n",
           dir, pw != NULL ? " by " : "", pw != NULL ? pw->pw_name : "",
           st.records, st.bytes, st.skipped,
           st.skipped ? " (warnings above)" : "");
    return 0;
}

/* -t: path (section.key), which the start creates (server.port_file,
 * server.socket) before any switch to server.user, so as this process:
 * its directory exists and takes new files, and nothing at path now would
 * stop the start (a directory; for a socket, anything but a socket).  A
 * live socket there is left to the start, as a port in use is.  -1 with
 * "origin: section.key: path: reason" on stderr. */
static int
main_check_created(const struct config *cfg, const char *section,
                   const char *key, const char *path, int is_socket)
{
    char where[240], parent[PATH_MAX], reason[PATH_MAX + 64];
    const char *dir;
    struct stat sb;
    int e;

    snprintf(parent, sizeof(parent), "%s", path);
    dir = dirname(parent);
    e = main_writable_as(dir, NULL);
    if (e != 0)
        snprintf(reason, sizeof(reason), "cannot be created in %s: %s", dir,
                 strerror(e));
    else if (lstat(path, &sb) < 0)
        return 0;
    else if (is_socket && !S_ISSOCK(sb.st_mode))
        snprintf(reason, sizeof(reason), "exists and is not a socket");
    else if (!is_socket && S_ISDIR(sb.st_mode))
        snprintf(reason, sizeof(reason), "is a directory");
    else
        return 0;
    config_origin(cfg, section, key, where, sizeof(where));
    fprintf(stderr, "%s: %s.%s: %s: %s\n", where, section, key, path, reason);
    return -1;
}

/* -t, beyond the config's own checks: what the start would stop on that
 * can be known now without binding or writing anything. */
static int
main_check(const struct config *cfg)
{
    struct passwd *pw;
    int missing;

    if (main_check_listen(cfg) < 0)
        return -1;
    if (cfg->listen[0] && cfg->port_file[0] &&
        main_check_created(cfg, "server", "port_file", cfg->port_file, 0) < 0)
        return -1;
    if (cfg->socket[0] &&
        main_check_created(cfg, "server", "socket", cfg->socket, 1) < 0)
        return -1;
    if (main_check_account(cfg, &pw) < 0)
        return -1;
    if (cfg->spool_path[0] && main_check_spool(cfg, pw) < 0)
        return -1;
    if (cfg->model_state_dir[0] &&
        main_check_dir(cfg, "model", "state_dir", cfg->model_state_dir, 1, pw,
                       &missing) < 0)
        return -1;
    return 0;
}

/* Secrets are meant for the daemon's account alone: say so when a secret
 * file is open to its group or to everyone (the daemon still starts: the
 * operator may share the group on purpose). */
static void
main_warn_open_secrets(const struct config *cfg)
{
    const struct {
        const char *key, *path;
    } files[] = {
        {"redis.password_file", cfg->redis_password_file},
        {"auth.submit_tokens_file", cfg->submit_tokens_file},
        {"auth.moderator_tokens_file", cfg->moderator_tokens_file},
        {"akismet.keys_file", cfg->akismet_keys_file},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct stat sb;
        if (files[i].path && files[i].path[0] &&
            stat(files[i].path, &sb) == 0 && (sb.st_mode & 077))
            log_warnx("%s: %s is open to other accounts (mode %04o); "
                      "chmod 600 it",
                      files[i].key, files[i].path,
                      (unsigned)(sb.st_mode & 07777));
    }
}

/* Keys a reload cannot change: they shaped sockets, threads, connections
 * and timers at start-up (daemon/README.md, the "reload" column). */
static const char *const main_restart_keys[] = {
    "server.*", "redis.*", "limits.*", "spool.*", "model.snapshot_interval_s",
    NULL,
};

/* Names the restart-only keys whose new values differ from those in
 * effect (running: the values the daemon started with). */
static void
main_warn_restart_keys(const struct config *running, const struct config *nw)
{
    char names[600];
    unsigned n =
        config_diff(running, nw, main_restart_keys, names, sizeof(names));

    if (n > 0)
        log_warnx("reload: %s changed; %s effect at restart", names,
                  n == 1 ? "it takes" : "they take");
}

static void
main_reload(const struct main_opts *o, const struct config *running,
            unsigned *generation)
{
    struct config_error err;
    struct config *cfg;
    struct clf_model *model;
    struct state *st;
    char msg[600];

    cfg = main_load_config(o, &err);
    if (cfg == NULL) {
        log_warnx("reload: %s; keeping the running configuration and model",
                  err.msg);
        return;
    }
    model = main_load_model(cfg, msg, sizeof(msg));
    if (model == NULL) {
        log_warnx("reload: %s; keeping the running configuration and model",
                  msg);
        config_free(cfg);
        return;
    }
    main_warn_restart_keys(running, cfg);
    main_warn_open_secrets(cfg);
    st = state_new(cfg, model, clf_model_id(model), ++*generation);
    if (st == NULL) {
        log_warnx("reload: out of memory; keeping the running model");
        return;
    }
    log_info("reloaded: model %s (%s), generation %u", st->model_id,
             st->cfg->model_path, st->generation);
    learn_publish(st); /* keeps what was learned on the same base model */
}

static int
main_parse_args(int argc, char **argv, struct main_opts *o)
{
    static const struct option longopts[] = {
        {"set", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof(*o));
    o->config_path = "config/modfilterd.conf";
    while ((ch = getopt_long(argc, argv, "c:tfvhV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o->config_path = optarg;
            break;
        case 't':
            o->check = 1;
            break;
        case 'f':
            o->foreground = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'S':
            if (o->n_sets == MAIN_MAX_SETS) {
                fprintf(stderr, "modfilterd: too many --set\n");
                return 2;
            }
            o->sets[o->n_sets++] = optarg;
            break;
        case 'h':
            main_usage(stdout);
            exit(0);
        case 'V':
            printf("modfilterd %s\n", MODFILTERD_VERSION);
            exit(0);
        default:
            main_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        main_usage(stderr);
        return 2;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct main_opts o;
    struct config_error err;
    struct config *cfg = NULL, *running = NULL;
    struct clf_model *model = NULL;
    struct state *st = NULL;
    struct spool *spool = NULL;
    struct addrlimit *addrlimit = NULL;
    struct worker *workers[WORKERS_MAX];
    unsigned n_workers = 0, i, generation = 1;
    int fds[2], n_fds = 0, port = -1, tcp_fd = -1, unix_fd = -1;
    int ret = 1, sig;
    char msg[600], base_id[24];
    /* What the start created, removed at exit: a reload may name others
     * (restart-only keys), which belong to whoever made them. */
    char *made_socket = NULL, *made_port_file = NULL;
    sigset_t set;

    memset(workers, 0, sizeof(workers));
    if (main_parse_args(argc, argv, &o) != 0)
        return 2;
    log_init(1, o.verbose);
    signal(SIGPIPE, SIG_IGN); /* hiredis and httpd write to sockets */

    cfg = main_load_config(&o, &err);
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    model = main_load_model(cfg, msg, sizeof(msg));
    if (model == NULL) {
        fprintf(stderr, "%s\n", msg);
        config_free(cfg);
        return 1;
    }
    if (o.check) {
        ret = main_check(cfg) < 0;
        if (ret == 0)
            printf("%s: configuration OK; model %s: %u label(s), id %s\n",
                   o.config_path, cfg->model_path, clf_model_label_count(model),
                   clf_model_id(model));
        clf_model_free(model);
        config_free(cfg);
        return ret;
    }
    snprintf(base_id, sizeof(base_id), "%s", clf_model_id(model));
    if (learn_init(cfg, &model) < 0) { /* the newest snapshot, if any */
        clf_model_free(model);
        config_free(cfg);
        return 1;
    }
    metrics_init();
    st = state_new(cfg, model, base_id, generation); /* owns both from here */
    if (st == NULL) {
        fprintf(stderr, "modfilterd: out of memory\n");
        return 1;
    }
    state_publish(st);

    if (cfg->listen[0]) {
        tcp_fd = http_listen_tcp(cfg->listen, &port);
        if (tcp_fd < 0)
            goto out;
        fds[n_fds++] = tcp_fd;
        if (cfg->port_file[0]) {
            if (main_write_port(cfg->port_file, port) < 0)
                goto out;
            made_port_file = strdup(cfg->port_file);
        }
    }
    if (cfg->socket[0]) {
        unix_fd = http_listen_unix(cfg->socket);
        if (unix_fd < 0)
            goto out;
        fds[n_fds++] = unix_fd;
        made_socket = strdup(cfg->socket);
    }
    if (main_drop_privileges(cfg) < 0)
        goto out;
    /* After the switch, so the files belong to server.user.  A spool that
     * cannot be used stops the start: it may hold acknowledged comments
     * only this daemon would send on, and without it a comment Redis
     * cannot take would get 503 where the operator asked for a spool. */
    if (cfg->spool_path[0]) {
        spool =
            spool_open(cfg->spool_path, cfg->spool_max_bytes, msg, sizeof(msg));
        if (spool == NULL) {
            log_errx("%s", msg);
            goto out;
        }
    }
    if (!o.foreground) {
        if (daemon(1, 0) < 0) {
            log_err("daemon");
            goto out;
        }
        log_init(0, o.verbose);
    }

    /* An inherited SIG_IGN (nohup, a shell's background job) would discard
     * these signals before sigwait() could take them. */
    signal(SIGHUP, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the workers */
    if (evthread_use_pthreads() < 0) {
        log_errx("libevent has no thread support");
        goto out;
    }
    n_workers = cfg->workers;
    if (n_workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        n_workers = n > 0 ? (unsigned)n : 1;
    }
    if (n_workers > WORKERS_MAX)
        n_workers = WORKERS_MAX;
    if (cfg->max_connections_per_addr > 0) {
        addrlimit = addrlimit_new(cfg->max_connections_per_addr);
        if (addrlimit == NULL) {
            log_errx("out of memory");
            goto out;
        }
    }
    for (i = 0; i < n_workers; i++) {
        workers[i] = worker_new(i, cfg, fds, (unsigned)n_fds);
        if (workers[i] == NULL)
            goto out;
        workers[i]->spool = spool;
        workers[i]->addrlimit = addrlimit;
    }
    http_workers_link(workers, n_workers);
    for (i = 0; i < n_workers; i++)
        if (worker_start(workers[i]) < 0)
            goto out;
    if (spool_drain_start(spool, cfg) < 0)
        goto out;
    if (cfg->listen[0])
        snprintf(msg, sizeof(msg), "listening on port %d%s%s", port,
                 cfg->socket[0] ? ", socket " : "", cfg->socket);
    else
        snprintf(msg, sizeof(msg), "listening on socket %s", cfg->socket);
    log_info("modfilterd %s: %s, %u worker(s), model %s (%s)",
             MODFILTERD_VERSION, msg, n_workers, st->model_id, cfg->model_path);
    main_warn_open_secrets(cfg);
    if (auth_count(cfg->auth, AUTH_SUBMIT) == 0)
        log_info("auth.submit_tokens is empty: /v1/comments and /v1/score "
                 "serve loopback and Unix-socket clients only");
    if (auth_count(cfg->auth, AUTH_MODERATOR) == 0)
        log_info("auth.moderator_tokens is empty: moderator routes refuse "
                 "every request; /metrics serves loopback and Unix-socket "
                 "clients only");
    /* What a reload cannot change, as it is now: the state (and cfg) is
     * replaced at each reload. */
    running = config_new();
    if (running == NULL || config_copy(running, cfg, main_restart_keys) < 0) {
        log_errx("out of memory");
        goto out;
    }
    /* Last: its first publish may free st (logged above). */
    if (learn_start(cfg) < 0)
        goto out;
    cfg = NULL; /* the published state owns it; a reload may free it */

    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_info("SIGHUP: reloading");
            main_reload(&o, running, &generation);
            continue;
        }
        log_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    ret = 0;
out:
    for (i = 0; i < n_workers; i++)
        worker_stop(workers[i]);
    for (i = 0; i < n_workers; i++)
        worker_join(workers[i]);
    for (i = 0; i < n_workers; i++)
        worker_free(workers[i]);
    /* After the workers, which may spool their last comments. */
    spool_close(spool);
    addrlimit_free(addrlimit); /* after the workers' connections closed */
    learn_stop();              /* writes the last snapshot */
    if (made_socket != NULL)
        unlink(made_socket);
    if (made_port_file != NULL)
        unlink(made_port_file);
    free(made_socket);
    free(made_port_file);
    if (tcp_fd >= 0)
        close(tcp_fd);
    if (unix_fd >= 0)
        close(unix_fd);
    state_publish(NULL);
    config_free(running);
    libevent_global_shutdown();
    if (ret == 0)
        log_info("stopped");
    return ret;
}
