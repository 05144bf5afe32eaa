"""Exercise: a ``fully_shard`` grouping that keeps the tie, judged on two real gloo ranks.

The learner writes ``shard_tied_model(model, mesh)``: it applies ``fully_shard(..., mesh=mesh)`` calls to a tied
model built on the CPU. The checker sends the function to two processes (pickled when it lives in xtlab, as source
text for a notebook's) and runs hidden models there (other depths and vocabularies, a naive tie with and without a
bias on the head, xtlab's ``TiedLinear`` with its scale). On each rank it shards the model with the learner's
function, runs one forward and backward on the rank's own batch, compares every full gradient with the tied model's
without FSDP on both ranks' batches (the head's share of the tied gradient must arrive), takes one AdamW step
(one Parameter for both uses, equal values), and saves the full state dict, which must load strictly into a freshly
built model, tied, with the same logits. Every collective has a short timeout and every call of the learner's code
a time limit, so a function that raises on one rank or waits in a collective only one rank joins gets a verdict.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import pickle
import re
import textwrap
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import FSDPModule, fully_shard

from xtlab.course import Case, Exercise, Mistake, Verdict, call, case_failed, describe
from xtlab.course.time_limit import TimeLimitExceeded, run_with_time_limit
from xtlab.diagnostics import ddp_runner
from xtlab.labs.weight_tying.fsdp_ranks import BACKEND, DEVICE
from xtlab.labs.weight_tying.models import ModelSize, build_model, embedding_weight, output_weight, tie_verdict
from xtlab.model.tied_linear import tie_naively
from xtlab.training import lm_loss

NAME = "shard_tied_model"
WORLD_SIZE = 2
CALL_LIMIT_S = 4.0  # the learner's function, and forward + backward, each, in a rank
COLLECTIVE_TIMEOUT_S = 3.0  # a rank waiting in a collective its peer never joins raises after this
START_UP_S = 30.0  # the launch's allowance for starting the ranks on a busy machine
GRADIENT_TOLERANCE = 1e-5  # relative: float32 sums in another order differ by ~1e-7
_SETUP_TIMEOUT = timedelta(seconds=60)
HEADS = {
    "naive": "naive tie (to_logits.weight = token_emb.weight)",
    "naive_bias": "naive tie, the head an nn.Linear with a bias",
    "tied_linear": "xtlab's TiedLinear head (scale dim ** -0.5)",
}


@dataclass(frozen=True)
class GroupingCase:
    """One tied model the grouping is judged on.

    Attributes:
        setting: what it is, in words. head: a key of ``HEADS``. size: the model's shape. seed: its values and
            batches.
    """

    setting: str
    head: str
    size: ModelSize
    seed: int


# the notebook shows the default size (depth 1, 32 tokens); the hidden ones differ in depth, vocabulary and head
CASES = (
    GroupingCase("naive tie, depth 2, 24 tokens, dim 16", "naive",
                 ModelSize(num_tokens=24, max_seq_len=12, dim=16, depth=2, heads=2), seed=1),
    GroupingCase("naive tie with a bias on the head, depth 3, 21 tokens (shards of 11 and 10 rows)", "naive_bias",
                 ModelSize(num_tokens=21, max_seq_len=12, dim=24, depth=3, heads=3), seed=2),
    GroupingCase("TiedLinear head with scale dim ** -0.5, depth 1, 40 tokens", "tied_linear",
                 ModelSize(num_tokens=40, max_seq_len=12, dim=16, depth=1, heads=4), seed=3),
)
NOTEBOOK_CASES = (
    GroupingCase("naive tie, depth 1", "naive", ModelSize(), seed=0),
    GroupingCase("TiedLinear head, depth 1", "tied_linear", ModelSize(), seed=0),
)


def build_case_model(case: GroupingCase, seed: int | None = None) -> nn.Module:
    """The case's tied model, built on the CPU (named explicitly, never torch's default device)."""
    seed = case.seed if seed is None else seed
    if case.head == "tied_linear":
        return build_model("tied_linear", seed=seed, size=case.size, device=DEVICE)
    model = build_model("none", seed=seed, size=case.size, device=DEVICE)
    if case.head == "naive_bias":
        with torch.device(DEVICE):
            model.to_logits = nn.Linear(case.size.dim, case.size.num_tokens, bias=True)
    return tie_naively(model)


def _batch(case: GroupingCase, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator(device=DEVICE).manual_seed(case.seed * 1000 + rank)
    x = torch.randint(0, case.size.num_tokens, (3, case.size.max_seq_len), generator=generator, device=DEVICE)
    return x, torch.roll(x, -1, dims=1)


def _full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


# --- on each rank -----------------------------------------------------------------------------------------------

def _load(answer: tuple) -> Callable:
    kind, name, payload = answer
    if kind == "pickle":
        return pickle.loads(payload)
    filename = f"<your {name}>"
    linecache.cache[filename] = (len(payload), None, payload.splitlines(keepends=True), filename)  # error lines
    namespace = {"torch": torch, "nn": nn, "dist": dist, "fully_shard": fully_shard, "__name__": "learner"}
    exec(compile(payload, filename, "exec"), namespace)  # the learner's own cell, sent as text
    return namespace[name]


_SOURCE_PREFIX = re.compile(r"\[[^\]\s]*\.(?:cc|cpp|h):\d+\] ")  # "[.../unbound_buffer.cc:78] " in gloo's messages


def _error_text(err: BaseException) -> str:
    if isinstance(err, TimeLimitExceeded):
        return f"TimeLimitExceeded: did not return within {CALL_LIMIT_S:g} s"
    text = _SOURCE_PREFIX.sub("", f"{type(err).__name__}: {' '.join(str(err).split())}")
    learner = [frame for frame in traceback.extract_tb(err.__traceback__) if frame.filename.startswith("<your ")]
    if learner:
        text += f" (your line {learner[-1].lineno}: {(learner[-1].line or '').strip()})"
    return text


def _raised_in_fsdp(err: BaseException) -> bool:
    return any("torch/distributed/" in frame.filename.replace("\\", "/")
               for frame in traceback.extract_tb(err.__traceback__))


def _groups(model: nn.Module) -> list[list[str]]:
    """The FSDP groups as lists of the module names passed to one ``fully_shard`` call ("" is the root)."""
    groups: dict[int, list[str]] = {}
    for name, module in model.named_modules():
        if isinstance(module, FSDPModule):
            groups.setdefault(id(module._get_fsdp_state()), []).append(name)
    return list(groups.values())


def _group_of(groups: list[list[str]], module_name: str) -> int | None:
    """Index of the group whose weights ``module_name`` uses when it runs: its own, else its nearest ancestor's."""
    parts = module_name.split(".")
    for end in range(len(parts), -1, -1):
        candidate = ".".join(parts[:end])
        for index, members in enumerate(groups):
            if candidate in members:
                return index
    return None


