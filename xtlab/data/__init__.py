"""Small bundled data for the labs: a generated character corpus and synthetic seq2seq tasks."""

from xtlab.data.corpus import CORPUS_NUM_CHARS, CharCorpus, CharTokenizer, corpus_text, get_batch, load_corpus
from xtlab.data.seq2seq import (
    SEQ2SEQ_TASKS,
    Seq2SeqBatch,
    make_seq2seq_batch,
    seq2seq_vocab_size,
    sequence_accuracy,
    token_accuracy,
)

__all__ = [
    "CORPUS_NUM_CHARS",
    "SEQ2SEQ_TASKS",
    "CharCorpus",
    "CharTokenizer",
    "Seq2SeqBatch",
    "corpus_text",
    "get_batch",
    "load_corpus",
    "make_seq2seq_batch",
    "seq2seq_vocab_size",
    "sequence_accuracy",
    "token_accuracy",
]
