"""Lab 04 exercises: the reference answers pass, wrong answers fail with a message that says what to fix."""

from xtlab.exercises.optimizer_groups import check_group_predictions, check_param_groups_function


def reference_param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        special = parameter.ndim <= 1 or "emb" in name or leaf in ("memory_tokens", "mem_k", "mem_v")
        (no_decay if special else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def test_reference_param_groups_passes(capsys):
    assert check_param_groups_function(reference_param_groups).passed
    assert capsys.readouterr().out.startswith("PASS")


def test_by_ndim_answer_names_the_misplaced_memory_tokens(capsys):
    def by_ndim(model, weight_decay):
        params = list(model.parameters())
        return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]

    verdict = check_param_groups_function(by_ndim)
    assert not verdict.passed
    assert "memory_tokens (memory tokens) should get weight decay 0" in verdict.message
    assert capsys.readouterr().out.startswith("NOT YET")


def test_incomplete_or_failing_answers_are_explained():
    verdict = check_param_groups_function(lambda m, wd: [{"params": list(m.parameters())[1:], "weight_decay": wd}])
    assert not verdict.passed and "in no group" in verdict.message
    verdict = check_param_groups_function(lambda m, wd: 1 / 0)
    assert not verdict.passed and "ZeroDivisionError" in verdict.message
    verdict = check_param_groups_function(lambda m, wd: [{"params": list(m.parameters())}])
    assert not verdict.passed and "'weight_decay'" in verdict.message
    assert not check_param_groups_function("my_param_groups").passed


RIGHT = {"rmsnorm_lm.memory_tokens": "decay", "scalenorm_lm.attn_layers.final_norm.g": "no_decay",
         "rmsnorm_lm.attn_layers.layers.0.fn.mem_k": "decay"}


def test_right_predictions_pass():
    assert check_group_predictions(RIGHT).passed


def test_wrong_predictions_point_at_ndim():
    verdict = check_group_predictions({**RIGHT, "rmsnorm_lm.memory_tokens": "no_decay"})
    assert not verdict.passed
    assert "rmsnorm_lm.memory_tokens has shape (2, 32): look at its ndim" in verdict.message
    assert "missing" in check_group_predictions({}).message
    assert "'maybe'" in check_group_predictions({**RIGHT, "rmsnorm_lm.memory_tokens": "maybe"}).message
    assert "dict" in check_group_predictions(["decay"]).message
