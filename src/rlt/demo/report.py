"""The demo's report: accuracies of the four students (and, with the cold start, of two of them after
student-rl), the reward before and after RL, plots, samples.

Everything is read back from the files the stages wrote (evaluation and distillation summaries, the
RL run's metrics), through the commands' typed outputs, so a report can be rebuilt from a finished run folder.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rlt.commands.distill import DistillOutputs
from rlt.data import read_json, write_json
from rlt.demo.pipeline import Stage, StageResult
from rlt.demo.stages import COLD_START_STUDENTS, TRANSFER_STUDENTS, DemoOutputs, SeedFolders
from rlt.run_folder import SUMMARY, OutputFile
from rlt.toy.task import GOLD, explanation_kind, numbers_of


@dataclass(frozen=True)
class ReportFiles:
    """The files of a demo's report folder."""

    folder: Path
    summary_md = OutputFile("summary.md")
    summary_json = OutputFile(SUMMARY)
    stages = OutputFile("stages.json")
    commands = OutputFile("commands.sh")
    accuracy_plot = OutputFile("accuracy.png")
    rl_plot = OutputFile("rl_reward.png")
    reward_outcome_plot = OutputFile("reward_outcome.png")
    samples = OutputFile("samples.md")

    def read_summary(self) -> dict:
        return read_json(self.summary_json)


STUDENTS = {
    "answer_only": "answers only (lower bound)",
    "warmup_teacher": "warm-up teacher's explanations",
    "rl_teacher": "RL teacher's explanations",
    "gold": "gold explanations (upper bound)",
}
TEACHERS = {"teacher_sft": "warm-up teacher", "teacher_rl": "RL teacher"}
REWARD_TERMS = {"rlt/reward": "reward", "rlt/r_ss": "r_SS", "rlt/r_kl": "r_KL", "rlt/missing_tag_penalty": "m"}