def _called_modules(model: nn.Module, batch) -> set[str]:
    """Names of the modules whose forward runs in one forward pass (xtlab's Decoder never calls a Block)."""
    called: set[str] = set()
    handles = [module.register_forward_pre_hook(lambda m, args, name=name: called.add(name))
               for name, module in model.named_modules()]
    with torch.no_grad():
        model(batch[0])
    for handle in handles:
        handle.remove()
    return called


def _structure(model: nn.Module, called: set[str]) -> dict:
    groups = _groups(model)
    fsdp = [name for group in groups for name in group]
    leaves = [name for name, module in model.named_modules()
              if name in fsdp and name not in ("", "token_emb", "to_logits")
              and not any(True for _ in module.children()) and any(True for _ in module.parameters(recurse=False))]
    return {"groups": groups, "root": "" in fsdp, "emb_group": _group_of(groups, "token_emb"),
            "head_group": _group_of(groups, "to_logits"), "leaves": leaves,
            "never_called": [name for name in fsdp if name not in called],
            "same_object": embedding_weight(model) is output_weight(model),
            "whole": [name for name, p in model.named_parameters() if not hasattr(p, "full_tensor")]}


def _reference(case: GroupingCase, world_size: int) -> tuple[dict[str, torch.Tensor], set[str], list[str]]:
    """Gradients of the tied model without FSDP on every rank's batch at once, the modules its forward calls, and
    its state_dict keys."""
    model = build_case_model(case)
    batches = [_batch(case, rank) for rank in range(world_size)]
    together = tuple(torch.cat(parts) for parts in zip(*batches, strict=True))
    called = _called_modules(model, together)
    lm_loss(model, together).backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    return grads, called, list(model.state_dict())


