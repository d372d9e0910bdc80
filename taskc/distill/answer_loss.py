"""The loss on answer tokens only, computing logits only where they are needed.

SFTTrainer's fused LM head scores only the labelled positions on a Triton device, but on a CPU
it scores every position of the padded batch against the whole vocabulary (151,936 columns for
Qwen): for a 50-token prompt and a 3-token label that is about 17 times the work the loss needs.
Answers always sit at the end of a training sequence, so the collator here pads on the LEFT
(with explicit position ids, so every real token keeps the position it has at inference) and
the trainer asks the model for the logits of the last `answer + 1` positions only
(`logits_to_keep`). The loss is the usual one: summed negative log-likelihood of the answer
tokens divided by the number of answer tokens in the (accumulated) batch.
"""

from __future__ import annotations

from typing import Any


class LeftPadCollator:
    """Batches `{"input_ids", "labels"}` rows, padded on the left; adds `attention_mask`,
    `position_ids` and `logits_to_keep` (the longest answer in the batch, plus one)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        keep = 1
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, width - n:] = torch.as_tensor(row["input_ids"], dtype=torch.long)
            labels[i, width - n:] = torch.as_tensor(row["labels"], dtype=torch.long)
            mask[i, width - n:] = 1
            learned = [j for j, x in enumerate(row["labels"]) if x != -100]
            keep = max(keep, n - learned[0] + 1 if learned else 1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return {"input_ids": ids, "attention_mask": mask, "position_ids": positions, "labels": labels,
                "logits_to_keep": min(keep, width)}


def answer_only_trainer():
    """An `SFTTrainer` subclass whose `compute_loss` scores the kept (answer) positions only."""
    import torch
    from trl import SFTTrainer

    class AnswerOnlySFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            keep = int(inputs.pop("logits_to_keep"))
            outputs = model(**inputs, use_cache=False, logits_to_keep=keep)
            logits = outputs.logits[:, -keep:, :]
            targets = labels[:, -keep:][:, 1:].to(logits.device)
            scored = logits[:, :-1, :].float()
            mask = targets != -100
            total = torch.nn.functional.cross_entropy(scored[mask], targets[mask], reduction="sum")
            count = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = total / torch.as_tensor(count, device=total.device).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

    return AnswerOnlySFTTrainer
