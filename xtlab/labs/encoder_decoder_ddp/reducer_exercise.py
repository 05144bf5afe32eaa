"""Exercise 2: the core of DDP's gradient averaging, written by the learner and run on 2 real gloo ranks.

``attach_reducer(model, all_reduce_sum, world_size)`` registers a hook per trainable parameter that fires once
backward has accumulated its gradient (``register_post_accumulate_grad_hook``); gradients are all-reduced and
divided by the world size in one fixed order, as soon as every parameter before them in that order is ready (DDP's
buckets go the same way); ``finish()``, called after backward, reduces what is left (a parameter that never became
ready joins with zeros, as ``find_unused_parameters=True`` makes DDP do) and returns the names of the parameters that
never became ready on this rank: the names DDP's error gives, instead of a wait that never ends.

The checker sends the answer to the ranks (by reference for xtlab's own functions, as source text for a notebook's),
runs hidden cases there (all parameters used; gradients kept from an earlier micro-batch; an unused head; a block
only one rank uses; a weight used twice; a frozen parameter), each with a short collective timeout, and compares
every gradient with the one an explicit all-reduce of the plain gradients gives, on the same rank.
"""

from __future__ import annotations

import inspect
import pickle
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from xtlab.course import Case, Exercise, Mistake, Verdict, call, case_failed, describe
from xtlab.course.time_limit import TimeLimitExceeded, run_with_time_limit
from xtlab.diagnostics import ddp_runner
from xtlab.labs.encoder_decoder_ddp.launch import START_UP_S

COLLECTIVE_TIMEOUT_S = 2.0  # a rank waiting in an all-reduce its peer never joins raises after this
CALL_LIMIT_S = 4.0  # attach, backward with the hooks, finish: each, in a rank
_SETUP_TIMEOUT = timedelta(seconds=60)
_VOCAB, _DIM = 5, 6


class ReducerCaseModel(nn.Module):
    """A tiny model whose variants hold what the hidden cases need.

    Args:
        extra_head: an ``old_head`` forward never uses. rank_block: a ``block`` used only when the batch says so.
        tied: the output head shares the embedding's weight (one parameter, used twice). frozen: ``scale`` is frozen.

    Shape: forward(tokens (b, n), use_block: bool) -> scalar loss.
    """

    def __init__(self, *, extra_head: bool = False, rank_block: bool = False, tied: bool = False,
                 frozen: bool = False):
        super().__init__()
        self.embed = nn.Embedding(_VOCAB, _DIM)
        self.trunk = nn.Linear(_DIM, _DIM)
        self.scale = nn.Parameter(torch.ones(_DIM), requires_grad=not frozen)
        self.block = nn.Linear(_DIM, _DIM) if rank_block else None
        self.head = nn.Linear(_DIM, _VOCAB, bias=False)
        if tied:
            self.head.weight = self.embed.weight
        self.old_head = nn.Linear(_DIM, _VOCAB) if extra_head else None

    def forward(self, tokens: torch.Tensor, use_block: bool) -> torch.Tensor:
        h = torch.tanh(self.trunk(self.embed(tokens))) * self.scale  # (b, n, dim)
        if self.block is not None and use_block:
            h = h + torch.tanh(self.block(h))
        logits = self.head(h)  # (b, n, vocab)
        return nn.functional.cross_entropy(logits.flatten(0, 1), tokens.flatten())


@dataclass(frozen=True)
class ReducerCase:
    """One hidden case: the model's variant, whether gradients from an earlier micro-batch are kept, which ranks
    use the block."""

    setting: str
    model: dict
    old_gradients: bool = False
    block_on_rank_0_only: bool = False
    seed: int = 0


CASES = (
    ReducerCase("gradients kept from an earlier micro-batch (as under no_sync), different on each rank", {},
                old_gradients=True, seed=1),
    ReducerCase("every parameter used on both ranks", {}, seed=2),
    ReducerCase("an output head forward never uses", {"extra_head": True}, seed=3),
    ReducerCase("a block only rank 0 uses", {"rank_block": True}, block_on_rank_0_only=True, seed=4),
    ReducerCase("the head shares the embedding's weight (one parameter used twice)", {"tied": True}, seed=5),
    ReducerCase("a frozen parameter used in forward", {"frozen": True, "extra_head": True}, seed=6),
)


