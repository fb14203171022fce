#!/usr/bin/env python3
"""Tables and plots of the studies in experiments/, from the `dsf train --log` CSVs.

    /usr/bin/python3 experiments/plot.py ptb|medium|seqlen|ablation|wikitext|paper|fashion OUTDIR

Reads OUTDIR/logs/NAME.csv (NAME = CONFIG_METHOD, or as each study names its
runs), writes OUTDIR/STUDY.csv (one row per run and evaluation), OUTDIR/table.md
(printed too) and OUTDIR/STUDY.png. Needs matplotlib (Debian python3-matplotlib)
only for the plot: without it the tables are still written.
"""
import csv
import math
import os
import sys

NAN = float("nan")


def read_log(path):
    """The rows of one `dsf train --log` CSV, split by kind, and the run's status:
    'done', 'failed' (the process stopped with an error: diverged runs) or 'partial'
    (running, or stopped before its end)."""
    rows = [r for r in csv.DictReader(open(path)) if r["kind"] != "kind"] if os.path.exists(path) else []
    # A resumed run appends to the log and its clock starts again: elapsed_s is made
    # cumulative, each restart continuing from the last training or validation row
    # before it (a test evaluation in between is not training time).
    offset = last = 0.0
    for r in rows:
        for k in ("step", "tokens", "epoch"):
            r[k] = int(r[k])
        for k in ("loss", "ppl", "lr", "grad_norm", "tokens_per_s", "elapsed_s"):
            r[k] = float(r[k])
        if r["elapsed_s"] + offset < last:
            offset = last
        r["elapsed_s"] += offset
        if r["kind"] != "test":
            last = r["elapsed_s"]
    done = path[:-4] + ".done"
    status = "partial"
    if os.path.exists(done):
        tag = open(done).read().strip()
        # paper_ptb.sh --stop-at: stopped on purpose, at a step before the run's end
        status = "failed" if tag == "failed" else "partial" if "stop-at=" in tag else "done"
    train = [r for r in rows if r["kind"] == "train"]
    valid = [r for r in rows if r["kind"] == "valid"]
    test = [r for r in rows if r["kind"] == "test"]
    return {"train": train, "valid": valid, "test": test[-1] if test else None, "status": status}


def train_tokens_per_s(log):
    """Training tokens over training time, from the windows between train rows."""
    tok = sec = 0.0
    prev = 0
    for r in log["train"]:
        n = r["tokens"] - prev
        prev = r["tokens"]
        if r["tokens_per_s"] > 0:
            tok += n
            sec += n / r["tokens_per_s"]
    return tok / sec if sec else NAN


def fmt(x, spec=".2f"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, float) and x > 1e5:
        return "diverged"
    return format(x, spec)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_table(out, lines):
    """Prints a Markdown table and writes it to OUTDIR/table.md."""
    text = "\n".join(lines)
    print(text)
    open(os.path.join(out, "table.md"), "w").write(text + "\n")


def runs_in(out):
    """NAME -> log for every OUTDIR/logs/NAME.csv, in the order the names sort."""
    d = os.path.join(out, "logs")
    names = sorted(n[:-4] for n in os.listdir(d) if n.endswith(".csv")) if os.path.isdir(d) else []
    return {n: read_log(os.path.join(d, n + ".csv")) for n in names}


def pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("(no matplotlib: apt-get install python3-matplotlib for the plots)", file=sys.stderr)
        return None


COLORS = {"bptt": "tab:blue", "dsf": "tab:red", "ft": "tab:green"}


