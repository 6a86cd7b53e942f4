"""NLP benchmark: accuracy, generalisation, the gate, throughput, memory, start-up time.

    python bench/nlp.py [--data DIR] [--folds 5] [--seeds 0,1,2] [--skip-cv] [--held-out FILE.csv ...]

Generalisation is shown three ways on the community requests (community_dev.csv in the shared data and
tests/data/community_dev2.csv, written apart from each other): rules tuned on one file (`train` merged over
the hand rules) tested on the other, in both directions, and k-fold over their union. The hand rules alone
are scored on every file too, and on any --held-out file (text,label[,urgent]) or gate file (text,kind).

Prints one ``name: value`` line per number. Data defaults to ../shared/data next to the repository.
Cross-validation: for each seed the rows are shuffled (``random.Random(seed)``) and dealt into
`folds` parts (row i of the shuffle → part i mod folds; seed 0 gives the folds used since the first
version); each part is classified by rules trained on the other parts, and macro-F1 is computed over
all held-out predictions of that shuffle. The headline is the mean over seeds ± half the range.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.classifier import Classifier  # noqa: E402
from nlp.evaluate import (  # noqa: E402
    EvalReport,
    LabelledRow,
    csv_columns,
    evaluate,
    evaluate_gate,
    read_gate_csv,
    read_labelled_csv,
    score_predictions,
)
from nlp.gate import Gate  # noqa: E402
from nlp.train import train  # noqa: E402

OWN_DATA = ROOT / "tests" / "data"

SHORT_MESSAGES = [
    "小区东门垃圾桶满了没人清运",
    "楼道着火了快来人",
    "5栋电梯又坏了",
    "楼上每天半夜打麻将太吵",
    "有车停在消防通道上",
    "家里停水了也没通知",
    "请问居住证怎么办理",
    "邻居在楼顶加盖了一层",
    "樓道裡堆滿雜物",
    "你好",
]

STARTUP = """
import time, sys
t0 = time.perf_counter()
from nlp.classifier import Classifier
clf = Classifier.load()
clf.warm_up()
clf.classify("楼道着火了")
print(time.perf_counter() - t0)
"""


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def startup_seconds(cache_dir: str) -> float:
    env = {**os.environ, "GRIDBOT_CACHE_DIR": cache_dir, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", STARTUP], env=env, capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(out.stdout.strip().splitlines()[-1])


def cross_validate(rows: list[LabelledRow], folds: int, seed: int = 0) -> tuple[float, float, float]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    parts = [order[i::folds] for i in range(folds)]
    gold: list[str] = []
    predicted: list[str] = []
    started = time.perf_counter()
    for k in range(folds):
        held = set(parts[k])
        clf = Classifier(train([rows[i] for i in order if i not in held]))
        for i in parts[k]:
            gold.append(rows[i].label)
            predicted.append(clf.classify(rows[i].text).label)
    report = score_predictions(gold, predicted)
    return report.macro_f1, report.accuracy, (time.perf_counter() - started) / folds


def _scores(name: str, report: EvalReport, note: str) -> None:
    urgency = ""
    if report.urgent_recall is not None:
        urgency = (
            f" urgency_recall={report.urgent_recall:.4f} urgency_precision={report.urgent_precision:.4f}"
        )
    print(
        f"{name}: accuracy={report.accuracy:.4f} macro_f1={report.macro_f1:.4f}{urgency} n={report.n}   ({note})"
    )


def cross_file(first: list[LabelledRow], second: list[LabelledRow], base: Classifier) -> EvalReport:
    """Rules tuned on `first` (learned keywords merged over the hand rules), scored on `second`."""
    return evaluate(Classifier(train(first, base)), second)


def k_fold(rows: list[LabelledRow], base: Classifier, folds: int, seed: int) -> EvalReport:
    """Each part scored by the hand rules with keywords learned from the other parts merged in."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    parts = [order[i::folds] for i in range(folds)]
    held_rows: list[LabelledRow] = []
    predicted = []
    for k in range(folds):
        held = set(parts[k])
        clf = Classifier(train([rows[i] for i in order if i not in held], base))
        for i in parts[k]:
            held_rows.append(rows[i])
            predicted.append(clf.classify(rows[i].text))
    return score_predictions(
        [r.label for r in held_rows],
        [p.label for p in predicted],
        [r.urgent for r in held_rows],
        [p.urgent for p in predicted],
    )


def _numbered(folder: Path, stem: str) -> list[Path]:
    """``stem.csv``, ``stem2.csv`` … in `folder`, in the order they were written."""
    found = [p for p in folder.glob(f"{stem}*.csv") if p.stem[len(stem) :] in ("", *map(str, range(1, 100)))]
    return sorted(found, key=lambda p: int(p.stem[len(stem) :] or 1))


