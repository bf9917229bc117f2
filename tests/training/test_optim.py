"""Sparse embedding gradients and the optimizers that apply them."""

import pytest
import torch

from gnnns.config import RunConfig
from gnnns.data import KnowledgeGraph
from gnnns.models import build_model
from gnnns.training.optim import (
    CombinedOptimizer,
    LazyAdam,
    PlateauSchedule,
    StepSchedule,
    build_lr_schedule,
    build_optimizer,
    sparse_parameters,
)


def _kg(num_entities: int = 50) -> KnowledgeGraph:
    gen = torch.Generator().manual_seed(0)
    triples = torch.stack(
        [
            torch.randint(num_entities, (200,), generator=gen),
            torch.randint(3, (200,), generator=gen),
            torch.randint(num_entities, (200,), generator=gen),
        ],
        1,
    )
    return KnowledgeGraph(triples, num_entities=num_entities, num_relations=3)


def _pair(model_name: str = "rotate"):
    """The same model twice, with dense and with sparse gradients, equal weights."""
    kg = _kg()
    torch.manual_seed(0)
    dense = build_model(model_name, kg, 8)
    sparse = build_model(model_name, kg, 8, sparse=True)
    sparse.load_state_dict(dense.state_dict())
    return kg, dense, sparse


def _loss(model, positives, negatives):
    corrupt = torch.zeros(len(positives), dtype=torch.bool)
    corrupt[::2] = True
    pos, neg = model.score_batch(positives, negatives, corrupt)
    return -(pos.sigmoid().log().mean() + (-neg).sigmoid().log().mean())


def _batch(step: int):
    gen = torch.Generator().manual_seed(100 + step)
    # Few entities per step: most rows are untouched, which is where lazy and dense updates differ.
    positives = torch.stack(
        [
            torch.randint(10, (4,), generator=gen),
            torch.randint(3, (4,), generator=gen),
            torch.randint(10, (4,), generator=gen),
        ],
        1,
    ) + torch.tensor([10 * step, 0, 10 * step])
    negatives = torch.randint(10, (4, 3), generator=gen) + 10 * step
    return positives, negatives


@pytest.mark.parametrize("model_name", ["rotate", "distmult", "transe", "complex"])
def test_sparse_gradient_holds_only_touched_rows_and_equals_dense(model_name):
    _, dense, sparse = _pair(model_name)
    positives, negatives = _batch(0)
    _loss(dense, positives, negatives).backward()
    _loss(sparse, positives, negatives).backward()
    grad = sparse.encoder.entity.weight.grad
    assert grad.is_sparse
    touched = torch.cat([positives[:, 0], positives[:, 2], negatives.reshape(-1)]).unique()
    assert set(grad.coalesce().indices()[0].tolist()) == set(touched.tolist())
    torch.testing.assert_close(grad.to_dense(), dense.encoder.entity.weight.grad)
    torch.testing.assert_close(sparse.encoder.relation.weight.grad.to_dense(), dense.encoder.relation.weight.grad)


def _lazy_adam(weight, grads, lr, betas=(0.9, 0.999), eps=1e-8):
    """Adam written out row by row, advancing a row's moments only in steps whose gradient has it.

    The bias corrections follow the table's step count, and eps is added to sqrt(v) before the
    correction: step = lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), as SparseAdam does.
    """
    weight = weight.clone()
    m, v = torch.zeros_like(weight), torch.zeros_like(weight)
    for step, (rows, g) in enumerate(grads, start=1):
        step_size = lr * (1 - betas[1] ** step) ** 0.5 / (1 - betas[0] ** step)
        for i, row in enumerate(rows.tolist()):
            m[row] = betas[0] * m[row] + (1 - betas[0]) * g[i]
            v[row] = betas[1] * v[row] + (1 - betas[1]) * g[i] ** 2
            weight[row] -= step_size * m[row] / (v[row].sqrt() + eps)
    return weight


def test_sparse_adam_updates_only_touched_rows_as_lazy_adam():
    _, _, model = _pair("distmult")
    optimizer = build_optimizer(RunConfig(optimizer="adam", lr=0.05), model)
    assert isinstance(optimizer, CombinedOptimizer)
    start = model.encoder.entity.weight.detach().clone()
    grads = []
    for step in range(3):
        positives, negatives = _batch(step)
        optimizer.zero_grad()
        _loss(model, positives, negatives).backward()
        g = model.encoder.entity.weight.grad.coalesce()
        grads.append((g.indices()[0].clone(), g.values().clone()))
        optimizer.step()
    expected = _lazy_adam(start, grads, lr=0.05)
    torch.testing.assert_close(model.encoder.entity.weight.detach(), expected, rtol=1e-5, atol=1e-6)
    touched = torch.cat([rows for rows, _ in grads]).unique()
    untouched = torch.ones(len(start), dtype=torch.bool)
    untouched[touched] = False
    assert untouched.any()
    assert torch.equal(model.encoder.entity.weight.detach()[untouched], start[untouched])


