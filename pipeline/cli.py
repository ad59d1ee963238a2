"""`pipeline`: a thin command line over `pipeline.training`, `pipeline.evaluation` and `pipeline.recipe`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from pipeline import __version__, console
from pipeline.errors import PipelineError
from pipeline.paths import check_output_file
from pipeline.plugins import load_plugins
from pipeline.storage import disk_failure

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
  pipeline sweep recipes/quickstart.yaml --grid layers.token_embeddings=finetune,freeze --seeds 0,1,2 --output
  runs/sweep
  pipeline compare runs/a runs/b --output runs/a-vs-b   the same summary and plots for any finished runs
  pipeline train recipes/pretrain/bilstm-bbcnews.yaml   pretrain a bi-LSTM (forward + backward LM)
  pipeline push runs/quickstart --repo-id you/minilm-bbc  upload the saved model with its model card

On several GPUs or processes: accelerate launch --config_file accelerate_config.yaml -m pipeline train RECIPE
"""

OVERRIDES_HELP = "recipe overrides as dotted key=value, values parsed as YAML (train.lr=3e-5 eval.splits=[test])"


TRUST_HELP = (
    "run the code the run folder asks for (its recipe's trust_remote_code / trust_metric_code, a model's own "
    "classes); without it such a folder is refused: trust comes from the command line, not from the folder"
)


