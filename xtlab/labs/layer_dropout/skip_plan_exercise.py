"""Exercise: a skip plan every DDP rank agrees on without communicating.

``skip_plan(seed, step, num_blocks, p) -> skip``: ``skip[i]`` is True when block ``i`` is skipped at training step
``step`` of the run seeded ``seed``. Under DDP every rank must skip the same blocks (lab 05), so the plan must be a
function of its arguments alone: the same in every process, whatever the global random generators hold, and
drawing from none of them. Each block is skipped with its probability (``p`` is one float or a list with one per
block), independently of the other blocks, of the other steps and of the other seeds.

The checker calls the plan on hidden settings (1 to 12 blocks, p = 0 and 1, a per-block list, seeds up to six
digits): it watches the global generators (torch, Python, NumPy) during each call, calls twice with the same
arguments after reseeding them, calls again as another process would (another process id and ``RANK``), and then
tests the plan statistically over 2000 hidden steps: each block's skip frequency, two neighbouring blocks skipping
together, the same step under two seeds, within a bound the verdict states; it also looks for (seed, step) pairs
that share a plan, such as ``seed + step``. A plan whose source uses ``hash`` is finally run in two freshly started
Python processes with different ``PYTHONHASHSEED`` (as torchrun starts its ranks): ``hash()`` of a string differs
between them, while the ranks the notebook forks share it.
"""

from __future__ import annotations

import inspect
import math
import os
import pickle
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from xtlab._checks import check_int, check_probability, shown
from xtlab.course import Case, LearnerCodeFailed, Verdict, call, case_failed, describe, global_rng_watch

STEPS = 2000  # hidden steps of the statistical checks
BOUND_SIGMAS = 5.0  # a count may be this many binomial standard deviations from its expectation
PAIRS = 50  # (seed + 1, step) against (seed, step + 1): how many pairs the collision check compares
FRESH_PROCESS_TIMEOUT_S = 30.0  # two fresh Pythons import torch (about 2 s each here) and run the plan


@dataclass(frozen=True)
class _Setting:
    seed: int
    num_blocks: int
    p: float | tuple[float, ...]
    statistical: bool = False  # run the 2000-step checks on this one

    def probabilities(self) -> list[float]:
        return [float(self.p)] * self.num_blocks if isinstance(self.p, float) else list(self.p)

    def argument(self):
        return list(self.p) if isinstance(self.p, tuple) else self.p


def _cases() -> list[Case]:
    settings = [
        ("seed 7, 12 blocks, p=0.25", _Setting(7, 12, 0.25, statistical=True), False),
        ("seed 123457, 5 blocks, per-block p=[0.5, 0.9, 0.0, 0.2, 1.0]",
         _Setting(123457, 5, (0.5, 0.9, 0.0, 0.2, 1.0), statistical=True), False),
        ("seed 0, 1 block, p=0.3", _Setting(0, 1, 0.3, statistical=True), True),
        ("seed 3, 4 blocks, p=0", _Setting(3, 4, 0.0), True),
        ("seed 5, 4 blocks, p=1", _Setting(5, 4, 1.0), True),
    ]
    return [Case(text, (setting,), edge=edge) for text, setting, edge in settings]


# --- calling the learner's plan --------------------------------------------------------------------------------

def _seed_globals(value: int) -> None:
    torch.manual_seed(value)
    random.seed(value)
    np.random.seed(value)


@contextmanager
def _as_another_process(pid: bool, rank: bool) -> Iterator[None]:
    """What differs in another DDP process: its process id and its RANK/LOCAL_RANK variables (restored on exit)."""
    real_getpid, saved = os.getpid, {name: os.environ.get(name) for name in ("RANK", "LOCAL_RANK")}
    try:
        if pid:
            os.getpid = lambda: real_getpid() + 1
        if rank:
            os.environ["RANK"] = os.environ["LOCAL_RANK"] = "1"
        yield
    finally:
        os.getpid = real_getpid
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _as_plan(value, num_blocks: int) -> list[bool]:
    """The returned plan as a list of bools, or TRY AGAIN saying what came back."""
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool and value.dim() == 1:
        value = value.tolist()
    if isinstance(value, np.ndarray) and value.dtype == np.bool_ and value.ndim == 1:
        value = value.tolist()
    if (isinstance(value, (list, tuple)) and len(value) == num_blocks
            and all(isinstance(v, (bool, np.bool_)) for v in value)):
        return [bool(v) for v in value]
    raise LearnerCodeFailed(f"skip_plan returned {describe(value)} for {num_blocks} blocks",
                            f"return a list of {num_blocks} bools, skip[i] True when block i is skipped")


