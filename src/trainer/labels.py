"""The label scheme of the task (see the labeling guidelines): names, order and ids.

The order is fixed: probability columns, confusion matrices and saved models all use it.
"""

from __future__ import annotations

from collections.abc import Iterable

from trainer.errors import DataError

LABELS: tuple[str, ...] = ("verified", "attributed", "unverified")
LABEL2ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))
# One line each, from the labeling guidelines (which hold the rules for hard cases).
LABEL_DEFINITIONS: dict[str, str] = {
    "verified": "the writer asserts the claim in their own voice, with no attribution frame and no unverified marker",
    "attributed": "the writer relays the claim from a source (said, according to, a quotation with its speaker)",
    "unverified": "the writer marks the claim as unconfirmed, alleged or uncertain (reportedly, could not be verified)",
}


def check_labels(found: Iterable[str], where: str) -> None:
    """Raise a DataError naming `where` if any label is outside the scheme.

    >>> check_labels(["verified", "attributed"], "labels.jsonl")
    """
    unknown = sorted({label for label in found if label not in LABEL2ID})
    if unknown:
        raise DataError(
            f"{where}: labels {unknown} are outside the scheme; expected one of {list(LABELS)} "
            "(map other names with a label mapping, or fix the file)"
        )
