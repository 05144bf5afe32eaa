"""Lab 01 exercises: the layer-dropout stack, the gradient-arrival recorder and a skip plan every rank agrees on."""

from __future__ import annotations

from xtlab.course import Exercise, ExerciseSet, Mistake
from xtlab.labs.layer_dropout import arrivals_exercise as arrivals
from xtlab.labs.layer_dropout import skip_plan_exercise as plan
from xtlab.labs.layer_dropout import stack_exercise as stack

EXERCISES = ExerciseSet(
    Exercise(
        name="layer_dropout_stack",
        prompt="layer_dropout_stack(blocks, x, p, training, generator) -> (out, ran): in training draw one number per "
               "block from generator, in block order, and skip block i when its number is below its probability (p "
               "is a float or a per-block list): a skipped block is never called and x passes it by; a running "
               "block adds block.fn(block.norm(x)); eval mode runs every block; ran[i] is True when block i ran",
        checker=stack.check_layer_dropout_stack,
        reference=stack.reference_layer_dropout_stack,
        mistakes=(
            Mistake("x.detach() for a skipped block", stack.detaches_on_skip, "gradient intact"),
            Mistake("runs the block, then discards its output", stack.runs_then_discards, "still called"),
            Mistake("Python's random instead of the generator", stack.draws_with_python_random, "Python's random"),
            Mistake("torch's global generator instead of the one given", stack.draws_with_global_torch,
                    "torch's global generator"),
            Mistake("one draw for the whole stack", stack.one_draw_for_the_stack, "one draw for the whole stack"),
            Mistake("skips in eval mode too", stack.skips_in_eval_mode, "eval mode"),
            Mistake("rescales a kept block by 1/(1-p)", stack.rescales_kept_blocks, "does not rescale"),
            Mistake("p used as a keep probability", stack.p_as_keep_probability, "keep probability"),
            Mistake("the first probability for every block", stack.first_probability_for_all, "per-block list"),
        ),
    ),
    Exercise(
        name="gradient_arrivals",
        prompt="gradient_arrivals(model, run_backward) -> {name: 'none' | 'zero' | 'nonzero'}: hook every trainable "
               "parameter (a shared one once, frozen ones left out), call run_backward() once, remove the hooks, "
               "and say per parameter whether a gradient arrived during it, and whether it was all zeros",
        checker=arrivals.check_gradient_arrivals,
        reference=arrivals.reference_gradient_arrivals,
        mistakes=(
            Mistake("reads .grad after the backward pass", arrivals.reads_grad_after_backward, "do not read .grad"),
            Mistake("a zero gradient recorded as none", arrivals.zero_counts_as_none, "not the same as none"),
            Mistake("a later zero arrival overwrites a nonzero one", arrivals.last_arrival_wins, "overwrote"),
            Mistake("hooks never removed", arrivals.keeps_its_hooks, "still attached"),
            Mistake("a shared parameter counted under both names", arrivals.counts_shared_twice, "counted once"),
            Mistake("frozen parameters recorded", arrivals.records_frozen, "frozen parameters"),
            Mistake("forward hooks: what ran, not what got a gradient", arrivals.forward_hooks,
                    "ran in the forward pass"),
        ),
    ),
    Exercise(
        name="skip_plan",
        prompt="skip_plan(seed, step, num_blocks, p) -> skip: a list of num_blocks bools, skip[i] True when block i "
               "is skipped at this training step of the run seeded seed; each block skipped with its probability (p "
               "is a float or a per-block list), independently of the other blocks, steps and seeds; the same plan "
               "in every process, from the arguments alone: no global random generator drawn from or read, no state "
               "kept between calls, nothing of the rank or the process mixed in",
        checker=plan.check_skip_plan,
        reference=plan.reference_skip_plan,
        mistakes=(
            Mistake("torch's global generator", plan.draws_with_global_torch, "different state on each rank"),
            Mistake("Python's random", plan.draws_with_python_random, "Python's random"),
            Mistake("torch.manual_seed inside the plan", plan.reseeds_the_global_generator, "reseeds the global"),
            Mistake("seeded by the seed only", plan.seeds_by_seed_only, "same plan at every step"),
            Mistake("seeded by the step only", plan.seeds_by_step_only, "ignores the seed"),
            Mistake("one draw for the whole stack", plan.one_draw_for_the_stack, "one draw for the whole stack"),
            Mistake("p used as a keep probability", plan.p_as_keep_probability, "keep probability"),
            Mistake("seed + step: (1, 0) is (0, 1)", plan.seed_plus_step, "seeds and steps collide"),
            Mistake("the first probability for every block", plan.first_probability_for_all, "not p[0]"),
            Mistake("the rank mixed in (os.environ['RANK'])", plan.mixes_in_the_rank, "must not depend on the rank"),
            Mistake("the process id mixed in", plan.mixes_in_the_process_id, "os.getpid()"),
            Mistake("a counter kept between calls", plan.counts_its_own_calls, "keeps state between calls"),
            Mistake("hash() of a string: salted per process", plan.hashes_a_string, "PYTHONHASHSEED"),
        ),
    ),
)