def _gradient_gaps(model: nn.Module, expected: dict[str, torch.Tensor]) -> dict[str, float | str]:
    """Per parameter: ``||g - g_ref|| / ||g_ref||``, or why it cannot be compared."""
    gaps: dict[str, float | str] = {}
    for name, parameter in model.named_parameters():  # full_tensor is a collective: every rank, same order
        got = None if parameter.grad is None else _full(parameter.grad.detach())
        reference = expected.get(name)
        if reference is None:
            gaps[name] = "a Parameter of its own, which the tied model does not have"
            continue
        if got is None or got.shape != reference.shape:
            gaps[name] = "no gradient" if got is None else f"a gradient of shape {tuple(got.shape)}"
            continue
        scale = float(reference.norm())
        gaps[name] = float((got - reference).norm()) / scale if scale > 0 else float(got.norm())
    return gaps


def _run_case(rank: int, world_size: int, grouping: Callable, case: GroupingCase, mesh: DeviceMesh) -> dict:
    started = time.perf_counter()
    expected, called, keys = _reference(case, world_size)
    model = build_case_model(case)
    result = {"setting": case.setting, "stage": "", "error": "", "in_fsdp": False, "structure": None, "gaps": {},
              "tie_after_step": None, "state_problem": ""}
    stage = "call"
    try:
        run_with_time_limit(grouping, CALL_LIMIT_S, model, mesh)
        result["structure"] = _structure(model, called)
        stage = "forward and backward"
        run_with_time_limit(lambda: lm_loss(model, _batch(case, rank)).backward(), CALL_LIMIT_S)
        stage = "gradients"
        result["gaps"] = _gradient_gaps(model, expected)
        stage = "AdamW step"
        torch.optim.AdamW(model.parameters(), lr=1e-2).step()
        same = embedding_weight(model) is output_weight(model)
        equal = torch.equal(_full(embedding_weight(model).detach()), _full(output_weight(model).detach()))
        result["tie_after_step"] = (same, equal)
        stage = "state dict"
        state = {key: _full(value.detach()).clone() for key, value in model.state_dict().items()}
        probe = _batch(case, world_size)[0]  # the same tokens on every rank
        logits = _full(model(probe).detach())
        result["state_problem"] = _state_problem(case, state, keys, logits, probe)
    except NotImplementedError:
        result.update(stage=stage, error="NotImplementedError")
    except BaseException as err:  # noqa: BLE001 - whatever the learner's code raised is the measurement
        if isinstance(err, KeyboardInterrupt):
            raise
        result.update(stage=stage, error=_error_text(err), in_fsdp=_raised_in_fsdp(err))
        if result["structure"] is None:
            try:
                result["structure"] = _structure(model, called)  # what the calls that did run left behind
            except Exception:  # noqa: BLE001 - a half-sharded model may not answer
                result["structure"] = None
    result["seconds"] = time.perf_counter() - started
    return result