def curve_panels(plt, out, study, groups, title):
    """Two rows of panels, one column per group (config): validation (markers)
    and training (thin) perplexity against training tokens and against wall-clock
    seconds."""
    n = len(groups)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 7), squeeze=False)
    for j, (g, runs) in enumerate(groups):
        for method, log in runs:
            c = COLORS.get(method.split(":")[0], None)
            for i, xkey in enumerate(("tokens", "elapsed_s")):
                ax = axes[i][j]

                def x(r):
                    return r["elapsed_s"] if xkey == "elapsed_s" else r["tokens"] / 1e6

                tr = [r for r in log["train"] if r["ppl"] < 3000]
                ax.plot([x(r) for r in tr], [r["ppl"] for r in tr], color=c, lw=0.8, alpha=0.5)
                va = [r for r in log["valid"] if r["ppl"] < 3000]
                ax.plot([x(r) for r in va], [r["ppl"] for r in va], "o-", color=c, label=method)
        axes[0][j].set_title(f"{title} {g}")
        axes[0][j].set_xlabel("training tokens (millions)")
        axes[1][j].set_xlabel("wall-clock seconds")
        for i in range(2):
            axes[i][j].set_yscale("log")
            lo, hi = axes[i][j].get_ylim()
            axes[i][j].set_ylim(lo, min(hi, 1000))
            axes[i][j].set_ylabel("perplexity (points: validation, lines: training)")
            axes[i][j].grid(alpha=0.3)
        axes[0][j].legend()
    fig.tight_layout()
    path = os.path.join(out, f"{study}.png")
    fig.savefig(path, dpi=90)
    print(f"plot: {path}")


def study_ptb(out, study="ptb_methods", title="GRU"):
    runs = runs_in(out)
    rows, table, groups = [], [], {}
    for name, log in runs.items():
        config, method = name.rsplit("_", 1)
        groups.setdefault(config, []).append((method, log))
        tps = train_tokens_per_s(log)
        ends = [0.0] + [r["elapsed_s"] for r in log["valid"]]
        for k, r in enumerate(log["valid"]):
            rows.append([config, method, r["epoch"], r["step"], f"{r['ppl']:.3f}",
                         f"{log['test']['ppl']:.3f}" if log["test"] and k == len(log["valid"]) - 1 else "",
                         f"{ends[k + 1] - ends[k]:.1f}", f"{r['elapsed_s']:.1f}", f"{tps:.0f}"])
        best = min((r["ppl"] for r in log["valid"]), default=NAN)
        per_epoch = (ends[-1] / len(log["valid"])) if log["valid"] else NAN
        table.append((config, method, len(log["valid"]), log["valid"][-1]["step"] if log["valid"] else 0,
                      best, log["test"]["ppl"] if log["test"] else NAN, per_epoch, tps, log["status"]))
    write_csv(os.path.join(out, f"{study}.csv"),
              ["config", "method", "epoch", "step", "valid_ppl", "test_ppl", "seconds", "elapsed_s",
               "train_tokens_per_s"], rows)
    lines = ["| config | method | evaluations | steps | best valid ppl | test ppl | s per evaluation | "
             "train tokens/s | status |", "|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        lines.append(f"| {t[0]} | {t[1]} | {t[2]} | {t[3]} | {fmt(t[4])} | {fmt(t[5])} | {fmt(t[6], '.0f')} "
                     f"| {fmt(t[7], '.0f')} | {t[8]} |")
    write_table(out, lines)
    plt = pyplot()
    if plt and groups:
        curve_panels(plt, out, study, sorted(groups.items(), key=lambda kv: config_key(kv[0])), title)


