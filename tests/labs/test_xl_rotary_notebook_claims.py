"""Every number and verdict the stored Lab 03 notebook prints, recomputed from the lab's pure functions. Read from
the solutions edition, which shows the gated outputs and every reveal (the learner edition holds them back)."""

import json
from pathlib import Path

import pytest

from tests.labs.notebook_text import stored_text_of
from xtlab.course import FAILS, HOLDS, UNSTATED, verdict_of
from xtlab.labs import xl_rotary as lab

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "solutions" / "03_xl_rotary.ipynb"
TOL = lab.EXACT_TOLERANCE


@pytest.fixture(scope="module")
def text() -> str:
    return stored_text_of(NOTEBOOK)


@pytest.fixture(scope="module")
def designs():
    return {p.label: p for p in lab.all_designs(segment_len=8, num_segments=4, max_mem_len=64)}


def test_notebook_defines_only_the_exercise_answers():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    defined = [line.split("(")[0].removeprefix("def ") for line in code.splitlines() if line.startswith("def ")]
    answers = [name for name in defined if not name.startswith("show_")]  # show_*: gated printouts, no logic
    assert answers == [exercise.name for exercise in lab.EXERCISES.values()]
    assert "class " not in code and "nn.Module" not in code


def test_recording_designs(text, designs):
    for label, proof in designs.items():
        assert (f"{label:<46} ({lab.DESIGNS[label].who}): worst |segmented - full| {lab.shown_diff(proof.worst)}, "
                f"equal: {proof.equal}") in text
    assert {label for label, p in designs.items() if p.equal} == {"record after the norm, use as is",
                                                                   "record before the norm, normalise at use"}
    assert "Answer (computed): xtlab's and x-transformers' (each normalises the memory once)" in text
    twice = lab.segmented_vs_full("record after the norm, normalise again at use", unit_gains=True)
    assert f"normalising twice is off by only {lab.shown_diff(twice.worst)}, still not equal: True" in text
    xt = lab.xtransformers_segmented_vs_full()
    params = sum(p.numel() for p in lab.build_xl_model().parameters())
    assert (f"x-transformers {xt.version} ({xt.num_params} parameters; xtlab's model: {params}): worst "
            f"|segmented - full| {lab.shown_diff(xt.worst)}, equal: {xt.equal}") in text
    assert "float64: equal: True" in text


def test_positions(text):
    schemes = lab.position_schemes(num_mems=4, seq_len=8)
    for scheme, positions in schemes.positions.items():
        assert f"{scheme:<22} {positions}" in text
        assert (f"offsets of the full pass: {schemes.offsets_kept[scheme]}; max |segment - full| "
                f"{lab.shown_diff(schemes.gap[scheme])}; equal: {schemes.agrees[scheme]}") in text
    assert "Answer (computed): arange(-M, T) and arange(0, M + T)" in text
    restarted = lab.segmented_vs_full(mem_positions="restart")
    assert f"memories restarted at 0: worst |segmented - full| {lab.shown_diff(restarted.worst)}, equal: False" in text


def test_empty_memories_and_masks(text):
    empty = lab.empty_memories(num_mems=4, seq_len=8)
    assert (f"no mask: max |logits(zero mems) - logits(mems=None)| {lab.shown_diff(empty.max_abs_diff['mask off'])}; "
            f"weight on memory columns per query {empty.memory_weight['mask off']:.2f}") in text
    assert "slot mask: max |logits(zero mems) - logits(mems=None)| < 1e-12; weight on memory columns per query 0.00" \
        in text
    assert "Answer (computed): different logits" in text
    xt = lab.xtransformers_zero_memories(num_mems=4, seq_len=8)
    assert f"without mem_masks {lab.shown_diff(xt['no mem_masks'])}; with an all-False mem_masks < 1e-12" in text
    for rule, mask in lab.MASK_RULES.items():
        block = "\n".join([rule] + [f"    {row:<40} max |diff| {lab.shown_diff(gap)}"
                                    for row, gap in lab.mask_rows_gap(mask).items()])
        assert block in text


def test_layer_dropout_routing(text):
    for step, (line, code) in lab.loop_lines().items():
        assert f"line {line}: {step:<36} {code}" in text
    assert "the skip comes before the pop and before the recording: True" in text
    xt = lab.memory_routing("x-transformers", dropped_layer=0, depth=3)
    assert (f"x-transformers {xt.version}: dropped layers [0]; layers 0..2 received memories "
            f"{['none' if got is None else got for got in xt.received]}") in text
    status = "fixed" if xt.each_layer_gets_its_own else "still present"
    assert f"x-transformers {xt.version}: the misrouting is {status}" in text
    assert "Answer (computed): layer 0's (memory 0)" in text
    mine = lab.memory_routing("xtlab", dropped_layer=0, depth=3)
    assert mine.each_layer_gets_its_own and "each layer keeps its own: True" in text