def _build(case: ReducerCase, rank: int):
    torch.manual_seed(case.seed)
    with torch.device("cpu"):
        model = ReducerCaseModel(**case.model)
        rows = torch.Generator().manual_seed(100 * case.seed + rank)
        tokens = torch.randint(0, _VOCAB, (4, 5), generator=rows)
        if case.old_gradients:
            for parameter in model.parameters():
                if parameter.requires_grad:
                    parameter.grad = torch.randn(parameter.shape, generator=rows)
    use_block = rank == 0 if case.block_on_rank_0_only else True
    return model, (tokens, use_block)


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def _expected(case: ReducerCase, rank: int, world_size: int, group) -> tuple[list[str], dict]:
    """What DDP with ``find_unused_parameters=True`` gives: the plain gradients, all-reduced and averaged."""
    model, batch = _build(case, rank)
    model(*batch).backward()
    fresh, batch = _build(case, rank)
    fresh.zero_grad(set_to_none=True)
    fresh(*batch).backward()
    never = [name for name, p in _trainable(fresh) if p.grad is None]
    grads = {}
    for name, parameter in _trainable(model):
        grad = parameter.grad.clone() if parameter.grad is not None else torch.zeros_like(parameter)
        dist.all_reduce(grad, group=group)
        grads[name] = grad / world_size
    return never, grads


def _load(answer: tuple) -> Callable:
    kind, name, payload = answer
    if kind == "pickle":
        return pickle.loads(payload)
    namespace = {"torch": torch, "dist": dist, "nn": nn, "__name__": "learner"}
    exec(compile(payload, f"<your {name}>", "exec"), namespace)  # the learner's own cell, sent as text
    return namespace[name]


def _run_case(rank: int, world_size: int, attach_reducer: Callable, case: ReducerCase) -> dict:
    group = dist.new_group(backend="gloo", timeout=_SETUP_TIMEOUT)
    never, expected = _expected(case, rank, world_size, group)
    model, batch = _build(case, rank)
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    dist.barrier(group=group)
    dist.distributed_c10d._set_pg_timeout(timedelta(seconds=COLLECTIVE_TIMEOUT_S), group)
    calls = [0]

    def all_reduce_sum(tensor: torch.Tensor) -> None:
        calls[0] += 1
        # the sizes first: ranks that reduce different tensors at the same call would crash gloo (an abort)
        sizes = [torch.zeros(1, dtype=torch.long) for _ in range(world_size)]
        dist.all_gather(sizes, torch.tensor([tensor.numel()]), group=group)
        if len({int(size) for size in sizes}) > 1:
            raise RuntimeError(f"MISMATCH: at all-reduce number {calls[0]} the ranks reduce tensors of "
                               f"{[int(size) for size in sizes]} numbers: not the same parameter")
        dist.all_reduce(tensor, group=group)

    result = {"never": never, "expected": expected, "frozen": frozen, "error": "", "phase": "", "names": None,
              "grads": {}, "calls": 0, "seconds": 0.0}
    phase, start = "attach_reducer", time.perf_counter()
    try:
        finish = run_with_time_limit(attach_reducer, CALL_LIMIT_S, model, all_reduce_sum, world_size)
        phase = "backward (your hooks)"
        loss = model(*batch)
        run_with_time_limit(loss.backward, CALL_LIMIT_S)
        phase = "finish()"
        names = run_with_time_limit(finish, CALL_LIMIT_S)
        result["names"] = list(names) if isinstance(names, (list, tuple)) else repr(names)[:80]
    except TimeLimitExceeded:
        result["error"] = f"did not return within {CALL_LIMIT_S:g} s"
    except BaseException as err:
        result["error"] = f"{type(err).__name__}: {err}"
    result["phase"], result["calls"], result["seconds"] = phase, calls[0], time.perf_counter() - start
    result["grads"] = {name: None if p.grad is None else p.grad.detach().clone() for name, p in _trainable(model)}
    return result


def run_reducer_cases_on_rank(rank: int, world_size: int, answer: tuple, cases: tuple[ReducerCase, ...]) -> list:
    """What each rank runs: every case, each in a process group of its own (a collective left unfinished by one
    case cannot block the next), after a barrier on the default group."""
    torch.set_num_threads(1)
    try:
        attach_reducer = _load(answer)
    except BaseException as err:
        return [{"load_error": f"{type(err).__name__}: {err}"}]
    results = []
    for case in cases:
        dist.barrier()
        results.append(_run_case(rank, world_size, attach_reducer, case))
    return results


# --- the checker, in the notebook's process -------------------------------------------------------------------