def _plans(skip_plan: Callable, seed: int, steps: range, num_blocks: int, p) -> list[list[bool]]:
    """One plan per step, all in one time-limited call."""
    found = call(lambda: [skip_plan(seed, step, num_blocks, p) for step in steps], copy_args=False)
    return [_as_plan(plan, num_blocks) for plan in found]


# --- the checks --------------------------------------------------------------------------------------------------

def _process_problem(skip_plan: Callable, case: Case, setting: _Setting) -> Verdict | None:
    """Global generators, repeated calls and another process: the plan must depend on its arguments alone."""
    args = (setting.seed, 3, setting.num_blocks, setting.argument())
    _seed_globals(1001)
    with global_rng_watch() as drawn:
        first = _as_plan(call(skip_plan, *args), setting.num_blocks)
    _seed_globals(2002)
    second = _as_plan(call(skip_plan, *args), setting.num_blocks)
    if drawn:
        where = " and ".join(drawn)
        if first == second:
            return case_failed(case, f"your plan changed the state of {where}, and its plan was the same "
                                     "whatever state they were in: it reseeds the global stream",
                               "every dropout mask and every other draw of the training run now restarts from "
                               "your seed at each step: draw from a generator of your own, e.g. "
                               "np.random.default_rng([seed, step]), and leave the global ones alone")
        if "Python's random module" in drawn:
            return case_failed(case, f"your plan drew from {where}, so it changed when Python's random was seeded "
                                     "differently", "each rank's Python random is in its own state, so the ranks "
                                                    "skip different blocks: draw from a generator seeded from "
                                                    "(seed, step), not Python's random")
        return case_failed(case, f"your plan drew from {where}, so it changed when the global generators were "
                                 "seeded differently",
                           "the global generator is in a different state on each rank (and your draws shift "
                           "everyone else's): draw from a generator of your own, seeded from (seed, step)")
    _seed_globals(2002)
    third = _as_plan(call(skip_plan, *args), setting.num_blocks)
    if third != second:
        return case_failed(case, "called twice with the same inputs, your plan gave two different plans: it keeps "
                                 "state between calls",
                           "a counter or cache inside the plan is process-local state: a rank that restarts, or "
                           "calls it once more, disagrees with the others; compute the plan from (seed, step) alone")
    if first != second:
        return case_failed(case, "your plan changed when the global generators were reseeded, without drawing from "
                                 "them: it reads their state", "seed your own generator from (seed, step) only")
    for pid, rank, what, hint in (
            (False, True, "RANK=1", "the plan must not depend on the rank (os.environ['RANK'], dist.get_rank()): "
                                    "every rank must skip the same blocks, or DDP's ranks wait on each other"),
            (True, False, "another process id", "os.getpid() differs in every process: mix only seed and step "
                                                "into the plan")):
        with _as_another_process(pid=pid, rank=rank):
            other = _as_plan(call(skip_plan, *args), setting.num_blocks)
        if other != second:
            return case_failed(case, f"as seen from another process ({what}), your plan changed", hint)
    return None


def _bound(n: int, q: float) -> float:
    return BOUND_SIGMAS * math.sqrt(n * q * (1 - q))


def _within(count: int, n: int, q: float) -> bool:
    return abs(count - n * q) <= _bound(n, q)  # exact for q = 0 and 1


