/*
 * main.c - `modfilter`: train, forget, score, explain and evaluate models
 * (and, with the moderation work, drive a running daemon's queue).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: modfilter COMMAND [options]\n"
    "\n"
    "  train   --model OUT.mfm [--from BASE.mfm] [--languages L,L] "
    "[--prior LABEL=P] FILE.jsonl...\n"
    "  forget  --model OUT.mfm --from BASE.mfm [--strict] FILE.jsonl...\n"
    "  score   --model M.mfm [-c FILE] [--set thresholds.KEY=V] [--reasons] "
    "[--strict]\n"
    "          [FILE.jsonl | -]\n"
    "  explain --model M.mfm [-c FILE] [--set thresholds.KEY=V] \"text\"\n"
    "  eval    --folds FOLDS.tsv --label LABEL [training options] FILE.jsonl\n"
    "  export  --state-dir DIR [--base BASE.mfm] --model OUT.mfm   (a daemon's "
    "learned model)\n"
    "  queue   length|list|show ID|claim N|approve ID|reject ID [--label L]|"
    "undo ID|history\n"
    "          [--url URL] [--token TOKEN] [-c FILE] [--json]\n"
    "\n"
    "modfilter COMMAND --help (or -h): that command's usage.\n"
    "Training options (train, eval): --languages, --default-language, "
    "--prior LABEL=P,\n"
    "  --features words,pairs,chars,meta,langchars, --alpha A, --min-df N,\n"
    "  --weights FAMILY=W,... (word,url,email,mention,emoji,pair,chars,meta),\n"
    "  --chargrams MIN-MAX,\n"
    "  --max-bytes N, --max-tokens N, --min-examples N, --strict.\n"
    "  With train --from only --prior and --strict: the others are the "
    "base model's.\n"
    "Invalid input lines are reported as file:line: reason on standard "
    "error and\nskipped (--strict: the run stops with exit code 1).\n"
    "\n"
    "Exit codes: 0 success; 1 failure (I/O, bad model file, invalid input "
    "under --strict);\n2 usage error.\n";

/* -h or --help anywhere after a command: that command's usage. */
static int
is_help(const char *arg)
{
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *usage;
    } cmds[] = {{"train", cmd_train, cli_usage_train},
                {"forget", cmd_forget, cli_usage_forget},
                {"score", cmd_score, cli_usage_score},
                {"explain", cmd_explain, cli_usage_explain},
                {"eval", cmd_eval, cli_usage_eval},
                {"export", cmd_export, cli_usage_export},
                {"queue", cmd_queue, cli_usage_queue}};
    if (argc < 2 || is_help(argv[1]) || !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name))
            continue;
        /* No command takes "-h" or "--help" as a value: a file name, an
         * id or a text that starts with '-' is refused as an option. */
        for (int k = 2; k < argc; k++)
            if (is_help(argv[k])) {
                fputs(cmds[i].usage, stdout);
                return fflush(stdout) == 0 ? 0 : 1;
            }
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "modfilter: unknown command '%s'\n%s", argv[1], usage);
    return EXIT_USAGE;
}