def _train(args: argparse.Namespace) -> int:
    from pipeline.experiment.recipes import load_recipe
    from pipeline.training.run import train

    run_dir = train(load_recipe(args.recipe, args.overrides), overwrite=args.overwrite, resume=args.resume)
    print(f"run folder: {run_dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from pipeline.storage import atomic_write_text
    from pipeline.training.rescore import evaluate_saved
    from pipeline.training.run_folder import to_json

    output = Path(args.output) if args.output else None
    if output is not None:
        check_output_file(output)  # before the evaluation, so its scores are not lost
    scores = evaluate_saved(Path(args.run), args.overrides, trust_code=args.trust_code)
    if output is not None:
        atomic_write_text(output, to_json(scores, indent=2) + "\n")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pipeline.experiment.recipes import load_recipe
    from pipeline.recipe.io import dump_recipe

    print(dump_recipe(load_recipe(args.recipe, args.overrides)), end="")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from pipeline.experiment.build import build_experiment
    from pipeline.experiment.recipes import load_recipe
    from pipeline.training.inspect import describe_input_layers

    print(describe_input_layers(build_experiment(load_recipe(args.recipe, args.overrides))))
    return 0


def classical_methods(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The classical rows asked for; None where `--classical` was not given (the default rows)."""
    from pipeline.sweeps.baselines import parse_methods

    if args.no_baseline:
        return ()
    return None if args.classical is None else parse_methods(args.classical)


def add_classical_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--classical",
        help="classical baselines beside the runs, comma-separated: tfidf (TF-IDF), doc2vec (paragraph vectors), "
        "frozen-mean (the frozen encoder's mean vector), each + logistic regression; for sentence-embedding: tfidf, "
        "bm25, frozen (the untrained encoder), static (mean token-table row), static:VECTORS (mean word vector: a "
        "file, or skipgram/cbow/fasttext trained on the training texts); none (default: tfidf)",
    )
    command.add_argument("--no-baseline", action="store_true", help="leave out every classical row (--classical none)")


def _sweep(args: argparse.Namespace) -> int:
    from pipeline.sweeps.seeds import parse_seeds
    from pipeline.sweeps.sweep import SweepOptions, sweep

    options = SweepOptions(
        args.baseline,
        args.backend,
        args.parallel,
        args.ray_address,
        args.gpus_per_trial,
        args.cpus_per_trial,
        classical=classical_methods(args),
        early_stop=args.early_stop,
        precision=args.precision,
    )
    summary = sweep(
        Path(args.recipe), args.overrides, args.grid or [], parse_seeds(args.seeds), Path(args.output), options
    )
    print(f"summary: {Path(args.output) / 'summary.md'} ({len(summary.cells)} cells, split {summary.split})")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pipeline.sweeps.compare import compare

    summary = compare(
        [Path(path) for path in args.runs],
        Path(args.output),
        Path(args.baseline) if args.baseline else None,
        classical=classical_methods(args),
    )
    print(f"summary: {Path(args.output) / 'summary.md'} ({len(summary.cells)} cells, split {summary.split})")
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from pipeline.diagnostics.report import diagnose, diagnostics_folder

    words = [word.strip() for word in args.words.split(",") if word.strip()] if args.words else None
    similarity, analogies = (Path(p) if p else None for p in (args.similarity, args.analogies))
    result = diagnose(Path(args.run), args.against, words, similarity, analogies, args.split, args.trust_code)
    print(f"diagnostics: {diagnostics_folder(Path(result.run), Path(result.model)) / 'diagnostics.md'}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from pipeline.training.push import push_model

    files = push_model(Path(args.run), args.repo_id, private=args.private, dry_run=args.dry_run, hidden=args.hidden)
    verb = "would upload" if args.dry_run else "uploaded"
    print(f"{verb} {len(files)} files to {args.repo_id}: {', '.join(files)}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from pipeline.experiment.reference import recipe_reference

    print(recipe_reference())
    return 0


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got '{text}'")
    return int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got '{text}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"embedlab {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the libraries' own output too (load reports, their progress bars); by default it goes to the run "
        "folder's library.log",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run_commands(commands)
    add_sweep_command(commands)
    add_compare_command(commands)
    add_diagnose_command(commands)
    push = commands.add_parser("push", help="upload a run's saved model, with its model card, to the Hugging Face Hub")
    push.add_argument("run", help="finished run folder (or a saved model inside one)")
    push.add_argument("--repo-id", required=True, help="the Hub repository, e.g. you/minilm-glove-bbc (made if new)")
    push.add_argument("--private", action="store_true", help="make a new repository private")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded; write and send nothing")
    push.add_argument("--hidden", action="store_true", help="upload hidden files (.NAME) of the model folder too")
    push.set_defaults(handler=_push)
    schema = commands.add_parser("schema", help="print every recipe field with its type, default and meaning")
    schema.set_defaults(handler=_schema)
    return parser


def add_run_commands(commands: Any) -> None:
    """train, eval, validate, inspect: one recipe or one run folder each."""
    train = commands.add_parser("train", help="fine-tune as a recipe says and write a run folder")
    train.add_argument("recipe", help="recipe YAML file")
    train.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    train.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    train.add_argument(
        "--resume", action="store_true", help="continue the run in output_dir from its newest whole checkpoint"
    )
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("eval", help="re-evaluate a finished run folder or a saved model inside one")
    evaluate.add_argument("run", help="run folder (or its model/ or checkpoints/step-N/ folder)")
    evaluate.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    evaluate.add_argument("--output", help="also write the scores to this JSON file")
    evaluate.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    evaluate.set_defaults(handler=_eval)

    validate = commands.add_parser("validate", help="check a recipe and print it with every default filled in")
    validate.add_argument("recipe", help="recipe YAML file")
    validate.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    validate.set_defaults(handler=_validate)

    inspect = commands.add_parser("inspect", help="show the input layers after surgery, without training")
    inspect.add_argument("recipe", help="recipe YAML file")
    inspect.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP)
    inspect.set_defaults(handler=_inspect)


def add_sweep_command(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep", help="train a grid of settings × seeds, then summarise what differs and whether it is real"
    )
    sweep.add_argument("recipe", help="recipe YAML file")
    sweep.add_argument("overrides", nargs="*", metavar="key=value", help=OVERRIDES_HELP + "; apply to every run")
    sweep.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2",
        help="a recipe key and its values (YAML, so a value may be a "
        "mapping: 'layers.positions={policy: replace, init: none}'); repeat for a factorial grid; keys joined by + "
        "vary together: 'A+B=[a1, b1],[a2, b2]'",
    )
    sweep.add_argument(
        "--seeds",
        default="0",
        help="train.seed values, e.g. 0,1,2 (default 0); or auto[:MIN:MAX] (auto: 3 to 8): "
        "MIN seeds per cell, then more only where the comparison with the baseline is still open",
    )
    sweep.add_argument(
        "--precision",
        type=positive_float,
        help="with --seeds auto: also add seeds while a cell's interval is wider than this",
    )
    sweep.add_argument(
        "--output", required=True, help="sweep folder: one run folder per cell and seed, the summary and plots"
    )
    sweep.add_argument(
        "--baseline", help="KEY=V naming the cell the others are compared with (default: the first cell)"
    )
    sweep.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local: --parallel runs at a time (one per GPU); ray: Ray Tune trials",
    )
    sweep.add_argument(
        "--parallel",
        type=positive_int,
        default=1,
        help="local backend: runs at once, the cores divided between them (default 1)",
    )
    sweep.add_argument(
        "--early-stop",
        choices=["asha"],
        help="hyper-parameter grids: stop runs that fall behind by their evaluation score "
        "(needs train.eval_every_steps): ASHA on the ray backend, the median stopping rule on local",
    )
    sweep.add_argument("--ray-address", help="an existing Ray cluster (e.g. auto); default: start a local Ray instance")
    sweep.add_argument("--gpus-per-trial", type=float, default=0, help="GPUs each Ray trial takes (0 on CPU)")
    sweep.add_argument(
        "--cpus-per-trial",
        type=positive_int,
        help="CPU threads of each run (default: this machine's cores / --parallel)",
    )
    add_classical_options(sweep)
    sweep.set_defaults(handler=_sweep)


def add_compare_command(commands: Any) -> None:
    compare = commands.add_parser("compare", help="summarise and plot finished runs or sweeps side by side")
    compare.add_argument("runs", nargs="+", help="run folders or sweep folders")
    compare.add_argument(
        "--baseline", help="the run folder whose cell the others are compared with (default: the first)"
    )
    compare.add_argument(
        "--output", default="comparison", help="folder for summary.md/csv/json and the plots (default: comparison)"
    )
    add_classical_options(compare)
    compare.set_defaults(handler=_compare)


def add_diagnose_command(commands: Any) -> None:
    diagnose = commands.add_parser(
        "diagnose", help="what fine-tuning did to a run's input layers: drift, meaning, positions, length"
    )
    diagnose.add_argument("run", help="finished run folder (or a saved model inside one)")
    diagnose.add_argument(
        "--against",
        help="the start to compare with: a model folder, a run or checkpoint folder, a Hub id "
        "(default: the pretrained model the run started from)",
    )
    diagnose.add_argument(
        "--words", help="comma-separated words whose nearest neighbours to show (default: a few common words)"
    )
    diagnose.add_argument(
        "--similarity",
        help="word-similarity file, 'word1<TAB>word2<TAB>score' lines (default: gensim's wordsim353.tsv)",
    )
    diagnose.add_argument(
        "--analogies",
        help="analogy file, 'a b c d' lines under ': section' headers (default: gensim's questions-words.txt)",
    )
    diagnose.add_argument(
        "--split", help="eval split for the scores by input length (default: the run's last eval split)"
    )
    diagnose.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    diagnose.set_defaults(handler=_diagnose)


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
    console.configure(verbose=args.verbose)
    # SIGTERM (a scheduler's pre-emption) ends a command as Ctrl-C does; training turns both into a checkpoint.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        load_plugins()
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
    except Exception as error:  # a full or read-only disk surfaces from torch, safetensors or plain Python
        failure = disk_failure(error)
        if failure is None:
            raise
        print(f"error: {failure}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