def _frequency_problem(case: Case, setting: _Setting, plans: list[list[bool]]) -> Verdict | None:
    """Each block's skip count over the steps against its probability, block by block."""
    probabilities, n = setting.probabilities(), len(plans)
    for i, q in enumerate(probabilities):
        skipped = sum(plan[i] for plan in plans)
        if _within(skipped, n, q):
            continue
        allowed = f"exactly {n * q:.0f}" if q in (0.0, 1.0) else (
            f"{n * q:.0f} ± {_bound(n, q):.0f} ({BOUND_SIGMAS:g} binomial standard deviations)")
        problem = f"block {i} was skipped at {skipped} of {n} steps; with p={q:g} the checker allows {allowed}"
        if _within(skipped, n, 1 - q):
            hint = ("skip block i when its draw u < p[i]: your frequencies are 1 - p, so you used p as a keep "
                    "probability (p=0 must never skip, p=1 always)")
        elif isinstance(setting.p, tuple) and _within(skipped, n, probabilities[0]):
            hint = "with a per-block list, block i is skipped with probability p[i], not p[0]"
        else:
            hint = "skip block i when its draw u < p[i], with u uniform in [0, 1)"
        return case_failed(case, problem, hint)
    return None


def _statistics_problem(skip_plan: Callable, case: Case, setting: _Setting) -> Verdict | None:
    n, steps = setting.num_blocks, range(STEPS)
    probabilities = setting.probabilities()
    plans = _plans(skip_plan, setting.seed, steps, n, setting.argument())
    random_blocks = [i for i, q in enumerate(probabilities) if 0 < q < 1]
    if random_blocks and len({tuple(plan) for plan in plans}) == 1:
        return case_failed(case, f"your plan was the same at all {STEPS} steps: the same plan at every step",
                           "mix the step into the seed of your generator, or every step skips the same blocks and "
                           "those blocks are never trained")
    other = _plans(skip_plan, setting.seed + 1, steps, n, setting.argument())
    if random_blocks and other == plans:
        return case_failed(case, f"seeds {setting.seed} and {setting.seed + 1} gave the same plan at every step: your "
                                 "plan ignores the seed",
                           "mix the seed in too: runs with different seeds must skip differently. (A torch.Generator "
                           "keeps only the low 32 bits of manual_seed's value, so seed * 2**32 + step drops the seed; "
                           "np.random.default_rng([seed, step]) uses both.)")
    frequency = _frequency_problem(case, setting, plans)
    if frequency is not None:
        return frequency
    for i, j in zip(random_blocks, random_blocks[1:], strict=False):
        q = probabilities[i] * probabilities[j]
        together = sum(plan[i] and plan[j] for plan in plans)
        if abs(together - STEPS * q) > _bound(STEPS, q):
            all_or_nothing = all(len(set(plan[k] for k in random_blocks)) == 1 for plan in plans)
            hint = ("one draw for the whole stack skips all blocks together: draw one number per block" if
                    all_or_nothing else "draw one number per block, each block on its own number")
            return case_failed(case, f"blocks {i} and {j} were skipped together at {together} of {STEPS} steps; "
                                     f"independent blocks give p[{i}]·p[{j}]: {STEPS * q:.0f} ± "
                                     f"{_bound(STEPS, q):.0f}", hint)
        q_same = probabilities[i] ** 2
        both_seeds = sum(a[i] and b[i] for a, b in zip(plans, other, strict=True))
        if abs(both_seeds - STEPS * q_same) > _bound(STEPS, q_same):
            return case_failed(case, f"block {i} was skipped under seeds {setting.seed} and {setting.seed + 1} "
                                     f"at the same step {both_seeds} times of {STEPS}; independent seeds give "
                                     f"{STEPS * q_same:.0f} ± {_bound(STEPS, q_same):.0f}",
                               "seeds must give independent plans: seed a generator from both seed and step")
    if random_blocks:
        shifted = _plans(skip_plan, setting.seed, range(1, PAIRS + 1), n, setting.argument())
        if shifted == other[:PAIRS]:
            return case_failed(case, f"(seed {setting.seed + 1}, step t) gave the plan of (seed {setting.seed}, "
                                     f"step t + 1) for all {PAIRS} steps compared: seeds and steps collide",
                               "seed + step (or any sum) makes the run seeded 1 replay the skips of the run seeded "
                               "0, one step late: the runs of a seed sweep are not independent. Give each (seed, "
                               "step) pair its own stream: np.random.default_rng([seed, step])")
    return None


