"""Common machinery of the attack families: budget draw, model binding, fallback, masking check.

``draw`` records the budget (``eps_fraction``, per-channel ``eps`` in intensity units, ``eps_unit``,
``norm``), the valid intensity range, the attack hyper-parameters and an ``attack_seed``; ``apply``
replays the attack from those alone. Calling a family (what the runner does) returns the params
merged with the attack's report: achieved norms, gradient steps / queries, the attack's own Dice
criterion, and for ``check_masking`` the black-box comparison and ``gradient_masking_suspected``.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from harness.case import Case
from harness.errors import ConfigError, ModelError
from harness.perturbations._util import draw_seed
from harness.perturbations.adversarial import blackbox, budget
from harness.perturbations.adversarial._torch import LogitFn, is_differentiable
from harness.perturbations.adversarial.whitebox import WhiteboxSpec, run_whitebox
from harness.perturbations.base import MAX_SEVERITY, Perturbation

COMMON_OPTIONS = ("eps_fractions", "eps_unit", "clip")
WHITEBOX_OPTIONS = COMMON_OPTIONS + ("check_masking", "masking_queries", "masking_tolerance",
                                     "nondifferentiable", "queries", "p_init")
ITERATIVE_OPTIONS = WHITEBOX_OPTIONS + ("steps", "restarts", "step_size", "random_start")


class Attack(Perturbation):
    """Base of every attack family (``requires_model``: the runner binds the evaluated model)."""

    modalities = frozenset({"any"})
    requires_model = True
    threat: ClassVar[str] = "whitebox"
    norm: ClassVar[str] = "linf"
    targeted: ClassVar[bool] = False
    option_names: ClassVar[tuple[str, ...]] = COMMON_OPTIONS
    option_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.opts = budget.AttackOptions.parse(self.name, options, self.option_names, self.option_defaults)

    def model_bound(self) -> bool:
        return getattr(self, "model", None) is not None

    def _model(self) -> Any:
        model = getattr(self, "model", None)
        if model is None:
            raise ConfigError(f"perturbation {self.name}: an attack needs the model; call bind_model(model) first")
        return model

    # -- draw / apply --------------------------------------------------------------------------
    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        if not 1 <= severity <= MAX_SEVERITY:
            raise ValueError(f"{self.name}: severity must be 1..{MAX_SEVERITY}, got {severity}")
        o = self.opts
        frac = o.fraction(severity)
        scale = budget.intensity_scale(case, o.eps_unit)
        params: dict[str, Any] = {
            "attack": self.name, "threat": self.threat, "targeted": self.targeted, "norm": self.norm, "eps_fraction": frac,
            "eps_unit": o.eps_unit, "scale": scale, "eps": [frac * v for v in scale],
            "clip": budget.intensity_bounds(case, o.clip), "attack_seed": draw_seed(rng),
        }
        params.update(self._hyper())
        return params

    def _hyper(self) -> dict[str, Any]:
        """Attack hyper-parameters recorded in the params (subclasses add theirs)."""
        return {}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        return self._attack(case, params)[0]

    def __call__(self, case: Case, severity: int,
                 rng: int | np.random.Generator | None = None) -> tuple[Case, dict[str, Any]]:
        if not isinstance(severity, (int, np.integer)) or not 0 <= severity <= MAX_SEVERITY:
            raise ValueError(f"{self.name}: severity must be an int in 0..{MAX_SEVERITY}, got {severity!r}")
        if severity == 0:
            return case, {}
        from harness.seeds import as_rng

        params = self.draw(case, int(severity), as_rng(rng))
        attacked, report = self._attack(case, params)
        return attacked, {**params, **report}

    def _attack(self, case: Case, params: dict[str, Any]) -> tuple[Case, dict[str, Any]]:
        image, report = self._perturb(case, params)
        if self.norm == "linf" or report.get("threat") == "blackbox":
            image = budget.inside_linf(case.image, image, params["eps"])
        report.update(budget.perturbation_report(case.image, image, params["scale"]))
        return case.with_(image=image), report

    def _perturb(self, case: Case, params: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        raise NotImplementedError

    # -- shared attack runners -------------------------------------------------------------------
    def _square(self, case: Case, params: dict[str, Any], *, queries: int, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        model = self._model()
        return blackbox.square_attack(
            lambda x: model.predict(x, case.spacing), case.image, case.label, scale=params["scale"],
            bounds=params["clip"], fraction=float(params["eps_fraction"]), queries=queries,
            p_init=float(params.get("p_init", self.opts.p_init)), seed=seed)


class WhiteboxAttack(Attack):
    """Gradient attack on ``torch_logits``; black-box fallback on models without gradients."""

    threat = "whitebox"
    loss: ClassVar[str] = "ce"
    iterative: ClassVar[bool] = True
    option_names: ClassVar[tuple[str, ...]] = ITERATIVE_OPTIONS

    def _hyper(self) -> dict[str, Any]:
        o = self.opts
        out: dict[str, Any] = {"steps": 1, "restarts": 1, "step_size": 1.0, "random_start": False}
        if self.iterative:
            out = {"steps": o.steps, "restarts": o.restarts, "step_size": o.step_fraction(),
                   "random_start": o.random_start}
        if self.model_bound() and not is_differentiable(self.model):  # replayable fallback settings
            out.update({"fallback_queries": o.queries, "p_init": o.p_init})
        if o.check_masking:
            out.update({"check_masking": True, "masking_queries": o.masking_queries,
                        "masking_tolerance": o.masking_tolerance})
        return out

    def _spec(self, params: dict[str, Any]) -> WhiteboxSpec:
        return WhiteboxSpec(norm=self.norm, loss=self.loss, steps=int(params["steps"]),  # type: ignore[arg-type]
                            restarts=int(params["restarts"]), step_size=float(params["step_size"]),
                            random_start=bool(params["random_start"]), track_best=self.iterative)

    def _perturb(self, case: Case, params: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        model = self._model()
        seed = int(params["attack_seed"])
        if not is_differentiable(model):
            if self.opts.nondifferentiable == "error":
                raise ModelError(f"{self.name} is a white-box attack and model {getattr(model, 'name', '?')!r} "
                                 "has no gradients; use square_attack, or nondifferentiable = \"blackbox\"")
            queries = int(params.get("fallback_queries", self.opts.queries))
            image, report = self._square(case, params, queries=queries, seed=seed)
            return image, {**report, "threat": "blackbox",
                           "fallback": "square_attack (the model has no gradients)"}
        image, report = run_whitebox(LogitFn(model, case.spacing), case.image, case.label,
                                     scale=params["scale"], bounds=params["clip"],
                                     fraction=float(params["eps_fraction"]), spec=self._spec(params), seed=seed)
        # the check compares Dice with an untargeted Square attack: meaningless for a targeted attack
        if params.get("check_masking") and float(params["eps_fraction"]) > 0 and not self.targeted:
            report.update(self._masking_check(case, params, image))
        return image, report

    def _masking_check(self, case: Case, params: dict[str, Any], attacked: np.ndarray) -> dict[str, Any]:
        """Run a cheap Square attack at the same ε (an L∞ box of side ``f`` lies inside the L2
        ball of RMS ``f`` too); flag gradient masking when it beats the white-box result."""
        model = self._model()
        classes = [int(k) for k in np.unique(case.label) if k > 0]
        wb = blackbox.hard_dice(model.predict(attacked, case.spacing).labels, case.label, classes)
        _, bb_report = self._square(case, params, queries=int(params["masking_queries"]),
                                    seed=(int(params["attack_seed"]) + 1) % (2**31 - 1))
        bb = float(bb_report["attack_dice"])
        return {"masking_whitebox_dice": wb, "masking_blackbox_dice": bb,
                "masking_queries_used": int(bb_report["queries"]),
                "gradient_masking_suspected": bool(bb < wb - float(params["masking_tolerance"]))}
