"""The report card: every invariant of the course measured on one model, with the installed versions.

``audit(model)`` for one model; ``audit_models({...})`` for several, sharing one DDP launch. Usable in any
script: the card prints as aligned text and shows as an HTML table in a notebook.
"""

from __future__ import annotations

import html
import importlib.metadata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from xtlab._checks import check_bool, check_int, check_module, check_number, check_type, shown
from xtlab.diagnostics.model_audit.adapter import ModelAdapter
from xtlab.diagnostics.model_audit.checks import LOCAL_CHECKS
from xtlab.diagnostics.model_audit.ddp_step import CHECK as DDP_CHECK
from xtlab.diagnostics.model_audit.ddp_step import DDPJob, ddp_rows, make_job
from xtlab.diagnostics.model_audit.model_state import ModelSnapshot, global_random_state_kept
from xtlab.diagnostics.model_audit.ready_adapters import adapter_for
from xtlab.diagnostics.model_audit.rows import (
    ADAPTER_ERROR,
    CHECK_ERROR,
    COULD_NOT_RUN,
    FAILS,
    HOLDS,
    STATUSES,
    Row,
    adapter_error_evidence,
    raised_in_adapter,
    short_error,
    status_of,
)
from xtlab.threads import one_cpu_thread

Invariant = Callable[[nn.Module, ModelAdapter], "bool | tuple[bool, str]"]


def installed_versions() -> dict[str, str]:
    """torch, x-transformers and xtlab versions as installed."""
    versions = {"torch": torch.__version__}
    for package in ("x-transformers", "xtlab"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


@dataclass(frozen=True)
class ReportCard:
    """The audit of one model.

    Attributes:
        name: the name the model was audited under. kind: its adapter's name.
        parameters: number of trainable values (ties counted once).
        versions: package -> installed version.
        rows: one :class:`Row` per check, in the course's order, then the extra invariants.
    """

    name: str
    kind: str
    parameters: int
    versions: dict[str, str]
    rows: tuple[Row, ...]

    def row(self, key: str) -> Row:
        """The row with ``key`` (e.g. ``"tying_paths"``)."""
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(f"no row {key!r}; the rows are {[row.key for row in self.rows]}")

    def status(self, key: str) -> str:
        return self.row(key).status

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)

    @property
    def summary(self) -> str:
        """One line: how many rows hold, fail and could not run."""
        return (f"{self.count(HOLDS)} hold, {self.count(FAILS)} fail, {self.count(COULD_NOT_RUN)} could not run "
                f"(of {len(self.rows)} rows)")

    def markdown(self) -> str:
        """The card as a Markdown document: the header, the summary, one table row per check with its evidence."""
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        lines = [f"# {cell(self.header)}", "", self.summary, "", "| check | outcome | evidence |", "|---|---|---|"]
        lines += [f"| {cell(row.check)} | **{cell(row.outcome)}** | {cell(row.evidence)} |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def html_document(self) -> str:
        """The card as a standalone HTML page."""
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(self.name)}</title>"
                f"</head><body>\n{self._repr_html_()}\n</body></html>\n")

    @property
    def header(self) -> str:
        versions = ", ".join(f"{package} {version}" for package, version in self.versions.items())
        return f"Report card: {self.name} ({self.kind}, {self.parameters:,} parameters) on {versions}"

    def __repr__(self) -> str:
        width = max(len(status) for status in STATUSES)
        lines = [self.header, self.summary]
        for row in self.rows:
            lines.append(f"  [{row.status:^{width}}] {row.check}\n  {'':{width + 2}} {row.evidence}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td>{html.escape(row.check)}</td><td><b>{html.escape(row.outcome)}</b></td>"
                       f"<td>{html.escape(row.evidence)}</td></tr>" for row in self.rows)
        return (f"<p>{html.escape(self.header)}<br>{html.escape(self.summary)}</p><table><thead><tr><th>check</th>"
                f"<th>outcome (computed)</th>"
                f"<th>evidence</th></tr></thead><tbody>{body}</tbody></table>")


class Subject(NamedTuple):
    """A model to audit with :func:`audit_models`: the model, its adapter (``None``: the ready one for its
    class) and ``build`` for the DDP step when the model does not pickle."""

    model: nn.Module
    adapter: ModelAdapter | None = None
    build: Callable[[], nn.Module] | None = None


