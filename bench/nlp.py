"""NLP benchmark: accuracy, cross-validated macro-F1, throughput, memory, start-up time.

    python bench/nlp.py [--data DIR] [--folds 5] [--seeds 0,1,2] [--skip-cv]

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
from nlp.evaluate import LabelledRow, evaluate, read_labelled_csv, score_predictions  # noqa: E402
from nlp.train import train  # noqa: E402

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


def _spread(values: list[float]) -> str:
    mean = sum(values) / len(values)
    return f"{mean:.4f} ± {(max(values) - min(values)) / 2:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2", help="shuffle seeds for cross-validation")
    parser.add_argument("--skip-cv", action="store_true")
    args = parser.parse_args()

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

    community = args.data / "community_dev.csv"
    if community.is_file():
        report = evaluate(clf, read_labelled_csv(community))
        print(f"community_dev_accuracy: {report.accuracy:.4f}   (default rules, n={report.n})")
        print(f"community_dev_macro_f1: {report.macro_f1:.4f}")
        print(f"community_dev_urgency_recall: {report.urgent_recall:.4f}")
        print(f"community_dev_urgency_precision: {report.urgent_precision:.4f}")
    else:
        print(f"community_dev: skipped ({community} not found)")

    teddy = args.data / "teddy2020_dev.csv"
    if args.skip_cv:
        print("teddy2020_cv: skipped (--skip-cv)")
    elif teddy.is_file():
        rows = read_labelled_csv(teddy)
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
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
