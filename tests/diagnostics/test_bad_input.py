"""Every public entry point of xtlab.diagnostics refuses bad input with a message naming it: one line per case,
(call, error type, text the message must contain). None of these starts a process or writes a real file."""

import math

import pytest
import torch
import torch.nn as nn

from tests.diagnostics.ddp_train_functions import hang_on_rank_one
from xtlab.diagnostics import (
    CheckpointError,
    GradientPresenceRecorder,
    build_adamw,
    check_param_groups,
    describe_parameters,
    embedding_output_tie,
    find_unused_parameters,
    inspect_ties,
    load_checkpoint,
    max_world_size,
    param_groups,
    record_gradient_presence,
    run_distributed,
    save_checkpoint,
    strategy_disagreements,
    tensor_tie_status,
    tie_status,
)
from xtlab.model import Decoder, TransformerWrapper

NAN, INF = math.nan, math.inf
LINEAR = nn.Linear(2, 2)
LM = TransformerWrapper(10, 8, Decoder(16, 1, 2))
with torch.device("meta"):
    META = nn.Linear(2, 2)


ONES = torch.ones(1, 2)


def loss(model, batch):
    return model(batch).sum()


def step_fn(step):
    loss(LINEAR, ONES).backward()


def presence():
    return record_gradient_presence(nn.Linear(2, 2), lambda step: loss(LINEAR, ONES), 2)


def recorder():
    return GradientPresenceRecorder(nn.Linear(2, 2))


def adamw(**kw):
    return build_adamw(**({"model": nn.Linear(2, 2), "lr": 1e-3, "weight_decay": 0.1} | kw))


def ddp(**kw):
    return run_distributed(**({"train_fn": hang_on_rank_one, "world_size": 1, "timeout_s": 5.0} | kw))


