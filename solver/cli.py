"""`python -m solver …`: solve, check, repair, scenario, greedy, demo, curtois, bench.

Malformed input exits with status 2 and one line naming the place; a roster that breaks a
hard rule makes `check` exit 1.  No command prints a traceback for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from solver.problem import Problem, ProblemError, load_problem, parse_problem, read_json

EXIT_OK, EXIT_VIOLATION, EXIT_INPUT, EXIT_FAILED = 0, 1, 2, 3


def _write_json(doc: Any, path: str | None) -> None:
    text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    if path in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(str(path)).write_text(text, encoding="utf-8")


def summary(problem: Problem, solution: dict[str, Any], limit: int = 10) -> str:
    """A coordinator's reading of a solution: coverage, unmet with reasons, objective."""
    demanded = sum(s.min for s in problem.slots)
    missing = sum(u["missing"] for u in solution["unmet"] if u["skill"] is None)
    skills = sum(u["missing"] for u in solution["unmet"] if u["skill"] is not None)
    lines = [f"{problem.name or 'roster'}: {problem.start.isoformat()} + {problem.days} 天, "
             f"{len(problem.sites)} 个站点, {len(problem.volunteers)} 名志愿者"]
    if solution["status"] == "INFEASIBLE":
        lines.append("状态 INFEASIBLE：硬性规则相互矛盾，无法排班")
        lines += [f"  - {c['reason']}" for c in solution.get("conflicts", [])[:limit]]
        return "\n".join(lines)
    cov = 100.0 * (demanded - missing) / demanded if demanded else 100.0
    obj, bound = solution["objective"], solution["bound"]
    gap = 100.0 * (obj - bound) / obj if obj else 0.0
    lines += [
        f"状态 {solution['status']}  目标值 {obj}  下界 {bound}  差距 {gap:.1f}%  "
        f"用时 {solution['seconds']:.1f}s",
        f"覆盖率 {cov:.1f}%（需求 {demanded} 人次，缺 {missing} 人次，缺技能 {skills} 人次）; "
        f"排班 {len(solution['assignments'])} 人次",
        "代价构成: " + ", ".join(f"{p['rule']}={p['cost']}" for p in solution["penalties"]),
    ]
    unmet = solution["unmet"]
    if unmet:
        lines.append(f"未满足需求 {len(unmet)} 项：")
        lines += [f"  - {u['reason']}" for u in unmet[:limit]]
        if len(unmet) > limit:
            lines.append(f"  … 另有 {len(unmet) - limit} 项")
    return "\n".join(lines)


def _progress(p: Any) -> None:
    print(f"  [{p.seconds:6.1f}s] objective {p.objective}  bound {p.bound}  "
          f"(part {p.part + 1}/{p.parts})", file=sys.stderr, flush=True)


def _part_progress(p: Any) -> None:
    if p.error:
        print(f"  [{p.seconds:6.1f}s] part {p.index + 1}/{p.count} failed: {p.error}",
              file=sys.stderr, flush=True)
        return
    gap = 100.0 * (p.objective - p.bound) / p.objective if p.objective else 0.0
    again = " (went on with time left)" if p.extended else ""
    print(f"  [{p.seconds:6.1f}s] part {p.index + 1}/{p.count}{again} {p.status}  objective "
          f"{p.objective}  bound {p.bound}  gap {gap:.1f}%  peak {p.peak_mb:.0f} MB  "
          f"({p.done}/{p.count} done)", file=sys.stderr, flush=True)


def cmd_solve(args: argparse.Namespace) -> int:
    from solver.parts import PartFailed, solve_parallel
    from solver.solve import solve

    problem = load_problem(args.problem)
    if args.jobs is None:
        sol = solve(problem, time_limit=args.time_limit, workers=args.workers, seed=args.seed,
                    progress=None if args.quiet else _progress)
    else:
        try:
            sol = solve_parallel(problem, time_limit=args.time_limit, jobs=args.jobs,
                                 workers=args.workers, seed=args.seed,
                                 progress=None if args.quiet else _part_progress)
        except PartFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
    _write_json(sol, args.output)
    if args.output not in (None, "-"):
        print(summary(problem, sol))
    return EXIT_OK


def cmd_greedy(args: argparse.Namespace) -> int:
    from solver.greedy import greedy
    from solver.rules import instantiate
    from solver.solve import solution_document
    from solver.validate import check

    problem = load_problem(args.problem)
    t0 = time.monotonic()
    rules = instantiate(problem)
    roster = greedy(problem, rules)
    report = check(problem, roster, rules)
    if not report.ok:  # the greedy fill cannot always meet everyone's min_shifts
        for v in report.hard[:20]:
            print(f"error: greedy roster breaks [{v.rule}] {v.message.zh} / {v.message.en}",
                  file=sys.stderr)
        return EXIT_VIOLATION
    sol = solution_document(problem, rules, roster, "FEASIBLE", 0, time.monotonic() - t0)
    _write_json(sol, args.output)
    if args.output not in (None, "-"):
        print(summary(problem, sol))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from solver.validate import check, parse_assignments

    problem = load_problem(args.problem)
    doc = read_json(args.solution)
    report = check(problem, parse_assignments(problem, doc))
    print(f"objective {report.objective}")
    for p in report.penalties():
        print(f"  {p['rule']:<28} {p['cost']}")
    claimed = doc.get("objective") if isinstance(doc, dict) else None
    if claimed is not None and claimed != report.objective:
        print(f"note: the solution claims objective {claimed}")
    hard = report.hard
    if hard:
        print(f"{len(hard)} hard rule violation(s):")
        for v in hard[:50]:
            print(f"  [{v.rule}] {v.message.zh} / {v.message.en}")
        return EXIT_VIOLATION
    print("no hard rule is broken")
    return EXIT_OK