def _refuse_collective(tensor) -> None:
    raise RuntimeError("all_reduce_sum is called from the hooks and from finish(), not while attaching")


def _shipped(attach_reducer: Callable) -> tuple | Verdict:
    module = getattr(attach_reducer, "__module__", "") or ""
    name = getattr(attach_reducer, "__name__", "")
    if module.startswith("xtlab."):
        return ("pickle", name, pickle.dumps(attach_reducer))
    try:
        source = textwrap.dedent(inspect.getsource(attach_reducer))
    except (OSError, TypeError):
        return Verdict.make_try_again(f"the source of {describe(attach_reducer)} cannot be read, so it cannot be "
                                      f"sent to the ranks", "define attach_reducer with def in a cell of its own")
    if not name.isidentifier() or f"def {name}" not in source:
        return Verdict.make_try_again(f"{describe(attach_reducer)} is not a function defined with def",
                                      "define attach_reducer with def in a cell of its own")
    return ("source", name, source)


def _rank_error(case: Case, per_rank: list[dict]) -> Verdict | None:
    calls = ", ".join(f"rank {rank} {result['calls']}" for rank, result in enumerate(per_rank))
    for rank, result in enumerate(per_rank):
        if result["error"].startswith("did not return"):
            return case_failed(case, f"on rank {rank}, {result['phase']} {result['error']}",
                               "do not wait for a parameter: one that forward did not use will never be ready. "
                               "At finish(), reduce it with zeros and name it")
    joins = ("every rank must make the same all-reduces in the same order: a parameter that never became ready on "
             "one rank leaves its peer in an all-reduce it never joined. In finish(), reduce it too, with zeros")
    for rank, result in enumerate(per_rank):
        if "Timed out" in result["error"] or "timed out" in result["error"]:
            return case_failed(case, f"rank {rank} waited {COLLECTIVE_TIMEOUT_S:g} s in an all-reduce its peer never "
                                     f"joined, in {result['phase']} (all-reduces made: {calls})", joins)
        if result["error"].startswith("RuntimeError: MISMATCH: "):
            return case_failed(case, f"on rank {rank}, in {result['phase']}, "
                                     f"{result['error'].removeprefix('RuntimeError: MISMATCH: ')} "
                                     f"(all-reduces made: {calls})", joins)
    for rank, result in enumerate(per_rank):
        if result["error"]:
            return case_failed(case, f"on rank {rank}, {result['phase']} raised {result['error'][:300]} "
                                     f"(all-reduces made: {calls})",
                               "hook only trainable parameters, after accumulation "
                               "(register_post_accumulate_grad_hook), and reduce in one fixed order on every rank: "
                               "the same all-reduces in the same order")
    return None


def _names_problem(case: Case, per_rank: list[dict]) -> Verdict | None:
    for rank, result in enumerate(per_rank):
        names = result["names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return case_failed(case, f"finish() returned {names!r} on rank {rank}",
                               "finish() returns a list of parameter names (str)")
        frozen = sorted(set(names) & set(result["frozen"]))
        if frozen:
            return case_failed(case, f"rank {rank} names {frozen}, which is frozen",
                               "a frozen parameter (requires_grad=False) gets no hook and is never waited for")
        missing, extra = sorted(set(result["never"]) - set(names)), sorted(set(names) - set(result["never"]))
        if missing or extra:
            return case_failed(case, f"on rank {rank} finish() named {sorted(names)}: missing {missing}, "
                                     f"wrongly named {extra}",
                               "name exactly the trainable parameters whose hook never fired during this backward")
    return None


def _values_problem(case: Case, reducer_case: ReducerCase, per_rank: list[dict]) -> Verdict | None:
    for rank, result in enumerate(per_rank):
        wrong, ratios = [], []
        for name, expected in result["expected"].items():
            got = result["grads"].get(name)
            if got is None:
                if torch.count_nonzero(expected) == 0:
                    continue  # no rank used it: DDP leaves such a gradient as it was
                wrong.append(name)
                continue
            if not torch.allclose(got, expected, rtol=1e-5, atol=1e-7):
                wrong.append(name)
                if torch.linalg.norm(expected) > 0:
                    ratios.append(float(torch.linalg.norm(got) / torch.linalg.norm(expected)))
        if not wrong:
            continue
        scale = (f"; |your gradient| / |the average| from {min(ratios):.4g} to {max(ratios):.4g}"
                 if ratios else "; some are left without a gradient")
        problem = f"on rank {rank} the gradients of {wrong} differ from the sum over ranks / world size{scale}"
        if ratios and all(abs(r - 0.5) < 1e-3 for r in ratios) and len(ratios) == len(wrong):
            return case_failed(case, problem, "each gradient is divided by the world size twice: divide once, "
                                              "right after its all-reduce")
        if reducer_case.block_on_rank_0_only and ratios and all(abs(r - 2) < 1e-3 for r in ratios):
            return case_failed(case, problem, "you averaged over the ranks that used it only; DDP divides the sum "
                                              "by the world size, a rank that skipped the block adding zeros")
        if reducer_case.old_gradients:
            return case_failed(case, problem, "the gradient was reduced before accumulation finished (a hook on "
                                              "the tensor fires before .grad is updated): use "
                                              "register_post_accumulate_grad_hook and reduce parameter.grad")
        return case_failed(case, problem, "reduce every trainable parameter's accumulated .grad once, in one fixed "
                                          "order on every rank (the same order), and divide it by the world size")
    return None


