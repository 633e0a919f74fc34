"""The search space: what a trial may try, read from a study file (TOML) and CLI overrides.

Define-by-run and conditional: fine-tuning trials also sample how far before the cut the network
is unfrozen; augmentation strengths are sampled only when augmentation is on. ``weights`` may be
a dimension too (``["imagenet", "none"]``): ImageNet transfer vs training from scratch, per
layer, is the question the poster asked. ``studies/default.toml`` spells out the defaults below.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from sweep.errors import OCLError
from sweep.model import CANDIDATES, Augmentation, LayerCatalog, is_candidate
from sweep.training import FEATURE_EXTRACTION, FINE_TUNING, OPTIMIZERS, STRATEGIES, TrialConfig

__all__ = ["SearchSpace", "load_search_space"]

PRUNERS = ("median", "hyperband", "none")


@dataclass(frozen=True)
class SearchSpace:
    """Every sampled dimension, with its choices or (low, high) range."""

    strategies: tuple[str, ...] = STRATEGIES
    cut_layers: tuple[str, ...] = ("*",)  # names or globs over the candidate layers
    weights: tuple[str, ...] = ("imagenet",)
    optimizers: tuple[str, ...] = OPTIMIZERS
    learning_rate: tuple[float, float] = (1e-5, 1e-1)
    head_units: tuple[int, ...] = (0, 128, 256, 512)
    dropout: tuple[float, float] = (0.0, 0.5)
    augment: tuple[bool, ...] = (False, True)
    rotation_degrees: tuple[float, float] = (0.0, 15.0)
    zoom: tuple[float, float] = (0.0, 0.15)
    shift: tuple[float, float] = (0.0, 0.1)
    contrast: tuple[float, float] = (0.0, 0.2)
    brightness: tuple[float, float] = (0.0, 0.2)
    batch_sizes: tuple[int, ...] = (16, 32, 64)
    epochs: int = 30
    fine_tuning_epochs: int = 4
    patience: int = 5
    # A feature-extraction epoch trains on at most this many rows (0: one whole pass). It only
    # shortens epochs of large training sets (at full ChestX-ray14 size, 78k images, 235k rows with
    # their banked views), where a whole pass between validation checks and pruning decisions cost
    # a trial minutes; below it every epoch is a whole pass, as before (see README, "Full size").
    epoch_rows: int = 32768
    unfreeze_from: str | None = None  # a fixed boundary (e.g. the poster's conv5_block16_2_conv)
    unfreeze_back: tuple[int, int] = (1, 8)  # else: this many candidate layers before the cut
    bank_views: int = 2
    pruner: str = "median"
    class_weight: bool = True
    min_positives: int = 5  # outputs with fewer validation positives (or negatives) leave the mean AUROC

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchSpace:
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known})

    @property
    def fixed_cut_layer(self) -> str | None:
        """The one cut layer when ``cut_layers`` names exactly one (nothing to choose), else None."""
        only = self.cut_layers[0] if len(self.cut_layers) == 1 else None
        return None if only is None or is_glob(only) else only

    def allows(self, layer: str) -> bool:
        """Whether ``cut_layers`` allow a layer: named exactly, or a candidate matched by a glob."""
        return any(
            fnmatch.fnmatchcase(layer, pattern) and is_candidate(layer) if is_glob(pattern) else layer == pattern
            for pattern in self.cut_layers
        )

    def resolve_layers(self, catalog: LayerCatalog) -> list[str]:
        """The cut layers this space allows, in network order (globs match candidates only).

        Raises:
            OCLError: for a glob that matches no candidate or a name the network does not have.
        """
        for pattern in self.cut_layers:
            if is_glob(pattern):
                if not any(fnmatch.fnmatchcase(c, pattern) for c in catalog.candidate_names):
                    raise OCLError(f"cut_layers pattern {pattern!r} matches no candidate layer; run `ocl layers`")
            else:
                catalog.resolve(pattern, option="cut_layers")
        return [name for name in catalog.names if self.allows(name)]

    def depth_span(self, layers: Sequence[str]) -> tuple[int, int] | None:
        """The first and last candidate depth when ``layers`` are a contiguous run of candidates, else None.

        Then the cut layer is sampled as an integer depth (``cut_layer_depth``), so TPE can use the
        order of layers and optuna-dashboard's slice plot reads shallow to deep; any other set of
        layers is sampled as a categorical ``cut_layer``.
        """
        if len(layers) < 2 or any(layer not in CANDIDATES for layer in layers):
            return None
        depths = sorted(CANDIDATES.index(layer) for layer in layers)
        return (depths[0], depths[-1]) if depths == list(range(depths[0], depths[-1] + 1)) else None

    def cut_layer_params(self, layer: str, layers: Sequence[str]) -> dict[str, Any]:
        """The parameters that make :meth:`suggest` choose ``layer`` (for enqueued trials)."""
        if self.depth_span(layers) is not None:
            return {"cut_layer_depth": CANDIDATES.index(layer)}
        return {"cut_layer": layer} if len(layers) > 1 else {}

    def suggest(
        self, trial: Any, layers: Sequence[str], candidates: Sequence[str], seed: int, *, by_depth: bool | None = None
    ) -> tuple[TrialConfig, str]:
        """Sample one configuration (and its weights label) from an Optuna trial.

        Args:
            trial: an Optuna trial (or ``FixedTrial`` to replay stored parameters).
            layers: the cut layers to choose from (:meth:`resolve_layers`).
            candidates: every candidate layer in depth order (to count ``unfreeze_back`` on).
            seed: the trial's seed for initialisation, shuffling and augmentation.
            by_depth: sample the cut layer by depth (default: when :meth:`depth_span` allows);
                ``False`` replays a trial stored with a categorical ``cut_layer``.
        """
        strategy = _choice(trial, "strategy", self.strategies)
        weights = _choice(trial, "weights", self.weights)
        cut_layer = self._suggest_cut_layer(trial, layers, by_depth)
        unfreeze_from = None
        epochs = self.epochs
        if strategy == FINE_TUNING:
            epochs = self.fine_tuning_epochs
            unfreeze_from = self._suggest_unfreeze_from(trial, cut_layer, candidates)
        augment, augmentation = self._suggest_augmentation(trial, strategy)
        head_units = _choice(trial, "head_units", self.head_units)
        config = TrialConfig(
            strategy=strategy,
            cut_layer=cut_layer,
            unfreeze_from=unfreeze_from,
            optimizer=_choice(trial, "optimizer", self.optimizers),
            learning_rate=trial.suggest_float("learning_rate", *self.learning_rate, log=True),
            augment=augment,
            augmentation=augmentation,
            head_units=head_units,
            dropout=trial.suggest_float("dropout", *self.dropout) if head_units else 0.0,
            epochs=epochs,
            batch_size=_choice(trial, "batch_size", self.batch_sizes),
            class_weight=self.class_weight,
            patience=self.patience,
            seed=seed,
            epoch_rows=self.epoch_rows if strategy == FEATURE_EXTRACTION else 0,
        )
        return config, weights

    def _suggest_cut_layer(self, trial: Any, layers: Sequence[str], by_depth: bool | None) -> str:
        """The cut layer, sampled by depth when the layers are a contiguous run of candidates, else as a category."""
        span = self.depth_span(layers)
        if span is not None and by_depth is not False:
            return CANDIDATES[trial.suggest_int("cut_layer_depth", *span)]
        return _choice(trial, "cut_layer", list(layers))

    def _suggest_unfreeze_from(self, trial: Any, cut_layer: str, candidates: Sequence[str]) -> str:
        """A fine-tuning trial's unfreeze boundary: the fixed one, else ``unfreeze_back`` candidates before the cut."""
        if self.unfreeze_from:
            return self.unfreeze_from
        back = trial.suggest_int("unfreeze_back", *self.unfreeze_back)
        earlier = [c for c in candidates if candidates.index(c) < candidates.index(cut_layer)] if cut_layer in candidates else []
        return earlier[max(0, len(earlier) - back)] if earlier else cut_layer

    def _suggest_augmentation(self, trial: Any, strategy: str) -> tuple[bool, Augmentation]:
        """Whether to augment, and how strongly: sampled for fine-tuning, the bank's strengths for feature extraction."""
        augment = _choice(trial, "augment", self.augment)
        if strategy == FEATURE_EXTRACTION and self.bank_views == 0:
            augment = False
        if augment and strategy == FINE_TUNING:
            return augment, Augmentation(
                rotation_degrees=trial.suggest_float("rotation_degrees", *self.rotation_degrees),
                zoom=trial.suggest_float("zoom", *self.zoom),
                shift=trial.suggest_float("shift", *self.shift),
                contrast=trial.suggest_float("contrast", *self.contrast),
                brightness=trial.suggest_float("brightness", *self.brightness),
            )
        if augment:
            return augment, Augmentation()  # the strengths the bank's views were made with
        return augment, Augmentation(0, 0, 0, 0, 0)


