"""No silent regressions: each visible eval set's per-question outcome, committed beside
it (`evals/baselines/<set>.json`), and the diff of a run against it. A question right in
the baseline that turns wrong fails CI (`tests/test_regressions.py`) unless the same commit
updates the baseline and says why (`qa eval --baseline FILE --update-baseline --why ...`);
each update is kept in the file's `changes`, with the questions it moved."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..types import ConfigError
from .eval import ItemResult


@dataclass
class Diff:
    turned_wrong: list[str]
    turned_right: list[str]
    added: list[str]  # questions the baseline does not know yet
    gone: list[str]  # baseline questions no longer in the set


def outcomes(results: list[ItemResult]) -> dict[str, dict]:
    return {r.id: {"right": r.right, "assurance": r.assurance, "answer": r.answer[:160]} for r in results}


def load(path: str | Path) -> dict:
    try:
        baseline = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"No baseline at {path}. Write one with `qa eval --set SET --baseline {path} "
                          "--update-baseline --why \"first baseline\"`.") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"The baseline {path} cannot be read ({exc}).") from None
    if not isinstance(baseline.get("items"), dict):
        raise ConfigError(f"The baseline {path} has no per-question items.")
    return baseline


def compare(baseline: dict, results: list[ItemResult]) -> Diff:
    before, now = baseline["items"], outcomes(results)
    return Diff(turned_wrong=[i for i in now if i in before and before[i]["right"] and not now[i]["right"]],
                turned_right=[i for i in now if i in before and not before[i]["right"] and now[i]["right"]],
                added=[i for i in now if i not in before], gone=[i for i in before if i not in now])


def render(diff: Diff, results: list[ItemResult], baseline: dict) -> str:
    """The diff question by question: what was said before and what is said now."""
    by_id = {r.id: r for r in results}
    lines = []
    for title, ids in (("turned wrong", diff.turned_wrong), ("turned right", diff.turned_right),
                       ("new (not in the baseline)", diff.added), ("gone from the set", diff.gone)):
        if not ids:
            continue
        lines.append(f"{len(ids)} {title}:")
        for i in ids:
            r = by_id.get(i)
            lines.append(f"  {i}: {r.question if r else ''}")
            if i in baseline["items"]:
                lines.append(f"    was: {baseline['items'][i]['answer'][:120] or '(refused)'}")
            if r is not None:
                lines.append(f"    now: {r.answer[:120] or '(refused)'} [{r.assurance}]")
    return "\n".join(lines) or "No question changed from the baseline."


def write(path: str | Path, eval_set: str, results: list[ItemResult], why: str, diff: Diff | None) -> None:
    """Make this run the baseline, recording why and which questions moved."""
    if diff is not None and diff.turned_wrong and not why.strip():
        raise ConfigError(f"{len(diff.turned_wrong)} question(s) turned wrong ({', '.join(diff.turned_wrong[:5])}); "
                          "say why with --why \"...\" to make this the baseline.")
    old = json.loads(Path(path).read_text(encoding="utf-8")) if Path(path).is_file() else {}
    change = {"date": time.strftime("%Y-%m-%d"), "why": why}
    if diff is not None:
        change |= {"turned_wrong": diff.turned_wrong, "turned_right": diff.turned_right}
    right = sum(r.right for r in results)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"set": eval_set, "right": f"{right}/{len(results)}",
                                      "changes": [*old.get("changes", []), change],
                                      "items": outcomes(results)}, indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")


def check_run(path: str | Path, eval_set: str, results: list[ItemResult], update: bool, why: str) -> int:
    """`qa eval --baseline`: print the run's diff with the baseline; 1 if a right answer
    turned wrong, unless `update` makes the run the new baseline (with a reason)."""
    known = load(path) if Path(path).is_file() or not update else None
    diff = compare(known, results) if known else None
    if diff is not None:
        print(render(diff, results, known))
    if update:
        write(path, eval_set, results, why, diff)
        print(f"Wrote the baseline {path}")
        return 0
    return 1 if diff.turned_wrong else 0