def check_attach_reducer(attach_reducer: Callable) -> Verdict:
    """``attach_reducer(model, all_reduce_sum, world_size) -> finish``: judged on 2 real gloo ranks."""
    finish = call(attach_reducer, ReducerCaseModel(), _refuse_collective, 2)
    if not callable(finish):
        return Verdict.make_try_again(f"attach_reducer returned {describe(finish)}",
                                      "return finish, a function of no arguments that returns the list of names")
    answer = _shipped(attach_reducer)
    if isinstance(answer, Verdict):
        return answer
    timeout = START_UP_S + len(CASES) * (COLLECTIVE_TIMEOUT_S + 3 * CALL_LIMIT_S)
    run = ddp_runner.run_distributed(run_reducer_cases_on_rank, 2, args=(answer, CASES), timeout_s=timeout,
                                     backend="gloo")
    if not run.ok:
        first = next(iter(run.errors.items()))
        return Verdict.make_try_again(f"rank {first[0]} did not finish the cases: {first[1].strip()[-400:]}",
                                      "run attach_reducer on a small model in a cell first")
    return judge_reducer_runs([rank.value for rank in run.ranks])


def judge_reducer_runs(per_rank: list[list[dict]]) -> Verdict:
    """The verdict on what :func:`run_reducer_cases_on_rank` returned on each rank (``per_rank[rank]``), whichever
    launcher started the ranks (xtlab's DDP runner, torchrun)."""
    per_case = list(zip(*per_rank, strict=True))
    if not per_case:
        return Verdict.make_try_again("no rank returned a result",
                                      "run attach_reducer on a small model in a cell first")
    if "load_error" in per_case[0][0]:
        return Verdict.make_try_again(f"your attach_reducer could not be defined in a rank: "
                                      f"{per_case[0][0]['load_error']}",
                                      "write everything inside attach_reducer (the ranks get its source only); "
                                      "torch and dist (torch.distributed) are there")
    for reducer_case, results in zip(CASES, per_case, strict=True):
        case = Case(reducer_case.setting)
        results = list(results)
        for problem in (_rank_error(case, results), _names_problem(case, results),
                        _values_problem(case, reducer_case, results)):
            if problem is not None:
                return problem
    calls = sum(result["calls"] for result in per_case[0])
    return Verdict.make_pass(f"{len(CASES)} hidden cases on 2 real gloo ranks: every gradient equals the sum over "
                             f"ranks / 2 and finish() named every parameter that never became ready "
                             f"({calls} all-reduces on rank 0)")


# --- the reference and the catalogue (module-level: the ranks import them) --------------------------------------

def reducer_reference(model, all_reduce_sum, world_size):
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    order = named[::-1]  # fixed before backward, the same on every rank (roughly the order gradients arrive)
    ready, reduced = set(), [0]

    def reduce_ready_prefix():
        while reduced[0] < len(order) and order[reduced[0]][0] in ready:
            parameter = order[reduced[0]][1]
            all_reduce_sum(parameter.grad)
            parameter.grad /= world_size
            reduced[0] += 1

    for name, parameter in named:
        def hook(parameter, name=name):
            ready.add(name)
            reduce_ready_prefix()
        parameter.register_post_accumulate_grad_hook(hook)

    def finish():
        for name, parameter in order[reduced[0]:]:
            if name not in ready:  # never ready here: it joins with zeros, as on a rank that skipped it
                parameter.grad = torch.zeros_like(parameter)
            all_reduce_sum(parameter.grad)
            parameter.grad /= world_size
        reduced[0] = len(order)
        return [name for name, _ in named if name not in ready]

    return finish