def test_causes_of_the_zero_memory_mismatch(text):
    causes = lab.zero_memory_causes(num_mems=4, seq_len=8)
    for mode, gap in causes.by_positions.items():
        assert f"positions {mode:<11} no mask: max |zero mems - mems=None| {lab.shown_diff(gap)}" in text
    for design, gap in causes.by_design.items():
        assert f"{design:<46} no mask: max |zero mems - mems=None| {lab.shown_diff(gap)}" in text
    assert len({*causes.by_positions.values(), *causes.by_design.values()}) == 1  # no candidate cause moves it
    assert "xtlab's design): max |zero mems - mems=None| < 1e-12" in text


def test_audit_verdicts(text, designs):
    schemes = lab.position_schemes(num_mems=4, seq_len=8)
    gap = schemes.gap
    empty = lab.empty_memories(num_mems=4, seq_len=8)
    causes = lab.zero_memory_causes(num_mems=4, seq_len=8)
    whole = lab.mask_rows_gap(lab.whole_tensor_flag)
    ok = {label: p.equal for label, p in designs.items()}
    verdicts = {
        1: verdict_of(empty.max_abs_diff["mask off"] >= TOL),
        2: verdict_of(max(causes.by_positions.values()) < TOL),
        3: verdict_of(causes.masked < TOL <= empty.max_abs_diff["mask off"]),
        4: verdict_of(min(causes.by_design.values()) < TOL),
        5: verdict_of(gap["arange(-M, T)"] < TOL <= gap["both from 0 (overlap)"],
                      needs_unstated_condition=gap["arange(0, M + T)"] < TOL),
        6: verdict_of(lab.segment_attention_gap(lab.article_order(2, 5), 2, 5) < TOL),
        7: verdict_of(empty.max_abs_diff["mask on"] < TOL),
        8: verdict_of(ok["record after the norm, use as is"] and ok["record before the norm, normalise at use"]
                      and not ok["record before the norm, use as is"]),
        9: verdict_of(gap["arange(-M, T)"] < TOL and lab.segmented_vs_full().equal),
        10: verdict_of(whole["continuing row: full memory"] < TOL,
                       needs_unstated_condition=whole["fresh row: all-zero memory"] >= TOL),
        11: verdict_of(empty.max_abs_diff["mask on"] < TOL),
    }
    assert verdicts == {1: HOLDS, 2: FAILS, 3: HOLDS, 4: FAILS, 5: UNSTATED, 6: FAILS, 7: HOLDS, 8: HOLDS, 9: HOLDS,
                        10: UNSTATED, 11: HOLDS}
    for number, verdict in verdicts.items():
        assert f"\n{number}. [{verdict}]" in text
    assert "Audit of article 004" in text and "claims numbered as on" in text


def test_batch_wide_rule_per_row(text):
    for rule, gaps in lab.row_gaps(lengths=(None, 3, 6)).items():
        assert (f"{rule:<30} max |batched - alone| per row (fresh, 3 memories, 6 memories): "
                f"{[lab.shown_diff(g) for g in gaps]}") in text


def test_memory_routing_exercise_table_and_full_pass(text):
    ours = lab.which_memories(lab.solution_run_layers, depth=3, skipped=0)
    theirs = lab.memory_routing("x-transformers", dropped_layer=0, depth=3)
    xt_read = ["-" if k in theirs.dropped else got for k, got in enumerate(theirs.received)]
    assert ours == {"read": ["-", 1, 2], "returned_old": [0, 1, 2], "returned_new": [0, 1, 2]}
    assert xt_read == ["-", 0, 1] and list(theirs.returned_old) == [0, 1] and list(theirs.returned_new) == [1, 2]
    assert f"{'your routing':<16} {str(ours['read']):<22} {ours['returned_old']} / {ours['returned_new']}" in text
    returned = f"{list(theirs.returned_old)} / {list(theirs.returned_new)}"
    assert f"{'x-transformers':<16} {str(xt_read):<22} {returned}" in text
    gaps = lab.routing_vs_full(depth=3, segment_len=4)
    assert gaps["every layer records its input"] < TOL
    assert gaps["a skipped layer's memory carried unchanged"] > 0.1 and gaps["x-transformers' order"] > 0.1
    assert gaps["a skipped layer's memory dropped"] > 0.1
    for name, gap in gaps.items():
        assert f"{name:<44} max |segmented - full| {lab.shown_diff(gap)}" in text
    recorded, carried, dropped = (lab.shown_diff(gaps[name]) for name in (
        "every layer records its input", "a skipped layer's memory carried unchanged",
        "a skipped layer's memory dropped"))
    assert "Answer (computed): segment 1's states, then segment 2's input recorded though the layer did not run" in text
    assert (f"recording its input is exact ({recorded}); carried over as it was, its memory has a hole ({carried}); "
            f"dropped, it loses segment 1 ({dropped})") in text
