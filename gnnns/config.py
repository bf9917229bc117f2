"""One run's settings: what the CLI flags and ``--config run.yaml`` files fill in."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PRECISIONS = ("fp32", "bf16")
"""Training precisions: ``fp32``, or ``bf16`` (matrix products under bfloat16 autocast)."""
POSITIVE_WEIGHTS = ("none", "subsampling")
"""Weights of negative-sampling positives: equal, or :class:`~gnnns.training.SubsamplingWeights`."""
NEGATIVE_SCORING = ("rows", "distinct", "triple")
"""How negatives are scored: each row's own candidates, the batch's distinct ones (LibKGE's ``batch``), or
each as a triple of its own (LibKGE's ``triple``)."""


@dataclass
class RunConfig:
    """Every setting of a training run, with the defaults of ``gnnns train``.

    The defaults train ComplEx by negative sampling (32 uniform negatives per positive, softmax
    cross-entropy over the positive and its negatives) on the embedded synthetic graph: no
    download, under a minute on two CPU cores, filtered test MRR about 0.7.
    """

    dataset: str = "synthetic"
    model: str = "complex"
    dim: int = 64
    sparse: bool = False  # sparse gradients of embedding tables (shallow, or a GNN input table): touched rows only
    p: int = 1  # TransE norm
    decoder_options: dict = field(default_factory=dict)  # keyword arguments of the decoder (ConvE's)
    encoder: str = "embedding"  # embedding | rgcn | compgcn
    encoder_options: dict = field(default_factory=dict)  # keyword arguments of the encoder
    graph_mode: str = "full"  # GNN encoders: full (one pass per step) | neighbor (sampled subgraphs)
    num_neighbors: list = field(default_factory=lambda: [10, 10])  # neighbor mode: fan-out per hop
    exclude_positives: bool = False  # full mode: keep the batch's positive edges out of message passing
    training: str = "negative"  # negative | 1vsall | kvsall
    reciprocal: bool = False
    head_queries: str = "inverse"  # 1-N training: inverse (t, r^-1, ?) | direct (?, r, t) with the decoder's head query
    sampler: str = "uniform"
    sampler_options: dict = field(default_factory=dict)  # keyword arguments of the sampler
    filter_negatives: bool = False
    num_negatives: int = 32  # per positive; with negative_sides: both, new tails per positive
    negative_sides: str = "random"  # random (one side per positive, the sampler's choice) | both (head and tail)
    num_head_negatives: int | None = None  # negative_sides: both: new heads per positive; None: num_negatives
    negative_scoring: str = "rows"  # rows (each row's candidates) | distinct (the batch's distinct ones) | triple
    positive_weights: str = "none"  # none | subsampling (RotatE's code: (n(h,r) + n(r,t) + 6)^-1/2 per positive)
    loss: str = "sce"
    margin: float = 6.0
    adversarial_temperature: float = 1.0
    temperature: float = 1.0
    false_negative_prior: float = 0.1  # debiased loss: chance that a sampled negative is true
    negative_hardness: float = 0.0  # debiased loss: weight of hard negatives (beta)
    label_smoothing: float = 0.0
    smoothing: str = "mix"  # bce: mix ((1-eps) y + eps/E) | conve ((1-eps) y + 1/E, as ConvE and CompGCN)
    regularizer_weight: float = 0.0  # weight of the penalty on the batch's embedding rows
    regularizer: str = "n3"  # n3 (Lacroix et al., 2018: mean |x|^3) | l2 (mean x^2, LibKGE's weighted lp, p: 2)
    relation_regularizer_weight: float | None = None  # the relation rows' own weight; None: regularizer_weight
    optimizer: str = "adam"
    lr: float = 0.01
    weight_decay: float = 0.0  # L2: adds weight_decay * theta to every gradient (a penalty weight_decay / 2 |theta|^2)
    relation_weight_decay: float | None = None  # the relation table's own weight decay; None: weight_decay
    lr_scheduler: str = "none"  # none | plateau (lower the rate when validation MRR stops improving) | step
    # plateau: factor, patience, threshold, min_lr; step: milestones (epochs), factor
    lr_scheduler_options: dict = field(default_factory=dict)
    batch_size: int = 1024
    epochs: int = 15
    diagnostics_every: int = 10  # measure the negatives every N batches; 0: never
    hardness_queries: int = 64  # queries per measured batch scored against all entities
    time_budget: float = 0.0  # seconds of training steps, then stop; 0: no budget
    budget_clock: str = "wall"  # wall | cpu
    checkpoint_every: int = 0  # also write the checkpoint every N steps of an epoch; 0: at epoch ends only
    checkpoint_seconds: float = 0.0  # also write it when this many seconds passed since the last; 0: never
    eval_every: int = 0  # 0: at the end only; -1: never
    eval_batch_size: int = 256
    patience: int = 0  # evaluations without improvement before stopping; 0: never stop early
    seed: int = 0
    device: str = "cpu"
    compile: bool = False
    precision: str = "fp32"  # fp32 | bf16 (training steps under bfloat16 autocast; evaluation stays fp32)
    progress: bool = True
    output: str | None = None  # run directory; gnnns train picks runs/<dataset>-<model>-<time>

    def __post_init__(self) -> None:
        self._check_types()
        # YAML 1.1 reads 1e-05 (no dot) as text, and the command line passes a setting whose default
        # is None as text: numbers written so are taken as numbers, anything else is refused.
        for name in (*FLOAT_FIELDS, *OPTIONAL_FLOAT_FIELDS):
            value = getattr(self, name)
            if value is None and name in OPTIONAL_FLOAT_FIELDS:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"{name} must be a number, got {value!r}")
            try:
                setattr(self, name, float(value))
            except ValueError:
                raise ValueError(f"{name} must be a number, got {value!r}") from None
        for name in ("sampler_options", "encoder_options", "decoder_options", "lr_scheduler_options"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a mapping of setting: value, got {getattr(self, name)!r}")
        for name, low in (("epochs", 0), ("eval_every", -1), ("patience", 0), ("diagnostics_every", 0)):
            if getattr(self, name) < low:  # whole numbers: _check_types
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.time_budget < 0:
            raise ValueError(f"time_budget must be >= 0 seconds (0: no budget), got {self.time_budget}")
        if self.eval_every <= 0 and (self.patience > 0 or self.lr_scheduler == "plateau"):
            uses = "patience" if self.patience > 0 else "lr_scheduler: plateau"
            raise ValueError(
                f"{uses} needs validation during training, but eval_every is {self.eval_every} "
                "(0: at the end only, -1: never); set eval_every to validate every N epochs"
            )
        if self.checkpoint_every < 0 or self.checkpoint_seconds < 0:
            raise ValueError(
                f"checkpoint_every and checkpoint_seconds must be >= 0 (0: off), got {self.checkpoint_every} "
                f"and {self.checkpoint_seconds}"
            )
        if self.weight_decay < 0 or (self.relation_weight_decay or 0.0) < 0:
            raise ValueError(
                f"weight decay must be >= 0, got weight_decay={self.weight_decay}, "
                f"relation_weight_decay={self.relation_weight_decay}"
            )
        self._check_sides()
        if self.negative_scoring not in NEGATIVE_SCORING:
            raise ValueError(f"negative_scoring must be one of {list(NEGATIVE_SCORING)}, got {self.negative_scoring!r}")
        if self.positive_weights not in POSITIVE_WEIGHTS:
            raise ValueError(f"positive_weights must be one of {list(POSITIVE_WEIGHTS)}, got {self.positive_weights!r}")
        if self.positive_weights != "none" and self.training != "negative":
            raise ValueError(
                f"positive_weights: {self.positive_weights} weights negative-sampling positives; "
                f"training: {self.training} has none"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if isinstance(self.num_neighbors, str):
            try:
                self.num_neighbors = [int(n) for n in self.num_neighbors.split(",") if n.strip()]
            except ValueError:
                raise ValueError(
                    f"num_neighbors must be positive integers or -1 (all), one per hop, comma-separated, "
                    f"got {self.num_neighbors!r}"
                ) from None
        elif isinstance(self.num_neighbors, int) and not isinstance(self.num_neighbors, bool):
            self.num_neighbors = [self.num_neighbors]
        if not self.num_neighbors or not all(isinstance(n, int) and (n > 0 or n == -1) for n in self.num_neighbors):
            raise ValueError(
                f"num_neighbors must be positive integers or -1 (all), one per hop, got {self.num_neighbors!r}"
            )

    def _check_types(self) -> None:
        """Each setting of the kind its annotation names (YAML and JSON may hold anything), and
        counts that must be positive; floats are checked by the caller, which also reads text."""
        kinds = {"int": "a whole number", "str": "text", "bool": "true or false", "dict": "a mapping", "list": "a list"}
        for f in dataclasses.fields(self):
            base, _, optional = str(f.type).partition(" | ")
            value = getattr(self, f.name)
            if base not in kinds or f.name in ("num_head_negatives", "num_neighbors") or (optional and value is None):
                continue  # floats, and the two that the command line passes as text, are checked below
            if base == "int":
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, {"str": str, "bool": bool, "dict": dict, "list": list}[base])
            if not ok:
                raise ValueError(f"{f.name} must be {kinds[base]}, got {value!r}")
        for name in ("dim", "batch_size", "eval_batch_size", "num_negatives", "hardness_queries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must lie in [0, 2**32), got {self.seed}")
        import torch

        try:
            torch.device(self.device)
        except (RuntimeError, ValueError):
            raise ValueError(f"device must be cpu, cuda, cuda:N or another torch device, got {self.device!r}") from None

    def _check_sides(self) -> None:
        if self.negative_sides not in ("random", "both"):
            raise ValueError(f"negative_sides must be 'random' or 'both', got {self.negative_sides!r}")
        if self.negative_sides == "both" and self.sampler == "bernoulli":
            raise ValueError(
                "sampler: bernoulli only chooses which side to corrupt; with negative_sides: both every side is "
                "corrupted, which is sampler: uniform"
            )
        if self.num_head_negatives is None:
            return
        try:  # the command line passes it as text (its default is None)
            count = int(str(self.num_head_negatives))
        except ValueError:
            raise ValueError(f"num_head_negatives must be a whole number, got {self.num_head_negatives!r}") from None
        if isinstance(self.num_head_negatives, bool) or count < 1:
            raise ValueError(f"num_head_negatives must be at least 1, got {self.num_head_negatives!r}")
        if self.negative_sides != "both":
            raise ValueError("num_head_negatives counts the head side's negatives: it needs negative_sides: both")
        self.num_head_negatives = count

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config", lines: dict[str, int] | None = None) -> RunConfig:
        """The config of ``values``; an unknown or invalid setting is a ValueError naming
        ``source``, and the setting's line there when ``lines`` (see :func:`setting_lines`) has it."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"{source}: {_unknown_message(unknown, cls.field_names())}")
        try:
            return cls(**values)
        except ValueError as err:
            # Every check's message starts with the setting it is about.
            name = str(err).split(" ", 1)[0]
            if lines and name in lines:
                raise ValueError(f"{source}:{lines[name]}: {err}") from None
            raise


def read_config_file(path: str | Path) -> dict:
    """Settings from a YAML (or JSON) file; keys may use ``-`` or ``_``."""
    path = Path(path)
    try:
        values = load_yaml(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of setting: value, got {type(values).__name__}")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    valid = set(RunConfig.field_names())
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ValueError(f"{path}: {_unknown_message(unknown, sorted(valid))}")
    return values


def setting_lines(path: str | Path) -> dict[str, int]:
    """The line of each top-level setting in the YAML file ``path`` (keys with ``-`` read as ``_``)."""
    node = yaml.compose(Path(path).read_text(encoding="utf-8"))
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {
        str(key.value).replace("-", "_"): value.start_mark.line + 1
        for key, value in node.value
        if isinstance(key, yaml.ScalarNode)
    }


def load_yaml(path: Path):
    """The YAML document in ``path``; a syntax error becomes a ValueError naming file and line."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ValueError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from None


def _unknown_message(unknown: list[str], valid: list[str]) -> str:
    import difflib

    hints = [
        f"{key!r}: did you mean {close[0]!r}?" for key in unknown if (close := difflib.get_close_matches(key, valid, 1))
    ]
    hint = f" ({'; '.join(hints)})" if hints else ""
    return f"unknown setting(s) {unknown}{hint}; valid settings: {valid}"


FLOAT_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig) if isinstance(f.default, float))
"""The settings whose default is a float: a number written as text (YAML's 1e-05) is read as one."""
OPTIONAL_FLOAT_FIELDS = ("relation_weight_decay", "relation_regularizer_weight")
"""Number settings whose default is None (the relation table's own value)."""
