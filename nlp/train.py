"""Learning keyword weights from labelled rows, and writing rules files.

The learned model is the same thing a person writes by hand — weighted keywords per label — so it can
be read, edited and merged with hand-written rules:

1. every row is normalised and segmented; candidate keywords are its words (≥ 2 characters) and
   pairs of adjacent words (``没人`` + ``管``), kept when they occur in at least `min_df` rows;
2. each row's features are the candidates the classifier's own matcher finds in it (so training sees
   exactly what classification will see), each worth 1, or 1 + `lead_weight` when it also occurs in
   the row's lead (title or first sentence: see `nlp.classifier.lead_length`);
3. per label, the `preselect` candidates most associated with it (smoothed log-odds against the other
   labels, × log frequency) are kept; a multinomial logistic regression learns their weights by SGD
   (each row's feature vector scaled to unit length, decaying step, averaged over epochs);
4. per label the `top_k` keywords with the largest absolute weight are kept (negative weights argue
   against a label), scaled so the strongest weight is 3.0 — the "decisive" weight of hand rules.
   No bias is learned: with unit-length rows the winner is the label with the largest plain sum of
   weights, which is exactly what the classifier computes.

`train(rows, base)` with a base classifier merges: learned keywords are added to the base rules, the
base's hand-written weights, settings and urgency cues win.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nlp import segment as _segment
from nlp.classifier import Classifier, Vocabulary, keyword_hits, load_rules_dict, validate_rules
from nlp.evaluate import LabelledRow
from nlp.matcher import KeywordMatcher
from nlp.normalize import normalize
from nlp.urgency import UrgencyDetector, normalised_section

__all__ = ["features", "merge_rules", "train", "write_rules"]

MAX_WEIGHT = 3.0
LEAD_WEIGHT = 2.0


def _is_word(token: str) -> bool:
    return any(ch.isalnum() for ch in token) and not token.isdigit()


def _candidates(tokens: Sequence[str], max_len: int = 6) -> set[str]:
    out: set[str] = set()
    prev: str | None = None
    for tok in tokens:
        word = _is_word(tok)
        if word and len(tok) >= 2:
            out.add(tok)
        if word and prev is not None and len(prev) + len(tok) <= max_len:
            out.add(prev + tok)
        prev = tok if word else None
    return out


def features(matcher: KeywordMatcher, text: str) -> set[str]:
    """The keywords of `matcher` that classification would find in `text`."""
    norm = normalize(text).lower()
    return {kw for kw, _ in matcher.find(norm, _segment.segment(norm))}


def _as_pairs(rows: Iterable[LabelledRow | tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = []
    for row in rows:
        if isinstance(row, LabelledRow):
            pairs.append((row.text, row.label))
        else:
            text, label = row
            pairs.append((text, label))
    return pairs


def train(
    rows: Iterable[LabelledRow | tuple[str, str]],
    base: Classifier | None = None,
    *,
    top_k: int = 400,
    min_df: int = 2,
    epochs: int = 10,
    learning_rate: float = 1.0,
    preselect: int = 800,
    lead_weight: float = LEAD_WEIGHT,
    seed: int = 0,
) -> dict[str, Any]:
    """Learn a rules dict from labelled rows (any label set); merged into `base` when given."""
    pairs = [(text, label) for text, label in _as_pairs(rows) if text.strip() and label.strip()]
    labels = sorted({label for _, label in pairs})
    if len(labels) < 2:
        raise ValueError("training needs rows of at least two labels")
    if lead_weight < 0:
        raise ValueError("lead_weight must not be negative")
    default = load_rules_dict(None)
    default_urgent = default.get("urgent", {})
    urgency = UrgencyDetector.from_section(normalised_section(default_urgent))
    reading = {key: default[key] for key in ("mask", "variants") if key in default}
    vocabulary = Vocabulary(reading)
    docs: list[tuple[str, list[str], str]] = []
    doc_freq: Counter[str] = Counter()
    for text, label in pairs:
        norm = vocabulary.read(text)
        tokens = _segment.segment(norm)
        docs.append((text, tokens, label))
        doc_freq.update(_candidates(tokens))
    if len(docs) < 40:  # a handful of examples: every word counts
        min_df = 1
    matcher = KeywordMatcher(w for w, c in doc_freq.items() if c >= min_df)
    rows_feats = [
        (
            keyword_hits(matcher, text, lead_weight=lead_weight, urgency=urgency, vocabulary=vocabulary)[1],
            label,
        )
        for text, _, label in docs
    ]

    selected = _preselect(rows_feats, labels, preselect)
    rows_feats = [({f: x for f, x in feats.items() if f in selected}, label) for feats, label in rows_feats]
    weights, temperature = _fit(rows_feats, labels, epochs, learning_rate, seed)

    label_tables: dict[str, Any] = {}
    strongest = max((abs(w) for per in weights for w in per.values()), default=1.0) or 1.0
    scale = MAX_WEIGHT / strongest
    for li, label in enumerate(labels):
        ranked = sorted(weights[li].items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top_k]
        keywords = {w: round(v * scale, 2) for w, v in ranked if round(v * scale, 2) != 0}
        label_tables[label] = {"responder": "grid", "keywords": keywords}
    settings: dict[str, Any] = {"temperature": round(max(temperature * scale, 0.1), 3)}
    if lead_weight:
        settings["lead_weight"] = lead_weight
    learned: dict[str, Any] = {
        "meta": {"learned_from_rows": len(docs), "top_k": top_k},
        "settings": settings,
        "label": label_tables,
        **reading,  # read the text as the default rules do (variants, mask words)
    }
    urgent = {k: v for k, v in default_urgent.items() if k not in ("label", "boost")}
    if default_urgent.get("label") in label_tables:
        urgent["label"] = default_urgent["label"]
        urgent["boost"] = default_urgent.get("boost", 0.0)
    learned["urgent"] = urgent
    validate_rules(learned, "learned rules")
    if base is not None:
        return merge_rules(base.rules, learned)
    return learned


def _preselect(rows_feats: list[tuple[dict[str, float], str]], labels: list[str], per_label: int) -> set[str]:
    """Union over labels of the candidates with the highest smoothed log-odds (× log frequency)."""
    n = len(rows_feats)
    per_count: dict[str, Counter[str]] = defaultdict(Counter)
    total: Counter[str] = Counter()
    n_label: Counter[str] = Counter()
    for feats, label in rows_feats:
        n_label[label] += 1
        per_count[label].update(feats.keys())
        total.update(feats.keys())
    chosen: set[str] = set()
    for label in labels:
        inside = n_label[label]
        outside = n - inside
        scored = []
        for word, c in per_count[label].items():
            other = total[word] - c
            log_odds = math.log((c + 1) / (inside + 2)) - math.log((other + 1) / (outside + 2))
            if log_odds > 0:
                scored.append((log_odds * math.log1p(c), word))
        scored.sort(reverse=True)
        chosen.update(word for _, word in scored[:per_label])
    return chosen


def _fit(
    rows_feats: list[tuple[dict[str, float], str]],
    labels: list[str],
    epochs: int,
    learning_rate: float,
    seed: int,
) -> tuple[list[dict[str, float]], float]:
    """Softmax regression by SGD over feature vectors scaled to unit length; averaged weights.

    Returns per-label weights and the temperature (median row length) that turns summed weights
    back into the model's probabilities.
    """
    index = {label: i for i, label in enumerate(labels)}
    n_labels = len(labels)
    all_labels = range(n_labels)
    data: list[tuple[list[str], list[float], int]] = []
    lengths: list[float] = []
    for feats, label in rows_feats:
        if not feats:
            continue
        names = sorted(feats)
        norm = math.sqrt(sum(feats[f] ** 2 for f in names))
        data.append((names, [feats[f] / norm for f in names], index[label]))
        lengths.append(norm)
    w: dict[str, list[float]] = defaultdict(lambda: [0.0] * n_labels)
    avg: dict[str, list[float]] = defaultdict(lambda: [0.0] * n_labels)
    rng = random.Random(seed)
    order = list(range(len(data)))
    for epoch in range(epochs):
        rng.shuffle(order)
        lr = learning_rate / (1 + epoch * 0.5)
        for j in order:
            names, xs, y = data[j]
            scores = [0.0] * n_labels
            for f, x in zip(names, xs, strict=True):
                wf = w[f]
                for c in all_labels:
                    scores[c] += wf[c] * x
            top = max(scores)
            exps = [math.exp(s - top) for s in scores]
            z = sum(exps)
            grad = [e / z for e in exps]
            grad[y] -= 1.0
            # Labels the model already rules out get (almost) no gradient: skip them, it is faster.
            steps = [(c, lr * grad[c]) for c in all_labels if abs(grad[c]) > 1e-4]
            for f, x in zip(names, xs, strict=True):
                wf = w[f]
                for c, step in steps:
                    wf[c] -= step * x
        # Running average of the end-of-epoch weights (Polyak-style, cheap).
        for f, wf in w.items():
            af = avg[f]
            for c in all_labels:
                af[c] += (wf[c] - af[c]) / (epoch + 1)
    per_label: list[dict[str, float]] = [{} for _ in labels]
    for f, af in avg.items():
        for c in all_labels:
            if af[c]:
                per_label[c][f] = af[c]
    lengths.sort()
    temperature = lengths[len(lengths) // 2] if lengths else 1.0
    return per_label, temperature


def merge_rules(hand: Mapping[str, Any], learned: Mapping[str, Any]) -> dict[str, Any]:
    """Hand rules + learned rules: learned keywords are added, hand weights and settings win."""
    merged: dict[str, Any] = {key: value for key, value in hand.items() if key != "label"}
    labels: dict[str, Any] = {}
    for name, table in hand["label"].items():
        labels[name] = {**table, "keywords": dict(table.get("keywords", {}))}
    for name, table in learned["label"].items():
        if name not in labels:
            labels[name] = {**table, "keywords": dict(table.get("keywords", {}))}
            continue
        keywords = labels[name]["keywords"]
        for word, weight in table.get("keywords", {}).items():
            keywords.setdefault(word, weight)
    merged["label"] = labels
    if "meta" in learned:
        merged["meta"] = dict(learned["meta"])
    validate_rules(merged, "merged rules")
    return merged


# --- writing TOML (a small writer for the shapes rules files use) -------------------------------


def _toml_str(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("rules cannot hold inf or nan")
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list | tuple):
        if len(value) > 8:
            inner = "".join(f"  {_toml_value(v)},\n" for v in value)
            return f"[\n{inner}]"
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_str(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _write_table(lines: list[str], header: str, table: Mapping[str, Any], *, nested: bool = False) -> None:
    """`table` under `header`; with `nested`, its sub-tables follow as ``[header.key]``."""
    lines.append(f"[{header}]")
    for key, value in table.items():
        if isinstance(value, Mapping):
            continue
        lines.append(f"{_toml_str(str(key))} = {_toml_value(value)}")
    lines.append("")
    if nested:
        for key, value in table.items():
            if isinstance(value, Mapping):
                _write_table(lines, f"{header}.{_toml_str(str(key))}", value, nested=True)


def rules_to_toml(rules: Mapping[str, Any]) -> str:
    """Serialise a rules dict as readable TOML (keywords one per line, strongest first)."""
    lines = [
        "# gridbot rules — written by `gridbot nlp train`; safe to edit by hand.",
        "# Each keyword adds its weight to its label; negative weights argue against the label.",
    ]
    if rules.get("settings", {}).get("lead_weight"):
        lines.append(
            "# lead_weight: a keyword that is also in the title or first sentence counts (1 + lead_weight) times."
        )
    lines.append("")
    for section in ("meta", "settings", "mask"):
        if section in rules:
            _write_table(lines, section, rules[section])
    if rules.get("variants"):
        _write_table(lines, "variants", rules["variants"])
    for name, table in rules["label"].items():
        header = f"label.{_toml_str(name)}"
        _write_table(lines, header, {k: v for k, v in table.items() if k != "keywords"})
        keywords = table.get("keywords", {})
        lines.append(f"[{header}.keywords]")
        for word, weight in sorted(keywords.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"{_toml_str(word)} = {_toml_value(float(weight))}")
        lines.append("")
    if "urgent" in rules:
        _write_table(lines, "urgent", rules["urgent"], nested=True)
    return "\n".join(lines).rstrip() + "\n"


def write_rules(rules: Mapping[str, Any], path: str | Path) -> None:
    """Write `rules` to `path` as TOML (validated first; the file is replaced atomically)."""
    validate_rules(rules, str(path))
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(rules_to_toml(rules), encoding="utf-8")
    tmp.replace(target)