def _state_problem(case: GroupingCase, state: dict, keys: list[str], logits: torch.Tensor, probe) -> str:
    if list(state) != keys:
        return f"the saved state dict has the keys {list(state)}, a model without FSDP {keys}"
    if "to_logits.weight" in state and not torch.equal(state["token_emb.weight"], state["to_logits.weight"]):
        return "the saved state dict holds two different tensors for token_emb.weight and to_logits.weight"
    fresh = build_case_model(case, seed=case.seed + 1)
    try:
        fresh.load_state_dict(state)  # strict
    except Exception as err:  # noqa: BLE001 - a state dict that does not load is the finding
        return f"the saved state dict does not load into a fresh model: {_error_text(err)[:200]}"
    if tie_verdict(fresh) != "tied":
        return f"loaded into a fresh model, its embedding and head are {tie_verdict(fresh)}"
    with torch.no_grad():
        gap = float((fresh(probe) - logits).abs().max())
    return "" if gap < 1e-4 else f"the reloaded model's logits differ from the sharded model's by up to {gap:.3g}"


def grouping_cases_on_rank(rank: int, world_size: int, answer: tuple, cases: tuple[GroupingCase, ...],
                           keep_going: bool) -> list[dict]:
    """What each rank runs: every case in turn on one CPU mesh whose collectives time out after
    ``COLLECTIVE_TIMEOUT_S``; unless ``keep_going``, a rank stops at its first case with a problem."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.distributed")
    try:
        grouping = _load(answer)
    except BaseException as err:  # noqa: BLE001
        return [{"load_error": _error_text(err)}]
    group = dist.new_group(backend=BACKEND, timeout=_SETUP_TIMEOUT)  # FSDP's; the default group stays the learner's
    mesh = DeviceMesh.from_group(group, DEVICE)
    dist.barrier()
    dist.barrier(group=group)
    for timed in (None, group):  # from here a collective only one rank joins raises instead of waiting
        dist.distributed_c10d._set_pg_timeout(timedelta(seconds=COLLECTIVE_TIMEOUT_S), timed)
    results = []
    for case in cases:
        results.append(_run_case(rank, world_size, grouping, case, mesh))
        if not keep_going and _case_problem(results[-1]):
            break
    return results


def _case_problem(result: dict) -> bool:
    tie = result.get("tie_after_step")
    return bool(result.get("error") or result.get("state_problem") or tie is None or not all(tie)
                or any(_off(gap) for gap in result.get("gaps", {}).values()))


def _off(gap: float | str) -> bool:
    return isinstance(gap, str) or gap > GRADIENT_TOLERANCE


# --- in the notebook's process ----------------------------------------------------------------------------------

def _is_stub(source: str, name: str) -> bool:
    """The function's body is only ``raise NotImplementedError...`` (the learner edition's stub)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            if len(body) == 1 and isinstance(body[0], ast.Raise) and body[0].exc is not None:
                raised = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
                return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"
    return False


def _shipped(grouping: Callable) -> tuple | Verdict:
    """The function as the ranks can receive it: pickled when it lives in xtlab, else its source (a notebook cell)."""
    if not callable(grouping):
        return Verdict.make_try_again(f"{NAME} must be a function, but got {describe(grouping)}",
                                      f"pass {NAME} itself, without calling it")
    module = getattr(grouping, "__module__", "") or ""
    name = getattr(grouping, "__name__", "")
    if module.startswith("xtlab."):
        return ("pickle", name, pickle.dumps(grouping))
    try:
        source = textwrap.dedent(inspect.getsource(grouping))
    except (OSError, TypeError):
        return Verdict.make_try_again(f"the source of {describe(grouping)} cannot be read, so it cannot be sent to "
                                      f"the ranks", f"define {NAME} with def in a cell of its own")
    if not isinstance(name, str) or not name.isidentifier() or f"def {name}" not in source:
        return Verdict.make_try_again(f"{describe(grouping)} is not a function defined with def",
                                      f"define {NAME} with def in a cell of its own")
    return ("source", name, source)


def _launch(answer: tuple, cases: tuple[GroupingCase, ...], keep_going: bool):
    timeout = START_UP_S + len(cases) * (2 * CALL_LIMIT_S + 3 * COLLECTIVE_TIMEOUT_S)
    return ddp_runner.run_distributed(grouping_cases_on_rank, WORLD_SIZE, args=(answer, cases, keep_going),
                                      timeout_s=timeout, backend=BACKEND)