def check_skip_plan(skip_plan: Callable) -> Verdict:
    """Check ``skip_plan(seed, step, num_blocks, p) -> list of bools`` on the hidden settings."""
    cases = _cases()
    for case in cases:
        setting: _Setting = case.args[0]
        failed = _process_problem(skip_plan, case, setting)
        if failed is None and setting.statistical:
            failed = _statistics_problem(skip_plan, case, setting)
        elif failed is None:
            failed = _frequency_problem(case, setting, _plans(skip_plan, setting.seed, range(50), setting.num_blocks,
                                                         setting.argument()))
        if failed is not None:
            return failed
    failed = _fresh_process_problem(skip_plan, cases[0])
    if failed is not None:
        return failed
    return Verdict.make_pass(
        f"skip_plan is right on {len(cases)} hidden settings (1 to 12 blocks, p = 0 and 1, a per-block list): it "
        "drew from no global generator, gave the same plan after they were reseeded, on a second call and as "
        f"another process (another process id, RANK=1); over {STEPS} hidden steps each block's skip frequency, two "
        f"blocks skipping together and the same step under two seeds were within {BOUND_SIGMAS:g} binomial standard "
        "deviations of independent skips with probability p, and no (seed, step) pair shared its plan with its "
        "neighbour's.")


_FRESH_PLAN = """
import json, pickle, sys
from xtlab.labs.layer_dropout.skip_plan_exercise import _as_plan, _load
answer, calls = pickle.load(sys.stdin.buffer)
plan = _load(answer)
print(json.dumps([_as_plan(plan(*args), args[2]) for args in calls]))
"""


def _fresh_process_problem(skip_plan: Callable, case: Case) -> Verdict | None:
    """Only for a plan whose source mentions ``hash``: its plans in two fresh processes with different
    ``PYTHONHASHSEED`` must agree (forked ranks, like the notebook's, inherit one hash seed and cannot tell)."""
    try:
        answer = _shipped(skip_plan)
        source = inspect.getsource(skip_plan)
    except (OSError, TypeError, ValueError):
        return None  # no source to read: the in-process checks above are all there is
    if "hash" not in source:
        return None
    setting: _Setting = case.args[0]
    calls = [(setting.seed, step, setting.num_blocks, setting.argument()) for step in range(12)]
    payload = pickle.dumps((answer, calls))
    outputs = []
    processes = [subprocess.Popen([sys.executable, "-c", _FRESH_PLAN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env={**os.environ, "PYTHONHASHSEED": str(hash_seed)})
                 for hash_seed in (1, 2)]
    try:
        for process in processes:
            out, err = process.communicate(payload, timeout=FRESH_PROCESS_TIMEOUT_S)
            if process.returncode != 0:
                return None  # it ran in this process; a failure only elsewhere is not what this check is about
            outputs.append(out.decode())
    except subprocess.TimeoutExpired:
        return None
    finally:
        for process in processes:
            process.kill()
            process.wait()
    if outputs[0] != outputs[1]:
        return case_failed(case, "run in two freshly started Python processes (PYTHONHASHSEED 1 and 2), your plan "
                                 "gave different plans for the same (seed, step): hash() of a str, bytes or tuple "
                                 "holding them is salted differently in every process",
                           "torchrun and multi-node launches start each rank as a fresh process: build the seed from "
                           "the integers themselves (np.random.default_rng([seed, step])), or hashlib if you need a "
                           "digest")
    return None


# --- the reference and the catalogue ----------------------------------------------------------------------------

def _checked_probabilities(seed, step, num_blocks, p) -> list[float]:
    check_int("seed", seed, minimum=0)
    check_int("step", step, minimum=0)
    check_int("num_blocks", num_blocks, minimum=0)
    if isinstance(p, (list, tuple)):
        if len(p) != num_blocks:
            raise ValueError(f"p must have one probability per block ({num_blocks}), but got {len(p)}: {p!r}")
        return [check_probability(f"p[{i}]", q, allow_one=True) for i, q in enumerate(p)]
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"p must be a float or a list of floats, but got {shown(p)}")
    return [check_probability("p", p, allow_one=True)] * num_blocks