def study_seqlen(out):
    rows = []
    for name, log in runs_in(out).items():
        T, method = name[1:].split("_", 1)
        last = log["train"][-1] if log["train"] else None
        per_step = last["tokens"] / last["step"] if last else NAN
        tps = train_tokens_per_s(log)
        valid = log["valid"][-1]["ppl"] if log["valid"] else NAN
        test = log["test"]["ppl"] if log["test"] else NAN
        rows.append((int(T), int(per_step / int(T)) if last else 0, method, last["step"] if last else 0,
                     valid, test, tps, 1000 * per_step / tps if tps == tps else NAN, log["status"]))
    rows.sort()
    write_csv(os.path.join(out, "seqlen.csv"),
              ["T", "B", "method", "steps", "valid_ppl", "test_ppl", "train_tokens_per_s", "ms_per_step",
               "status"], [[f"{x:.3f}" if isinstance(x, float) else x for x in r] for r in rows])
    lines = ["| T | B | method | steps | valid ppl | test ppl | train tokens/s | ms/step | status |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {fmt(r[4])} | {fmt(r[5])} | {fmt(r[6], '.0f')} "
                     f"| {fmt(r[7], '.1f')} | {r[8]} |")
    write_table(out, lines)
    plt = pyplot()
    if not plt or not rows:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method in sorted({r[2] for r in rows}):
        rs = [r for r in rows if r[2] == method]
        c = COLORS.get(method.split(":")[0])
        ok = [r for r in rs if r[4] == r[4] and r[4] < 1e5]
        axes[0].plot([r[0] for r in ok], [r[4] for r in ok], "o-", color=c, label=method)
        axes[1].plot([r[0] for r in rs], [r[7] for r in rs], "o-", color=c, label=method)
    axes[0].set_ylabel("validation perplexity")
    axes[1].set_ylabel("ms per training step")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("window length T (B x T fixed)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(out, "seqlen.png")
    fig.savefig(path, dpi=90)
    print(f"plot: {path}")


def study_ablation(out):
    """The bar chart of bench/feedback_ablation.sh's table.md."""
    rows = []
    for line in open(os.path.join(out, "table.md")):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("run", "---"):
            continue

        def num(c):
            try:
                return float(c)
            except ValueError:
                return NAN
        rows.append((cells[0], num(cells[1]), num(cells[2]), num(cells[4]), num(cells[5])))
    print(open(os.path.join(out, "table.md")).read().strip())
    plt = pyplot()
    if not plt or not rows:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = [r[0] for r in rows]
    cap = 2 * max((r[1] for r in rows if r[1] == r[1] and r[1] < 1e4), default=1000)
    valid = [min(r[1], cap) if r[1] == r[1] else cap for r in rows]
    colors = ["tab:gray" if (r[1] != r[1] or r[1] >= cap) else COLORS.get(r[0].split("_")[0], "tab:red")
              for r in rows]
    axes[0].bar(names, valid, color=colors)
    for i, r in enumerate(rows):
        if r[1] != r[1] or r[1] >= cap:
            axes[0].text(i, cap * 0.95, "diverged", rotation=90, ha="center", va="top", color="white")
    axes[0].set_ylabel("validation perplexity")
    axes[0].set_ylim(0, cap)
    axes[1].bar(names, [r[3] for r in rows], color=[COLORS.get(n.split("_")[0], "tab:red") for n in names])
    axes[1].set_ylabel("gradient cosine with exact BPTT")
    axes[1].set_ylim(0, 1.05)
    for ax in axes:
        ax.tick_params(axis="x", rotation=60)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    path = os.path.join(out, "ablation.png")
    fig.savefig(path, dpi=90)
    print(f"plot: {path}")


def study_paper(out):
    """experiments/paper_ptb.sh (and paper_wikitext.sh): runs CONFIG_METHOD[_FEEDBACK]_sSEED
    under the authors' recipe (OUT/recipe.txt names it); the figure is the best of the validations so far (partial while running)."""
    import re
    rows, table, groups = [], [], {}
    for name, log in runs_in(out).items():
        config, rest = name.split("_", 1)
        label, seed = rest.rsplit("_s", 1)
        per_epoch = NAN
        outf = os.path.join(out, "logs", name + ".out")
        if os.path.exists(outf):
            m = re.search(r"\((\d+) per epoch\)", open(outf).read())
            per_epoch = int(m.group(1)) if m else NAN
        steps = max([r["step"] for r in log["train"] + log["valid"]], default=0)
        epochs = steps / per_epoch if per_epoch == per_epoch else NAN
        train_s = max([r["elapsed_s"] for r in log["train"]], default=NAN)
        tps = train_tokens_per_s(log)
        for r in log["valid"]:
            rows.append([name, config, label, f"{r['step'] / per_epoch:.3f}", r["step"],
                         f"{r['ppl']:.3f}", f"{r['elapsed_s']:.1f}"])
        best = min((r["ppl"] for r in log["valid"]), default=NAN)
        groups.setdefault(config, []).append((label, seed, log, per_epoch))
        table.append((config, label, seed, epochs, len(log["valid"]), best,
                      log["test"]["ppl"] if log["test"] else NAN,
                      train_s / 60 / epochs if epochs else NAN, tps, log["status"]))
    write_csv(os.path.join(out, "paper.csv"),
              ["run", "config", "method", "epoch", "step", "valid_ppl", "elapsed_s"], rows)
    lines = ["| config | method | seed | epochs done | validations | best valid ppl | test ppl | "
             "min per epoch | train tokens/s | status |", "|---|---|---|---|---|---|---|---|---|---|"]
    for t in sorted(table, key=lambda t: (config_key(t[0]), t[1], t[2])):
        lines.append(f"| {t[0]} | {t[1]} | {t[2]} | {fmt(t[3])} | {t[4]} | {fmt(t[5])} | {fmt(t[6])} "
                     f"| {fmt(t[7], '.1f')} | {fmt(t[8], '.0f')} | {t[9]} |")
    write_table(out, lines)
    paper_compare(out, groups)
    plt = pyplot()
    if not plt or not groups:
        return
    keys = sorted(groups, key=config_key)
    recipe = os.path.join(out, "recipe.txt")
    data = "PTB"
    if os.path.exists(recipe) and open(recipe).read().strip() == "paper-wikitext":
        data = "WikiText-2"
    # A panel per config with the three methods (every seed); where dsf ran with
    # other feedbacks, a second panel with those beside the seed-1 runs of the three.
    main = ("bptt", "dsf_linspace", "ft")
    panels = []
    for k in keys:
        panels.append((f"GRU {k}", [g for g in groups[k] if g[0] in main]))
        other = [g for g in groups[k] if g[0] not in main]
        if other:  # the three cut to the feedbacks' span, for a readable scale
            span = max((r["step"] for g in other for r in g[2]["valid"]), default=0)
            cut = [(g[0], g[1], {"valid": [r for r in g[2]["valid"] if r["step"] <= span]}, g[3])
                   for g in groups[k] if g[0] in main and g[1] == "1"]
            panels.append((f"GRU {k}, dsf's feedbacks (seed 1)", cut + other))
    palette = ["tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive",
               "tab:cyan", "black"]
    shade = {}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), squeeze=False)
    for ax, (title, runs) in zip(axes[0], panels):
        for label, seed, log, per_epoch in sorted(runs, key=lambda g: g[:2]):
            va = log["valid"]
            if label in main:
                color = COLORS.get(label.split("_")[0])
            else:
                color = shade.setdefault(label, palette[len(shade) % len(palette)])
            ax.plot([r["step"] / per_epoch for r in va], [r["ppl"] for r in va],
                    ".-" if seed == "1" else ".--", color=color, label=f"{label} s{seed}", lw=1)
        ax.set_title(f"{data}, the authors' recipe, {title}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation perplexity")
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, min(hi, 600))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "paper.png")
    fig.savefig(path, dpi=90)
    print(f"plot: {path}")


