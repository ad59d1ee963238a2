"""`pipeline push`: a run's saved model folder, with its card, uploaded to a Hub repository.

What goes is what the folder holds as plain files: a link (to a file or folder anywhere) is refused, not followed,
and hidden files (`.env`, `.git/...`) are left out unless asked for. `--dry-run` lists what would go and writes
nothing: a missing card is listed as the one that would be written."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import PipelineError, unusable
from pipeline.experiment.runs import locate_run
from pipeline.training.card import CARD, write_model_card


def files_to_push(model_dir: Path, hidden: bool = False) -> list[str]:
    """The files under `model_dir` that a push uploads (relative, sorted); one line naming a link inside it."""
    files = []
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if path.is_symlink():
            raise PipelineError(
                f"{path} is a link; push uploads only the model folder's own files (replace the link by the file, "
                "or remove it)",
                field="run",
            )
        if not hidden and any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file():
            files.append(relative.as_posix())
    return files


def push_model(
    run: Path, repo_id: str, private: bool = False, dry_run: bool = False, hidden: bool = False
) -> list[str]:
    """Upload a run's saved model folder (the final model, or a checkpoint's), with its card, to the Hub repository
    `repo_id` (created if it does not exist); returns the files uploaded (with `dry_run`, the files that would be,
    and nothing is written or sent). hidden: upload hidden files too."""
    run_dir, model_dir = locate_run(run)
    if model_dir.is_symlink():
        raise PipelineError(f"{model_dir} is a link; push uploads a model folder of the run itself", field="run")
    files = files_to_push(model_dir, hidden)
    card_missing = CARD not in files and ((run_dir / "metrics.json").is_file() or model_dir != run_dir / "model")
    if dry_run:
        return sorted({*files, CARD}) if card_missing else files
    if card_missing:
        write_model_card(run_dir, model_dir=model_dir)
        files = sorted({*files, CARD})
    if not files:
        raise PipelineError(f"{model_dir} holds no file to push")
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(model_dir), repo_id=repo_id, allow_patterns=files,
                          commit_message=f"embedlab run {run_dir.name}")  # fmt: skip
    except Exception as error:  # the Hub client raises many types: offline, not logged in, no rights, a bad id
        raise unusable(f"cannot push {model_dir} to {repo_id}", error, field="--repo-id") from None
    return files