def cmd_repair(args: argparse.Namespace) -> int:
    from solver.repair import CHANGE_WEIGHT, Absence, repair

    problem = load_problem(args.problem)
    solution = read_json(args.solution)
    absences = [Absence.parse(text) for text in args.absent]
    sol = repair(problem, solution, absences, frozen_before=args.frozen_before,
                 time_limit=args.time_limit, workers=args.workers, seed=args.seed,
                 change_weight=CHANGE_WEIGHT if args.change_weight is None
                 else args.change_weight, fill_gaps=args.fill_gaps)
    _write_json(sol, args.output)
    if args.output not in (None, "-"):
        print(repair_summary(sol))
    return EXIT_OK


def repair_summary(solution: dict[str, Any], limit: int = 20) -> str:
    """The secretary's reading of a repair: what was vacated, who replaces whom, gaps left."""
    info = solution["repair"]
    lines = [f"空出 {info['vacated']} 个班次，调整他人 {info['changed_others']} 处；"
             f"{info['frozen_before']} 之前的安排不变；用时 {solution['seconds']:.1f}s"]
    lines += [f"  - {c['reason']}" for c in solution["changes"][:limit]]
    if len(solution["changes"]) > limit:
        lines.append(f"  … 另有 {len(solution['changes']) - limit} 处")
    for u in info["uncovered"]:
        lines.append(f"  ! {u['reason']}")
    return "\n".join(lines)


def cmd_scenario(args: argparse.Namespace) -> int:
    from solver.scenario import generate

    doc = generate(districts=args.districts, seed=args.seed, days=args.days)
    parse_problem(doc)  # what we hand out must read back
    _write_json(doc, args.output)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from solver.greedy import greedy
    from solver.rules import instantiate
    from solver.scenario import generate
    from solver.solve import solution_document, solve

    problem = parse_problem(generate(districts=1, seed=args.seed, days=args.days))
    print(f"演示：生成 1 个区（种子 {args.seed}），求解 {args.time_limit:.0f} 秒…", flush=True)
    rules = instantiate(problem)
    base = solution_document(problem, rules, greedy(problem, rules), "FEASIBLE", 0, 0.0)
    sol = solve(problem, time_limit=args.time_limit, workers=args.workers, seed=args.seed,
                progress=_progress)
    print(summary(problem, sol))
    print(f"对照（逐日贪心）：目标值 {base['objective']}，缺 "
          f"{sum(u['missing'] for u in base['unmet'])} 人次/技能")
    return EXIT_OK


def cmd_curtois(args: argparse.Namespace) -> int:
    from solver.curtois.cli import run_curtois

    return run_curtois(args.instance, args.output, args.time_limit, args.workers, args.seed)


def cmd_bench(args: argparse.Namespace) -> int:
    from solver.curtois.cli import run_bench

    return run_bench(args.instances or None, args.time_limit, args.workers, args.output)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m solver", description="Bastion roster solver")
    sub = ap.add_subparsers(dest="command", required=True)

    def solving(p: argparse.ArgumentParser, limit: float) -> None:
        p.add_argument("--time-limit", type=float, default=limit, metavar="S")
        p.add_argument("--workers", type=int, default=2)
        p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("solve", help="solve a roster-problem/1 file")
    p.add_argument("problem")
    p.add_argument("-o", "--output")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="split into independent parts solved in N processes")
    solving(p, 60)
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("greedy", help="the day-by-day greedy baseline")
    p.add_argument("problem")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_greedy)

    p = sub.add_parser("check", help="validate a solution; exit 1 if a hard rule is broken")
    p.add_argument("problem")
    p.add_argument("solution")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("repair", help="re-plan around absent volunteers with few changes")
    p.add_argument("problem")
    p.add_argument("solution")
    p.add_argument("--absent", action="append", required=True,
                   metavar="VOLUNTEER[:FROM_DATE[:TO_DATE]]")
    p.add_argument("--frozen-before", metavar="DATE",
                   help="keep every assignment before DATE (default: the first absent date)")
    p.add_argument("--change-weight", type=int, default=None, metavar="W")
    p.add_argument("--fill-gaps", action="store_true",
                   help="also fill gaps the published roster already had, near the absences")
    p.add_argument("-o", "--output")
    p.add_argument("--time-limit", type=float, default=10, metavar="S")
    p.add_argument("--workers", type=int, default=1)  # see solver.repair: one is faster
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("scenario", help="generate a seeded district or city problem")
    p.add_argument("--districts", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_scenario)

    p = sub.add_parser("demo", help="generate the demo district, solve it, print a summary")
    p.add_argument("--days", type=int, default=14)
    solving(p, 30)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("curtois", help="solve a Curtois & Qu benchmark instance")
    p.add_argument("instance")
    p.add_argument("-o", "--output")
    solving(p, 60)
    p.set_defaults(func=cmd_curtois)

    p = sub.add_parser("bench", help="the Curtois & Qu benchmark table")
    p.add_argument("instances", nargs="*")
    p.add_argument("--time-limit", type=float, default=None, metavar="S")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_bench)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ProblemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
