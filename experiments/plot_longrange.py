#!/usr/bin/env python3
"""Tables and plot of experiments/longrange.sh, from OUT/longrange.csv.

    /usr/bin/python3 experiments/plot_longrange.py OUTDIR

Writes OUTDIR/table.md (the token accuracy per task, delay and method, and the
sequence accuracy where it differs, the means over seeds; printed too) and OUTDIR/longrange.png: a column per task, token
accuracy above and sequence accuracy below, against the delay, a line per
method (the mean over seeds, the min-max range shaded when there are several),
chance dashed. Needs matplotlib (Debian python3-matplotlib) only for the plot.
"""
import csv
import os
import sys

# The best accuracy without a memory (data/tasks.h): per token, and for a whole
# sequence (copy has 5 answers, the others one).
CHANCE = {"copy": (1 / 8, (1 / 8) ** 5), "add": (0.1, 0.1), "recall": (1 / 8, 1 / 8)}
STYLE = {"bptt": ("C0", "o"), "dsf": ("C3", "s"), "dsf-diag": ("C2", "^"), "ft": ("C7", "x")}


def load(path):
    """{(task, method): {delay: [(token_acc, seq_acc) per seed]}} and the orders seen."""
    runs, tasks, methods = {}, [], []
    for r in csv.DictReader(open(path)):
        t, m = r["task"], r["method"]
        if t not in tasks:
            tasks.append(t)
        if m not in methods:
            methods.append(m)
        acc = (float(r["token_acc"]), float(r["seq_acc"]))
        runs.setdefault((t, m), {}).setdefault(int(r["delay"]), []).append(acc)
    return runs, tasks, methods


def mean(v):
    return sum(v) / len(v)


def table(runs, tasks, methods):
    """Token accuracy per task; sequence accuracy too where it differs (copy)."""
    lines = []
    for t in tasks:
        delays = sorted({d for m in methods for d in runs.get((t, m), {})})
        accs = [a for m in methods for v in runs.get((t, m), {}).values() for a in v]
        nseeds = max(len(v) for m in methods for v in runs.get((t, m), {}).values())
        for k, what in enumerate(("token", "sequence")):
            if k == 1 and all(a[0] == a[1] for a in accs):
                continue
            chance = CHANCE[t][k] if t in CHANCE else float("nan")
            lines.append(f"### {t}: {what} accuracy (chance {chance:.3g})"
                         + (f", mean of {nseeds} seeds" if nseeds > 1 else ""))
            lines.append("")
            lines.append("| delay | " + " | ".join(methods) + " |")
            lines.append("|---:|" + "---:|" * len(methods))
            for d in delays:
                cells = []
                for m in methods:
                    v = runs.get((t, m), {}).get(d)
                    cells.append(f"{mean([a[k] for a in v]):.3f}" if v else "")
                lines.append(f"| {d} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def plot(runs, tasks, methods, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.ticker
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(tasks), figsize=(4.2 * len(tasks), 6.4), squeeze=False,
                             sharex="col")
    for col, t in enumerate(tasks):
        for row, what in enumerate(("token accuracy", "sequence accuracy")):
            ax = axes[row][col]
            for m in methods:
                pts = sorted(runs.get((t, m), {}).items())
                if not pts:
                    continue
                xs = [d for d, _ in pts]
                vals = [[acc[row] for acc in v] for _, v in pts]
                color, marker = STYLE.get(m, (None, "."))
                ax.plot(xs, [mean(v) for v in vals], marker=marker, color=color, label=m)
                if max(len(v) for v in vals) > 1:
                    ax.fill_between(xs, [min(v) for v in vals], [max(v) for v in vals],
                                    color=color, alpha=0.15, linewidth=0)
            if t in CHANCE:
                ax.axhline(CHANCE[t][row], color="k", linestyle="--", linewidth=0.8,
                           label="chance")
            ax.set_xscale("symlog", linthresh=1)
            delays = sorted({d for m in methods for d in runs.get((t, m), {})})
            ax.set_xticks(delays)
            ax.set_xticklabels([str(d) for d in delays], fontsize=8)
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_ylim(-0.02, 1.02)
            ax.grid(True, alpha=0.3)
            if row == 0:
                ax.set_title(t)
            else:
                ax.set_xlabel("delay D")
            if col == 0:
                ax.set_ylabel(what)
    axes[0][0].legend(loc="lower left", fontsize=8)
    fig.suptitle("held-out accuracy against delay: a 1-layer GRU (H = 64) trained with each "
                 "gradient method", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    runs, tasks, methods = load(os.path.join(out, "longrange.csv"))
    if not runs:
        sys.exit(f"plot_longrange.py: no runs in {out}/longrange.csv")
    text = table(runs, tasks, methods)
    print(text)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(text + "\n")
    try:
        plot(runs, tasks, methods, os.path.join(out, "longrange.png"))
        print(f"wrote {out}/longrange.png")
    except ImportError:
        print("no matplotlib: no plot (apt-get install python3-matplotlib)")


if __name__ == "__main__":
    main()