@pytest.mark.parametrize("name", ["adagrad", "sgd"])
def test_sparse_adagrad_and_sgd_equal_their_dense_runs(name):
    # Untouched rows have a zero gradient: Adagrad's accumulator and SGD leave them as they are,
    # so the sparse and dense updates agree exactly.
    _, dense, sparse = _pair("complex")
    config = RunConfig(optimizer=name, lr=0.1)
    opt_dense, opt_sparse = build_optimizer(config, dense), build_optimizer(config, sparse)
    assert isinstance(opt_sparse, torch.optim.Optimizer)
    for step in range(3):
        batch = _batch(step)
        for model, opt in ((dense, opt_dense), (sparse, opt_sparse)):
            opt.zero_grad()
            _loss(model, *batch).backward()
            opt.step()
    for (name_d, p_d), (_, p_s) in zip(dense.named_parameters(), sparse.named_parameters(), strict=True):
        torch.testing.assert_close(p_s, p_d, rtol=1e-5, atol=1e-6, msg=name_d)


def test_dense_adagrad_is_fused_and_follows_the_textbook_rule_over_steps():
    # G <- G + g^2, theta <- theta - lr g / (sqrt(G) + 1e-10), with g the loss gradient plus decay * theta.
    _, model, _ = _pair("distmult")
    opt = build_optimizer(RunConfig(optimizer="adagrad", lr=0.3, weight_decay=0.01), model)
    assert opt.defaults["fused"] is True
    expected = {name: p.detach().clone() for name, p in model.named_parameters()}
    accumulated = {name: torch.zeros_like(p) for name, p in expected.items()}
    for step in range(3):
        opt.zero_grad()
        _loss(model, *_batch(step)).backward()
        grads = {name: p.grad + 0.01 * expected[name] for name, p in model.named_parameters()}
        opt.step()
        for name, g in grads.items():
            accumulated[name] += g * g
            expected[name] = expected[name] - 0.3 * g / (accumulated[name].sqrt() + 1e-10)
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.detach(), expected[name], rtol=1e-5, atol=1e-6, msg=f"{name}, step {step}")


def test_combined_optimizer_state_round_trip_and_mismatch():
    _, _, model = _pair("distmult")
    model.decoder.register_parameter("scale", torch.nn.Parameter(torch.ones(1)))  # a dense part
    optimizer = build_optimizer(RunConfig(optimizer="adam", lr=0.05), model)
    assert [type(p).__name__ for p in optimizer.optimizers] == ["LazyAdam", "Adam"]
    assert len(optimizer.param_groups) == 2
    positives, negatives = _batch(0)
    _loss(model, positives, negatives).backward()
    optimizer.step()
    clone = build_optimizer(RunConfig(optimizer="adam", lr=0.05), model)
    clone.load_state_dict(optimizer.state_dict())
    weight = model.encoder.entity.weight
    torch.testing.assert_close(
        clone.optimizers[0].state[weight]["exp_avg"], optimizer.optimizers[0].state[weight]["exp_avg"]
    )
    with pytest.raises(ValueError, match="parts"):
        clone.load_state_dict({"parts": [optimizer.state_dict()["parts"][0]]})


def test_sparse_settings_that_cannot_work_are_refused():
    kg, dense, sparse = _pair("distmult")
    assert sparse_parameters(dense) == []
    assert len(sparse_parameters(sparse)) == 2
    with pytest.raises(ValueError, match="weight_decay"):
        build_optimizer(RunConfig(optimizer="adam", weight_decay=1e-4), sparse)
    with pytest.raises(ValueError, match="kvsall"):
        build_optimizer(RunConfig(optimizer="adagrad", training="kvsall"), sparse)
    with pytest.raises(ValueError, match="compile"):
        build_model("distmult", kg, 8, sparse=True, compile=True)
    with pytest.raises(ValueError, match="there is no input table"):
        build_model("distmult", kg, 8, sparse=True, encoder="rgcn", encoder_options={"in_features": 4})


def test_n3_regulariser_keeps_gradients_sparse():
    from gnnns.training.trainer import Trainer

    _, dense, sparse = _pair("complex")
    positives = _batch(0)[0]
    grads = []
    for model in (dense, sparse):
        trainer = Trainer.__new__(Trainer)
        trainer.model = model
        trainer._n3(positives).backward()
        grads.append(model.encoder.entity.weight.grad)
    assert grads[1].is_sparse
    torch.testing.assert_close(grads[1].to_dense(), grads[0])


