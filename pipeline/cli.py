"""`pipeline`: a thin command line over `pipeline.training`, `pipeline.evaluation` and `pipeline.recipe`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from pipeline import __version__
from pipeline.errors import PipelineError
from pipeline.paths import check_output_file

DESCRIPTION = """\
Fine-tune a pretrained model (BERT family, GPT-2 family, rotary Llama-style decoders or an ELMo-style
bi-LSTM) on a downstream task while freezing, fine-tuning or replacing its token-embedding and positional
layers, all chosen in one recipe YAML; or pretrain one (causal or bidirectional language modeling) for a
later recipe to fine-tune.

examples:
  pipeline validate recipes/quickstart.yaml             check a recipe, print it with every default
  pipeline inspect recipes/glove-minilm.yaml            the input layers after surgery, vector coverage
  pipeline train recipes/quickstart.yaml                fine-tune; writes the recipe's output_dir
  pipeline train recipes/quickstart.yaml layers.token_embeddings=freeze output_dir=runs/frozen
  pipeline train recipes/quickstart.yaml --resume       continue after a crash, from the newest checkpoint
  pipeline eval runs/quickstart eval.splits=[test]      re-score a saved run on another split
  pipeline schema                                       every recipe field, its default and meaning
  pipeline train recipes/pretrain/bilstm-bbcnews.yaml   pretrain a bi-LSTM (forward + backward LM)

On several GPUs or processes: accelerate launch --config_file accelerate_config.yaml -m pipeline train RECIPE
"""

OVERRIDES_HELP = "recipe overrides as dotted key=value, values parsed as YAML (train.lr=3e-5 eval.splits=[test])"


def _train(args: argparse.Namespace) -> int:
    from pipeline.recipe.io import load_recipe
    from pipeline.training.run import train

    run_dir = train(load_recipe(args.recipe, args.overrides), overwrite=args.overwrite, resume=args.resume)
    print(f"run folder: {run_dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from pipeline.evaluation.rescore import evaluate_saved
    from pipeline.training.run_folder import to_json

    output = Path(args.output) if args.output else None
    if output is not None:
        check_output_file(output)  # before the evaluation, so its scores are not lost
    scores = evaluate_saved(Path(args.run), args.overrides)
    if output is not None:
        partial = output.with_name(f".{output.name}.partial")
        partial.write_text(to_json(scores, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, output)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pipeline.recipe.io import dump_recipe, load_recipe

    print(dump_recipe(load_recipe(args.recipe, args.overrides)), end="")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from pipeline.recipe.io import load_recipe
    from pipeline.training.experiment import setup
    from pipeline.training.inspect import describe_input_layers

    print(describe_input_layers(setup(load_recipe(args.recipe, args.overrides))))
    return 0


def _schema(args: argparse.Namespace) -> int:
    from pipeline.recipe.io import recipe_reference

    print(recipe_reference())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"embedlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="fine-tune as a recipe says and write a run folder")
    train.add_argument("recipe", help="recipe YAML file")
    train.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    train.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    train.add_argument("--resume", action="store_true", help="continue the run in output_dir from its newest whole checkpoint")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("eval", help="re-evaluate a finished run folder or a saved model inside one")
    evaluate.add_argument("run", help="run folder (or its model/ or checkpoints/step-N/ folder)")
    evaluate.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    evaluate.add_argument("--output", help="also write the scores to this JSON file")
    evaluate.set_defaults(handler=_eval)

    validate = commands.add_parser("validate", help="check a recipe and print it with every default filled in")
    validate.add_argument("recipe", help="recipe YAML file")
    validate.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    validate.set_defaults(handler=_validate)

    inspect = commands.add_parser("inspect", help="show the input layers after surgery, without training")
    inspect.add_argument("recipe", help="recipe YAML file")
    inspect.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    inspect.set_defaults(handler=_inspect)

    schema = commands.add_parser("schema", help="print every recipe field with its type, default and meaning")
    schema.set_defaults(handler=_schema)
    return parser


def _terminated(number: int, frame: object) -> None:
    raise KeyboardInterrupt(number)


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input ends with one `error:` line on stderr and exit code 2."""
    parser = build_parser()
    # Overrides may also follow an option (`train R --resume k=v`), which argparse leaves unparsed.
    args, extra = parser.parse_known_args(argv)
    stray = [item for item in extra if item.startswith("-") or "=" not in item or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # SIGTERM (a scheduler's pre-emption) ends a command as Ctrl-C does; training turns both into a checkpoint.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        return args.handler(args)
    except PipelineError as error:
        if not getattr(error, "quiet", False):
            print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        number = interrupt.args[0] if interrupt.args else signal.SIGINT
        print(f"{chr(10) if sys.stderr.isatty() else ''}interrupted ({signal.Signals(number).name})", file=sys.stderr)
        return 128 + number
    except BrokenPipeError:  # `pipeline schema | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
