"""The Hugging Face Trainer on the same work as a `pipeline train` run of `benchmarks/speed.py`: the same model,
the same JSONL data and tokenization (truncation to max_length, padding to the longest in each batch), AdamW with
the same lr, weight decay, warm-up, linear schedule and gradient clipping, the same batch size and steps.

Prints one JSON line: samples per second of the training loop (the Trainer's own `train_samples_per_second`) and
the process's peak resident memory. Run by `benchmarks/speed.py`, one fresh process per measurement.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile

from datasets import load_dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True, help="JSONL with text and label")
    parser.add_argument("--max-length", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--warmup-steps", type=int, default=4)
    parser.add_argument("--group-by-length", action="store_true")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    data = load_dataset("json", data_files={"train": args.train})["train"]
    labels = sorted(set(data["label"]))
    index = {label: i for i, label in enumerate(labels)}
    data = data.map(
        lambda batch: {
            **tokenizer(batch["text"], truncation=True, max_length=args.max_length),
            "labels": [index[label] for label in batch["label"]],
        },
        batched=True,
        remove_columns=data.column_names,
    )
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(labels))
    arguments = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="trainer-"),
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=args.lr,
        weight_decay=0.01,
        warmup_steps=args.warmup_steps,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        seed=args.seed,
        train_sampling_strategy="group_by_length" if args.group_by_length else "random",
        bf16=args.bf16,
        use_cpu=True,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=10,
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=data, data_collator=DataCollatorWithPadding(tokenizer))
    result = trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "samples_per_second": result.metrics["train_samples_per_second"],
                "train_runtime_s": result.metrics["train_runtime"],
                "peak_rss_mb": round(peak, 1),
                "final_loss": result.metrics["train_loss"],
            }
        )
    )


if __name__ == "__main__":
    main()