def _spread(values: Sequence[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "per_seed": list(values)}


def kind_shares(distillation: DistillOutputs) -> dict[str, float]:
    """Share of a teacher's explanations of each kind (gold, a corruption, or other), largest first."""
    kinds = Counter(explanation_kind(numbers_of(r["question"]), r["reasoning_trace"])
                    for r in distillation.read_messages())
    total = sum(kinds.values())
    return {kind: count / total for kind, count in kinds.most_common()}


def _mean_kind_shares(per_seed: Sequence[dict[str, float]]) -> dict[str, float]:
    kinds = {kind for shares in per_seed for kind in shares}
    means = {kind: statistics.fmean(shares.get(kind, 0.0) for shares in per_seed) for kind in kinds}
    return dict(sorted(means.items(), key=lambda item: -item[1]))


def _seeds(root: Path, seeds: Sequence[int]) -> list[SeedFolders]:
    return [DemoOutputs(root).seed(seed) for seed in seeds]


def collect(root: Path, seeds: Sequence[int]) -> dict:
    runs = _seeds(root, seeds)
    accuracy = {kind: _spread([r.evaluation(kind).read_summary()["pass@1"] for r in runs]) for kind in STUDENTS}
    reward = {teacher: _spread([r.distillation(teacher).read_summary()["mean_reward"] for r in runs])
              for teacher in TEACHERS}
    kinds = {teacher: [kind_shares(r.distillation(teacher)) for r in runs] for teacher in TEACHERS}
    gold = {teacher: _spread([shares.get("gold", 0.0) for shares in kinds[teacher]]) for teacher in TEACHERS}
    eval_gold = runs[0].evaluation("gold").read_summary()
    return {"accuracy": accuracy, "reward": reward, "teacher_gold_rate": gold,
            "teacher_kinds": {teacher: _mean_kind_shares(kinds[teacher]) for teacher in TEACHERS},
            "evaluation": evaluation_settings(eval_gold),
            "heldout_problems": eval_gold["problems"],
            "base_model_pretraining": _pretraining(read_json(runs[0].world.manifest))}


def _pretraining(manifest: dict) -> dict | None:
    """The world's pretraining record, with the facts it was on (``+``: additions, ``+-``: and subtractions)."""
    record = manifest.get("pretraining")
    return record and {**record, "operators": manifest["config"].get("pretrain_operators", "+")}


def collect_cold_start(root: Path, seeds: Sequence[int]) -> dict:
    """Held-out accuracy of each distilled student before and after its cold-start RL, over the seeds."""
    runs = _seeds(root, seeds)
    return {student: {moment: _spread([r.evaluation(f"{prefix}{student}").read_summary()["pass@1"] for r in runs])
                      for moment, prefix in (("before", ""), ("after", "cold_start_"))}
            for student in COLD_START_STUDENTS}


def explained_shares(distillation: DistillOutputs) -> tuple[float, float]:
    """Of a teacher's explanations: the share that is gold, and the share whose last step ends at the solution
    (the answer the teacher was shown)."""
    rows = distillation.read_messages()
    gold = [explanation_kind(numbers_of(r["question"]), r["reasoning_trace"]) == GOLD for r in rows]
    reached = [re.findall(r"=(\d+)", r["reasoning_trace"])[-1:] == [r["solution"]] for r in rows]
    return statistics.fmean(gold), statistics.fmean(reached)


def collect_transfer(root: Path, seeds: Sequence[int], shift: str) -> dict:
    """Held-out accuracy on the new task of the students distilled from each teacher's explanations of it (and
    of one on answers alone), and what share of each teacher's explanations is gold or ends at the solution."""
    runs = _seeds(root, seeds)
    accuracy = {kind: _spread([r.evaluation(f"{shift}_{kind}").read_summary()["pass@1"] for r in runs])
                for kind in TRANSFER_STUDENTS}
    explained = {teacher: [explained_shares(r.distillation(teacher, f"{shift}_")) for r in runs]
                 for teacher in TEACHERS}
    rl, warmup = accuracy["rl_teacher"]["per_seed"], accuracy["warmup_teacher"]["per_seed"]
    return {"shift": shift, "accuracy": accuracy,
            "rl_beats_warmup_per_seed": [a > b for a, b in zip(rl, warmup)],
            "teacher_gold_rate": {t: _spread([gold for gold, _ in shares]) for t, shares in explained.items()},
            "teacher_reaches_solution": {t: _spread([reached for _, reached in shares])
                                         for t, shares in explained.items()}}


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            result[i] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson's on tie-averaged ranks); None when either side is constant.

    Written here because it is the report's one statistic and scipy is not otherwise a dependency."""
    rx, ry = ranks(x), ranks(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else None


def collect_reward_outcome(root: Path, seeds: Sequence[int]) -> dict:
    """Each reward bucket's mean reward, main sources and student's held-out accuracy, per seed and on the means
    over seeds, and the Spearman correlation of reward and accuracy on each."""
    runs = _seeds(root, seeds)
    per_seed = []
    for run in runs:
        buckets = run.graded_scores.read_buckets()
        accuracy = [run.evaluation(f"reward_bucket{b['bucket']}").read_summary()["pass@1"] for b in buckets]
        per_seed.append({"mean_reward": [b["mean_reward"] for b in buckets], "accuracy": accuracy,
                         "sources": [b["sources"] for b in buckets]})
    means = {key: [statistics.fmean(values) for values in zip(*(s[key] for s in per_seed))]
             for key in ("mean_reward", "accuracy")}
    return {"buckets": len(means["accuracy"]), "per_seed": per_seed, "means": means,
            "spearman": spearman(means["mean_reward"], means["accuracy"]),
            "spearman_per_seed": [spearman(s["mean_reward"], s["accuracy"]) for s in per_seed]}


def ordering_holds(accuracy: dict[str, float], problems: int) -> bool:
    """The paper's claim in miniature: answer-only < warm-up-teacher student < RL-teacher student ≤ gold.

    The last comparison allows sampling error: two students at the ceiling (an RL teacher that writes
    gold explanations, and gold ones) differ by chance, and an RL-teacher student one question above the
    gold one has not beaten the bound. So it is RL ≤ gold + two standard errors of the difference of two
    accuracies measured on ``problems`` held-out questions each (per question, not per sample: a
    question's samples are not independent). The other comparisons are strict.
    """
    rl, gold = accuracy["rl_teacher"], accuracy["gold"]
    margin = 2 * math.sqrt((rl * (1 - rl) + gold * (1 - gold)) / problems)
    return accuracy["answer_only"] < accuracy["warmup_teacher"] < rl <= gold + margin


def evaluation_settings(eval_summary: dict) -> str:
    """How the students were evaluated, in words, from an ``rlt evaluate`` summary."""
    if eval_summary["greedy"]:
        return "greedy decoding"
    return (f"pass@1 over {eval_summary['num_samples']} samples at temperature {eval_summary['temperature']:g}, "
            f"top-p {eval_summary['top_p']:g}")


def reward_before_rl(run: SeedFolders) -> dict[str, float]:
    """The reward and its terms over the warm-up teacher's explanations of the training questions (every
    sampled candidate, not only the kept best): where the RL curves start, at step 0."""
    candidates = run.distillation("teacher_sft").read_candidates()
    names = {"rlt/reward": "reward", "rlt/r_ss": "r_ss", "rlt/r_kl": "r_kl",
             "rlt/missing_tag_penalty": "missing_tag_penalty"}
    return {key: statistics.fmean(c["reward_terms"][name] for c in candidates) for key, name in names.items()}


def plot_rl_curves(root: Path, seeds: Sequence[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(REWARD_TERMS), figsize=(4 * len(REWARD_TERMS), 3.4))
    for seed, run in zip(seeds, _seeds(root, seeds)):
        logs = [e for e in run.trainer("teacher_rl").read_metrics() if "rlt/reward" in e]
        start = reward_before_rl(run)
        for axis, (key, label) in zip(axes, REWARD_TERMS.items()):
            line, = axis.plot([0] + [e["step"] for e in logs], [start[key]] + [e[key] for e in logs],
                              label=f"seed {seed}")
            axis.plot([0], [start[key]], "o", color=line.get_color())
            axis.set_title(label)
            axis.set_xlabel("GRPO step (0: the warm-up teacher)")
    axes[0].legend()
    figure.suptitle("RLT reward and its terms during teacher RL (training prompts)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_reward_outcome(outcome: dict, seeds: Sequence[int], path: Path) -> None:
    """Each bucket's student accuracy against the bucket's mean reward, a line per seed (symlog x: rewards span
    two orders of magnitude below zero)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 3.8))
    for seed, run in zip(seeds, outcome["per_seed"]):
        axis.plot(run["mean_reward"], run["accuracy"], "o-", label=f"seed {seed}", alpha=0.8)
    means = outcome["means"]
    for number, (reward, accuracy) in enumerate(zip(means["mean_reward"], means["accuracy"]), start=1):
        axis.annotate(str(number), (reward, accuracy), textcoords="offset points", xytext=(4, 4), fontsize=7)
    axis.set_xscale("symlog")
    axis.set_xlabel("mean RLT reward of the bucket's explanations (symlog)")
    axis.set_ylabel("its student's held-out accuracy")
    axis.set_ylim(-0.02, 1.02)
    rho = outcome["spearman"]
    axis.set_title(f"Reward against outcome: {outcome['buckets']} buckets, Spearman "
                   f"{'n/a' if rho is None else f'{rho:.2f}'} on the means")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_accuracy(accuracy: dict, path: Path) -> None:
    """Horizontal bars, one per student, labels beside them (they never overlap); dots are the seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 3.2))
    names = list(STUDENTS)[::-1]  # lower bound at the bottom, upper bound on top
    positions = range(len(names))
    axis.barh(positions, [accuracy[n]["mean"] for n in names], xerr=[accuracy[n]["std"] for n in names],
              color=["#66aa66", "#4c8fd0", "#e0a060", "#bbbbbb"], capsize=4)
    for i, name in enumerate(names):
        axis.scatter(accuracy[name]["per_seed"], [i] * len(accuracy[name]["per_seed"]), color="black", s=10,
                     zorder=3)
        axis.text(min(accuracy[name]["mean"] + accuracy[name]["std"] + 0.02, 0.9), i,
                  f"{accuracy[name]['mean']:.3f}", va="center", fontsize=8)
    axis.set_yticks(list(positions), [STUDENTS[n] for n in names], fontsize=8)
    axis.set_xlabel("held-out accuracy (bars: mean over seeds, dots: each seed)")
    axis.set_xlim(0, 1)
    axis.set_title("Students distilled from each source")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_samples(root: Path, seed: int, path: Path, count: int = 8) -> None:
    run = DemoOutputs(root).seed(seed)
    before = run.distillation("teacher_sft").read_messages()[:count]
    after = run.distillation("teacher_rl").read_messages()[:count]
    lines = [f"# Explanations before and after RL (seed {seed})", "",
             "| question | solution | warm-up teacher | RL teacher |", "| --- | --- | --- | --- |"]
    for b, a in zip(before, after):
        cells = [b["question"], b["solution"], _kinded(b), _kinded(a)]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def _kinded(row: dict) -> str:
    kind = explanation_kind(numbers_of(row["question"]), row["reasoning_trace"])
    return f"`{row['reasoning_trace']}` ({kind})"


def accuracy_table(summary: dict) -> str:
    """The demo's one table: each student's held-out accuracy (markdown), as ``rlt demo`` prints it."""
    acc = summary["accuracy"]
    return "\n".join([
        "| student trained on | held-out accuracy (mean ± std) | per seed |", "| --- | --- | --- |",
        *(f"| {STUDENTS[k]} | {acc[k]['mean']:.3f} ± {acc[k]['std']:.3f} | "
          f"{', '.join(f'{v:.3f}' for v in acc[k]['per_seed'])} |" for k in STUDENTS)])


def cold_start_table(summary: dict) -> str:
    """Accuracy of the distilled students before and after the same ``student-rl`` budget (markdown)."""
    def cell(spread: dict) -> str:
        return f"{spread['mean']:.3f} ± {spread['std']:.3f} ({', '.join(f'{v:.3f}' for v in spread['per_seed'])})"

    return "\n".join([
        "| cold start: student-rl from the student trained on | before (per seed) | after (per seed) |",
        "| --- | --- | --- |",
        *(f"| {STUDENTS[k]} | {cell(v['before'])} | {cell(v['after'])} |" for k, v in summary["cold_start"].items())])


def transfer_table(summary: dict) -> str:
    """Held-out accuracy on the new task of each transfer student, then the verdict and what the teachers wrote."""
    transfer = summary["transfer"]

    def cell(spread: dict) -> str:
        return f"{spread['mean']:.3f} ± {spread['std']:.3f} | {', '.join(f'{v:.3f}' for v in spread['per_seed'])}"

    wins = transfer["rl_beats_warmup_per_seed"]
    teachers = "; ".join(f"{TEACHERS[t]}: {transfer['teacher_gold_rate'][t]['mean']:.1%} gold, "
                         f"{transfer['teacher_reaches_solution'][t]['mean']:.1%} ending at the solution"
                         for t in TEACHERS)
    return "\n".join([
        f"| transfer to {transfer['shift']}: student trained on | held-out accuracy (mean ± std) | per seed |",
        "| --- | --- | --- |",
        *(f"| {STUDENTS[k].replace('explanations', 'explanations of the new task')} | "
          f"{cell(transfer['accuracy'][k])} |" for k in TRANSFER_STUDENTS), "",
        f"RL-teacher student above the warm-up-teacher student on {sum(wins)} of {len(wins)} seeds. "
        f"The teachers' explanations of the new task ({teachers}, means over seeds)."])


def reward_outcome_table(summary: dict) -> str:
    """Each reward bucket: its mean reward, its two main sources and its student's accuracy (markdown), then
    the Spearman correlations."""
    outcome = summary["reward_outcome"]
    seeds = summary["seeds"]

    def sources(number: int) -> str:
        counts = Counter()
        for run in outcome["per_seed"]:
            counts.update(run["sources"][number])
        total = sum(counts.values())
        return ", ".join(f"{source} {count / total:.0%}" for source, count in counts.most_common(2))

    def rho(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    means = outcome["means"]
    return "\n".join([
        "| reward bucket (1: lowest) | mean reward | main sources | student's held-out accuracy |",
        "| --- | --- | --- | --- |",
        *(f"| {n + 1} | {means['mean_reward'][n]:+.2f} | {sources(n)} | {means['accuracy'][n]:.3f} |"
          for n in range(len(means["accuracy"]))),
        "", f"Spearman correlation of a bucket's mean reward and its student's accuracy: {rho(outcome['spearman'])} "
        f"on the means over {len(seeds)} seed(s); per seed "
        f"{', '.join(f'{rho(r)} (seed {s})' for s, r in zip(seeds, outcome['spearman_per_seed']))}."])


def _duration(summary: dict) -> str:
    """The run's wall time, saying so when earlier runs did part of the work (a resumed demo)."""
    minutes, resumed = f"{summary['wall_seconds'] / 60:.1f} minutes", summary["stages_resumed"]
    return f"{minutes} (this run; {resumed} of {summary['stages_run']} stages finished by an earlier one)" \
        if resumed else minutes


def _markdown(summary: dict, files: ReportFiles) -> str:
    reward, gold = summary["reward"], summary["teacher_gold_rate"]
    seeds = len(summary["seeds"])
    lines = [
        "# rlt demo", "",
        f"{seeds} seed(s), {_duration(summary)}. Students trained on the toy task's "
        f"training questions, evaluated on held-out ones ({summary['evaluation']}, exact answer).", "",
        *_base_model_lines(summary["base_model_pretraining"], seeds),
        accuracy_table(summary), "",
        "| teacher | mean RLT reward of its explanations | exactly-gold explanations |", "| --- | --- | --- |",
        *(f"| {TEACHERS[t]} | {reward[t]['mean']:+.3f} ± {reward[t]['std']:.3f} | "
          f"{gold[t]['mean']:.1%} ± {gold[t]['std']:.1%} |" for t in TEACHERS), "",
        "What the teachers write (share of their explanations of the training questions, mean over seeds; "
        "`other` is none of the toy task's kinds, mostly a wrong sum):", "",
        *(f"- {TEACHERS[t]}: " + ", ".join(f"{kind} {share:.1%}" for kind, share in summary["teacher_kinds"][t].items())
          for t in TEACHERS), "",
        f"Expected ordering (answer-only < warm-up-teacher student < RL-teacher student ≤ gold, the last "
        f"within two standard errors over {summary['heldout_problems']} held-out questions per seed): "
        f"**{'holds' if summary['ordering_holds'] else 'does NOT hold'}** on the means, "
        f"{_per_seed_ordering(summary)}. RL-teacher student minus warm-up-teacher student: "
        f"{summary['rl_minus_warmup']:+.3f} on the means; per seed "
        f"{', '.join(f'{gap:+.3f}' for gap in summary['rl_minus_warmup_per_seed'])}.", "",
        *([cold_start_table(summary), ""] if "cold_start" in summary else []),
        *([transfer_table(summary), ""] if "transfer" in summary else []),
        *(["Reward against outcome: explanations of graded quality (rlt.toy.graded) and both teachers' own, "
           "pooled, cut by RLT reward into buckets, a student distilled from each:", "",
           reward_outcome_table(summary), "", f"![reward against outcome]({files.reward_outcome_plot.name})", ""]
          if "reward_outcome" in summary else []),
        f"![accuracy]({files.accuracy_plot.name})", "", f"![RL curves]({files.rl_plot.name})", "",
        f"Samples: [{files.samples.name}]({files.samples.name}). Commands of every stage: "
        f"[{files.commands.name}]({files.commands.name}). Stage times and peak memory: "
        f"[{files.stages.name}]({files.stages.name}).",
    ]
    return "\n".join(lines) + "\n"


def _per_seed_ordering(summary: dict) -> str:
    failed = [seed for seed, holds in zip(summary["seeds"], summary["ordering_holds_per_seed"]) if not holds]
    held = len(summary["seeds"]) - len(failed)
    return f"on {held} of {len(summary['seeds'])} seeds" + (f" (not on seed {', '.join(map(str, failed))})"
                                                              if failed else "")


def _base_model_lines(pretraining: dict | None, seeds: int) -> list[str]:
    if not pretraining:
        return []
    subject = "All seeds start from one base model, pretrained" if seeds > 1 else "The base model was pretrained"
    facts = "addition and subtraction" if pretraining.get("operators") == "+-" else "addition"
    return [f"{subject} on {facts} facts for {pretraining['steps']} steps (it completes "
            f"{pretraining['fact_accuracy']:.1%} of fresh ones).", ""]


def write_report(root: Path, seeds: Sequence[int], stages: Sequence[Stage], results: dict[str, StageResult],
                 wall_seconds: float, cold_start: bool = False, reward_outcome: bool = False,
                 transfer: str | None = None) -> dict:
    """Write the report (:class:`ReportFiles`: summary in markdown and JSON, plots, samples, commands, stage
    times); with ``cold_start``, the accuracies before and after the cold-start RL of :func:`collect_cold_start`
    too; with ``reward_outcome``, :func:`collect_reward_outcome`'s buckets and correlation, and their plot; with
    ``transfer`` (a shift of rlt.demo.stages.SHIFTS), :func:`collect_transfer`'s table."""
    files = ReportFiles(DemoOutputs(root).report)
    files.folder.mkdir(parents=True, exist_ok=True)
    collected = collect(root, seeds)
    acc = collected["accuracy"]
    means = {k: acc[k]["mean"] for k in STUDENTS}
    problems = collected["heldout_problems"]
    summary = {
        "accuracy": acc,
        "reward": collected["reward"],
        "wall_seconds": wall_seconds,
        "stages_run": len(results),
        "stages_resumed": sum(r.resumed for r in results.values()),
        "seeds": list(seeds),
        "heldout_problems": problems,
        "ordering_holds": ordering_holds(means, problems * len(seeds)),
        "ordering_holds_per_seed": [ordering_holds({k: acc[k]["per_seed"][i] for k in STUDENTS}, problems)
                                    for i in range(len(seeds))],
        "rl_minus_warmup": means["rl_teacher"] - means["warmup_teacher"],
        "rl_minus_warmup_per_seed": [rl - warmup for rl, warmup in
                                     zip(acc["rl_teacher"]["per_seed"], acc["warmup_teacher"]["per_seed"])],
        "teacher_gold_rate": collected["teacher_gold_rate"],
        "teacher_kinds": collected["teacher_kinds"],
        "evaluation": collected["evaluation"],
        "base_model_pretraining": collected["base_model_pretraining"],
    }
    if cold_start:
        summary["cold_start"] = collect_cold_start(root, seeds)
    if transfer:
        summary["transfer"] = collect_transfer(root, seeds, transfer)
    if reward_outcome:
        summary["reward_outcome"] = collect_reward_outcome(root, seeds)
        plot_reward_outcome(summary["reward_outcome"], seeds, files.reward_outcome_plot)
    write_json(files.summary_json, summary)
    write_json(files.stages, {n: asdict(r) for n, r in results.items()})
    files.commands.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + "".join(f"{s.command}\n" for s in stages))
    plot_accuracy(acc, files.accuracy_plot)
    plot_rl_curves(root, seeds, files.rl_plot)
    write_samples(root, seeds[0], files.samples)
    files.summary_md.write_text(_markdown(summary, files))
    return summary