def paper_compare(out, groups):
    """OUT/compare.md: the runs of a config at the same steps (runs of one --epochs
    validate at the same steps whatever their method, feedback, seed or --stop-at),
    as perplexities and as ratios to BPTT of the same seed. First, for every method
    with two seeds or more, the mean and range over the seeds at each step that all
    of them reached; then every run of seed 1 at every third validation, and its
    ratio to BPTT at the last validation that both reached."""
    lines = []
    for config in sorted(groups, key=config_key):
        ppl, per_epoch = {}, None  # (label, seed) -> {step: ppl}
        for label, seed, log, pe in groups[config]:
            ppl[(label, seed)] = {r["step"]: r["ppl"] for r in log["valid"]}
            per_epoch = per_epoch or pe
        if not per_epoch or not any(lab == "bptt" for lab, _ in ppl):
            continue

        def ratio(lab, seed, step):
            ref = ppl.get(("bptt", seed), {}).get(step)
            return ppl[(lab, seed)][step] / ref if ref else NAN

        def spread(xs, spec):
            return f"{fmt(sum(xs) / len(xs), spec)} ({fmt(min(xs), spec)}–{fmt(max(xs), spec)})"

        labels = sorted({lab for lab, _ in ppl}, key=lambda lab: (lab != "bptt", lab))
        seeds = {lab: sorted(s for l2, s in ppl if l2 == lab) for lab in labels}
        multi = [lab for lab in labels if len(seeds[lab]) > 1 and set(seeds[lab]) <= set(seeds["bptt"])]
        if len(multi) > 1 and "bptt" in multi:
            n = min(len(seeds[lab]) for lab in multi)
            steps = sorted(set.intersection(*(set(ppl[(lab, s)]) for lab in multi for s in seeds[lab])))
            lines += [f"## {config}: {n} seeds ({', '.join(seeds['bptt'])}), validation perplexity "
                      "mean (min–max) and, per seed, the ratio to BPTT of the same seed", "",
                      "| epoch | " + " | ".join(multi) + " | " +
                      " | ".join(f"{lab} / bptt" for lab in multi if lab != "bptt") + " |",
                      "|---" * (2 * len(multi)) + "|"]
            for st in steps:
                cells = [spread([ppl[(lab, s)][st] for s in seeds[lab]], ".2f") for lab in multi]
                cells += [spread([ratio(lab, s, st) for s in seeds[lab]], ".3f")
                          for lab in multi if lab != "bptt"]
                lines.append(f"| {st / per_epoch:.1f} | " + " | ".join(cells) + " |")
            lines.append("")
        first = [lab for lab in labels if "1" in seeds[lab]]
        steps = sorted(set().union(*(ppl[(lab, "1")] for lab in first)))
        if not steps:
            continue
        ref = set(ppl.get(("bptt", "1"), {}))
        shared = {lab: max(set(ppl[(lab, "1")]) & ref, default=None) for lab in first}
        shown = sorted(set(steps[2::3] + [steps[-1]] + [v for v in shared.values() if v]))
        lines += [f"## {config}, seed 1: validation perplexity at the same steps ('-': not "
                  "reached), and the ratio to BPTT at the last validation of the run that BPTT "
                  "reached too (its epoch)", "",
                  "| run | " + " | ".join(f"{st / per_epoch:.1f}" for st in shown) + " | / bptt |",
                  "|---" * (len(shown) + 2) + "|"]
        for lab in first:
            own, last = ppl[(lab, "1")], shared[lab]
            r = f"{fmt(ratio(lab, '1', last), '.3f')} ({last / per_epoch:.1f})" if last else "-"
            lines.append(f"| {lab} | " + " | ".join(fmt(own.get(st)) for st in shown) + f" | {r} |")
        lines.append("")
    text = "\n".join(lines)
    open(os.path.join(out, "compare.md"), "w").write(text)
    if text:
        print(text)


