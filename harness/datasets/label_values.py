"""The check that a mask holds only classes someone named (shared by ``harness run`` and ``harness train``)."""
from __future__ import annotations

import re
from typing import Iterable, Mapping

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


def classes_the_model_lacks(scored: Mapping[int, str], model_names: Mapping[int, str]) -> list[str]:
    """``class 2 'lesion'`` for each scored class the model does not declare among its outputs (none
    when it declares nothing): it is scored as never predicted, Dice 0 wherever the reference holds it."""
    declared = {int(k) for k in model_names}
    if not declared:
        return []
    return [f"class {int(k)} {str(v)!r}" for k, v in scored.items() if int(k) not in declared and int(k) != 0]


def _plain(name: str) -> str:
    return re.sub(r"[\s_-]+", "", name.lower())


_PLACEHOLDER = re.compile(r"(class|label)\s*_?\d+|foreground", re.IGNORECASE)  # names nobody chose


def class_name_conflicts(data_names: Mapping[int, str], model_names: Mapping[int, str]) -> list[str]:
    """``class 1 is 'organ' in the model card but 'lesion' in the data``, per class number both name
    differently (case, spaces, ``_`` and ``-`` ignored: "Left atrium" = "left_atrium"; placeholders such
    as ``class1`` never conflict). The run
    scores the data's class k against the model's output k, so such a model segments something else.
    Also one name under two numbers (``'kidney' is class 3 in the data but class 4 in the model card``):
    the data's class 3 is then scored against whatever the model outputs as 3."""
    out = []
    for k in sorted(set(map(int, data_names)) & set(map(int, model_names)) - {0}):
        d, m = str(data_names[k]).strip(), str(model_names[k]).strip()
        if _plain(d) != _plain(m) and not _PLACEHOLDER.fullmatch(d) and not _PLACEHOLDER.fullmatch(m):
            out.append(f"class {k} is {m!r} in the model card but {d!r} in the data")
    model_numbers: dict[str, set[int]] = {}
    for k, n in model_names.items():
        if int(k) != 0 and not _PLACEHOLDER.fullmatch(str(n).strip()):
            model_numbers.setdefault(_plain(str(n)), set()).add(int(k))
    for k, name in sorted((int(k), str(n).strip()) for k, n in data_names.items()):
        others = model_numbers.get(_plain(name), set())
        if k != 0 and others and k not in others:
            numbers = " or ".join(map(str, sorted(others)))
            out.append(f"{name!r} is class {k} in the data but class {numbers} in the model card")
    return out
