"""Evaluation on labelled CSV rows: the classifier (accuracy, macro-F1, per-label P/R/F1, confusion)
and the gate (report / not_report confusion).

Classifier CSV: a header with the columns ``text`` and ``label``, optionally ``urgent`` (0/1) and ``id``;
`format_report` ends with the line ``accuracy=0.XXXX macro_f1=0.XXXX n=N`` that scripts parse.
Gate CSV: ``text,kind`` with kind ``report`` or ``not_report``; `format_gate_report` ends with
``gate_accuracy=0.XXXX report_recall=0.XXXX n=N``.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = [
    "GATE_KINDS",
    "EvalReport",
    "GateReport",
    "GateRow",
    "LabelMetrics",
    "LabelledRow",
    "csv_columns",
    "evaluate",
    "evaluate_gate",
    "format_gate_report",
    "format_report",
    "read_gate_csv",
    "read_labelled_csv",
    "score_predictions",
]


@dataclass(frozen=True)
class LabelledRow:
    text: str
    label: str
    urgent: bool | None = None
    id: str | None = None


@dataclass(frozen=True)
class LabelMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    n: int
    accuracy: float
    macro_f1: float
    per_label: tuple[LabelMetrics, ...]
    labels: tuple[str, ...]  # row/column order of the confusion matrix
    confusion: tuple[tuple[int, ...], ...]  # confusion[gold][predicted]
    urgent_precision: float | None = None
    urgent_recall: float | None = None
    urgent_support: int | None = None
    errors: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)  # (text, gold, predicted)


class _Classifies(Protocol):
    def classify(self, text: str) -> _Result: ...


class _Result(Protocol):
    @property
    def label(self) -> str: ...

    @property
    def urgent(self) -> bool: ...


def read_labelled_csv(path: str | Path) -> list[LabelledRow]:
    """Rows of a labelled CSV (UTF-8, BOM tolerated); ValueError (one line) on a bad file."""
    p = Path(path)
    try:
        handle = p.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise ValueError(f"{p}: file not found") from None
    except OSError as exc:
        raise ValueError(f"{p}: cannot read: {exc.strerror or exc}") from None
    rows: list[LabelledRow] = []
    with handle:
        try:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = columns
            missing = [c for c in ("text", "label") if c not in columns]
            if missing:
                raise ValueError(f"{p}: missing column {missing[0]!r} (need a header with text,label)")
            has_urgent = "urgent" in columns
            for line_no, record in enumerate(reader, start=2):
                text = (record.get("text") or "").strip()
                label = (record.get("label") or "").strip()
                if not text and not label:
                    continue
                if not label:
                    raise ValueError(f"{p}: line {line_no}: empty label")
                urgent: bool | None = None
                if has_urgent:
                    raw = (record.get("urgent") or "").strip()
                    if raw not in ("0", "1", ""):
                        raise ValueError(f"{p}: line {line_no}: urgent must be 0 or 1, not {raw!r}")
                    urgent = raw == "1" if raw else None
                rows.append(LabelledRow(text=text, label=label, urgent=urgent, id=record.get("id") or None))
        except UnicodeDecodeError:
            raise ValueError(f"{p}: not UTF-8 text") from None
        except csv.Error as exc:
            raise ValueError(f"{p}: bad CSV: {exc}") from None
    return rows


def _safe_div(a: float, b: float) -> float:
    return a / b if b else 0.0


def score_predictions(
    gold: Sequence[str],
    predicted: Sequence[str],
    urgent_gold: Sequence[bool | None] = (),
    urgent_predicted: Sequence[bool] = (),
    texts: Sequence[str] = (),
) -> EvalReport:
    """Metrics from parallel lists of gold and predicted labels (and urgency flags)."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    labels = tuple(sorted(set(gold) | set(predicted), key=lambda lab: (lab not in set(gold), lab)))
    pos = {lab: i for i, lab in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        matrix[pos[g]][pos[p]] += 1
    support = Counter(gold)
    per_label = []
    for lab in labels:
        if lab not in support:
            continue  # only predicted, never gold: counted in others' precision, not averaged
        i = pos[lab]
        tp = matrix[i][i]
        fp = sum(matrix[r][i] for r in range(len(labels))) - tp
        fn = sum(matrix[i]) - tp
        precision = _safe_div(tp, tp + fp)
        recall = _safe_div(tp, tp + fn)
        f1 = _safe_div(2 * precision * recall, precision + recall)
        per_label.append(LabelMetrics(lab, precision, recall, f1, support[lab]))
    n = len(gold)
    correct = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p)
    u_precision = u_recall = None
    u_support = None
    pairs = [(g, p) for g, p in zip(urgent_gold, urgent_predicted, strict=False) if g is not None]
    if pairs:
        tp = sum(1 for g, p in pairs if g and p)
        u_support = sum(1 for g, _ in pairs if g)
        u_precision = _safe_div(tp, sum(1 for _, p in pairs if p))
        u_recall = _safe_div(tp, u_support)
    errors = tuple((t, g, p) for t, g, p in zip(texts, gold, predicted, strict=False) if g != p)
    return EvalReport(
        n=n,
        accuracy=_safe_div(correct, n),
        macro_f1=_safe_div(sum(m.f1 for m in per_label), len(per_label)),
        per_label=tuple(per_label),
        labels=labels,
        confusion=tuple(tuple(row) for row in matrix),
        urgent_precision=u_precision,
        urgent_recall=u_recall,
        urgent_support=u_support,
        errors=errors,
    )