CASES = [
    # ties
    (lambda: tie_status(LM, None, "to_logits.weight"), TypeError, "first must be a str, but got NoneType"),
    (lambda: tie_status(LM, "token_emb.weight", 3), TypeError, "second must be a str, but got int: 3"),
    (lambda: tie_status(None, "a", "b"), TypeError, "model must be a torch.nn.Module, but got NoneType"),
    (lambda: tie_status(LM, "token_emb.weight", "nope"), ValueError, "second='nope'"),
    (lambda: inspect_ties("model"), TypeError, "model must be a torch.nn.Module, but got str"),
    (lambda: tensor_tie_status(None, LINEAR.weight), TypeError, "first must be a torch.Tensor, but got NoneType"),
    (lambda: tensor_tie_status(LINEAR.weight, [1]), TypeError, "second must be a torch.Tensor, but got list"),
    (lambda: embedding_output_tie(LM, embedding=None), TypeError, "embedding must be a str, but got NoneType"),
    (lambda: embedding_output_tie(LM, output=3), TypeError, "output must be a str, but got int"),
    (lambda: embedding_output_tie(LM, embedding=""), ValueError, "embedding=''"),
    (lambda: embedding_output_tie([LM]), TypeError, "model must be a torch.nn.Module, but got list"),
    # optimizer groups
    (lambda: check_param_groups(LINEAR, None), TypeError, "groups must be a list of dicts"),
    (lambda: check_param_groups(LINEAR, {"params": [LINEAR.weight]}), TypeError, "but got dict"),
    (lambda: check_param_groups(LINEAR, "groups"), TypeError, "but got str: 'groups'"),
    (lambda: check_param_groups(LINEAR, [{"params": None}]), TypeError, "group 0['params'] must be a list"),
    (lambda: check_param_groups(LINEAR, [{"params": 3}]), TypeError, "but got int: 3"),
    (lambda: check_param_groups(LINEAR, [{"lr": 1.0}]), TypeError, "group 0 must be a dict with a 'params' list"),
    (lambda: check_param_groups(LINEAR, [{"params": [torch.zeros(3)]}]), ValueError, "not a parameter of the model"),
    (lambda: check_param_groups(LINEAR, [{"params": [LINEAR.weight, LINEAR.weight, LINEAR.bias]}]), ValueError,
     "appears twice"),
    (lambda: check_param_groups(LINEAR, [{"params": [LINEAR.weight]}]), ValueError, "['bias']"),
    (lambda: check_param_groups(LINEAR, [{"params": ["weight"]}]), TypeError, "holds str: 'weight'"),
    (lambda: describe_parameters(LINEAR, exempt=[1, "x"]), TypeError, "exempt[0] must be a str, but got int: 1"),
    (lambda: describe_parameters(LINEAR, exempt=["bias", b"x"]), TypeError, "exempt[1] must be a str"),
    (lambda: describe_parameters(LINEAR, exempt=None), TypeError, "but got None"),
    (lambda: describe_parameters(LINEAR, strategy=None), ValueError, "strategy must be one of"),
    (lambda: describe_parameters(LINEAR, exempt=["bias", "weights"]), ValueError, "['weights']"),
    (lambda: strategy_disagreements(None), TypeError, "model must be a torch.nn.Module"),
    (lambda: param_groups(LINEAR, INF), ValueError, "weight_decay must be a finite number, but got inf"),
    (lambda: param_groups(LINEAR, NAN), ValueError, "weight_decay must be a finite number, but got nan"),
    (lambda: param_groups(LINEAR, True), TypeError, "weight_decay must be a number, but got bool"),
    (lambda: param_groups(LINEAR, None), TypeError, "weight_decay must be a number, but got NoneType"),
    (lambda: param_groups(LINEAR, 0.1, exempt=[None]), TypeError, "exempt[0] must be a str"),
    (lambda: param_groups("model", 0.1), TypeError, "model must be a torch.nn.Module, but got str"),
    (lambda: adamw(lr=INF), ValueError, "lr must be a finite number, but got inf"),
    (lambda: adamw(lr=-1.0), ValueError, "lr must be >= 0.0, but got -1.0"),
    (lambda: adamw(lr="1e-3"), TypeError, "lr must be a number, but got str"),
    (lambda: adamw(lr=None), TypeError, "lr must be a number"),
    (lambda: adamw(betas=(2, 0.9)), ValueError, "betas[0] must be in [0, 1), but got 2"),
    (lambda: adamw(betas=(0.9,)), ValueError, "betas must hold two numbers"),
    (lambda: adamw(betas="0.9"), TypeError, "betas must be a tuple of two numbers"),
    (lambda: adamw(betas=(0.9, NAN)), ValueError, "betas[1] must be a finite number, but got nan"),
    (lambda: adamw(betas=(0.9, "x")), TypeError, "betas[1] must be a number, but got str"),
    (lambda: adamw(betas=(0.9, 1.0)), ValueError, "betas[1] must be in [0, 1), but got 1.0"),
    (lambda: adamw(betas=(-0.1, 0.9)), ValueError, "betas[0] must be >= 0.0, but got -0.1"),
    (lambda: adamw(weight_decay=-1), ValueError, "weight_decay must be >= 0.0"),
    (lambda: adamw(strategy="by_size"), ValueError, "'by_size'"),
    (lambda: adamw(model=None), TypeError, "model must be a torch.nn.Module"),
    # unused parameters and gradient presence
    (lambda: find_unused_parameters(None, loss, ONES), TypeError, "model must be a torch.nn.Module, but got NoneType"),
    (lambda: find_unused_parameters(LINEAR, None, ONES), TypeError,
     "loss_fn must be callable as loss_fn(model, batch) -> scalar tensor, but got NoneType"),
    (lambda: find_unused_parameters(LINEAR, lambda m: m(ONES).sum(), ONES), TypeError,
     "loss_fn must have the signature loss_fn(model, batch) -> scalar tensor"),
    (lambda: find_unused_parameters(LINEAR, lambda m, b: [1.0], ONES), TypeError, "returned list"),
    (lambda: record_gradient_presence(LINEAR, step_fn, steps=True), TypeError, "steps must be an int, but got bool"),
    (lambda: record_gradient_presence(LINEAR, step_fn, steps=-1), ValueError, "steps must be >= 1, but got -1"),
    (lambda: record_gradient_presence(LINEAR, step_fn, 1, depth=1.5), TypeError, "depth must be an int"),
    (lambda: record_gradient_presence(LINEAR, step_fn, 1, depth=0), ValueError, "depth must be >= 1, but got 0"),
    (lambda: record_gradient_presence(LINEAR, "step", 1), TypeError, "train_step must be callable, but got str"),
    (lambda: GradientPresenceRecorder(None), TypeError, "model must be a torch.nn.Module"),
    (lambda: recorder().record(step=-1), ValueError, "step must be >= 0, but got -1"),
    (lambda: recorder().record(step="1"), TypeError, "step must be an int, but got str"),
    (lambda: presence().without_gradient("0"), TypeError, "step_position must be an int, but got str"),
    (lambda: presence().without_gradient(True), TypeError, "step_position must be an int, but got bool"),
    (lambda: presence().without_gradient(5), ValueError, "step_position must be in [-2, 1]"),
    (lambda: presence().grouped(0), ValueError, "depth must be >= 1, but got 0"),
    (lambda: presence().grouped(None), TypeError, "depth must be an int, but got NoneType"),
    # checkpoints (arguments only: files are in test_checkpoints.py)
    (lambda: save_checkpoint(LINEAR, None), TypeError, "path must be a str or os.PathLike, but got NoneType"),
    (lambda: save_checkpoint(LINEAR, 3), TypeError, "but got int: 3"),
    (lambda: save_checkpoint(LINEAR, "m.pth"), ValueError, "'m.pth' must end with one of ('.safetensors', '.pt')"),
    (lambda: save_checkpoint(None, "model.safetensors"), TypeError, "model must be a torch.nn.Module"),
    (lambda: save_checkpoint(META, "model.safetensors"), ValueError, "tensors on the meta device"),
    (lambda: load_checkpoint(LINEAR, None), TypeError, "path must be a str or os.PathLike"),
    (lambda: load_checkpoint(LINEAR, "weights.txt"), ValueError, "'weights.txt'"),
    (lambda: load_checkpoint(LINEAR, "absent.safetensors"), FileNotFoundError, "'absent.safetensors'"),
    (lambda: load_checkpoint(LINEAR, "m.safetensors", check_architecture="no"), TypeError,
     "check_architecture must be True or False"),
    (lambda: load_checkpoint({"weight": 1}, "m.safetensors"), TypeError, "model must be a torch.nn.Module"),
    # DDP runner (refused before any process starts)
    (lambda: ddp(world_size=max_world_size() + 1), ValueError, f"world_size must be <= {max_world_size()}"),
    (lambda: ddp(world_size=10**6), ValueError, "but got 1000000"),
    (lambda: ddp(world_size=1.5), TypeError, "world_size must be an int, but got float"),
    (lambda: ddp(world_size=0), ValueError, "world_size must be >= 1, but got 0"),
    (lambda: ddp(timeout_s=NAN), ValueError, "timeout_s must be a finite number, but got nan"),
    (lambda: ddp(timeout_s=INF), ValueError, "timeout_s must be a finite number, but got inf"),
    (lambda: ddp(grace_after_failure_s=-1), ValueError, "grace_after_failure_s must be >= 0.0, but got -1"),
    (lambda: ddp(backend=3), ValueError, "backend must be one of ('gloo', 'nccl'), but got 3"),
    (lambda: ddp(start_method=""), ValueError, "start_method must be one of"),
    (lambda: ddp(args=None), TypeError, "args must be a tuple, but got NoneType"),
    (lambda: ddp(train_fn="train"), TypeError, "train_fn must be callable, but got str"),
    (lambda: ddp(train_fn=lambda rank, size: rank), TypeError, "must pickle"),
]


@pytest.mark.parametrize("call, error, needle", CASES)
def test_bad_input_is_refused_with_a_message_that_names_it(call, error, needle):
    with pytest.raises(error) as caught:
        call()
    assert needle in str(caught.value)


def test_a_meta_model_is_refused_before_its_file_is_read(tmp_path):
    path = save_checkpoint(nn.Linear(2, 2), tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="meta device"):
        load_checkpoint(META, path)