def test_lazy_adam_matches_torch_sparse_adam():
    torch.manual_seed(0)
    ours = torch.nn.Embedding(30, 4, sparse=True)
    theirs = torch.nn.Embedding(30, 4, sparse=True)
    theirs.load_state_dict(ours.state_dict())
    opt_ours = LazyAdam(ours.parameters(), lr=0.1, betas=(0.8, 0.99), eps=1e-6)
    opt_theirs = torch.optim.SparseAdam(theirs.parameters(), lr=0.1, betas=(0.8, 0.99), eps=1e-6)
    for step in range(5):
        rows = torch.tensor([step, step + 1, step + 1, 7])  # a repeated row and one touched every step
        target = torch.randn(4, 4, generator=torch.Generator().manual_seed(step))
        for emb, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            ((emb(rows) - target) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=1e-6, atol=1e-7)
    assert torch.equal(ours.weight[20:], theirs.weight[20:])


def test_lazy_adam_refuses_dense_gradients():
    weight = torch.nn.Parameter(torch.ones(3, 2))
    weight.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="sparse gradients only"):
        LazyAdam([weight]).step()


@pytest.mark.parametrize(
    "options",
    [
        {"factor": 0.5, "patience": 0},
        {"factor": 0.95, "patience": 2, "threshold": 1e-2},
        {"factor": 0.1, "patience": 1, "min_lr": 0.004},
    ],
)
def test_plateau_schedule_follows_torch_reduce_lr_on_plateau(options):
    """The same rates as PyTorch's ReduceLROnPlateau (mode max, relative threshold) over a
    sequence with rises, ties, tiny gains and falls."""
    values = [0.1, 0.2, 0.2, 0.19, 0.2001, 0.25, 0.24, 0.23, 0.22, 0.3, 0.3, 0.29, 0.28, 0.27, 0.26, 0.31]
    ours_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ours = PlateauSchedule(ours_opt, **options)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(
        ref_opt, mode="max", threshold_mode="rel", **{"threshold": 1e-4, **options}
    )
    lowered = []
    for value in values:
        lowered.append(ours.step(value))
        ref.step(value)
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-12)
    assert any(lowered)  # every setting lowers the rate at least once on this sequence


def test_plateau_schedule_reaches_every_group_of_a_combined_optimizer_and_saves_its_state():
    a = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    b = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
    schedule = PlateauSchedule(CombinedOptimizer([a, b]), factor=0.5, patience=0)
    schedule.step(0.3)
    assert schedule.step(0.3)  # not better: lowered at once with patience 0
    assert (a.param_groups[0]["lr"], b.param_groups[0]["lr"]) == (0.1, 0.2)
    state = schedule.state_dict()
    fresh = PlateauSchedule(CombinedOptimizer([a, b]), factor=0.5, patience=0)
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state == {"best": 0.3, "bad": 0}


def test_step_schedule_follows_torch_multistep_lr_on_epochs_in_every_group():
    a = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    b = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
    schedule = StepSchedule(CombinedOptimizer([a, b]), milestones=[2, 4], factor=0.1)
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    ref = torch.optim.lr_scheduler.MultiStepLR(ref_opt, milestones=[2, 4], gamma=0.1)
    changes = []
    for epoch in range(1, 7):  # epoch e trains at 0.2 * 0.1 ** #{m < e}: 0.2, 0.2, 0.02, 0.02, 0.002, 0.002
        changes.append(schedule.start_epoch(epoch))
        assert a.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-12)
        assert b.param_groups[0]["lr"] == pytest.approx(2 * ref_opt.param_groups[0]["lr"], rel=1e-12)
        assert not schedule.step(0.5)  # validations do not move it
        ref_opt.step()
        ref.step()
    assert changes == [False, False, True, False, True, False]
    assert schedule.lr == pytest.approx(0.002)
    # Built again (a resumed run) from an optimizer already at the lowered rate, with its saved
    # state, it keeps the first rates as its base; a jump back to epoch 1 restores them.
    resumed = StepSchedule(CombinedOptimizer([a, b]), milestones=[2, 4], factor=0.1)
    resumed.load_state_dict(schedule.state_dict())
    assert resumed.state_dict() == {"base": [0.2, 0.4]}
    assert resumed.start_epoch(1) and b.param_groups[0]["lr"] == pytest.approx(0.4)
    for bad in ([], [3, 2], [0], [2, 2], "10", [1.5]):
        with pytest.raises(ValueError, match="increasing positive epoch numbers"):
            StepSchedule(a, milestones=bad)
    with pytest.raises(ValueError, match="factor must be > 0"):
        StepSchedule(a, milestones=[1], factor=0.0)