def study_fashion(out):
    """experiments/fashion.sh: `dsf classify` runs TASK_METHOD[_FEEDBACK], whose logs
    have kind,epoch,step,loss,accuracy,lr,grad_norm,pixels_per_s,elapsed_s."""
    import re
    d = os.path.join(out, "logs")
    names = sorted(n[:-4] for n in os.listdir(d) if n.endswith(".csv")) if os.path.isdir(d) else []
    rows, table, groups = [], [], {}
    for name in names:
        log = [r for r in csv.DictReader(open(os.path.join(d, name + ".csv"))) if r["kind"] != "kind"]
        task, label = name.split("_", 1)
        valid = [r for r in log if r["kind"] == "valid"]
        test = [r for r in log if r["kind"] == "test"]
        train = [r for r in log if r["kind"] == "train"]
        done = os.path.exists(os.path.join(d, name + ".done"))
        # elapsed_s restarts with each resumed process: add up the segments
        total, last, secs = 0.0, 0.0, []
        for r in valid:
            e = float(r["elapsed_s"])
            total += e - last if e >= last else e
            last = e
            secs.append(total)
        pps = [float(r["pixels_per_s"]) for r in train if float(r["pixels_per_s"]) > 0]
        for r in valid:
            rows.append([name, task, label, r["epoch"], r["loss"], r["accuracy"]])
        groups.setdefault(task, []).append((label, [(int(r["epoch"]), float(r["accuracy"])) for r in valid]))
        table.append((task, label, len(valid), max((float(r["accuracy"]) for r in valid), default=NAN),
                      float(test[-1]["accuracy"]) if test else NAN,
                      secs[-1] / 60 / len(secs) if secs else NAN,
                      sum(pps) / len(pps) if pps else NAN, "done" if done else "partial"))
    write_csv(os.path.join(out, "fashion.csv"), ["run", "task", "method", "epoch", "loss", "accuracy"], rows)
    lines = ["| task | method | epochs | best valid accuracy | test accuracy | min per epoch | pixels/s | status |",
             "|---|---|---|---|---|---|---|---|"]
    for t in table:
        lines.append(f"| {t[0]} | {t[1]} | {t[2]} | {fmt(t[3], '.4f')} | {fmt(t[4], '.4f')} | {fmt(t[5], '.1f')} "
                     f"| {t[6]:.0f} | {t[7]} |" if math.isfinite(t[6]) else f"| - | {t[7]} |")
    write_table(out, lines)
    plt = pyplot()
    if not plt or not groups:
        return
    keys = sorted(groups)
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4.2), squeeze=False)
    dsf_shades = ["tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]
    for ax, k in zip(axes[0], keys):
        runs = sorted(groups[k])
        shade = {}
        for label, _ in runs:
            if label.startswith("dsf"):
                shade[label] = dsf_shades[len(shade) % len(dsf_shades)]
        color = [shade.get(label, COLORS.get(label.split("_")[0])) for label, _ in runs]
        title = f"{'sequential' if k == 'seq' else 'permuted'} Fashion-MNIST, T = 784"
        if max(len(pts) for _, pts in runs) == 1:  # one validation a run: a bar each
            ax.barh(range(len(runs)), [pts[0][1] for _, pts in runs], color=color)
            ax.set_yticks(range(len(runs)))
            ax.set_yticklabels([label for label, _ in runs], fontsize=8)
            ax.invert_yaxis()
            for i, (_, pts) in enumerate(runs):
                ax.text(pts[0][1], i, f" {pts[0][1]:.3f}", va="center", fontsize=8)
            ax.set_xlabel(f"validation accuracy after epoch {runs[0][1][0][0]:g}")
            ax.set_xlim(0, 1)
            ax.axvline(0.1, color="gray", lw=0.8, ls=":")  # chance
        else:
            for (label, pts), c in zip(runs, color):
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label, color=c)
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation accuracy")
            ax.legend(fontsize=8)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(out, "fashion.png")
    fig.savefig(path, dpi=90)
    print(f"plot: {path}")


def config_key(c):
    try:
        layers, hidden = c.split("x")
        return (int(hidden), int(layers))
    except ValueError:
        return (0, 0)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in STUDIES:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    STUDIES[sys.argv[1]](sys.argv[2])


STUDIES = {"ptb": study_ptb, "medium": lambda out: study_ptb(out, "ptb_medium", "PTB medium"),
           "seqlen": study_seqlen, "ablation": study_ablation,
           "wikitext": lambda out: study_ptb(out, "wikitext", "block"), "paper": study_paper,
           "fashion": study_fashion}

if __name__ == "__main__":
    main()