def is_glob(pattern: str) -> bool:
    """Whether a ``cut_layers`` entry is a glob over the candidates rather than a layer name."""
    return any(ch in pattern for ch in "*?[")


def _choice(trial: Any, name: str, choices: Sequence[Any]) -> Any:
    """A categorical parameter; with one choice, record it as a fixed attribute instead of sampling."""
    if len(choices) == 1:
        return choices[0]
    return trial.suggest_categorical(name, list(choices))


def _check(space: SearchSpace, where: str) -> SearchSpace:
    def bad(key: str, value: Any, fix: str) -> OCLError:
        return OCLError(f"{where}: {key} = {value!r} {fix}")

    for key, valid in (("strategies", STRATEGIES), ("optimizers", OPTIMIZERS)):
        values = getattr(space, key)
        if not values:
            raise bad(key, list(values), f"is empty; list at least one of {', '.join(valid)}")
        unknown = [v for v in values if v not in valid]
        if unknown:
            raise bad(key, unknown[0], f"is unknown; valid: {', '.join(valid)}")
    for key in ("cut_layers", "weights", "head_units", "batch_sizes", "augment"):
        if not getattr(space, key):
            raise bad(key, [], "is empty; the search space needs at least one choice")
    for key in ("learning_rate", "dropout", "rotation_degrees", "zoom", "shift", "contrast", "brightness", "unfreeze_back"):
        low_high = getattr(space, key)
        if len(low_high) != 2 or low_high[0] > low_high[1] or low_high[0] < 0:
            raise bad(key, list(low_high), "must be [low, high] with 0 <= low <= high")
    if space.learning_rate[0] <= 0:
        raise bad("learning_rate", list(space.learning_rate), "must be a positive range, e.g. [1e-5, 1e-1]")
    if space.dropout[1] >= 1:
        raise bad("dropout", list(space.dropout), "must stay below 1")
    if space.pruner not in PRUNERS:
        raise bad("pruner", space.pruner, f"is unknown; valid: {', '.join(PRUNERS)}")
    if isinstance(space.min_positives, bool) or not isinstance(space.min_positives, int) or space.min_positives < 0:
        raise bad("min_positives", space.min_positives, "must be a whole number, 0 or more (5 by default)")
    if isinstance(space.epoch_rows, bool) or not isinstance(space.epoch_rows, int) or space.epoch_rows < 0:
        raise bad("epoch_rows", space.epoch_rows, "must be a whole number of rows, or 0 for a whole pass each epoch")
    for key in ("epochs", "fine_tuning_epochs", "patience"):
        if getattr(space, key) < 1:
            raise bad(key, getattr(space, key), "must be at least 1")
    if any(int(b) < 1 for b in space.batch_sizes) or any(int(u) < 0 for u in space.head_units):
        raise bad("batch_sizes/head_units", [space.batch_sizes, space.head_units], "must be positive integers")
    return space