def reducer_averages_over_users(model, all_reduce_sum, world_size):
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    ready = set()
    for name, parameter in named:
        parameter.register_post_accumulate_grad_hook(lambda parameter, name=name: ready.add(name))

    def finish():
        for name, parameter in named[::-1]:
            grad = parameter.grad if name in ready else torch.zeros_like(parameter)
            users = torch.tensor([1.0 if name in ready else 0.0])
            all_reduce_sum(grad)
            all_reduce_sum(users)
            parameter.grad = grad / users.clamp(min=1)
        return [name for name, _ in named if name not in ready]

    return finish


def reducer_hooks_the_tensor(model, all_reduce_sum, world_size):
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    order = named[::-1]
    ready, reduced = set(), [0]

    def reduce_ready_prefix():
        while reduced[0] < len(order) and order[reduced[0]][0] in ready:
            parameter = order[reduced[0]][1]
            if parameter.grad is not None:
                all_reduce_sum(parameter.grad)
                parameter.grad /= world_size
            reduced[0] += 1

    for name, parameter in named:
        def hook(grad, name=name):  # a tensor hook: runs before the gradient is accumulated into .grad
            ready.add(name)
            reduce_ready_prefix()
        parameter.register_hook(hook)

    def finish():
        for name, parameter in order[reduced[0]:]:
            if name not in ready:
                parameter.grad = torch.zeros_like(parameter)
            all_reduce_sum(parameter.grad)
            parameter.grad /= world_size
        return [name for name, _ in named if name not in ready]

    return finish


def reducer_divides_twice(model, all_reduce_sum, world_size):
    finish_once = reducer_reference(model, all_reduce_sum, world_size)

    def finish():
        names = finish_once()
        for parameter in model.parameters():
            if parameter.grad is not None:
                parameter.grad /= world_size  # "average at the end" on top of the hooks' average
        return names

    return finish


def reducer_waits_for_every_parameter(model, all_reduce_sum, world_size):
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    ready = set()
    for name, parameter in named:
        parameter.register_post_accumulate_grad_hook(lambda parameter, name=name: ready.add(name))

    def finish():
        while len(ready) < len(named):  # waits for the last gradient to arrive
            time.sleep(0.01)
        for _, parameter in named[::-1]:
            all_reduce_sum(parameter.grad)
            parameter.grad /= world_size
        return []

    return finish


def reducer_skips_never_ready(model, all_reduce_sum, world_size):
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    order = named[::-1]
    ready, reduced = set(), [0]

    def reduce_ready_prefix():
        while reduced[0] < len(order) and order[reduced[0]][0] in ready:
            parameter = order[reduced[0]][1]
            all_reduce_sum(parameter.grad)
            parameter.grad /= world_size
            reduced[0] += 1

    for name, parameter in named:
        def hook(parameter, name=name):
            ready.add(name)
            reduce_ready_prefix()
        parameter.register_post_accumulate_grad_hook(hook)

    def finish():
        for name, parameter in order[reduced[0]:]:
            if name in ready:  # the never-ready ones are left out: their peers wait for them
                all_reduce_sum(parameter.grad)
                parameter.grad /= world_size
        return [name for name, _ in named if name not in ready]

    return finish


REDUCER_EXERCISE = Exercise(
    name="attach_reducer",
    prompt="attach_reducer(model, all_reduce_sum, world_size): hook every trainable parameter with "
           "register_post_accumulate_grad_hook; all-reduce (all_reduce_sum(tensor), in place) and divide by "
           "world_size each gradient in one fixed order as soon as it and every one before it are ready; return "
           "finish(), which reduces the rest (zeros for a parameter that never became ready) and returns the names "
           "of the parameters that never became ready on this rank",
    checker=check_attach_reducer,
    reference=reducer_reference,
    mistakes=(
        Mistake("averages over the ranks that used the parameter", reducer_averages_over_users,
                "ranks that used it only"),
        Mistake("hooks the tensor, so it reduces before accumulation finished", reducer_hooks_the_tensor,
                "before accumulation finished"),
        Mistake("divides by the world size twice", reducer_divides_twice, "world size twice"),
        Mistake("waits for a parameter that will never be ready", reducer_waits_for_every_parameter,
                "will never be ready"),
        Mistake("leaves out the parameters that never became ready", reducer_skips_never_ready, "never joined"),
    ),
    time_limit_s=10.0,
)
