"""gridbot NLP: normalise, segment, classify, detect urgency and find places in residents' messages.

Pure functions over text plus a rules file; this package imports nothing else of gridbot.
"""

from nlp.classifier import Classification, Classifier, Rule, RulesError
from nlp.evaluate import EvalReport, LabelledRow, evaluate, format_report, read_labelled_csv
from nlp.normalize import normalize
from nlp.places import PlaceEntry, PlaceIndex, PlaceMatch, nearest_grid
from nlp.train import train, write_rules
from nlp.urgency import detect_urgency

__all__ = [
    "Classification",
    "Classifier",
    "EvalReport",
    "LabelledRow",
    "PlaceEntry",
    "PlaceIndex",
    "PlaceMatch",
    "Rule",
    "RulesError",
    "detect_urgency",
    "evaluate",
    "format_report",
    "nearest_grid",
    "normalize",
    "read_labelled_csv",
    "train",
    "write_rules",
]