def generalisation(clf: Classifier, data: Path, folds: int, seeds: list[int], held_out: list[Path]) -> None:
    files = {
        "community_dev": data / "community_dev.csv",
        "community_dev2": OWN_DATA / "community_dev2.csv",
        "community_more": data / "community_more.csv",
        **{path.stem: path for path in _numbered(OWN_DATA, "community_dev") if path.stem != "community_dev2"},
    }
    rows = {name: read_labelled_csv(path) for name, path in files.items() if path.is_file()}
    for name, found in rows.items():
        _scores(
            f"{name}_hand_rules",
            evaluate(clf, found),
            "the default rules, which were written looking at this file",
        )
    for path in held_out:
        if "label" in csv_columns(path):
            _scores(
                f"held_out_{path.stem}",
                evaluate(clf, read_labelled_csv(path)),
                "default rules, not tuned on it",
            )
    if "community_dev" in rows and "community_dev2" in rows:
        dev, dev2 = rows["community_dev"], rows["community_dev2"]
        _scores(
            "cross_file_dev_to_dev2", cross_file(dev, dev2, clf), "tuned on community_dev, tested on dev2"
        )
        _scores(
            "cross_file_dev2_to_dev", cross_file(dev2, dev, clf), "tuned on community_dev2, tested on dev"
        )
        union = dev + dev2
        reports = [k_fold(union, clf, folds, seed) for seed in seeds]
        for seed, report in zip(seeds, reports, strict=True):
            _scores(f"kfold{folds}_union_seed{seed}", report, "dev ∪ dev2, each part held out")
        accuracy = _spread([r.accuracy for r in reports])
        macro = _spread([r.macro_f1 for r in reports])
        recall = _spread([r.urgent_recall or 0.0 for r in reports])
        print(
            f"kfold{folds}_union: accuracy={accuracy} macro_f1={macro} urgency_recall={recall} n={len(union)}"
        )


def gate_figures(clf: Classifier, data: Path, held_out: list[Path]) -> None:
    gate = Gate.load(classifier=clf)
    files = [*_numbered(OWN_DATA, "chat_dev"), data / "chat_more.csv"]
    files += [path for path in held_out if "kind" in csv_columns(path)]
    for path in files:
        if not path.is_file():
            print(f"gate_{path.stem}: skipped ({path} not found)")
            continue
        report = evaluate_gate(gate, read_gate_csv(path))
        (_, fn), (fp, _) = report.confusion
        print(
            f"gate_{path.stem}: gate_accuracy={report.accuracy:.4f} report_recall={report.report_recall:.4f} "
            f"n={report.n}   (report→chat {fn}, chat→report {fp})"
        )
    messages = [line.split(",", 1)[0] for line in SHORT_MESSAGES] * 2000
    started = time.perf_counter()
    for text in messages:
        gate.check(text)
    elapsed = time.perf_counter() - started
    print(f"gate_throughput_msgs_per_s: {len(messages) / elapsed:.0f}")


def _spread(values: list[float]) -> str:
    mean = sum(values) / len(values)
    return f"{mean:.4f} ± {(max(values) - min(values)) / 2:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2", help="shuffle seeds for cross-validation")
    parser.add_argument("--skip-cv", action="store_true")
    parser.add_argument("--held-out", type=Path, nargs="*", default=[], help="more CSVs to score")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]

    with tempfile.TemporaryDirectory() as cache:
        cold = startup_seconds(cache)
        warm = min(startup_seconds(cache) for _ in range(3))
    print(f"startup_cold_s: {cold:.2f}   (new process, empty jieba cache: build dictionary)")
    print(f"startup_warm_s: {warm:.2f}   (new process, cached dictionary; includes imports)")

    rss_before = rss_mb()
    started = time.perf_counter()
    clf = Classifier.load()
    clf.warm_up()
    print(f"load_in_process_s: {time.perf_counter() - started:.2f}")
    print(f"rss_mb_after_load: {rss_mb():.0f}   (python + nlp imports before load: {rss_before:.0f})")

    n = 20_000
    messages = [SHORT_MESSAGES[i % len(SHORT_MESSAGES)] + str(i % 97) for i in range(n)]
    started = time.perf_counter()
    for text in messages:
        clf.classify(text)
    elapsed = time.perf_counter() - started
    print(f"throughput_msgs_per_s: {n / elapsed:.0f}   (short messages, one core, {n} classifications)")
    print(f"latency_us_per_msg: {elapsed / n * 1e6:.0f}")

    generalisation(clf, args.data, args.folds, seeds, args.held_out)
    gate_figures(clf, args.data, args.held_out)
    print(f"rss_mb_after_all: {rss_mb():.0f}")

    teddy = args.data / "teddy2020_dev.csv"
    if args.skip_cv:
        print("teddy2020_cv: skipped (--skip-cv)")
    elif teddy.is_file():
        rows = read_labelled_csv(teddy)
        f1s, accs, times = [], [], []
        for seed in seeds:
            macro_f1, accuracy, per_fold = cross_validate(rows, args.folds, seed)
            f1s.append(macro_f1)
            accs.append(accuracy)
            times.append(per_fold)
            print(
                f"teddy2020_cv{args.folds}_seed{seed}: macro_f1={macro_f1:.4f} accuracy={accuracy:.4f}",
                flush=True,
            )
        k = args.folds
        print(f"teddy2020_cv{k}_macro_f1: {_spread(f1s)}   (trained rules, n={len(rows)}, seeds {seeds})")
        print(f"teddy2020_cv{k}_accuracy: {_spread(accs)}")
        print(f"teddy2020_train_s_per_fold: {sum(times) / len(times):.1f}   (train + classify held-out)")
    else:
        print(f"teddy2020_cv: skipped ({teddy} not found)")


if __name__ == "__main__":
    main()
