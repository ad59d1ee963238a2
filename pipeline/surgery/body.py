"""The encoder body's and the task head's variants: each one's implementation (`pipeline.surgery.registry`).

The body is trained (its lowest blocks may stay frozen), frozen, or frozen with LoRA adapters trained beside its
linear layers; the head is trained or frozen."""

from __future__ import annotations

from torch import nn

from pipeline.errors import PipelineError
from pipeline.recipe.layers import FinetunedBody, FinetunedHead, FrozenBody, FrozenHead, LoraBody
from pipeline.surgery.job import SurgeryJob
from pipeline.surgery.lora import add_lora, is_adapter
from pipeline.surgery.policies import blocks_of
from pipeline.surgery.registry import BodySurgery, HeadSurgery, implements


@implements(FrozenBody)
class FrozenBodySurgery(BodySurgery):
    """`freeze`: every parameter of the body frozen."""


@implements(FinetunedBody)
class FinetunedBodySurgery(BodySurgery):
    """`finetune`: the body trains, but for its lowest `freeze_bottom` blocks."""

    def frozen(self, policy: FinetunedBody, job: SurgeryJob, parameters: dict[str, nn.Parameter]) -> list:
        if not policy.freeze_bottom:
            return []
        blocks = blocks_of(job.family, job.model)
        if policy.freeze_bottom > len(blocks):
            raise PipelineError(f"the model has only {len(blocks)} layers", field="layers.encoder.freeze_bottom")
        return [p for block in blocks[: policy.freeze_bottom] for p in block.parameters()]


@implements(LoraBody)
class LoraBodySurgery(BodySurgery):
    """`lora`: adapters (PEFT) beside the body's linear layers train; the rest of the body is frozen."""

    def scope(self, policy: LoraBody, job: SurgeryJob) -> None:
        job.report.lora = add_lora(job.model, policy, job.family.lora_targets, job.family.lora_fan_in_fan_out)

    def frozen(self, policy: LoraBody, job: SurgeryJob, parameters: dict[str, nn.Parameter]) -> list:
        return [parameter for name, parameter in parameters.items() if not is_adapter(name)]


@implements(FinetunedHead, FrozenHead)
class HeadPolicySurgery(HeadSurgery):
    """The task head (and an untied LM head): trained, or frozen (`is_frozen`)."""
