"""The check that a mask holds only classes someone named (shared by ``harness run`` and ``harness train``)."""
from __future__ import annotations

from typing import Iterable

from harness.errors import ConfigError


def check_named_classes(case_id: str, values: Iterable[int], classes: Iterable[int], *, named_by: str) -> None:
    """Refuse mask ``values`` other than background 0 and ``classes``, naming the case and ``named_by``
    (who named the classes). A 0/255 PNG mask read without ``label_values`` is the usual cause: its
    255 would otherwise be scored (or trained) as a class of its own."""
    known = {int(c) for c in classes}
    extra = sorted({int(v) for v in values} - known - {0})
    if extra:
        raise ConfigError(f"case {case_id}: label values {extra[:5]}{' ...' if len(extra) > 5 else ''} are not "
                          f"classes of {named_by} {sorted(known)}; name them in label_names, or map them to "
                          f"classes with label_values in the dataset card, e.g. label_values = {{\"{extra[0]}\" = 1}}")