def _extra_row(name: str, invariant: Invariant, model: nn.Module, adapter: ModelAdapter) -> Row:
    try:
        result = invariant(model, adapter)
    except Exception as err:  # a check that raises measured nothing: it could not run
        frame = raised_in_adapter(err, adapter.hooks)
        if frame is not None:
            return Row(name, name, COULD_NOT_RUN, adapter_error_evidence("the adapter", err, frame), ADAPTER_ERROR)
        return Row(name, name, COULD_NOT_RUN, f"the check raised {short_error(err)}", CHECK_ERROR)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        result, evidence = result
    else:
        evidence = "returned by the check"
    if not isinstance(result, bool):
        return Row(name, name, FAILS, f"the check must return a bool (or (bool, evidence)), but returned "
                                      f"{shown(result)}")
    return Row(name, name, status_of(result), evidence)


def _preflight(model: nn.Module, adapter: ModelAdapter, seed: int) -> tuple[str, str] | None:
    """Run the adapter once (a batch, the loss, a backward pass, in eval mode): ``(evidence, reason)`` when it
    raised, else None. Every row needs these hooks, so when they fail no row can tell anything about the model."""
    snapshot = ModelSnapshot(model)
    try:
        with global_random_state_kept():
            model.eval()
            batch = adapter.batch(model, seed)
            adapter.scalar_loss(model, batch).backward()
    except Exception as err:
        frame = raised_in_adapter(err, adapter.hooks)
        if frame is not None:
            return adapter_error_evidence("the adapter (make_batch, loss)", err, frame), ADAPTER_ERROR
        return (f"the model raised {short_error(err)} on the adapter's batch in eval mode, before any check; run "
                f"adapter.loss(model, adapter.batch(model, 0)) to see the whole traceback"), CHECK_ERROR
    finally:
        snapshot.restore()
    return None


def _local_rows(model: nn.Module, adapter: ModelAdapter, seed: int, steps: int,
                extra_checks: Mapping[str, Invariant]) -> list[Row]:
    """Every local check, then every extra invariant, each on the model as it was (snapshot restored after)."""
    broken = _preflight(model, adapter, seed)
    if broken is not None:
        checks = [(check.__name__, _docline(check)) for check in LOCAL_CHECKS] + [(key, key) for key in extra_checks]
        return [Row(key, check, COULD_NOT_RUN, *broken) for key, check in checks]
    runs = [(check.__name__, _docline(check), lambda check=check: check(model, adapter, seed, steps))
            for check in LOCAL_CHECKS]
    runs += [(key, key, lambda key=key, invariant=invariant: _extra_row(key, invariant, model, adapter))
             for key, invariant in extra_checks.items()]
    rows = []
    for key, check, run in runs:
        snapshot = ModelSnapshot(model)
        try:
            with global_random_state_kept():
                rows.append(run())
        except Exception as err:  # the adapter's error: the check could not run; the model's: it fails the check
            frame = raised_in_adapter(err, adapter.hooks)
            if frame is not None:
                rows.append(Row(key, check, COULD_NOT_RUN, adapter_error_evidence("the adapter", err, frame),
                                ADAPTER_ERROR))
            else:
                rows.append(Row(key, check, FAILS, f"the model raised under this check: {short_error(err)}"))
        finally:
            snapshot.restore()
    return rows


def _docline(function: Callable) -> str:
    return (function.__doc__ or function.__name__).strip().splitlines()[0]


def _checked_subject(name: Any, subject: Any) -> Subject:
    if isinstance(subject, nn.Module):
        subject = Subject(subject)
    check_type(f"models[{name!r}]", subject, Subject, "a model or an xtlab.diagnostics.model_audit.Subject")
    check_module(f"models[{name!r}].model", subject.model)
    adapter = adapter_for(subject.model) if subject.adapter is None else subject.adapter
    check_type(f"models[{name!r}].adapter", adapter, ModelAdapter, "a ModelAdapter")
    return Subject(subject.model, adapter, subject.build)