def _describe_groups(structure: dict) -> str:
    names = [", ".join("the root" if n == "" else n for n in group) for group in structure["groups"]]
    return " / ".join(f"[{group}]" for group in names) or "none"


_SAME_CALLS = "every rank must make the same fully_shard calls, and no collective only one rank joins"


def _call_verdict(case: Case, per_rank: list[dict]) -> Verdict | None:
    failed = [(rank, r) for rank, r in enumerate(per_rank) if r.get("stage") == "call" and r.get("error")]
    if not failed:
        return None
    rank, result = failed[0]
    error = result["error"]
    only = f" (on rank {rank} only: {_SAME_CALLS})" if len(failed) < len(per_rank) else ""
    if error.startswith("NotImplementedError"):
        call(_still_a_stub)
    if error.startswith("TimeLimitExceeded"):
        return case_failed(case, f"on rank {rank} {NAME} did not return within {CALL_LIMIT_S:g} s{only}",
                           f"{_SAME_CALLS}; fully_shard itself returns at once")
    if "timed out" in error.lower() or "timeout" in error.lower():
        return case_failed(case, f"on rank {rank} {NAME} waited {COLLECTIVE_TIMEOUT_S:g} s in a collective its "
                                 f"peer never joined: {error[:200]}", _SAME_CALLS)
    if error.startswith("NameError"):
        return case_failed(case, f"on rank {rank} {NAME} raised {error[:300]}",
                           f"the ranks get the source of {NAME} only: torch, nn, dist and fully_shard are defined "
                           f"there; import anything else inside the function")
    if "read-only" in error and "TiedLinear" in error:
        return case_failed(case, f"on rank {rank} {NAME} raised {error[:300]}",
                           "a TiedLinear head owns no weight: it reads the embedding's each time it runs, so there "
                           "is no tie to restore by assignment; choose the groups and assign nothing")
    structure = result["structure"] or {}
    if result["in_fsdp"] and structure.get("root"):
        return case_failed(case, f"fully_shard(model) had already run when a later fully_shard call raised "
                                 f"{error[:200]}{only}",
                           "shard the inner modules first and the root last: fully_shard(model) takes every "
                           "parameter no inner group has taken yet")
    if result["in_fsdp"]:
        return case_failed(case, f"fully_shard refused what your function gave it: {error[:200]}{only}",
                           "fully_shard takes a module, or a list of modules that share a group, and mesh=mesh; "
                           "never a Parameter: it shards every parameter the module holds")
    return case_failed(case, f"on rank {rank} {NAME} raised {error[:300]}{only}",
                       "run it on the notebook's model: lab.grouping_outcomes(shard_tied_model) shows each stage")


def _still_a_stub():
    raise NotImplementedError  # the ranks said so: ``call`` turns it into NOT YET


def _outcome_problem(per_rank: list[dict]) -> str:
    """What went wrong in a case, as every rank saw it ("" when nothing did)."""
    for rank, result in enumerate(per_rank):
        if result.get("error"):
            return f"on rank {rank} the {result['stage']} raised {result['error'][:300]}"
    for rank, result in enumerate(per_rank):
        off = {name: gap for name, gap in result["gaps"].items() if _off(gap)}
        odd = next(((name, gap) for name, gap in off.items() if isinstance(gap, str)), None)
        if odd:
            return f"on rank {rank}, {odd[0]} has {odd[1]} ({len(off)} of {len(result['gaps'])} parameters off)"
        if off:
            name, gap = max(off.items(), key=lambda item: item[1])
            return (f"on rank {rank} the gradient of {name} is off by {gap:.3g} (relative) from the tied model's "
                    f"without FSDP on both ranks' batches ({len(off)} of {len(result['gaps'])} parameters off)")
    for rank, result in enumerate(per_rank):
        same, equal = result["tie_after_step"]
        if not (same and equal):
            held = "two Parameters" if not same else "one Parameter"
            return (f"after one AdamW step, on rank {rank}, the embedding and the head hold {held} with "
                    f"{'equal' if equal else 'different'} values")
    for rank, result in enumerate(per_rank):
        if result["state_problem"]:
            return f"on rank {rank}, {result['state_problem']}"
    return ""


