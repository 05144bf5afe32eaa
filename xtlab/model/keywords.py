"""The keywords of x-transformers 2.x ``AttentionLayers`` (hence ``Decoder``/``Encoder``), and clear refusals.

xtlab mirrors a subset of them. Any other x-transformers keyword is refused with a ``TypeError`` that names it
and says xtlab does not model it, instead of Python's bare "unexpected keyword argument"; a keyword neither
library knows is refused with the closest accepted name (difflib), so ``rotary_pos_embed=True`` says
"did you mean rotary_pos_emb?".

The lists below are the signatures of x-transformers' ``AttentionLayers``, ``Attention`` (under the ``attn_``
and ``cross_attn_`` prefixes) and ``FeedForward`` (under ``ff_``), without the arguments ``AttentionLayers``
sets itself; of ``TransformerWrapper``; and of ``XTransformer``, whose ``enc_``/``dec_`` prefixed keywords go
to its two wrappers (the few it picks out) or to their ``Encoder``/``Decoder`` (all the others).
``tests/model/test_keywords.py`` recomputes them from the installed x-transformers, so a new keyword there
fails the test until it is listed here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

ATTENTION_LAYERS_KEYWORDS = (
    'dim', 'depth', 'heads', 'causal', 'cross_attend', 'only_cross', 'only_attn', 'use_scalenorm', 'use_rmsnorm',
    'use_dynamic_tanh', 'use_derf', 'dynamic_tanh_init_alpha', 'use_simple_rmsnorm', 'use_adaptive_layernorm',
    'use_adaptive_rmsnorm', 'use_adaptive_layerscale', 'norm_add_unit_offset', 'dim_condition',
    'adaptive_condition_mlp', 'adaptive_condition_mlp_expansion', 'alibi_pos_bias', 'alibi_num_heads',
    'rel_pos_bias', 'rel_pos_num_buckets', 'rel_pos_max_distance', 'dynamic_pos_bias',
    'dynamic_pos_bias_log_distance', 'dynamic_pos_bias_mlp_depth', 'dynamic_pos_bias_norm', 'rotary_pos_emb',
    'rotary_emb_dim', 'rotary_xpos', 'rotary_interpolation_factor', 'rotary_xpos_scale_base',
    'rotary_base_rescale_factor', 'rotate_num_heads', 'polar_pos_emb', 'polar_bias_uniform_init',
    'weight_tie_layers', 'custom_layers', 'layers_execute_order', 'sandwich_coef', 'par_ratio', 'residual_attn',
    'cross_residual_attn', 'macaron', 'pre_norm', 'pre_norm_has_final_norm', 'pre_and_post_norm',
    'attn_aggregated_residuals', 'attn_aggregated_residual_kwargs', 'gate_residual', 'orthog_residual',
    'mv_split_residual', 'gated_multi_residual', 'scale_residual', 'scale_residual_constant',
    'depth_scale_residual', 'shift_tokens', 'sandwich_norm', 'softclamp_output', 'softclamp_output_value',
    'zero_init_branch_output', 'layer_dropout', 'cross_attn_tokens_dropout', 'disable_abs_pos_emb',
    'use_layerscale', 'layerscale_init_value', 'unet_skips', 'integrate_layers', 'layer_integrate_use_softmax',
    'num_residual_streams', 'qkv_receive_diff_residuals', 'reinject_input', 'learned_reinject_input_gate',
    'add_value_residual', 'learned_value_residual_mix', 'rel_pos_kwargs', 'residual_fn_kwargs',
    'hyper_conn_sinkhorn_iters', 'verbose',
)

ATTENTION_KEYWORDS = (
    'attn_dim_head', 'attn_dim_context', 'attn_flash', 'attn_pre_talking_heads', 'attn_post_talking_heads',
    'attn_pre_scale_post_talking_heads', 'attn_head_scale', 'attn_sparse_topk', 'attn_sparse_topk_straight_through',
    'attn_num_mem_kv', 'attn_dropout', 'attn_sublayer_dropout', 'attn_on_attn', 'attn_gate_value_heads',
    'attn_swiglu_values', 'attn_gate_values', 'attn_gate_values_rank', 'attn_gate_values_headwise',
    'attn_output_gate', 'attn_output_gate_rank', 'attn_output_gate_headwise', 'attn_low_rank_silu_gates',
    'attn_zero_init_output', 'attn_hard', 'attn_max_attend_past', 'attn_qk_norm', 'attn_qk_norm_groups',
    'attn_qk_norm_scale', 'attn_qk_norm_dim_scale', 'attn_qk_rmsnorm', 'attn_k_rmsnorm', 'attn_value_rmsnorm',
    'attn_l2_distance', 'attn_sigmoid', 'attn_gumbel_softmax', 'attn_gumbel_softmax_temp',
    'attn_gumbel_softmax_hard', 'attn_selective', 'attn_cog_signed', 'attn_custom_attn_fn', 'attn_hybrid_module',
    'attn_hybrid_mask_kwarg', 'attn_hybrid_fold_axial_dim', 'attn_hybrid_learned_mix', 'attn_one_kv_head',
    'attn_kv_heads', 'attn_value_dim_head', 'attn_dim_out', 'attn_add_zero_kv', 'attn_head_learned_sink',
    'attn_data_dependent_alibi', 'attn_data_dependent_alibi_per_row', 'attn_data_dependent_alibi_per_row_dim_head',
    'attn_data_dependent_alibi_kwargs', 'attn_use_rel_proj_pos_bias', 'attn_rel_proj_num_distance_basis',
    'attn_rel_proj_max_dist', 'attn_use_cope', 'attn_cope_max_pos', 'attn_cope_soft_onehot_pos',
    'attn_cope_talking_heads', 'attn_softclamp_logits', 'attn_logit_softclamp_value',
    'attn_orthog_projected_values', 'attn_orthog_projected_values_per_head', 'attn_laser',
    'attn_laser_softclamp_value', 'attn_project_out', 'attn_use_latent_q', 'attn_dim_latent_q',
    'attn_use_latent_kv', 'attn_dim_latent_kv', 'attn_latent_rope_subheads', 'attn_onnxable',
    'attn_inverted_attention', 'attn_attend_sdp_kwargs', 'attn_flash_pack_seq',
)

CROSS_ATTENTION_KEYWORDS = (
    'cross_attn_dim_head', 'cross_attn_dim_context', 'cross_attn_causal', 'cross_attn_flash',
    'cross_attn_pre_talking_heads', 'cross_attn_post_talking_heads', 'cross_attn_pre_scale_post_talking_heads',
    'cross_attn_head_scale', 'cross_attn_sparse_topk', 'cross_attn_sparse_topk_straight_through',
    'cross_attn_num_mem_kv', 'cross_attn_dropout', 'cross_attn_sublayer_dropout', 'cross_attn_on_attn',
    'cross_attn_gate_value_heads', 'cross_attn_swiglu_values', 'cross_attn_gate_values',
    'cross_attn_gate_values_rank', 'cross_attn_gate_values_headwise', 'cross_attn_output_gate',
    'cross_attn_output_gate_rank', 'cross_attn_output_gate_headwise', 'cross_attn_low_rank_silu_gates',
    'cross_attn_zero_init_output', 'cross_attn_hard', 'cross_attn_max_attend_past', 'cross_attn_qk_norm',
    'cross_attn_qk_norm_groups', 'cross_attn_qk_norm_scale', 'cross_attn_qk_norm_dim_scale',
    'cross_attn_qk_rmsnorm', 'cross_attn_k_rmsnorm', 'cross_attn_value_rmsnorm', 'cross_attn_l2_distance',
    'cross_attn_sigmoid', 'cross_attn_gumbel_softmax', 'cross_attn_gumbel_softmax_temp',
    'cross_attn_gumbel_softmax_hard', 'cross_attn_selective', 'cross_attn_cog_signed', 'cross_attn_custom_attn_fn',
    'cross_attn_hybrid_module', 'cross_attn_hybrid_mask_kwarg', 'cross_attn_hybrid_fold_axial_dim',
    'cross_attn_hybrid_learned_mix', 'cross_attn_one_kv_head', 'cross_attn_kv_heads', 'cross_attn_value_dim_head',
    'cross_attn_dim_out', 'cross_attn_add_zero_kv', 'cross_attn_head_learned_sink', 'cross_attn_rotate_num_heads',
    'cross_attn_data_dependent_alibi', 'cross_attn_data_dependent_alibi_per_row',
    'cross_attn_data_dependent_alibi_per_row_dim_head', 'cross_attn_data_dependent_alibi_kwargs',
    'cross_attn_use_rel_proj_pos_bias', 'cross_attn_rel_proj_num_distance_basis', 'cross_attn_rel_proj_max_dist',
    'cross_attn_use_cope', 'cross_attn_cope_max_pos', 'cross_attn_cope_soft_onehot_pos',
    'cross_attn_cope_talking_heads', 'cross_attn_softclamp_logits', 'cross_attn_logit_softclamp_value',
    'cross_attn_learned_value_residual_mix', 'cross_attn_orthog_projected_values',
    'cross_attn_orthog_projected_values_per_head', 'cross_attn_laser', 'cross_attn_laser_softclamp_value',
    'cross_attn_qkv_receive_diff_residuals', 'cross_attn_project_out', 'cross_attn_use_latent_q',
    'cross_attn_dim_latent_q', 'cross_attn_use_latent_kv', 'cross_attn_dim_latent_kv',
    'cross_attn_latent_rope_subheads', 'cross_attn_onnxable', 'cross_attn_inverted_attention',
    'cross_attn_attend_sdp_kwargs', 'cross_attn_flash_pack_seq',
)

FEEDFORWARD_KEYWORDS = (
    'ff_dim_out', 'ff_mult', 'ff_glu', 'ff_glu_mult_bias', 'ff_swish', 'ff_relu_squared', 'ff_solu',
    'ff_custom_activation', 'ff_post_act_ln', 'ff_dropout', 'ff_sublayer_dropout', 'ff_no_bias',
    'ff_zero_init_output', 'ff_softclamp_value', 'ff_glu_softclamp', 'ff_glu_gate_softclamp_value',
    'ff_glu_up_softclamp_value',
)

X_TRANSFORMERS_KEYWORDS = frozenset(
    ATTENTION_LAYERS_KEYWORDS + ATTENTION_KEYWORDS + CROSS_ATTENTION_KEYWORDS + FEEDFORWARD_KEYWORDS
)

TRANSFORMER_WRAPPER_KEYWORDS = (
    'num_tokens', 'max_seq_len', 'attn_layers', 'embed_num_tokens', 'emb_dim', 'max_mem_len', 'shift_mem_down',
    'emb_dropout', 'post_emb_norm', 'num_memory_tokens', 'memory_tokens_interspersed_every', 'tie_embedding',
    'tie_embedding_scale', 'logits_dim', 'return_only_embed', 'num_output_heads', 'use_abs_pos_emb',
    'scaled_sinu_pos_emb', 'l2norm_embed', 'recycling', 'train_max_recycle_steps', 'looped', 'max_looped_steps',
    'emb_frac_gradient', 'attn_z_loss_weight', 'average_pool_embed', 'use_cls_token', 'num_cls_tokens', 'attn_pool',
    'num_pooled_tokens', 'attn_pool_depth', 'dim_pooled_tokens', 'squeeze_out_last_dim', 'token_emb',
    'mixture_of_softmax', 'mixture_of_softmax_k', 'sigsoftmax_logits', 'ff_deep_embed', 'to_logits',
    'add_continuous_pred_head', 'input_not_include_cache',
)

XTRANSFORMER_KEYWORDS = ('dim', 'tie_token_emb', 'ignore_index', 'pad_value', 'cross_attn_tokens_dropout')

# the prefixed keywords XTransformer hands to each TransformerWrapper; every other one goes to the stack
XTRANSFORMER_WRAPPER_KEYWORDS = {
    'enc_': ('num_tokens', 'max_seq_len', 'emb_dropout', 'num_memory_tokens', 'scaled_sinu_pos_emb',
             'use_abs_pos_emb'),
    'dec_': ('num_tokens', 'max_seq_len', 'emb_dropout', 'scaled_sinu_pos_emb', 'use_abs_pos_emb'),
}

# stack keywords XTransformer sets itself (x-transformers refuses them with an assert or a duplicate argument)
_XTRANSFORMER_SETS = frozenset({'dim', 'causal'})


def xtransformer_keywords() -> frozenset[str]:
    """Every keyword x-transformers' ``XTransformer`` accepts: its own, then ``enc_``/``dec_`` + the wrapper's
    picked ones or any stack keyword (``cross_attend`` excepted for ``dec_``: the decoder always cross-attends)."""
    stack = X_TRANSFORMERS_KEYWORDS - _XTRANSFORMER_SETS
    prefixed = {prefix + name for prefix, wrapper in XTRANSFORMER_WRAPPER_KEYWORDS.items()
                for name in stack.union(wrapper) if (prefix, name) != ('dec_', 'cross_attend')}
    return frozenset(XTRANSFORMER_KEYWORDS).union(prefixed)


def refuse_unknown_keywords(owner: str, given: Iterable[str], accepted: Iterable[str], *,
                            known: Iterable[str] = X_TRANSFORMERS_KEYWORDS, note: str = "") -> None:
    """Raise ``TypeError`` for the first keyword in ``given``: every one of them is unknown to ``owner``.

    Args:
        owner: the class refusing, for the message (e.g. ``"Decoder"``).
        given: the keywords left over after ``owner`` took the ones it accepts.
        accepted: the keywords ``owner`` accepts, for the did-you-mean suggestion.
        known: the keywords x-transformers' counterpart of ``owner`` accepts (refused as not modelled).
        note: said after a keyword neither library knows when no accepted name is close.
    """
    given, accepted, known = sorted(given), sorted(accepted), frozenset(known)
    if not given:
        return
    name = given[0]
    more = f" (and {len(given) - 1} more: {', '.join(given[1:])})" if len(given) > 1 else ""
    if name in known:
        raise TypeError(f"{owner} got {name!r}, an x-transformers keyword that xtlab does not model{more}: "
                        f"xtlab builds only the pre-norm transformer the course studies; use x-transformers "
                        f"itself for this feature")
    close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
    if not close:  # maybe a misspelt x-transformers keyword: still worth naming, with what it means here
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else (f"; {note}" if note else "")
    raise TypeError(f"{owner} got an unknown keyword {name!r}{more}{hint}")
