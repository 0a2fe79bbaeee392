"""Bastion's optimisation core: roster problems in, rosters with explanations out.

Pure Python and OR-Tools CP-SAT; it imports no web, database or queue code.  Problems and
solutions travel in the exchange format `roster-problem/1` / `roster-solution/1`.
"""

from solver.problem import Problem, ProblemError, load_problem, parse_problem
from solver.repair import Absence, check_change, repair
from solver.solve import Progress, solve
from solver.validate import Report, check, parse_assignments

__all__ = ["Absence", "Problem", "ProblemError", "Progress", "Report", "check", "check_change",
           "load_problem", "parse_assignments", "parse_problem", "repair", "solve"]