def _grouping_verdict(case: Case, per_rank: list[dict]) -> Verdict | None:
    verdict = _call_verdict(case, per_rank)
    if verdict is not None:
        return verdict
    structure = per_rank[0]["structure"]
    if not structure["root"]:
        return case_failed(case, f"the model itself was never sharded (groups: {_describe_groups(structure)}; left "
                                 f"whole on every rank: {structure['whole'][:3]}...)",
                           "finish with fully_shard(model, mesh=mesh): FSDP needs one root, whose group takes every "
                           "parameter no inner group took and whose forward starts the others")
    problem = _outcome_problem(per_rank)
    if not problem:
        return None
    groups = _describe_groups(structure)
    raised = any(result.get("error") for result in per_rank)
    if not raised and not structure["same_object"]:
        return case_failed(case, f"{problem}; right after your function the head already held a Parameter of its "
                                 f"own (groups: {groups})",
                           "your function untied the model, so FSDP trains two weights without a word (Lingua #74): "
                           "keep the one Parameter and put both of its users in one group")
    if structure["emb_group"] != structure["head_group"]:
        emb, head = structure["emb_group"], structure["head_group"]
        own_emb = "token_emb" in structure["groups"][emb]
        own_head = head is not None and "to_logits" in structure["groups"][head]
        if structure["same_object"] and own_head and own_emb:
            return case_failed(case, f"{problem} (groups: {groups})",
                               "you re-tied by assignment after fully_shard: FSDP took the head's weight into the "
                               "head's group when fully_shard ran, and an assignment afterwards does not move it "
                               "back; group the embedding and the head before, in one fully_shard([...]) call")
        if structure["leaves"]:
            return case_failed(case, f"{problem} (groups: {groups})",
                               "you gave every module that holds weights a group of its own, so the embedding's group "
                               "is not the head's: the tied weight needs one group for both of its users, "
                               "fully_shard([model.token_emb, model.to_logits], mesh=mesh)")
        if own_emb and own_head:
            return case_failed(case, f"{problem} (groups: {groups})",
                               "the embedding and the head are in separate groups: one weight cannot belong to two; "
                               "put both in one, fully_shard([model.token_emb, model.to_logits], mesh=mesh), or "
                               "leave both to the root's group")
        if own_emb:
            return case_failed(case, f"{problem} (groups: {groups})",
                               "the embedding alone has a group: after its forward the weight is sharded again "
                               "before the head uses it (or held by two groups); group it with the head")
        if own_head:
            return case_failed(case, f"{problem} (groups: {groups})",
                               "the head alone has a group while the embedding, left to the root's, uses the same "
                               "weight: group the embedding with the head, or shard neither apart from the root")
        return case_failed(case, f"{problem} (groups: {groups})",
                           "the embedding and the head use one weight from two groups: put them in one")
    if structure["never_called"]:
        return case_failed(case, f"{problem} (groups: {groups})",
                           f"fully_shard gathers a group's weights when its module is called, and "
                           f"{structure['never_called'][:3]} never are: xtlab's Decoder calls block.norm and "
                           f"block.fn, not the Block; group modules that are called, or leave them to the root")
    return case_failed(case, f"{problem} (groups: {groups})",
                       "put the embedding and the head in one group and call fully_shard on the root last")


def _rank_results(run) -> tuple[list[list[dict]], str]:
    values = [rank.value if rank.ok and isinstance(rank.value, list) else None for rank in run.ranks]
    failed = next((f"rank {rank.rank} did not finish: {rank.error.strip()[-300:]}" for rank in run.ranks
                   if not rank.ok), "")
    return values, failed