def test_build_lr_schedule_checks_its_settings():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert build_lr_schedule(RunConfig(), opt) is None
    schedule = build_lr_schedule(
        RunConfig(lr_scheduler="plateau", eval_every=1, lr_scheduler_options={"factor": 0.9}), opt
    )
    assert schedule.factor == 0.9 and schedule.patience == 10
    with pytest.raises(ValueError, match="unknown lr_scheduler 'cosine'"):
        build_lr_schedule(RunConfig(lr_scheduler="cosine"), opt)
    with pytest.raises(ValueError, match=r"no option \['gamma'\]"):
        build_lr_schedule(RunConfig(lr_scheduler="plateau", eval_every=1, lr_scheduler_options={"gamma": 0.5}), opt)
    with pytest.raises(ValueError, match="without an lr_scheduler"):
        build_lr_schedule(RunConfig(lr_scheduler_options={"factor": 0.5}), opt)
    with pytest.raises(ValueError, match="0 < factor < 1"):
        build_lr_schedule(RunConfig(lr_scheduler="plateau", eval_every=1, lr_scheduler_options={"factor": 1.5}), opt)
    step = build_lr_schedule(RunConfig(lr_scheduler="step", lr_scheduler_options={"milestones": [188]}), opt)
    assert isinstance(step, StepSchedule) and step.milestones == [188] and step.factor == 0.1
    with pytest.raises(ValueError, match="'step' needs lr_scheduler_options milestones"):
        build_lr_schedule(RunConfig(lr_scheduler="step", lr_scheduler_options={"factor": 0.5}), opt)
    with pytest.raises(ValueError, match=r"'step' has no option \['patience'\]"):
        build_lr_schedule(RunConfig(lr_scheduler="step", lr_scheduler_options={"milestones": [1], "patience": 2}), opt)


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
def test_weight_decay_is_an_l2_gradient_and_the_relation_table_can_have_its_own(optimizer):
    _, model, _ = _pair("complex")
    config = RunConfig(optimizer=optimizer, lr=1.0, weight_decay=0.1, relation_weight_decay=0.001)
    opt = build_optimizer(config, model)
    entity, relation = model.encoder.entity.weight, model.encoder.relation.weight
    before = entity.detach().clone(), relation.detach().clone()
    (0.0 * (entity.sum() + relation.sum())).backward()  # a zero loss: the step is the decay alone
    opt.step()
    for table, old, decay in ((entity, before[0], 0.1), (relation, before[1], 0.001)):
        # The gradient is g = decay * theta (that of decay / 2 * |theta|^2); Adagrad's first step moves
        # each coordinate by lr * g / (|g| + 1e-10), its epsilon.
        g = decay * old
        step = g if optimizer == "sgd" else g / (g.abs() + 1e-10)
        torch.testing.assert_close(table.detach(), old - step, rtol=1e-5, atol=1e-6)
    groups = build_optimizer(RunConfig(optimizer="adam", weight_decay=0.1), model).param_groups
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.1  # without relation_weight_decay: one group


def test_numbers_written_as_text_are_read_as_numbers():
    # YAML 1.1 reads 1e-05 as the string "1e-05"; the command line passes None-default settings as text.
    config = RunConfig(lr="1e-03", weight_decay="2e-06", relation_weight_decay="1e-10")
    assert (config.lr, config.weight_decay, config.relation_weight_decay) == (1e-3, 2e-6, 1e-10)
    with pytest.raises(ValueError, match="lr must be a number, got 'fast'"):
        RunConfig(lr="fast")
    with pytest.raises(ValueError, match="weight decay must be >= 0"):
        RunConfig(relation_weight_decay=-1)
    _, _, sparse = _pair("distmult")
    with pytest.raises(ValueError, match="weight_decay"):
        build_optimizer(RunConfig(relation_weight_decay=1e-4), sparse)


def test_a_checkpoint_of_unfused_adagrad_resumes_fused():
    from gnnns.training.checkpointing import keep_implementation

    _, model, _ = _pair("distmult")
    old = torch.optim.Adagrad(model.parameters(), lr=0.3)  # as runs before dense Adagrad was fused
    _loss(model, *_batch(0)).backward()
    old.step()
    saved = old.state_dict()
    plain = build_optimizer(RunConfig(optimizer="adagrad", lr=0.3), model)
    plain.load_state_dict(saved)
    assert plain.param_groups[0]["fused"] is None  # load_state_dict takes the file's setting
    resumed = build_optimizer(RunConfig(optimizer="adagrad", lr=0.3), model)
    resumed.load_state_dict(keep_implementation(resumed, saved))
    assert resumed.param_groups[0]["fused"] is True
    weight = model.encoder.entity.weight
    torch.testing.assert_close(resumed.state[weight]["sum"], old.state[weight]["sum"])