def audit_models(models: Mapping[str, nn.Module | Subject], *, seed: int = 0, steps: int = 8, ddp: bool = True,
                 extra_checks: Mapping[str, Invariant] | None = None,
                 ddp_timeout_s: float = 120.0) -> dict[str, ReportCard]:
    """Report cards for several models; their DDP steps share one launch of 2 processes.

    Args:
        models: name -> model (audited with the ready adapter for its class) or :class:`Subject`.
        seed: seeds every batch and random draw of the audit (global random state is put back afterwards).
        steps: training steps of the gradient-presence and seeding checks (backward only: no weight changes).
        ddp: run the 2-process DDP step (False: that row is left out; it takes a few seconds).
        extra_checks: your own invariants, name -> ``check(model, adapter) -> bool`` (or ``(bool, evidence)``);
            each becomes a row named by its key.
        ddp_timeout_s: the DDP launch returns within about this many seconds.

    Returns:
        name -> :class:`ReportCard`. Each model is left exactly as it was (values, ties, train/eval mode).
    """
    check_type("models", models, Mapping, "a mapping name -> model")
    if not models:
        raise ValueError("models must name at least one model, but got an empty mapping")
    check_int("seed", seed, minimum=0)
    check_int("steps", steps, minimum=1, maximum=1000)
    check_bool("ddp", ddp)
    check_number("ddp_timeout_s", ddp_timeout_s, minimum=1.0)
    extra_checks = {} if extra_checks is None else extra_checks
    check_type("extra_checks", extra_checks, Mapping, "a mapping name -> check(model, adapter)")
    for key, invariant in extra_checks.items():
        check_type("extra_checks key", key, str, "a str")
        if not callable(invariant):
            raise TypeError(f"extra_checks[{key!r}] must be callable, but got {shown(invariant)}")
    subjects = {name: _checked_subject(name, subject) for name, subject in models.items()}

    versions = installed_versions()
    with one_cpu_thread():  # tiny models: one thread is many times faster on a small, busy CPU
        rows = {name: _local_rows(s.model, s.adapter, seed, steps, extra_checks) for name, s in subjects.items()}
    if ddp:
        jobs: dict[str, DDPJob] = {}
        for name, s in subjects.items():
            first = rows[name][0]
            if first.reason in (ADAPTER_ERROR, CHECK_ERROR) and all(row.evidence == first.evidence
                                                                     for row in rows[name]):  # the preflight failed
                rows[name].append(Row("ddp_step", DDP_CHECK, COULD_NOT_RUN, first.evidence, first.reason))
                continue
            job = make_job(name, s.model, s.adapter, s.build)
            if isinstance(job, Row):
                rows[name].append(job)
            else:
                jobs[name] = job
        for name, row in zip(jobs, ddp_rows(list(jobs.values()), seed, ddp_timeout_s), strict=True):
            rows[name].append(row)
    return {name: ReportCard(name, s.adapter.name, sum(p.numel() for p in s.model.parameters() if p.requires_grad),
                             versions, tuple(_ordered(rows[name], extra_checks))) for name, s in subjects.items()}


def _ordered(rows: list[Row], extra_checks: Mapping[str, Invariant]) -> list[Row]:
    """Course rows first (DDP last of them), then the extra invariants."""
    extra = set(extra_checks)
    return [row for row in rows if row.key not in extra] + [row for row in rows if row.key in extra]


def audit(model: nn.Module, adapter: ModelAdapter | None = None, *, name: str | None = None,
          build: Callable[[], nn.Module] | None = None, seed: int = 0, steps: int = 8, ddp: bool = True,
          extra_checks: Mapping[str, Invariant] | None = None, ddp_timeout_s: float = 120.0) -> ReportCard:
    """The report card of ``model``: every invariant of the course, measured, on the installed versions.

    Rows: gradient presence under the model's layer dropout; layer-dropout skips seeded by torch; ``mems=None``
    vs all-zero memories; a segmented XL pass vs a full pass; the embedding/output tie through six save/load
    paths and ``deepcopy``; ``deepcopy`` gives an independent model; optimizer groups complete and disjoint and
    where weight decay lands (the model's own ``configure_optimizers`` when it has one); unused parameters; a
    2-process DDP step; then ``extra_checks``. Each row holds, fails, or could not run (a hook the adapter lacks,
    or the adapter raised: its traceback summarised, with a hint), with the evidence. The model is left exactly
    as it was: tensors, ``requires_grad``, training flags and every plain attribute.

    Also from a shell: ``python -m xtlab.audit module:factory [--adapter module:adapter] [--report out.md]``.

    Args:
        model: any ``nn.Module``. adapter: how to drive it; ``None`` picks the ready adapter for xtlab's or
            x-transformers' ``TransformerWrapper`` or ``torch.nn.Transformer`` (:func:`adapter_for`).
        name: the card's title (default: the model's class name).
        build: for the DDP step when the model does not pickle: a picklable function building the same
            architecture (the model's weights are loaded into it).
        seed, steps, ddp, extra_checks, ddp_timeout_s: as for :func:`audit_models`.

    Example::

        card = xtlab.audit(model)         # or xtlab.audit(model, adapter) for a model without a ready adapter
        print(card)                       # one line per check, with its evidence
        card.status("tying_paths")        # "holds" / "fails" / "could not run"
    """
    check_module("model", model)
    name = type(model).__name__ if name is None else name
    check_type("name", name, str, "a str")
    return audit_models({name: Subject(model, adapter, build)}, seed=seed, steps=steps, ddp=ddp,
                        extra_checks=extra_checks, ddp_timeout_s=ddp_timeout_s)[name]