def check_shard_tied_model(shard_tied_model: Callable) -> Verdict:
    """``shard_tied_model(model, mesh)``: judged on the hidden tied models, on two real gloo ranks."""
    answer = _shipped(shard_tied_model)
    if isinstance(answer, Verdict):
        return answer
    if answer[0] == "source" and _is_stub(answer[2], answer[1]):
        call(_still_a_stub)
    run = _launch(answer, CASES, keep_going=False)
    values, failed = _rank_results(run)
    loaded = next((v[0]["load_error"] for v in values if v and "load_error" in v[0]), None)
    if loaded:
        return Verdict.make_try_again(f"your {NAME} could not be defined in a rank: {loaded}",
                                      f"write everything inside {NAME} (the ranks get its source only); torch, nn, "
                                      f"dist and fully_shard are there")
    for index, grouping_case in enumerate(CASES):
        per_rank = [v[index] if v is not None and index < len(v) else None for v in values]
        case = Case(grouping_case.setting)
        present = [result for result in per_rank if result is not None]
        if len(present) < len(per_rank):
            partial = _call_verdict(case, present) if present else None
            return partial or case_failed(case, failed or "a rank stopped before this case",
                                          f"{_SAME_CALLS}; lab.grouping_outcomes(shard_tied_model) shows each stage")
        verdict = _grouping_verdict(case, per_rank)
        if verdict is not None:
            return verdict
    groups = _describe_groups(values[0][0]["structure"])
    return Verdict.make_pass(f"{len(CASES)} hidden tied models on {WORLD_SIZE} real gloo ranks: every gradient equals "
                             f"the tied model's without FSDP, one Parameter with equal values after an AdamW step, and "
                             f"the saved state dict loads strictly into a fresh tied model with the same logits "
                             f"(your groups on the first: {groups})")


# --- the notebook's view of a grouping ----------------------------------------------------------------------------

@dataclass(frozen=True)
class GroupingOutcome:
    """A grouping on one of the notebook's models, as both ranks saw it."""

    setting: str
    groups: str
    problem: str
    ranks: tuple[dict, ...] = field(repr=False)

    @property
    def keeps_the_tie(self) -> bool:
        return not self.problem

    def line(self) -> str:
        verdict = "keeps the tie" if self.keeps_the_tie else self.problem
        return f"{self.setting}: groups {self.groups}: {verdict}"


def grouping_outcomes(grouping: Callable, cases: tuple[GroupingCase, ...] = NOTEBOOK_CASES
                      ) -> tuple[GroupingOutcome, ...]:
    """Run ``grouping(model, mesh)`` on the notebook's tied models on two gloo ranks: its groups, and the first
    problem (a stage that raised, a gradient that differs from the tied model's, the tie after a step, the saved
    state dict), or none."""
    answer = _shipped(grouping)
    if isinstance(answer, Verdict):
        raise TypeError(str(answer))
    run = _launch(answer, cases, keep_going=True)
    values, failed = _rank_results(run)
    if any(v is None for v in values) or any("load_error" in v[0] for v in values):
        raise RuntimeError(failed or f"the grouping could not be loaded in a rank: {values}")
    outcomes = []
    for index, case in enumerate(cases):
        per_rank = [v[index] for v in values]
        structure = per_rank[0]["structure"]
        groups = _describe_groups(structure) if structure else "none"
        outcomes.append(GroupingOutcome(case.setting, groups, _outcome_problem(per_rank), tuple(per_rank)))
    return tuple(outcomes)


# --- the reference and the catalogue (module-level: the ranks unpickle them by name) ------------------------------

def shard_tied_model_reference(model, mesh):
    for block in model.attn_layers.layers:
        fully_shard(block.fn, mesh=mesh)  # the Decoder calls block.norm and block.fn, never the Block
    fully_shard([model.token_emb, model.to_logits], mesh=mesh)  # one group for both users of the tied weight
    fully_shard(model, mesh=mesh)  # the root last: it takes every parameter no inner group took


def shard_root_only(model, mesh):
    fully_shard(model, mesh=mesh)


