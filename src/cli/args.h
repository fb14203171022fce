// args.h: a table-driven command-line parser. Each subcommand declares its
// options once; parsing, range checks, `--help` and error messages come from
// the table. Accepts `--name value` and `--name=value`.
#ifndef DSF_ARGS_H
#define DSF_ARGS_H

#include <stdint.h>

typedef enum { ARG_INT, ARG_I64, ARG_FLOAT, ARG_STR, ARG_FLAG } arg_type;

typedef struct {
    const char *name;  // without the leading "--"
    arg_type type;
    void *ptr;         // int*, int64_t*, double*, const char**, int*
    double min, max;   // inclusive range for numbers
    const char *help;
    int set;           // filled by args_parse: given on the command line
} arg_spec;

// One table entry: OPT("name", ARG_INT, &var, min, max, "help").
#define OPT(name, type, ptr, min, max, help) {name, type, ptr, min, max, help, 0}

// Returns 0 when parsed, 1 when --help was printed, -1 with the error set.
int args_parse(int argc, char **argv, arg_spec *specs, int n, const char *usage);
// Whether the option called name was given.
int args_given(const arg_spec *specs, int n, const char *name);
void args_print_help(const arg_spec *specs, int n, const char *usage);

#endif