def load_search_space(path: Path | None = None, *, fallbacks: dict[str, Any] | None = None, **overrides: Any) -> SearchSpace:
    """Read a study file's ``[space]`` table, then apply overrides (flags the user passed).

    ``fallbacks`` replace built-in defaults only for keys the study file does not set.
    """
    values: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        where = str(path)
        try:
            document = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise OCLError(f"--config {path}: no such file; see studies/default.toml for an example") from None
        except tomllib.TOMLDecodeError as exc:
            raise OCLError(f"--config {path}: not valid TOML ({exc}); fix the file (see studies/default.toml)") from None
        values = dict(document.get("space", {}))
        known = {f.name for f in fields(SearchSpace)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise OCLError(f"--config {path}: unknown key {unknown[0]!r} in [space]; valid keys: {', '.join(sorted(known))}")
    for key, value in (fallbacks or {}).items():
        values.setdefault(key, value)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(values.get("weights"), list | tuple):
        from sweep.model import weights_label

        try:
            values["weights"] = [weights_label(str(w)) for w in values["weights"]]
        except OCLError as exc:
            raise OCLError(f"--config {where}: weights: {exc}") from None
    try:
        space = SearchSpace.from_dict(values)
    except TypeError as exc:
        raise OCLError(f"--config {where}: {exc}") from None
    return _check(space, f"--config {where}" if path else "search space")