def evaluate(classifier: _Classifies, rows: Iterable[LabelledRow]) -> EvalReport:
    """Classify every row and compare with its gold label (and urgency, when the rows have it)."""
    rows = list(rows)
    results = [classifier.classify(row.text) for row in rows]
    return score_predictions(
        gold=[row.label for row in rows],
        predicted=[r.label for r in results],
        urgent_gold=[row.urgent for row in rows],
        urgent_predicted=[r.urgent for r in results],
        texts=[row.text for row in rows],
    )


def _width(text: str) -> int:
    """Display width: CJK and full-width characters take two columns."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def format_report(report: EvalReport, *, max_errors: int = 0) -> str:
    """Human-readable report; the last line is ``accuracy=0.XXXX macro_f1=0.XXXX n=N``."""
    lines: list[str] = []
    name_w = max([_width(m.label) for m in report.per_label] + [_width("label")]) + 2
    lines.append(f"{_pad('label', name_w)}precision  recall     f1  support")
    for m in report.per_label:
        lines.append(f"{_pad(m.label, name_w)}{m.precision:9.4f} {m.recall:7.4f} {m.f1:6.4f} {m.support:8d}")
    lines.append("")
    lines.append("confusion matrix (rows = gold, columns = predicted):")
    codes = [f"L{i + 1}" for i in range(len(report.labels))]
    cell = max([len(c) for c in codes] + [len(str(v)) for row in report.confusion for v in row]) + 1
    lines.append(" " * (name_w + 4) + "".join(c.rjust(cell) for c in codes))
    for code, label, row in zip(codes, report.labels, report.confusion, strict=True):
        lines.append(f"{code.ljust(4)}{_pad(label, name_w)}" + "".join(str(v).rjust(cell) for v in row))
    if report.urgent_precision is not None and report.urgent_recall is not None:
        lines.append("")
        lines.append(
            f"urgency: precision={report.urgent_precision:.4f} recall={report.urgent_recall:.4f} "
            f"urgent={report.urgent_support}"
        )
    if max_errors and report.errors:
        lines.append("")
        lines.append("errors (gold → predicted):")
        for text, gold, predicted in report.errors[:max_errors]:
            lines.append(f"  {gold} → {predicted}: {text[:60]}")
    lines.append("")
    lines.append(f"accuracy={report.accuracy:.4f} macro_f1={report.macro_f1:.4f} n={report.n}")
    return "\n".join(lines)


# --- the gate: report / not_report ---------------------------------------------------------------

GATE_KINDS = ("report", "not_report")


@dataclass(frozen=True)
class GateRow:
    text: str
    kind: str  # "report" or "not_report"


@dataclass(frozen=True)
class GateReport:
    n: int
    accuracy: float
    report_recall: float
    report_precision: float
    confusion: tuple[tuple[int, int], tuple[int, int]]  # [gold][predicted], report first
    by_reason: tuple[tuple[str, int], ...]  # predicted not-report kinds with their counts
    errors: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)  # (text, gold, verdict kind)


class _Gates(Protocol):
    def check(self, text: str) -> _Verdict: ...


class _Verdict(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def report(self) -> bool: ...


def csv_columns(path: str | Path) -> list[str]:
    """The header of a CSV file (stripped); ValueError (one line) when it cannot be read."""
    p = Path(path)
    try:
        with p.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except FileNotFoundError:
        raise ValueError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{p}: cannot read: {exc}") from None
    return [c.strip() for c in header]


def read_gate_csv(path: str | Path) -> list[GateRow]:
    """Rows of a ``text,kind`` CSV (kind = report / not_report); ValueError (one line) on a bad file."""
    p = Path(path)
    rows: list[GateRow] = []
    try:
        with p.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = columns
            if "text" not in columns or "kind" not in columns:
                raise ValueError(f"{p}: need a header with text,kind")
            for line_no, record in enumerate(reader, start=2):
                text = (record.get("text") or "").strip()
                kind = (record.get("kind") or "").strip()
                if not text and not kind:
                    continue
                if kind not in GATE_KINDS:
                    raise ValueError(f"{p}: line {line_no}: kind must be report or not_report, not {kind!r}")
                rows.append(GateRow(text, kind))
    except FileNotFoundError:
        raise ValueError(f"{p}: file not found") from None
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not UTF-8 text") from None
    except csv.Error as exc:
        raise ValueError(f"{p}: bad CSV: {exc}") from None
    return rows


def evaluate_gate(gate: _Gates, rows: Iterable[GateRow]) -> GateReport:
    """Check every row with the gate and compare with its gold kind."""
    matrix = [[0, 0], [0, 0]]
    reasons: Counter[str] = Counter()
    errors: list[tuple[str, str, str]] = []
    n = 0
    for row in rows:
        n += 1
        verdict = gate.check(row.text)
        gold = 0 if row.kind == "report" else 1
        predicted = 0 if verdict.report else 1
        matrix[gold][predicted] += 1
        if not verdict.report:
            reasons[verdict.kind] += 1
        if gold != predicted:
            errors.append((row.text, row.kind, verdict.kind))
    correct = matrix[0][0] + matrix[1][1]
    return GateReport(
        n=n,
        accuracy=_safe_div(correct, n),
        report_recall=_safe_div(matrix[0][0], matrix[0][0] + matrix[0][1]),
        report_precision=_safe_div(matrix[0][0], matrix[0][0] + matrix[1][0]),
        confusion=((matrix[0][0], matrix[0][1]), (matrix[1][0], matrix[1][1])),
        by_reason=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        errors=tuple(errors),
    )


def format_gate_report(report: GateReport, *, max_errors: int = 0) -> str:
    """The gate's confusion; the last line is ``gate_accuracy=0.XXXX report_recall=0.XXXX n=N``."""
    (rr, rn), (nr, nn) = report.confusion
    width = max(len(str(v)) for v in (rr, rn, nr, nn, 1)) + 2
    lines = [
        "confusion (rows = gold, columns = gate):",
        " " * 12 + "report".rjust(width + 6) + "not_report".rjust(width + 6),
        "report".ljust(12) + str(rr).rjust(width + 6) + str(rn).rjust(width + 6),
        "not_report".ljust(12) + str(nr).rjust(width + 6) + str(nn).rjust(width + 6),
        "",
        f"report precision={report.report_precision:.4f} recall={report.report_recall:.4f}",
    ]
    if report.by_reason:
        lines.append(
            "not-report answers: " + ", ".join(f"{kind} {count}" for kind, count in report.by_reason)
        )
    if max_errors and report.errors:
        lines.append("")
        lines.append("errors (gold → gate):")
        for text, gold, kind in report.errors[:max_errors]:
            lines.append(f"  {gold} → {kind}: {text[:60]}")
    lines.append("")
    lines.append(f"gate_accuracy={report.accuracy:.4f} report_recall={report.report_recall:.4f} n={report.n}")
    return "\n".join(lines)