def reference_skip_plan(seed, step, num_blocks, p):
    probabilities = _checked_probabilities(seed, step, num_blocks, p)
    draws = np.random.default_rng([seed, step]).random(num_blocks)  # a stream of its own for each (seed, step)
    return [bool(u < q) for u, q in zip(draws, probabilities, strict=True)]


def _per_block(p, n: int) -> list[float]:
    return [p] * n if isinstance(p, (int, float)) else list(p)


def draws_with_global_torch(seed, step, num_blocks, p):
    return [bool(u < q) for u, q in zip(torch.rand(num_blocks), _per_block(p, num_blocks), strict=True)]


def draws_with_python_random(seed, step, num_blocks, p):
    return [random.random() < q for q in _per_block(p, num_blocks)]


def reseeds_the_global_generator(seed, step, num_blocks, p):
    torch.manual_seed(seed * 100_003 + step)
    return [bool(u < q) for u, q in zip(torch.rand(num_blocks), _per_block(p, num_blocks), strict=True)]


def _from_generator(generator_seed: int, num_blocks: int, p, *, one_draw=False, keep=False) -> list[bool]:
    generator = torch.Generator().manual_seed(generator_seed)
    draws = (torch.rand(1, generator=generator).expand(num_blocks) if one_draw
             else torch.rand(num_blocks, generator=generator))
    return [bool((u >= q) if keep else (u < q)) for u, q in zip(draws, _per_block(p, num_blocks), strict=True)]


def seeds_by_seed_only(seed, step, num_blocks, p):
    return _from_generator(seed, num_blocks, p)


def seeds_by_step_only(seed, step, num_blocks, p):
    return _from_generator(step, num_blocks, p)


def one_draw_for_the_stack(seed, step, num_blocks, p):
    return _from_generator(seed * 100_003 + step, num_blocks, p, one_draw=True)


def p_as_keep_probability(seed, step, num_blocks, p):
    return _from_generator(seed * 100_003 + step, num_blocks, p, keep=True)


def seed_plus_step(seed, step, num_blocks, p):
    return _from_generator(seed + step, num_blocks, p)


def first_probability_for_all(seed, step, num_blocks, p):
    q = p if isinstance(p, (int, float)) else p[0]
    return _from_generator(seed * 100_003 + step, num_blocks, q)


def mixes_in_the_rank(seed, step, num_blocks, p):
    rank = int(os.environ.get("RANK", "0"))
    return _from_generator((seed * 100_003 + step) * 64 + rank, num_blocks, p)


def mixes_in_the_process_id(seed, step, num_blocks, p):
    return _from_generator(seed * 100_003 + step + os.getpid(), num_blocks, p)


def hashes_a_string(seed, step, num_blocks, p):
    return _from_generator(hash(f"{seed}/{step}") % 2**63, num_blocks, p)


def _counting_plan() -> Callable:
    calls = [0]

    def counts_its_own_calls(seed, step, num_blocks, p):
        calls[0] += 1  # "the step is how many times I was called"
        return _from_generator(seed * 100_003 + calls[0], num_blocks, p)

    return counts_its_own_calls


counts_its_own_calls = _counting_plan()


# --- the plan on two real gloo ranks ----------------------------------------------------------------------------

