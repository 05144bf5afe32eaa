"""Lab 05 — encoder-decoder and DDP: an unused to_logits breaks real distributed training.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.encoder_decoder_ddp.ddp_training import (
    DDPTrainConfig,
    RankOutcome,
    parameter_checksum,
    train_ddp_configs,
    train_ddp_xtransformer,
)
from xtlab.labs.encoder_decoder_ddp.exercises import (
    EXERCISES,
    check_ddp_predictions,
    check_unused_parameter_names,
)
from xtlab.labs.encoder_decoder_ddp.experiments import (
    DTYPES,
    SEQ_LENGTH,
    Seq2SeqRun,
    WasteReport,
    build_seq2seq_model,
    build_shape_only,
    encoder_unused_parameters,
    seq2seq_loss_fn,
    train_seq2seq,
    wasted_by_encoder_logits,
)
from xtlab.labs.encoder_decoder_ddp.launch import (
    DDPRunReport,
    first_sentence,
    launch_ddp,
    launch_ddp_configs,
    parameters_named_in_error,
)
from xtlab.labs.encoder_decoder_ddp.panels import (
    CURVE_VOCABS,
    ddp_panel,
    plot_ddp_report,
    plot_seq2seq_run,
    plot_waste,
    waste_curve,
    waste_panel,
)
from xtlab.labs.encoder_decoder_ddp.quiz import (
    QUIZ_MODELS,
    MysteryTagger,
    build_mystery_model,
    mystery_loss_fn,
    mystery_unused_names,
    quiz_answer_key,
    runs_under_ddp,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
