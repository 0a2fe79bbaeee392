"""The roster grid's cells as HTML, built in Python.

A 7-day grid of the demo district has about 2,000 cells; one template expression per
cell (a method call, filters, a language test) made the page slow and its slowest
renders slower still (p95 ~400 ms). Here each row's cells are joined once, escaped with
`markupsafe`, and the template inserts one string per row.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from scheduler.reports import Grid


def row_cells(grid: Grid, lang: str) -> list[Markup]:
    """The ``<td>`` cells of each row of `grid`, in order, with texts in `lang`."""
    english = lang == "en"
    columns = [(day, shift.id) for day in grid.dates for shift in grid.shifts]
    cells = grid.cells
    out = []
    for row in grid.rows:
        post_id = row.post.id
        parts = []
        for day, shift_id in columns:
            cell = cells.get((post_id, day, shift_id))
            if cell is None:
                parts.append("<td></td>")
                continue
            reasons = [escape((u.get("reason_en") if english and u.get("reason_en")
                               else u.get("reason")) or "") for u in cell.unmet]
            parts.append(f'<td class="unmet" title="{" ".join(reasons)}">' if reasons
                         else "<td>")
            parts.append(escape("、".join(cell.names)))
            if cell.needed:
                parts.append(f' <span class="muted">{len(cell.names)}/{cell.needed}</span>')
            parts.extend(f'<br><small class="error">{r}</small>' for r in reasons)
            parts.append("</td>")
        out.append(Markup("".join(parts)))
    return out