def shard_separately(model, mesh):
    fully_shard(model.token_emb, mesh=mesh)
    fully_shard(model.to_logits, mesh=mesh)
    fully_shard(model, mesh=mesh)


def shard_head_alone(model, mesh):
    fully_shard(model.to_logits, mesh=mesh)
    fully_shard(model, mesh=mesh)


def shard_embedding_alone(model, mesh):
    fully_shard(model.token_emb, mesh=mesh)  # "the embedding is the big matrix"
    fully_shard(model, mesh=mesh)


def shard_then_retie(model, mesh):
    fully_shard(model.token_emb, mesh=mesh)
    fully_shard(model.to_logits, mesh=mesh)
    fully_shard(model, mesh=mesh)
    model.to_logits.weight = model.token_emb.weight


def shard_root_then_retie(model, mesh):
    fully_shard(model, mesh=mesh)
    model.to_logits.weight = model.token_emb.weight  # "make sure the tie survived sharding"


def shard_parameters(model, mesh):
    for parameter in model.parameters():
        fully_shard(parameter, mesh=mesh)


def shard_every_leaf(model, mesh):
    for module in model.modules():
        if module is not model and any(True for _ in module.parameters(recurse=False)):
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)


def shard_without_root(model, mesh):
    fully_shard([model.token_emb, model.to_logits], mesh=mesh)


def shard_root_first(model, mesh):
    fully_shard(model, mesh=mesh)
    fully_shard([model.token_emb, model.to_logits], mesh=mesh)


def shard_blocks_as_in_torchtitan(model, mesh):
    for block in model.attn_layers.layers:
        fully_shard(block, mesh=mesh)
    fully_shard([model.token_emb, model.to_logits], mesh=mesh)
    fully_shard(model, mesh=mesh)


def shard_after_untying(model, mesh):
    # FSDP's error named the shared Parameter: give the head its own copy, then a group each
    model.to_logits.weight = nn.Parameter(model.token_emb.weight.detach().clone())
    fully_shard(model.token_emb, mesh=mesh)
    fully_shard(model.to_logits, mesh=mesh)
    fully_shard(model, mesh=mesh)


GROUPING_EXERCISE = Exercise(
    name=NAME,
    prompt=f"{NAME}(model, mesh): apply fully_shard(..., mesh=mesh) calls to model, a tied TransformerWrapper built "
           "on the CPU (its head model.to_logits is an nn.Linear holding model.token_emb's weight, with or without a "
           "bias, or a TiedLinear), so that on every rank the embedding and the head keep one Parameter, both "
           "gradients reach it, and the saved state dict loads into a tied model; inner groups first, the root "
           "last; what it returns is not used",
    checker=check_shard_tied_model,
    reference=shard_tied_model_reference,
    mistakes=(
        Mistake("embedding and head in separate groups", shard_separately, "separate groups"),
        Mistake("the head alone sharded (the embedding left to the root)", shard_head_alone, "the head alone"),
        Mistake("the embedding alone sharded", shard_embedding_alone, "the embedding alone"),
        Mistake("re-ties by assignment after fully_shard", shard_then_retie, "re-tied by assignment"),
        Mistake("shards the root, then re-ties by assignment (harmless on a naive tie)", shard_root_then_retie,
                "no tie to restore"),
        Mistake("fully_shard on each parameter", shard_parameters, "never a Parameter"),
        Mistake("a group for every parameter-holding leaf", shard_every_leaf, "every module that holds weights"),
        Mistake("no fully_shard on the root", shard_without_root, "FSDP needs one root"),
        Mistake("the root sharded first", shard_root_first, "the root last"),
        Mistake("a group per Block, as in torchtitan (xtlab's Decoder never calls a Block)",
                shard_blocks_as_in_torchtitan, "when its module is called"),
        Mistake("unties the head to silence FSDP's error", shard_after_untying, "untied the model"),
    ),
    time_limit_s=10.0,
    check_time_limit_s=START_UP_S + len(CASES) * (2 * CALL_LIMIT_S + 3 * COLLECTIVE_TIMEOUT_S) + 20.0,
)
