"""GRPO on the RLT reward: TRL's ``GRPOTrainer`` with a frozen student prepared like its reference model.

The reward needs two models TRL does not know about as such: the live policy (the teacher, whose
log-probs at the sampling temperature enter δ) and a frozen student. The student is prepared exactly
as TRL prepares its reference model — DeepSpeed (ZeRO-3 sharding/offload), FSDP, or plain device
placement in eval mode — and never receives gradients.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import MethodType
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, ProgressCallback, SchedulerType, TrainerCallback
from trl import GRPOConfig, GRPOTrainer
from trl.models import prepare_deepspeed, prepare_fsdp

from rlt.defaults import default
from rlt.formats import FormatConfig
from rlt.generation import vllm_runs_on_cpu
from rlt.reward import RewardConfig, RLTReward

logger = logging.getLogger(__name__)


class RewardOnProgressBar(TrainerCallback):
    """Shows the latest RLT reward and its terms on the trainer's progress bar (after each log)."""

    TERMS = ("reward", "r_ss", "r_kl", "missing_tag_penalty")

    def __init__(self, progress: ProgressCallback):
        self.progress = progress

    def on_log(self, args, state, control, logs=None, **kwargs):
        bar = getattr(self.progress, "training_bar", None)
        if bar is not None and logs and "rlt/reward" in logs:
            bar.set_postfix({term: f"{logs[f'rlt/{term}']:.3f}" for term in self.TERMS}, refresh=False)


PAPER = "the paper's"


@dataclass
class RLTGRPOConfig(GRPOConfig):
    """TRL's GRPOConfig with the paper's teacher RL as defaults (``shared/spec/rlt-method.md``): sampling at
    temperature 0.7, a KL penalty β = 0.04 to a reference model mixed toward the policy (α = 0.9 every 32
    steps), a constant learning rate of 1e-6, GRPO's loss, and a sample of explanations logged."""

    temperature: float = default(GRPOConfig, "temperature", 0.7, PAPER)
    beta: float = default(GRPOConfig, "beta", 0.04, PAPER)
    sync_ref_model: bool = default(GRPOConfig, "sync_ref_model", True, PAPER)
    ref_model_mixup_alpha: float = default(GRPOConfig, "ref_model_mixup_alpha", 0.9, PAPER)
    ref_model_sync_steps: int = default(GRPOConfig, "ref_model_sync_steps", 32, PAPER)
    learning_rate: float = default(GRPOConfig, "learning_rate", 1e-6, PAPER)
    lr_scheduler_type: SchedulerType | str = default(GRPOConfig, "lr_scheduler_type", "constant", PAPER)
    loss_type: str = default(GRPOConfig, "loss_type", "grpo", PAPER)
    log_completions: bool = default(GRPOConfig, "log_completions", True, "samples in output_dir/completions")
    num_completions_to_print: int | None = default(GRPOConfig, "num_completions_to_print", 1, "one on the console")


def policy_log_probs_are_fp32(args: GRPOConfig) -> bool:
    """Whether TRL's log-probs of the policy may stand in for the reward's teacher term: only in fp32.

    Under bf16 (or fp16) TRL computes them from half-precision logits, the error the reward's fp32 head exists
    to avoid (the spec measured up to 0.074 nats per token on a 7B model). On the toy teacher, against the fp32
    head, per token on average (tests/commands/test_teacher_rl.py measures it): 1.7e-7 in fp32, 1.1e-3 under
    bf16, and 8.8e-4 under bf16 with TRL's ``cast_lm_head_to_fp32``, whose decoder still runs in bf16 (an error
    that grows with the model). So a bf16 run computes the teacher term in fp32; its cost is the reward's
    teacher forward pass (``benchmarks/grpo_step.py``).
    """
    return not (args.bf16 or args.fp16)


@contextmanager
def _vllm_engine_options(options: dict[str, Any]) -> Iterator[None]:
    """TRL builds its colocated vLLM engine with a fixed set of arguments, without eager mode or a KV-cache
    size; rlt's are added by wrapping the class TRL calls, for as long as the trainer is being built."""
    if not options:
        yield
        return
    from trl.generation import vllm_generation

    engine = vllm_generation.LLM
    vllm_generation.LLM = functools.partial(engine, **options)
    try:
        yield
    finally:
        vllm_generation.LLM = engine