def _shipped(skip_plan: Callable) -> tuple:
    """The plan as the ranks can receive it: pickled when it lives in xtlab, else its source (a notebook cell)."""
    module = getattr(skip_plan, "__module__", "") or ""
    name = getattr(skip_plan, "__name__", "")
    if module.startswith("xtlab."):
        return ("pickle", name, pickle.dumps(skip_plan))
    try:
        source = textwrap.dedent(inspect.getsource(skip_plan))
    except (OSError, TypeError) as err:
        raise ValueError(f"the source of {shown(skip_plan)} cannot be read, so it cannot be sent to the ranks: "
                         "define skip_plan with def in a cell of its own") from err
    return ("source", name, source)


def _load(answer: tuple) -> Callable:
    kind, name, payload = answer
    if kind == "pickle":
        return pickle.loads(payload)
    namespace = {"torch": torch, "np": np, "random": random, "os": os, "math": math, "__name__": "learner"}
    exec(compile(payload, f"<your {name}>", "exec"), namespace)  # the learner's own cell, sent as text
    return namespace[name]


def plans_on_rank(rank: int, world_size: int, answer: tuple, seed: int, steps: int, num_blocks: int,
                  p: float) -> dict:
    """What each rank runs: the plan for ``steps`` steps, and a global-RNG plan after ``torch.manual_seed(rank)``;
    each rank gathers every rank's plans over gloo and says at which steps all agree."""
    skip_plan = _load(answer)
    plans = torch.tensor([skip_plan(seed, step, num_blocks, p) for step in range(steps)], dtype=torch.bool)
    torch.manual_seed(rank)  # ranks seeded differently, as a per-rank data seed does
    global_plans = torch.rand(steps, num_blocks) < p
    agree = {}
    for label, mine in (("plan", plans), ("global", global_plans)):
        gathered = [torch.zeros_like(mine, dtype=torch.uint8) for _ in range(world_size)]
        dist.all_gather(gathered, mine.to(torch.uint8))
        agree[label] = [all(torch.equal(g[t], gathered[0][t]) for g in gathered) for t in range(steps)]
    return {"plans": plans.tolist(), "agree": agree["plan"], "global_agree": agree["global"]}


@dataclass(frozen=True)
class PlanAcrossRanks:
    """A skip plan run on real gloo ranks.

    Attributes:
        whose: ``"yours"`` or ``"the reference"``.
        world_size, seed, steps, num_blocks, p: the run.
        plans: ``plans[rank][step][block]``, True where skipped.
        agreed_steps: steps at which every rank's plan was the same (gathered over gloo).
        global_agreed_steps: the same for ``torch.rand`` after ``torch.manual_seed(rank)``.
        seconds: the wall time of the launch.
    """

    whose: str
    world_size: int
    seed: int
    steps: int
    num_blocks: int
    p: float
    plans: tuple
    agreed_steps: int
    global_agreed_steps: int
    seconds: float

    def skipped(self, rank: int, step: int) -> list[int]:
        """The blocks rank ``rank`` skips at ``step``."""
        return [i for i, s in enumerate(self.plans[rank][step]) if s]


def plan_across_ranks(skip_plan: Callable | None = None, seed: int = 0, steps: int = 8, num_blocks: int = 8,
                      p: float = 0.3, world_size: int = 2, timeout_s: float = 60.0) -> PlanAcrossRanks:
    """Run ``skip_plan`` (the reference when None) on ``world_size`` gloo ranks for ``steps`` steps."""
    from xtlab.diagnostics import ddp_runner

    whose = "the reference" if skip_plan is None else "yours"
    answer = _shipped(skip_plan or reference_skip_plan)
    run = ddp_runner.run_distributed(plans_on_rank, world_size, args=(answer, seed, steps, num_blocks, p),
                                     timeout_s=timeout_s, backend="gloo")
    if not run.ok:
        rank, error = next(iter(run.errors.items()))
        raise RuntimeError(f"rank {rank} failed: {error.strip()[-400:]}")
    values = [rank.value for rank in run.ranks]
    return PlanAcrossRanks(whose, world_size, seed, steps, num_blocks, p,
                           tuple(tuple(tuple(step) for step in v["plans"]) for v in values),
                           sum(values[0]["agree"]), sum(values[0]["global_agree"]), run.seconds)