def _sync_weights_into_cpu_vllm(generation: Any) -> None:
    """TRL's colocated weight sync (``VLLMGeneration.sync_weights``), for vLLM's CPU build only.

    The CPU build repacks linear weights for its kernels once loaded, so TRL's per-parameter ``load_weights``
    finds no ``weight_loader`` to write through and fails. Here all the weights are reloaded at once, as from
    a checkpoint, through the model runner, which repacks them again; an lm_head tied to the embeddings is
    not among the reloaded parameters and is repacked from the new embeddings. On GPUs vLLM keeps the loaded
    layout and TRL's own sync runs.
    """
    runner = generation.llm.llm_engine.model_executor.driver_worker.model_runner
    runner.reload_weights(weights_iterator=list(generation._iter_named_params()), is_checkpoint_format=True)
    model = runner.get_model()
    if runner.model_config.hf_config.get_text_config().tie_word_embeddings:
        model.lm_head.quant_method.process_weights_after_loading(model.lm_head)
    generation.llm.reset_prefix_cache()


def _unwrap(model: Any) -> PreTrainedModel:
    """The module under a DeepSpeed/DDP wrapper (the reward calls its decoder and head directly)."""
    return getattr(model, "module", model)


class RLTGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose reward is the RLT reward of ``student`` judging the policy's explanations.

    The training dataset must carry ``prompt`` (the teacher prompt text), ``question`` and ``solution``.
    """

    def __init__(
        self,
        model: str | PreTrainedModel,
        student: PreTrainedModel,
        args: GRPOConfig,
        processing_class: PreTrainedTokenizerBase,
        reward_config: RewardConfig,
        format_config: FormatConfig,
        student_tokenizer: PreTrainedTokenizerBase | None = None,
        vllm_engine_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        reward_config = reward_config.at_teacher_temperature(args.temperature)
        with _vllm_engine_options(vllm_engine_options or {}):
            super().__init__(model=model, reward_funcs=[self.rlt_reward], args=args,
                             processing_class=processing_class, **kwargs)
        if self.use_vllm and args.vllm_mode == "colocate" and vllm_runs_on_cpu():
            self.vllm_generation.sync_weights = MethodType(_sync_weights_into_cpu_vllm, self.vllm_generation)
        student.eval().requires_grad_(False)
        if self.is_deepspeed_enabled:
            student = prepare_deepspeed(student, self.accelerator)
        elif self.is_fsdp_enabled:
            student = prepare_fsdp(student, self.accelerator)
        else:
            student = self.accelerator.prepare_model(student, evaluation_mode=True)
        self.student = student
        self.reward = RLTReward(_unwrap(self.model), _unwrap(student), processing_class, reward_config,
                                format_config, student_tokenizer)
        # TRL computes the policy's log-probs of each new batch before its rewards when it needs them for
        # importance sampling (vLLM generation, or generation out of step with optimisation). In fp32 they
        # are the reward's teacher log-probs already, and the reward skips its teacher forward pass.
        generate_every = args.steps_per_generation * self.num_iterations
        computed = (args.gradient_accumulation_steps % generate_every != 0
                    or (self.use_vllm and self.vllm_importance_sampling_correction))
        self.reuses_policy_log_probs = computed and policy_log_probs_are_fp32(args)
        if computed and not self.reuses_policy_log_probs:
            logger.info("the reward computes the teacher's log-probs in fp32 rather than reuse TRL's, which come "
                        "from bf16/fp16 logits")
        self._policy_log_probs: list[torch.Tensor] | None = None
        progress = next((c for c in self.callback_handler.callbacks if isinstance(c, ProgressCallback)), None)
        if progress is not None:
            self.add_callback(RewardOnProgressBar(progress))

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        out = super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                         *args, **kwargs)
        # The first no-grad pass of the policy on a new batch is TRL's "old" log-probs (at its sampling
        # temperature), one row per completion, in the order the reward receives them.
        if (self.reuses_policy_log_probs and model is self.model and not torch.is_grad_enabled()
                and self._policy_log_probs is None):
            self._policy_log_probs = list(out[0].detach())
        return out

    def rlt_reward(self, **kwargs: Any) -> list[float]:
        """The reward function TRL calls (named ``rlt_reward`` in its metrics)."""
        teacher_log_probs, self._policy_log_probs = self._policy_log_probs, None
        return self.reward(teacher_log_probs=teacher_log_probs, **kwargs)
